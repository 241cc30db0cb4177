"""The kubeadm configs checked by the release's own kubeadm (tasks/steps/kubeadmcheck.py):
its pure parts, the extraction and cache of kubeadm, the test release's
kubeadm (tests/testcloud/kubeadm_config.py) against what kubeadm does, and
the real `inv plan` / `inv up` against the test cloud."""

import dataclasses
import datetime
import io
import ipaddress
import os
import stat
from pathlib import Path

import pytest

from tasks.steps import kubeadmcheck
from tasks.model import pki, settings, userdata
from tasks.support.errors import UserError
from tests.harness import resources, run_inv
from tests.testcloud import kubeadm_config, release_mirror

IMAGE = "CoreOS (Stable)"   # what Mimic's catalogue offers

VERSION = "v1.34.1"
UTC = datetime.timezone.utc
NOW = datetime.datetime(2030, 1, 1, tzinfo=UTC)
TOKEN = "abcdef.0123456789abcdef"

GOOD_INIT = f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "{TOKEN}"
  ttl: "3600s"
localAPIEndpoint:
  advertiseAddress: "10.0.0.10"
nodeRegistration:
  name: demo-master
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  certSANs: ["10.0.0.10", "203.0.113.10", "demo-master", "kubernetes.default.svc.cluster.local"]
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"""
EXCLUSIVE = 'bootstrapTokens.0: Invalid value: "": the BootstrapToken .TTL and .Expires fields are mutually exclusive'


# --- pure parts -------------------------------------------------------------------

@pytest.mark.parametrize("system,machine,runs", [
    ("Linux", "x86_64", True), ("Linux", "AMD64", True), ("Linux", "aarch64", False),
    ("Darwin", "arm64", False), ("Darwin", "x86_64", False), ("Windows", "AMD64", False)])
def test_only_linux_amd64_runs_the_release_kubeadm(system, machine, runs):
    reason = kubeadmcheck.unsupported_platform(system, machine)
    assert (reason is None) == runs
    if not runs:
        assert reason == f"this machine is {system} {machine}, the release's kubeadm is linux-amd64"


@pytest.mark.parametrize("left,ttl", [(3600, 3600), (3600.9, 3600), (1, 1), (0.5, 1), (0, 1), (-1, 1), (-86400, 1)])
def test_the_boot_ttl_is_what_is_left_and_never_zero(left, ttl):
    # ttl 0 is kubeadm's "never expires" (encodeTokenSecretData sets an
    # expiration only for a ttl above 0): an expired token gets 1s.
    assert kubeadmcheck.boot_ttl(NOW + datetime.timedelta(seconds=left), NOW) == ttl


def test_sample_values_are_what_a_server_fills_in():
    values = kubeadmcheck.sample_values(ipaddress.ip_network("192.168.7.0/24"), "2030-01-01T02:00:00Z", NOW)
    assert values == {"@CLOUD_NETWORK_IP@": "192.168.7.10", "@PUBLIC_IP@": "203.0.113.10", "@TOKEN_TTL@": "7200s"}
    tiny = kubeadmcheck.sample_values(ipaddress.ip_network("10.1.2.0/30"), "2029-01-01T00:00:00Z", NOW)
    assert tiny["@CLOUD_NETWORK_IP@"] == "10.1.2.2" and tiny["@TOKEN_TTL@"] == "1s"


def test_fill_leaves_no_placeholder():
    assert kubeadmcheck.fill("a: @PUBLIC_IP@\n", {"@PUBLIC_IP@": "1.2.3.4"}) == "a: 1.2.3.4\n"
    with pytest.raises(ValueError, match="@SERVICENET_IP@"):
        kubeadmcheck.fill("a: @SERVICENET_IP@\n", {"@PUBLIC_IP@": "1.2.3.4"})


@pytest.mark.parametrize("code,out,err,expected", [
    (0, "ok\n", "", None),
    (1, "", f"error: {EXCLUSIVE}\nTo see the stack trace of this error execute with --v=5 or higher\n", EXCLUSIVE),
    (1, "", "W1208 01:02:03.456789 1 common.go:101] your configuration file uses a deprecated API spec\n"
            "unknown configuration APIs: x\n", "unknown configuration APIs: x"),
    (1, "said on stdout\n", "", "said on stdout"),
    (3, "", "", "exit status 3"),
])
def test_the_verdict_is_kubeadms_first_line(code, out, err, expected):
    assert kubeadmcheck.verdict(code, out, err) == expected


def test_the_token_never_reaches_a_message():
    said = f'the bootstrap token "{TOKEN}" was not of the form; secret 0123456789abcdef'
    masked = kubeadmcheck.mask(said, [TOKEN])
    assert TOKEN not in masked and "0123456789abcdef" not in masked and "<bootstrap token>" in masked


# --- the test release's kubeadm, against kubeadm's own rules -------------------------

def test_the_test_kubeadm_takes_a_good_config():
    assert kubeadm_config.validate(GOOD_INIT) is None
    assert kubeadm_config.validate(GOOD_INIT.replace('  ttl: "3600s"\n', "")) is None     # defaulted to 24h
    assert kubeadm_config.validate(GOOD_INIT.replace('- token: "abcdef.0123456789abcdef"\n  ttl: "3600s"\n',
                                                     "")) is None


@pytest.mark.parametrize("change,message", [
    # expires alone: kubeadm defaults ttl to 24h, then refuses the pair.
    (('  ttl: "3600s"\n', '  expires: "2030-01-02T03:04:05Z"\n'), EXCLUSIVE),
    (('  ttl: "3600s"\n', '  ttl: "3600s"\n  expires: "2030-01-02T03:04:05Z"\n'), EXCLUSIVE),
    (('  ttl: "3600s"\n', '  ttl: "an hour"\n'), 'time: invalid duration "an hour"'),
    (("kind: InitConfiguration", "kind: InitConfig"),
     'unknown configuration APIs: []schema.GroupVersionKind{schema.GroupVersionKind{Group:"kubeadm.k8s.io", '
     'Version:"v1beta4", Kind:"InitConfig"}}'),
    (("kubelet.config.k8s.io/v1beta1", "kubelet.config.k8s.io/v9"), "unknown configuration APIs: "),
    (("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration", "apiVersion: kubeadm.k8s.io/v1beta2\nkind: "
      "InitConfiguration"), 'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2"'),
    (('advertiseAddress: "10.0.0.10"', 'advertiseAddress: "@CLOUD_NETWORK_IP@"'),
     'couldn\'t use "@CLOUD_NETWORK_IP@" as "apiserver-advertise-address"'),
    (('"203.0.113.10"', '"@PUBLIC_IP@"'), 'apiServer.certSANs[1]: Invalid value: "@PUBLIC_IP@"'),
    (("nodeRegistration:", "nodeRegistrations:"),
     'error unmarshaling configuration schema.GroupVersionKind{Group:"kubeadm.k8s.io", Version:"v1beta4", '
     'Kind:"InitConfiguration"}: strict decoding error: unknown field "nodeRegistrations"'),
])
def test_the_test_kubeadm_refuses_what_kubeadm_refuses(change, message):
    old, new = change
    assert old in GOOD_INIT
    assert kubeadm_config.validate(GOOD_INIT.replace(old, new)).startswith(message)


def test_the_test_kubeadm_creates_tokens_as_kubeadm_does():
    now = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    assert kubeadm_config.token_secrets(GOOD_INIT, now) == [{"token-id": "abcdef", "expiration": "2030-01-01T01:00:00Z"}]
    # ttl 0 (or less): no expiration, the token never expires.
    assert kubeadm_config.token_secrets(GOOD_INIT.replace('"3600s"', '"0s"'), now) == [{"token-id": "abcdef"}]
    assert kubeadm_config.token_secrets(GOOD_INIT.replace('"3600s"', '"-5s"'), now) == [{"token-id": "abcdef"}]


# --- the release's kubeadm: extracted once, run on a private file ------------------------

def make_tarball(path, binaries=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    release_mirror.server_tarball(buf, VERSION, binaries)
    path.write_bytes(buf.getvalue())
    return path


def test_kubeadm_is_extracted_once_per_tarball_digest(tmp_path):
    downloads = tmp_path / "downloads"
    tarball = make_tarball(tmp_path / "a" / "release.tar.gz")
    binary = kubeadmcheck.kubeadm_binary(downloads, tarball, "a" * 64)
    assert binary == downloads / "kubeadm" / ("a" * 64) / "kubeadm"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert binary.read_bytes() == release_mirror.kubeadm_script(VERSION)
    # The same digest: the cached copy, without reading the tarball.
    tarball.unlink()
    assert kubeadmcheck.kubeadm_binary(downloads, tarball, "a" * 64) == binary
    # Another tarball: extracted, and the older copy removed.
    other = make_tarball(tmp_path / "b" / "release.tar.gz")
    assert kubeadmcheck.kubeadm_binary(downloads, other, "b" * 64).is_file()
    assert sorted(p.name for p in (downloads / "kubeadm").iterdir()) == ["b" * 64]


def test_a_tarball_without_kubeadm_cannot_be_checked(tmp_path):
    tarball = make_tarball(tmp_path / "release.tar.gz", {"kubeadm": None})
    with pytest.raises(kubeadmcheck.CannotCheck, match="holds no kubernetes/server/bin/kubeadm"):
        kubeadmcheck.kubeadm_binary(tmp_path / "downloads", tarball, "c" * 64)
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(kubeadmcheck.CannotCheck, match="cannot read"):
        kubeadmcheck.kubeadm_binary(tmp_path / "downloads", tmp_path / "broken.tar.gz", "d" * 64)


def spy_kubeadm(record):
    """A kubeadm that notes its arguments and the mode of its --config file."""
    return release_mirror.kubeadm_script(VERSION, f"""\
