"""Settings: env-file parsing, layering, validation. Pure: no cloud, no mocks."""

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.model import settings
from tasks.support.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_default_file_and_specs_agree():
    defaults = settings.read_env_file(settings.DEFAULT_FILE)
    assert set(defaults) == set(settings.SPECS)


def test_defaults_keep_the_old_config_default_sh_values():
    s = settings.load(environ={})
    assert s.SSH_KEY_NAME == "id_kubernetes"
    assert s.NOVA_NETWORK == ipaddress.ip_network("192.168.0.0/24")
    assert s.INSTANCE_PREFIX == "kubernetes"
    assert (s.KUBE_MASTER_FLAVOR, s.KUBE_NODE_FLAVOR) == ("general1-2", "general1-2")
    assert s.NUM_NODES == 4
    assert s.KUBE_NETWORK == ipaddress.ip_network("10.240.0.0/16")
    assert s.SERVICE_CLUSTER_IP_RANGE == ipaddress.ip_network("10.0.0.0/16")
    assert str(s.DNS_SERVER_IP) == "10.0.0.10"
    assert s.DNS_DOMAIN == "cluster.local"
    assert s.ENABLE_CLUSTER_DNS is True
    assert s.SSH_USER == "core"
    assert all(s.source(name) == "default" for name in s)


def test_default_file_is_sourceable_by_bash():
    names = " ".join(settings.SPECS)
    script = f'set -eu; source "{settings.DEFAULT_FILE}"; for n in {names}; do printf "%s=%s\\n" "$n" "${{!n}}"; done'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                         env={"HOME": "/home/someone", "PATH": "/usr/bin:/bin"}).stdout
    from_bash = dict(line.split("=", 1) for line in out.splitlines())
    parsed = settings.read_env_file(settings.DEFAULT_FILE)
    for name, value in parsed.items():
        # bash expands a leading ~ in assignments; we expand it when parsing paths.
        expected = "/home/someone" + value[1:] if value.startswith("~") else value
        assert from_bash[name] == expected, name


@pytest.fixture
def env_dir(tmp_path):
    d = tmp_path / "env"
    d.mkdir()
    shutil.copy(settings.DEFAULT_FILE, d)
    (d / "team.env").write_text("NUM_NODES=2\nKUBE_NODE_FLAVOR=general1-4\nDNS_DOMAIN=team.local\nINSTANCE_PREFIX=team\n")
    return d


def test_precedence_default_envfile_environment_flag(env_dir, tmp_path):
    extra = tmp_path / "extra.env"
    extra.write_text('# a comment\nexport KUBE_NODE_FLAVOR="general1-8"  # inline comment\nSSH_USER=admin\n')
    environ = {"KUBE_ENV": "team", "KUBE_ENV_FILE": str(extra), "DNS_DOMAIN": "env.local", "INSTANCE_PREFIX": "fromenv"}
    s = settings.load(environ=environ, flags={"INSTANCE_PREFIX": "fromflag", "NUM_NODES": None}, env_dir=env_dir)
    assert (s.KUBE_MASTER_FLAVOR, s.source("KUBE_MASTER_FLAVOR")) == ("general1-2", "default")
    assert (s.NUM_NODES, s.source("NUM_NODES")) == (2, "env file env/team.env")
    assert (s.KUBE_NODE_FLAVOR, s.source("KUBE_NODE_FLAVOR")) == ("general1-8", f"env file {extra}")
    assert (s.DNS_DOMAIN, s.source("DNS_DOMAIN")) == ("env.local", "environment")
    assert (s.INSTANCE_PREFIX, s.source("INSTANCE_PREFIX")) == ("fromflag", "flag")


def test_paths_expand_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = settings.load(environ={})
    assert s.KUBE_STATE_DIR == tmp_path / ".kube" / "rackspace"
    assert s.KUBE_ROOT is None


