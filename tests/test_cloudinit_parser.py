"""The rendered user data through Flatcar's own coreos-cloudinit.

coreos-cloudinit parses #cloud-config with yaml.v3 into its config structs
and ignores every key it does not know without a word: since Flatcar
3975.2.0 that includes `drop-ins`, `ssh-authorized-keys` and
`reboot-strategy` (issue 18; flatcar/coreos-cloudinit 1bbfd30). Its own
`-validate` still maps '-' to '_' and says nothing. So every rendered user
data goes through cloudinit-roundtrip (tests/consumers/cloudinit-roundtrip),
built in the vendored tree of the commit Flatcar stable ships: the parser's
entry point, then back to YAML, and every key path of the input must
survive. The binaries come from scripts/bootstrap --tests
(tests/consumers/cloudinit.py); without them these tests fail, saying so.
"""

import subprocess

import pytest

from tasks.model import userdata
from tests.harness import rendering as tu
from tests.consumers import cloudinit


@pytest.fixture(scope="module")
def consumer():
    try:
        return cloudinit.binaries()
    except cloudinit.NotBuilt as e:
        pytest.fail(f"Flatcar's coreos-cloudinit is not built: {e}", pytrace=False)


def roundtrip(consumer, path):
    return subprocess.run([consumer["cloudinit-roundtrip"], str(path)], capture_output=True, text=True,
                          timeout=60)


def validate(consumer, path):
    return subprocess.run([consumer["coreos-cloudinit"], "-validate", f"--from-file={path}"],
                          capture_output=True, text=True, timeout=60)


def render_variant(material, name):
    s = tu.load_settings(**tu.VARIANTS[name])
    facts = tu.make_facts(material)
    if name in tu.OPENSTACK_VARIANTS:
        return tu.render_openstack(s, facts)
    return tu.render_both(s, facts)


@pytest.mark.parametrize("variant", sorted(tu.VARIANTS))
def test_every_rendered_user_data_loses_nothing_in_coreos_cloudinit(consumer, material, variant, tmp_path):
    """Master and node, legacy and OpenStack kinds: the bytes Nova gets
    (gzipped when large) parse with nothing lost, changed or substituted,
    and pass coreos-cloudinit -validate."""
    for role, text in render_variant(material, variant).items():
        path = tmp_path / f"{role}.user-data"
        path.write_bytes(userdata.encode(text, role))
        result = roundtrip(consumer, path)
        assert result.returncode == 0 and result.stdout.strip().endswith(": ok"), \
            f"{variant} {role}: coreos-cloudinit does not read all of it:\n{result.stdout}{result.stderr}"
        checked = validate(consumer, path)
        assert checked.returncode == 0, f"{variant} {role}: coreos-cloudinit -validate:\n{checked.stderr}"


def test_the_golden_user_data_loses_nothing(consumer, tmp_path):
    for name, text in tu.golden_renders().items():
        path = tmp_path / name
        path.write_text(text)
        result = roundtrip(consumer, path)
        assert result.returncode == 0, result.stdout + result.stderr


def _hyphenated(text):
    """The keys as the templates wrote them before issue 18."""
    for key in ("drop_ins", "ssh_authorized_keys", "reboot_strategy"):
        text = text.replace(f"{key}:", f"{key.replace('_', '-')}:")
    return text


def test_roundtrip_names_every_key_the_parser_drops(consumer, material, tmp_path):
    old = _hyphenated(render_variant(material, "defaults")["master"])
    # coreos-cloudinit's own validator maps '-' to '_' and reports nothing:
    # the reason for the roundtrip.
    (tmp_path / "hyphenated.user-data").write_text(old)
    assert validate(consumer, tmp_path / "hyphenated.user-data").returncode == 0
    path = tmp_path / "old.user-data"
    path.write_text(old + "runcmd:\n- echo never run\n")
    result = roundtrip(consumer, path)
    assert result.returncode == 1, result.stdout + result.stderr
    lost = sorted(line.split(": lost: ")[1] for line in result.stdout.splitlines() if ": lost: " in line)
    assert "coreos.update.reboot-strategy" in lost
    assert "users[0].ssh-authorized-keys" in lost
    assert "runcmd" in lost
    assert any(p.startswith("coreos.units[") and p.endswith("].drop-ins") for p in lost), lost
    assert len(lost) == 4, lost


def test_roundtrip_names_a_value_the_parser_misreads_and_a_substitution(consumer, tmp_path):
    path = tmp_path / "bad.user-data"
    path.write_text("#cloud-config\n"
                    "coreos:\n  units:\n  - name: a.service\n    enable: true\n    command: start\n"
                    "    drop_ins:\n    - name: x.conf\n      content: |\n        [Service]\n"
                    "        Environment=IP=$private_ipv4\n"
                    "    mask: {nested: 1}\n")
    result = roundtrip(consumer, path)
    assert result.returncode == 2, result.stdout + result.stderr
    # A mapping where the struct has a bool: yaml.v3 refuses the document,
    # and coreos-cloudinit then drops all of it (payloadAsCloudConfigPart).
    assert "error: config.NewCloudConfig" in result.stdout, result.stdout
    path.write_text(path.read_text().replace("    mask: {nested: 1}\n", ""))
    result = roundtrip(consumer, path)
    assert result.returncode == 1
    assert ": substituted: " in result.stdout
    assert "changed: coreos.units[0].drop_ins[0].content" in result.stdout


def test_missing_binaries_fail_with_what_to_run(tmp_path):
    with pytest.raises(cloudinit.NotBuilt, match="run scripts/bootstrap --tests"):
        cloudinit.binaries(build_dir=tmp_path / "nothing-built")