import os, json
path = sys.argv[sys.argv.index("--config") + 1]
with open({str(record)!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "mode": os.stat(path).st_mode & 0o777, "path": path,
               "text": open(path).read()}}, f)
print("ok")
""")


def test_the_config_goes_in_a_private_temp_file_never_on_the_command_line(tmp_path):
    import json

    record = tmp_path / "record.json"
    tarball = make_tarball(tmp_path / "release.tar.gz", {"kubeadm": spy_kubeadm(record)})
    binary = kubeadmcheck.kubeadm_binary(tmp_path / "downloads", tarball, "e" * 64)
    assert kubeadmcheck.validate(binary, GOOD_INIT) == (0, "ok\n", "")
    seen = json.loads(record.read_text())
    assert seen["mode"] == 0o600 and seen["text"] == GOOD_INIT
    assert TOKEN not in " ".join(seen["argv"]) and seen["argv"][:3] == ["config", "validate", "--config"]
    assert not os.path.exists(seen["path"])


@pytest.mark.parametrize("content,why", [
    (b"#!/nonexistent/interpreter\n", "the release's kubeadm does not run here"),
    (b"\x7fELF\x02\x01\x01" + b"\0" * 57, "the release's kubeadm does not run here"),
    (b"#!/bin/sh\nkill -SEGV $$\n", "the release's kubeadm died of signal 11"),
])
def test_a_kubeadm_that_does_not_run_cannot_check(tmp_path, content, why):
    tarball = make_tarball(tmp_path / "release.tar.gz", {"kubeadm": content})
    binary = kubeadmcheck.kubeadm_binary(tmp_path / "downloads", tarball, "f" * 64)
    with pytest.raises(kubeadmcheck.CannotCheck, match=why):
        kubeadmcheck.validate(binary, GOOD_INIT)


def _configs(tmp_path):
    s = settings.load(environ={"OS_USERNAME": "tester", "OS_API_KEY": "0123456789abcdef" * 2},
                      flags={"KUBE_DOWNLOAD_DIR": str(tmp_path / "downloads")})
    facts = userdata.ClusterFacts.from_pki(pki.generate(), kube_version=VERSION,
                                           release_url="https://release.invalid/", release_sha256="0" * 64,
                                           ssh_public_key="ssh-ed25519 sample")
    node = dataclasses.replace(facts, master_ip="192.0.2.10", node_index=1)
    return s, [kubeadmcheck.config_of(s, "demo-master", "master", facts),
               kubeadmcheck.config_of(s, "demo-node-1", "node", node)]


def test_check_runs_kubeadm_on_every_config(tmp_path):
    s, configs = _configs(tmp_path)
    tarball = make_tarball(tmp_path / "release.tar.gz")
    line = kubeadmcheck.check(s, configs, tarball)
    assert line == ("kubeadm configs of demo-master, demo-node-1 checked with the release's kubeadm "
                    "(kubeadm config validate): ok")
    # A config that sets expires beside the defaulted ttl (as the master's did) is refused.
    name, role, text, token, expires = configs[0]
    old = text.replace('ttl: "@TOKEN_TTL@"', f'expires: "{expires}"')
    with pytest.raises(UserError) as refused:
        kubeadmcheck.check(s, [(name, role, old, token, expires)], tarball)
    assert str(refused.value) == (f"kubeadm refuses the kubeadm config of demo-master "
                                  f"(cloud-config/addons/kubeadm-master.yaml.j2): {EXCLUSIVE}; nothing was created")


def test_check_says_plainly_when_it_cannot_run(tmp_path):
    s, configs = _configs(tmp_path)
    assert kubeadmcheck.check(s, [], make_tarball(tmp_path / "good.tar.gz")).startswith(
        "kubeadm configs not checked with kubeadm: the tarball's Kubernetes version is unknown")
    broken = make_tarball(tmp_path / "release.tar.gz", {"kubeadm": b"#!/nonexistent/interpreter\n"})
    assert kubeadmcheck.check(s, configs, broken) == ("kubeadm configs not checked with kubeadm: the release's "
                                                      "kubeadm does not run here (No such file or directory)")


# --- the real inv plan / inv up against the test cloud -----------------------------------

@pytest.fixture
def env(cloud_env):
    return dict(cloud_env, NUM_NODES="2", KUBE_IMAGE=IMAGE, KUBE_MASTER_FLAVOR="general1-2",
                KUBE_NODE_FLAVOR="general1-2", BOOT_TIMEOUT="60")


def with_release(env, tmp_path, kubeadm):
    """env with KUBE_ROOT holding a release tarball whose kubeadm is `kubeadm`."""
    root = tmp_path / "kube-root"
    make_tarball(root / "server" / "kubernetes-server-linux-amd64.tar.gz", {"kubeadm": kubeadm})
    return dict(env, KUBE_ROOT=str(root), KUBE_VERSION=VERSION)


REFUSE_ALL = release_mirror.kubeadm_script(VERSION, """\
sys.stderr.write("W1208 01:02:03.000000 1 common.go:1] a warning first\\n"
                 "this kubeadm refuses every config\\nTo see the stack trace of this error execute with --v=5\\n")
