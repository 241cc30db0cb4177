"""kubeconfig: the cluster's entries are added or replaced, nothing else
changes; the files are private; TLS verification cannot be turned off."""

import stat

import pytest
import yaml

from tasks.steps import kubeconfig
from tasks.model import pki, settings
from tasks.support.errors import UserError

CONTEXT = "rackspace_demo"


def admin_text(material, server="https://192.0.2.10:6443"):
    return pki.admin_kubeconfig(CONTEXT, server, material)


def other_config():
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {"colors": True},
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod.example:6443",
                                                   "certificate-authority-data": "UFJPRA=="}}],
        "users": [{"name": "prod-admin", "user": {"token": "prod-token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin", "namespace": "web"}}],
        "current-context": "prod",
        "extensions": [{"name": "kept", "extension": {"x": 1}}],
    }


def test_single_renames_points_at_server_and_keeps_the_ca(material):
    config = kubeconfig.single(yaml.safe_load(admin_text(material)), "rackspace_x", "https://203.0.113.5:6443")
    assert [c["name"] for c in config["clusters"]] == ["rackspace_x"]
    assert [u["name"] for u in config["users"]] == ["rackspace_x"]
    assert config["contexts"] == [{"name": "rackspace_x", "context": {"cluster": "rackspace_x", "user": "rackspace_x"}}]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://203.0.113.5:6443"
    assert cluster["certificate-authority-data"]
    assert "insecure-skip-tls-verify" not in cluster


def test_single_refuses_insecure_or_ca_less_configs(material):
    insecure = yaml.safe_load(admin_text(material))
    insecure["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    with pytest.raises(ValueError, match="skips TLS"):
        kubeconfig.single(insecure, CONTEXT, "https://x:6443")
    no_ca = yaml.safe_load(admin_text(material))
    del no_ca["clusters"][0]["cluster"]["certificate-authority-data"]
    with pytest.raises(ValueError, match="certificate authority"):
        kubeconfig.single(no_ca, CONTEXT, "https://x:6443")


def test_merge_leaves_other_entries_untouched(material):
    base = other_config()
    ours = kubeconfig.single(yaml.safe_load(admin_text(material)), CONTEXT, "https://192.0.2.10:6443")
    merged = kubeconfig.merge(base, ours)
    assert base == other_config(), "merge must not change its argument"
    for section in ("clusters", "users", "contexts"):
        assert merged[section][0] == other_config()[section][0]
        assert [e["name"] for e in merged[section]] == [other_config()[section][0]["name"], CONTEXT]
    assert merged["preferences"] == {"colors": True}
    assert merged["extensions"] == other_config()["extensions"]
    assert merged["current-context"] == CONTEXT


def test_merge_again_is_idempotent_and_replaces_our_entries(material):
    first = kubeconfig.single(yaml.safe_load(admin_text(material)), CONTEXT, "https://192.0.2.10:6443")
    once = kubeconfig.merge(other_config(), first)
    assert kubeconfig.merge(once, first) == once
    moved = kubeconfig.single(yaml.safe_load(admin_text(material)), CONTEXT, "https://192.0.2.99:6443")
    twice = kubeconfig.merge(once, moved)
    assert len(twice["clusters"]) == 2
    assert twice["clusters"][1]["cluster"]["server"] == "https://192.0.2.99:6443"
    assert twice["clusters"][0] == once["clusters"][0]


def test_remove_takes_only_our_entries(material):
    ours = kubeconfig.single(yaml.safe_load(admin_text(material)), CONTEXT, "https://192.0.2.10:6443")
    merged = kubeconfig.merge(other_config(), ours)
    removed = kubeconfig.remove(merged, CONTEXT)
    for section in ("clusters", "users", "contexts"):
        assert removed[section] == other_config()[section]
    assert removed["current-context"] == ""
    kept_current = kubeconfig.remove(kubeconfig.merge(other_config(), ours, set_current=False), CONTEXT)
    assert kept_current["current-context"] == "prod"


def _settings(tmp_path, **extra):
    env = {"KUBE_STATE_DIR": str(tmp_path / "state"), "KUBECONFIG_PATH": str(tmp_path / "kube" / "config"),
           "INSTANCE_PREFIX": "demo", **extra}
    return settings.load(environ=env)


def test_install_writes_private_files_and_merges(tmp_path, material):
    s = _settings(tmp_path)
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(other_config()))
    state, written = kubeconfig.install(s, admin_text(material), "203.0.113.7")
    assert written == target
    for path in (state, target):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    merged = yaml.safe_load(target.read_text())
    assert {c["name"] for c in merged["contexts"]} == {"prod", CONTEXT}
    assert merged["users"][0] == other_config()["users"][0]
    ours = yaml.safe_load(state.read_text())
    assert ours["clusters"][0]["cluster"]["server"] == "https://203.0.113.7:6443"
    # Re-running changes nothing.
    before = target.read_text()
    kubeconfig.install(s, admin_text(material), "203.0.113.7")
    assert target.read_text() == before
    assert kubeconfig.uninstall(s)
    assert yaml.safe_load(target.read_text())["contexts"] == other_config()["contexts"]
    assert not kubeconfig.uninstall(s)


def test_install_elsewhere_follows_symlinks(tmp_path, material):
    s = _settings(tmp_path)
    real = tmp_path / "real-config"
    real.write_text(yaml.safe_dump(other_config()))
    link = tmp_path / "link-config"
    link.symlink_to(real)
    kubeconfig.install(s, admin_text(material), "203.0.113.7", target=link)
    assert link.is_symlink()
    assert CONTEXT in {c["name"] for c in yaml.safe_load(real.read_text())["contexts"]}
    assert not (tmp_path / "kube" / "config").exists()


def test_a_broken_kubeconfig_is_one_line_naming_it(tmp_path, material):
    s = _settings(tmp_path)
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text("clusters: [unclosed\n")
    with pytest.raises(UserError, match=str(target)):
        kubeconfig.install(s, admin_text(material), "203.0.113.7")
    assert target.read_text() == "clusters: [unclosed\n"
