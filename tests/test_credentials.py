"""Cloud kind and credentials: pure resolution (settings + a clouds.yaml
entry in, Credentials out), openstacksdk's real loader on real files, and
`inv config` showing where each credential came from. No mocks."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.services import credentials
from tasks.model import settings
from tasks.support.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
FLEX_URL = "https://keystone.api.dfw3.rackspacecloud.com/v3"
API_KEY = "0123456789abcdef0123456789abcdef"

KINDS = [
    # (CLOUD_KIND, auth_url, identity_api_version, expected)
    ("", "https://identity.api.rackspacecloud.com/v2.0/", None, "legacy"),
    ("", "http://127.0.0.1:8900/identity/v2.0", None, "legacy"),
    ("", FLEX_URL, None, "openstack"),
    ("", "https://keystone.example.org:5000", None, "openstack"),
    ("", "https://keystone.example.org:5000/", "3", "openstack"),
    ("", "https://identity.example.org/", "2.0", "legacy"),
    ("openstack", "https://identity.api.rackspacecloud.com/v2.0/", None, "openstack"),
    ("legacy", FLEX_URL, "3", "legacy"),
]


@pytest.mark.parametrize("override,url,version,expected", KINDS)
def test_kind_follows_the_identity_api_unless_cloud_kind_says(override, url, version, expected):
    assert credentials.kind_of(override, url, version)[0] == expected


@pytest.mark.parametrize("url,expected", [
    (FLEX_URL, FLEX_URL),
    ("https://keystone.example.org:5000/", "https://keystone.example.org:5000/v3"),
    ("https://keystone.example.org/identity/v3/", "https://keystone.example.org/identity/v3"),
])
def test_v3_url(url, expected):
    assert credentials.v3_url(url) == expected


def test_legacy_path_is_the_settings_alone():
    s = settings.load(environ={"OS_USERNAME": "bob", "OS_API_KEY": API_KEY})
    creds = credentials.resolve(s)
    assert (creds.kind, creds.method, creds.region) == ("legacy", "apikey", "ORD")
    assert creds.auth == {"auth_url": "https://identity.api.rackspacecloud.com/v2.0", "username": "bob",
                          "api_key": API_KEY}
    plugin = credentials.auth_plugin(creds)
    assert type(plugin).__module__ == "rackspaceauth.v2" and type(plugin).__name__ == "APIKey"


FLEX_ENTRY = {
    "auth": {"auth_url": FLEX_URL, "username": "alice", "password": "pw", "project_name": "123456_Flex"},
    "region_name": "DFW3", "interface": "public", "identity_api_version": "3", "auth_type": "password",
}
FLEX_SOURCES = {"auth_url": "clouds.yaml", "username": "clouds.yaml", "password": "secure.yaml",
                "project_name": "clouds.yaml", "region_name": "clouds.yaml", "interface": "clouds.yaml"}

RESOLVE = [
    # (environ, entry, expected auth subset, expected sources subset)
    ({}, FLEX_ENTRY,
     {"user_domain_name": "rackspace_cloud_domain", "project_domain_name": "rackspace_cloud_domain",
      "password": "pw", "project_name": "123456_Flex"},
     {"password": "secure.yaml", "user_domain_name": "default for Rackspace Flex"}),
    # A setting from the environment wins over clouds.yaml, like openstackclient's options.
    ({"OS_PASSWORD": "envpw", "OS_PROJECT_DOMAIN_NAME": "other"}, FLEX_ENTRY,
     {"password": "envpw", "project_domain_name": "other", "user_domain_name": "rackspace_cloud_domain"},
     {"password": "environment (OS_PASSWORD)", "project_domain_name": "environment (OS_PROJECT_DOMAIN_NAME)"}),
    # The Rackspace API key goes in the v3 password field.
    ({"OS_API_KEY": API_KEY}, FLEX_ENTRY, {"password": API_KEY}, {"password": "environment (OS_API_KEY) (OS_API_KEY)"}),
    # No clouds.yaml at all: the OS_* settings, OS_TENANT_NAME read as the project.
    ({"OS_AUTH_URL": "https://keystone.example.org:5000/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p",
      "OS_TENANT_NAME": "demo"}, None,
     {"auth_url": "https://keystone.example.org:5000/v3", "user_domain_name": "Default",
      "project_name": "demo", "project_domain_name": "Default"},
     {"user_domain_name": "default (Keystone's Default domain)"}),
    # A project given by ID needs no project domain.
    ({"OS_AUTH_URL": FLEX_URL, "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_ID": "abc123"}, None,
     {"project_id": "abc123", "user_domain_name": "rackspace_cloud_domain"}, {}),
]


@pytest.mark.parametrize("environ,entry,auth,sources", RESOLVE)
def test_resolve_openstack(environ, entry, auth, sources):
    s = settings.load(environ=environ)
    creds = credentials.resolve(s, entry, FLEX_SOURCES if entry else None, cloud_name="flex-dfw3" if entry else "")
    assert creds.kind == "openstack"
    assert {k: creds.auth.get(k) for k in auth} == auth
    assert {k: creds.sources.get(k) for k in sources} == sources
    if "project_id" in auth:
        assert "project_domain_name" not in creds.auth
    credentials.require(creds)


def test_region_defaults_to_any_on_openstack_not_to_legacy_ord():
    s = settings.load(environ={"OS_AUTH_URL": FLEX_URL})
    assert credentials.resolve(s, {"auth": {}}).region == ""
    assert credentials.resolve(settings.load(environ={"OS_AUTH_URL": FLEX_URL, "OS_REGION_NAME": "IAD3"}),
                               {"auth": {}}).region == "IAD3"


def test_application_credential_drops_the_project_and_the_password():
    entry = {"auth_type": "v3applicationcredential", "auth": {
        "auth_url": FLEX_URL, "application_credential_id": "ac1", "application_credential_secret": "sekrit",
        "project_name": "ignored"}}
    creds = credentials.resolve(settings.load(environ={}), entry)
    assert creds.method == "application_credential"
    assert creds.auth == {"auth_url": FLEX_URL, "application_credential_id": "ac1",
                          "application_credential_secret": "sekrit"}
    plugin = credentials.auth_plugin(creds)
    assert type(plugin).__name__ == "ApplicationCredential"
    assert plugin.auth_url == FLEX_URL
    rows = {name: (value, source) for name, value, source in creds.rows()}
    assert rows["application_credential_secret"][0] == "****"
    # Given by the environment only (no clouds.yaml): the same.
    env = credentials.resolve(settings.load(environ={
        "OS_AUTH_URL": FLEX_URL, "OS_APPLICATION_CREDENTIAL_ID": "ac1",
        "OS_APPLICATION_CREDENTIAL_SECRET": "sekrit"}), None)
    assert env.method == "application_credential" and env.auth == creds.auth


def test_v3_password_plugin_gets_every_field():
    creds = credentials.resolve(settings.load(environ={}), FLEX_ENTRY, FLEX_SOURCES)
    plugin = credentials.auth_plugin(creds)
    assert type(plugin).__name__ == "Password" and type(plugin).__module__.startswith("keystoneauth1.identity.v3")
    method = plugin.auth_methods[0]
    assert (method.username, method.password, method.user_domain_name) == ("alice", "pw", "rackspace_cloud_domain")
    assert (plugin.project_name, plugin.project_domain_name) == ("123456_Flex", "rackspace_cloud_domain")


MISSING = [
    ({"OS_AUTH_URL": FLEX_URL}, r"missing Keystone v3 credentials: OS_USERNAME \(auth.username\), "
     r"OS_PASSWORD or OS_API_KEY \(auth.password\), OS_PROJECT_NAME or OS_PROJECT_ID"),
    ({"OS_AUTH_URL": FLEX_URL, "OS_APPLICATION_CREDENTIAL_ID": "x"},
     r"OS_APPLICATION_CREDENTIAL_SECRET \(auth.application_credential_secret\)"),
    ({"OS_USERNAME": ""}, r"^missing credentials: OS_USERNAME, OS_API_KEY \(or OS_PASSWORD\)"),
]


@pytest.mark.parametrize("environ,message", MISSING)
def test_missing_credentials_name_setting_and_clouds_yaml_key(environ, message):
    creds = credentials.resolve(settings.load(environ=environ), {"auth": {}})
    with pytest.raises(ConfigError, match=message) as err:
        credentials.require(creds)
    assert "\n" not in str(err.value)


@pytest.fixture
def clouds_files(tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    secure = tmp_path / "secure.yaml"
    clouds.write_text(f"""clouds:
  flex-dfw3:
    auth:
      auth_url: {FLEX_URL}
      username: alice
      project_name: 123456_Flex
    region_name: DFW3
    identity_api_version: 3
  other:
    auth:
      auth_url: https://keystone.example.org/v3