sys.exit(1)
""")


def test_plan_checks_the_configs_with_the_release_kubeadm(test_cloud, env):
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    prefix = env["INSTANCE_PREFIX"]
    plan = run_inv(["plan"], env).stdout
    assert (f"  kubeadm configs of {prefix}-master, {prefix}-node-1 checked with the release's kubeadm "
            "(kubeadm config validate): ok") in plan.splitlines()
    cached = list(Path(env["HOME"], ".cache/kube-rackspace/kubeadm").glob("*/kubeadm"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    assert "checked with the release's kubeadm" in run_inv(["plan"], env).stdout
    assert cached[0].stat().st_mtime_ns == before     # not extracted again


def test_a_config_kubeadm_refuses_stops_plan_and_up_before_anything_is_created(test_cloud, env, tmp_path):
    refusing = with_release(env, tmp_path, REFUSE_ALL)
    prefix = env["INSTANCE_PREFIX"]
    line = (f"error: kubeadm refuses the kubeadm config of {prefix}-master "
            "(cloud-config/addons/kubeadm-master.yaml.j2): this kubeadm refuses every config; nothing was created")
    before = resources(test_cloud)
    plan = run_inv(["plan"], refusing, check=False)
    assert plan.returncode == 1 and plan.stdout.splitlines()[-1] == line, plan.stdout
    up = run_inv(["up"], refusing, check=False)
    assert up.returncode == 1 and up.stdout == line + "\n", up.stdout
    assert resources(test_cloud) == before
    assert not [srv for srv in test_cloud.servers() if srv["name"].startswith(prefix + "-")]


def test_plan_says_when_kubeadm_cannot_run_or_there_is_no_tarball(test_cloud, env, tmp_path):
    broken = with_release(env, tmp_path, b"#!/nonexistent/interpreter\n")
    plan = run_inv(["plan"], broken).stdout
    assert ("  kubeadm configs not checked with kubeadm: the release's kubeadm does not run here "
            "(No such file or directory)") in plan.splitlines()
    # A plan after an upload, with the tarball gone from here.
    run_inv(["upload"], broken)
    os.unlink(Path(broken["KUBE_ROOT"]) / "server" / "kubernetes-server-linux-amd64.tar.gz")
    plan = run_inv(["plan"], broken).stdout
    assert "  kubeadm configs not checked with kubeadm: no release tarball here (inv build makes one)" in \
        plan.splitlines()
    run_inv(["down", "--yes"], broken)