BAD = [
    ({"NUM_NODES": "0"}, r"^NUM_NODES \(from environment\) must be at least 1, got 0$"),
    ({"NUM_NODES": "four"}, r"^NUM_NODES .*must be a whole number, got 'four'$"),
    ({"NOVA_NETWORK": "192.168.0.0/33"}, r"^NOVA_NETWORK .*CIDR"),
    ({"KUBE_NETWORK": "10.240.0.1/16"}, r"^KUBE_NETWORK .*CIDR"),
    ({"SERVICE_CLUSTER_IP_RANGE": "10.240.0.0/20"}, r"^KUBE_NETWORK \(10.240.0.0/16\) overlaps SERVICE_CLUSTER_IP_RANGE"),
    ({"NOVA_NETWORK": "10.0.5.0/24"}, r"^NOVA_NETWORK \(10.0.5.0/24\) overlaps SERVICE_CLUSTER_IP_RANGE"),
    ({"DNS_SERVER_IP": "10.1.0.10"}, r"^DNS_SERVER_IP \(10.1.0.10\) must be an address inside SERVICE_CLUSTER_IP_RANGE"),
    ({"DNS_SERVER_IP": "ten"}, r"^DNS_SERVER_IP .*IPv4 address"),
    ({"INSTANCE_PREFIX": "My_Cluster"}, r"^INSTANCE_PREFIX .*cannot be part of a server name"),
    ({"INSTANCE_PREFIX": "-x"}, r"^INSTANCE_PREFIX .*cannot be part of a server name"),
    ({"ENABLE_CLUSTER_DNS": "maybe"}, r"^ENABLE_CLUSTER_DNS .*true or false"),
    ({"ENABLE_CLUSTER_MONITORING": "influxdb"}, r"^ENABLE_CLUSTER_MONITORING .*Heapster"),
    ({"SSH_KEY_TYPE": "dsa"}, r"^SSH_KEY_TYPE .*rsa, ed25519"),
    ({"KUBE_VERSION": "1.31"}, r"^KUBE_VERSION .*stable"),
    ({"KUBE_ENV": "nosuch"}, r"^KUBE_ENV=nosuch: no file env/nosuch.env; known: small$"),
]


@pytest.mark.parametrize("environ,message", BAD, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _ in BAD])
def test_bad_values_name_the_setting(environ, message):
    with pytest.raises(ConfigError) as err:
        settings.load(environ=environ)
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_setting_in_env_file_is_an_error(env_dir):
    (env_dir / "typo.env").write_text("NUM_NODE=3\n")
    with pytest.raises(ConfigError, match=r"env/typo.env: unknown setting NUM_NODE"):
        settings.load(environ={"KUBE_ENV": "typo"}, env_dir=env_dir)


def test_missing_credentials_are_listed_by_name():
    s = settings.load(environ={"OS_USERNAME": ""})
    with pytest.raises(ConfigError) as err:
        s.require_credentials()
    assert str(err.value).startswith("missing credentials: OS_USERNAME, OS_API_KEY (or OS_PASSWORD)")
    ok = settings.load(environ={"OS_USERNAME": "u", "OS_PASSWORD": "p"})
    ok.require_credentials()


def test_secrets_are_masked():
    s = settings.load(environ={"OS_API_KEY": "s3cr3t-key"})
    assert s.display("OS_API_KEY") == "****"
    assert s.display("OS_PASSWORD") == ""


def test_env_text_rejects_garbage():
    with pytest.raises(ConfigError, match="line 2: expected KEY=value"):
        settings.parse_env_text("A=1\nthis is not a setting\n", "f.env")
    with pytest.raises(ConfigError, match="quote values that contain spaces"):
        settings.parse_env_text("KUBE_IMAGE=Flatcar Stable\n", "f.env")


def _inv(*args, env):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


def test_inv_config_shows_sources_and_masks_secrets(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBE_ENV": "small", "OS_API_KEY": "s3cr3t-key"}
    result = _inv("config", env=env)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["NUM_NODES"].split()[1:] == ["2", "env", "file", "env/small.env"]
    assert lines["OS_API_KEY"].split()[1:] == ["****", "environment"]
    assert "s3cr3t-key" not in result.stdout + result.stderr


def test_inv_reports_a_bad_setting_in_one_line(tmp_path):
    result = _inv("config", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NUM_NODES": "-1"})
    assert result.returncode == 1
    assert result.stderr == "error: NUM_NODES (from environment) must be at least 1, got -1\n"


def test_inv_and_pytest_import_the_same_modules():
    import tasks
    import tasks.model.settings as imported

    assert Path(tasks.__file__).name == "tasks.py"
    assert imported is settings
    probe = "import tasks, tasks.model.settings; print(tasks.__file__, tasks.model.settings.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == [tasks.__file__, settings.__file__]


def test_readme_documents_every_setting_and_every_task(tmp_path):
    readme = (REPO / "README.md").read_text()
    undocumented = [name for name in settings.SPECS if f"| `{name}` |" not in readme]
    assert not undocumented
    listed = _inv("--list", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}).stdout
    tasks = [m.group(1) for m in re.finditer(r"^  (\S+)", listed, re.M)]
    for stage in ("build", "upload", "network", "keypair", "master", "nodes", "up", "ssh", "down"):
        assert stage in tasks
    assert [t for t in tasks if f"inv {t}" not in readme] == []