""")
    secure.write_text(f"clouds:\n  flex-dfw3:\n    auth:\n      password: {API_KEY}\n")
    for name in [k for k in __import__("os").environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(secure))
    return clouds, secure


def test_openstacksdk_loader_reads_clouds_and_secure_yaml(clouds_files):
    clouds, secure = clouds_files
    creds = credentials.load(settings.load(environ={"OS_CLOUD": "flex-dfw3"}))
    assert (creds.kind, creds.region, creds.cloud_name) == ("openstack", "DFW3", "flex-dfw3")
    assert creds.auth["password"] == API_KEY
    assert creds.sources["password"] == f"secure.yaml {secure} (flex-dfw3)"
    assert creds.sources["username"] == f"clouds.yaml {clouds} (flex-dfw3)"
    assert creds.auth["user_domain_name"] == "rackspace_cloud_domain"


@pytest.mark.parametrize("auth_url,refused", [(FLEX_URL, True), ("https://keystone.example.org/v3", False)])
def test_a_user_domain_id_is_refused_with_flexs_identity(auth_url, refused):
    """Flex's identity plugin (keystone-rxt) takes the user domain by name only."""
    entry = dict(FLEX_ENTRY, auth=dict(FLEX_ENTRY["auth"], auth_url=auth_url, user_domain_id="d0a1b2"))
    s = settings.load(environ={})
    if not refused:
        assert credentials.resolve(s, entry, FLEX_SOURCES).auth["user_domain_id"] == "d0a1b2"
        return
    with pytest.raises(ConfigError) as err:
        credentials.resolve(s, entry, dict(FLEX_SOURCES, user_domain_id="clouds.yaml"))
    message = str(err.value)
    assert "\n" not in message and message.startswith("user_domain_id d0a1b2 (from clouds.yaml")
    assert "by name only" in message and "user_domain_name: rackspace_cloud_domain" in message


@pytest.mark.parametrize("where", ["environment", "clouds.yaml"])
def test_a_user_domain_id_from_any_source_is_refused_on_flex(tmp_path, monkeypatch, where):
    """Through openstacksdk's own loader: OS_USER_DOMAIN_ID in the
    environment, or domain_id in clouds.yaml (which the loader turns into
    user_domain_id)."""
    for name in [k for k in __import__("os").environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    monkeypatch.setenv("OS_CLIENT_SECURE_FILE", str(tmp_path / "secure.yaml"))
    if where == "environment":
        environ = {"OS_AUTH_URL": FLEX_URL, "OS_USERNAME": "alice", "OS_PASSWORD": "pw",
                   "OS_PROJECT_NAME": "123456_Flex", "OS_USER_DOMAIN_ID": "d0a1b2"}
        for k, v in environ.items():
            monkeypatch.setenv(k, v)
        s = settings.load(environ={k: v for k, v in environ.items() if k != "OS_USER_DOMAIN_ID"})
    else:
        (tmp_path / "clouds.yaml").write_text(f"""clouds:
  flex:
    auth:
      auth_url: {FLEX_URL}
      username: alice
      password: pw
      project_name: 123456_Flex
      domain_id: d0a1b2
    identity_api_version: 3
""")
        s = settings.load(environ={"OS_CLOUD": "flex"})
    with pytest.raises(ConfigError, match=r"^user_domain_id d0a1b2 .*by name only"):
        credentials.load(s)


def test_unknown_cloud_is_one_line(clouds_files):
    with pytest.raises(ConfigError, match=r"^OS_CLOUD=nosuch: .*") as err:
        credentials.load(settings.load(environ={"OS_CLOUD": "nosuch"}))
    assert "\n" not in str(err.value)


def test_legacy_never_reads_clouds_yaml(clouds_files):
    # A clouds.yaml with one cloud would be openstacksdk's default; the
    # legacy path does not look at it.
    creds = credentials.load(settings.load(environ={"OS_USERNAME": "bob", "OS_API_KEY": API_KEY}))
    assert creds.kind == "legacy" and creds.auth["username"] == "bob"


def test_inv_config_shows_credential_sources_masked(clouds_files, tmp_path):
    clouds, secure = clouds_files
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OS_CLOUD": "flex-dfw3",
           "OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLIENT_SECURE_FILE": str(secure)}
    result = subprocess.run([sys.executable, "-m", "invoke", "config"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert API_KEY not in result.stdout + result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows["password"][1:] == ["****", "secure.yaml", str(secure), "(flex-dfw3)"]
    assert rows["username"][1:] == ["alice", "clouds.yaml", str(clouds), "(flex-dfw3)"]
    assert rows["user_domain_name"][1:] == ["rackspace_cloud_domain", "default", "for", "Rackspace", "Flex"]


@pytest.mark.parametrize("service,url,expected", [
    ("network", "https://dfw3.neutron.example:9696", "https://dfw3.neutron.example:9696/v2.0"),
    ("network", "https://ord.networks.api.rackspacecloud.com/v2.0", "https://ord.networks.api.rackspacecloud.com/v2.0"),
    ("compute", "https://nova.example/v2.1/abc", "https://nova.example/v2.1/abc"),
])
def test_catalog_network_endpoint_gets_its_api_version(service, url, expected):
    from tasks.services import session as cloud

    assert cloud.versioned(service, url) == expected
