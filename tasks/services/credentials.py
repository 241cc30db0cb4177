"""Who we are to the cloud: the cloud kind and the credentials, with where
each value came from.

Two identity APIs:
- legacy: Rackspace Identity v2.0 with an API key (or password), exactly
  as before, from the OS_* settings alone;
- openstack: Keystone v3 (Rackspace Flex, any OpenStack), password (an
  API key works as the password on Flex) or application credential. These
  are read the way every OpenStack tool reads them: openstacksdk's config
  loader (OS_CLOUD, clouds.yaml, secure.yaml, the OS_* variables), with our
  OS_* settings from an env file, the environment or a flag on top, as
  openstackclient puts its options on top of clouds.yaml.

The kind follows from the identity API (kind_of) unless CLOUD_KIND says.
`resolve` is pure (settings and the loader's entry in, Credentials out);
`load` runs the loader. openstacksdk is imported inside `load_cloud` only:
`inv --list` must not pay for it.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..support.errors import ConfigError

LEGACY = "legacy"
OPENSTACK = "openstack"
KINDS = (LEGACY, OPENSTACK)

FLEX_DOMAIN = "rackspace_cloud_domain"
KEYSTONE_DEFAULT_DOMAIN = "Default"
_FLEX_IDENTITY = re.compile(r"^https://keystone\.api\.[a-z0-9-]+\.rackspacecloud\.com(/|$)")

# Auth fields in display order: (field, setting that overrides it, secret).
# OS_API_KEY goes into `password`: Flex's Keystone takes the API key there.
FIELDS = (
    ("auth_url", "OS_AUTH_URL", False),
    ("username", "OS_USERNAME", False),
    ("user_id", None, False),
    ("password", "OS_PASSWORD", True),
    ("user_domain_name", "OS_USER_DOMAIN_NAME", False),
    ("user_domain_id", None, False),
    ("project_name", "OS_PROJECT_NAME", False),
    ("project_id", "OS_PROJECT_ID", False),
    ("project_domain_name", "OS_PROJECT_DOMAIN_NAME", False),
    ("project_domain_id", None, False),
    ("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID", False),
    ("application_credential_name", None, False),
    ("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET", True),
)
SECRET_FIELDS = frozenset(name for name, _, secret in FIELDS if secret) | {"api_key"}


@dataclass(frozen=True)
class Credentials:
    kind: str                      # LEGACY or OPENSTACK
    method: str                    # legacy: apikey/password; openstack: password/application_credential
    auth: dict = field(repr=False)  # field -> value, only those set
    sources: dict = field(default_factory=dict)   # field (and kind, region_name, interface) -> source
    region: str = ""
    interface: str = "public"
    verify: object = True          # True, False or a CA bundle path
    cloud_name: str = ""           # the clouds.yaml entry, if any

    @property
    def auth_url(self):
        return self.auth.get("auth_url", "")

    @property
    def is_flex(self):
        return is_flex(self.auth_url)

    @property
    def who(self):
        """For messages: the user (or application credential) and the project."""
        user = (self.auth.get("username") or self.auth.get("user_id")
                or self.auth.get("application_credential_id") or self.auth.get("application_credential_name"))
        project = self.auth.get("project_name") or self.auth.get("project_id")
        return f"{user}" + (f" in project {project}" if project else "")

    def rows(self):
        """(field, shown value, source) for `inv config`: secrets masked."""
        rows = [("cloud kind", self.kind, self.sources.get("kind", ""))]
        if self.cloud_name:
            rows.append(("clouds.yaml entry", self.cloud_name, "OS_CLOUD"))
        rows.append(("auth method", self.method, self.sources.get("method", "")))
        for name in [f for f, _, _ in FIELDS] + ["api_key"]:
            if name in self.auth:
                value = "****" if name in SECRET_FIELDS and self.auth[name] else self.auth[name]
                rows.append((name, value, self.sources.get(name, "")))
        rows.append(("region_name", self.region or "(any)", self.sources.get("region_name", "")))
        rows.append(("interface", self.interface, self.sources.get("interface", "")))
        return rows


def is_flex(auth_url):
    return bool(_FLEX_IDENTITY.match(auth_url or ""))


def kind_of(override, auth_url, identity_api_version=None):
    """(kind, why): CLOUD_KIND when set; else Identity v2.0 is the legacy
    cloud (only Rackspace still runs it) and v3 is OpenStack, from the
    entry's identity_api_version or the URL's version."""
    if override:
        return override, "CLOUD_KIND"
    version = str(identity_api_version or "").lower().lstrip("v")
    if version in ("2", "2.0"):
        return LEGACY, "identity_api_version 2.0"
    if version.startswith("3"):
        return OPENSTACK, "identity_api_version 3"
    path = urlparse(auth_url or "").path.rstrip("/")
    if path.endswith("/v2.0"):
        return LEGACY, "Identity v2.0 URL"
    return OPENSTACK, "Identity v3 URL" if path.endswith("/v3") else "not an Identity v2.0 URL"


def v3_url(auth_url):
    """Keystone's v3 URL: an unversioned auth_url (clouds.yaml often has
    one) gets /v3 appended."""
    url = auth_url.rstrip("/")
    return url if re.search(r"/v3$", url) else url + "/v3"


def _set(value):
    return value not in (None, "")


def resolve(s, entry=None, entry_sources=None, cloud_name=""):
    """Pure: the Credentials from the settings `s` and, for openstack, the
    loader's `entry` (a clouds.yaml-shaped dict: auth, region_name,
    interface, identity_api_version, verify/cacert) whose values came from
    `entry_sources` (field -> source). A setting that is not at its
    default wins over the entry."""
    entry = entry or {}
    entry_sources = entry_sources or {}
    entry_auth = {k: v for k, v in (entry.get("auth") or {}).items() if _set(v)}
    given = {name: s[name] for name in s if s.source(name) != "default" and _set(s[name])}

    auth_url = given.get("OS_AUTH_URL") or entry_auth.get("auth_url") or s.OS_AUTH_URL
    kind, why = kind_of(s.CLOUD_KIND, auth_url, entry.get("identity_api_version"))
    if kind == LEGACY:
        return _legacy(s, why)

    auth, sources = {}, {"kind": why}
    for name, setting, _secret in FIELDS:
        if setting and setting in given:
            auth[name], sources[name] = given[setting], _setting_source(s, setting)
        elif name in entry_auth:
            auth[name], sources[name] = entry_auth[name], entry_sources.get(name, "clouds.yaml")
    if "auth_url" not in auth:
        auth["auth_url"], sources["auth_url"] = s.OS_AUTH_URL, _setting_source(s, "OS_AUTH_URL")
    # The API key is Flex's password too, and preferred as on legacy.
    if "OS_API_KEY" in given:
        auth["password"], sources["password"] = given["OS_API_KEY"], _setting_source(s, "OS_API_KEY") + " (OS_API_KEY)"
    if "project_name" not in auth and "project_id" not in auth and "OS_TENANT_NAME" in given:
        auth["project_name"], sources["project_name"] = given["OS_TENANT_NAME"], _setting_source(s, "OS_TENANT_NAME")

    app_cred = (entry.get("auth_type") in ("v3applicationcredential", "applicationcredential")
                or any(k.startswith("application_credential_") for k in auth))
    method = "application_credential" if app_cred else "password"
    if app_cred and entry.get("auth_type") not in ("v3applicationcredential", "applicationcredential"):
        sources["method"] = "an application credential is given"
    else:
        sources["method"] = f"auth_type {entry['auth_type']}" if entry.get("auth_type") else "a password is given"
    if app_cred:
        # An application credential carries its own project; only its user
        # part (for a credential named rather than given by ID) needs a domain.
        for name in ("project_name", "project_id", "project_domain_name", "project_domain_id", "password"):
            auth.pop(name, None)
            sources.pop(name, None)
    domain = FLEX_DOMAIN if is_flex(auth["auth_url"]) else KEYSTONE_DEFAULT_DOMAIN
    why_domain = "default for Rackspace Flex" if domain == FLEX_DOMAIN else "default (Keystone's Default domain)"
    needs_user_domain = ("username" in auth) and not app_cred or (
        app_cred and "application_credential_id" not in auth and "username" in auth)
    if needs_user_domain and "user_domain_name" not in auth and "user_domain_id" not in auth:
        auth["user_domain_name"], sources["user_domain_name"] = domain, why_domain
    if "project_name" in auth and "project_domain_name" not in auth and "project_domain_id" not in auth:
        auth["project_domain_name"], sources["project_domain_name"] = domain, why_domain
    if is_flex(auth["auth_url"]) and "user_domain_id" in auth:
        # Flex's identity plugin (rackerlabs/keystone-rxt keystone_rxt/rackspace.py)
        # knows the user's domain by name only; an ID falls through to
        # plain Keystone, where the Rackspace user does not exist.
        where = sources.get("user_domain_id", "clouds.yaml")
        raise ConfigError(f"user_domain_id {auth['user_domain_id']} (from {where}): Rackspace Flex takes the user "
                          "domain by name only; remove user_domain_id (domain_id, OS_USER_DOMAIN_ID) and set "
                          f"user_domain_name: {FLEX_DOMAIN} (OS_USER_DOMAIN_NAME)")

    region, sources["region_name"] = _entry_value(s, given, entry, entry_sources, "region_name", "OS_REGION_NAME")
    interface, sources["interface"] = _entry_value(s, given, entry, entry_sources, "interface", "OS_INTERFACE")
    verify = True
    if entry.get("cacert"):
        verify = entry["cacert"]
    if entry.get("verify") is False or str(entry.get("insecure", "")).lower() in ("true", "1"):
        verify = False
    return Credentials(kind=OPENSTACK, method=method, auth=auth, sources=sources, region=region or "",
                       interface=interface or "public", verify=verify, cloud_name=cloud_name)


def _setting_source(s, name):
    return f"{s.source(name)} ({name})" if not s.source(name).startswith("environment") else f"environment ({name})"


def _entry_value(s, given, entry, entry_sources, key, setting):
    if setting in given:
        return given[setting], _setting_source(s, setting)
    if _set(entry.get(key)):
        return entry[key], entry_sources.get(key, "clouds.yaml")
    if key == "interface":
        return s.OS_INTERFACE, "default"
    # The legacy default region (ORD) means nothing on another cloud: any region.
    return "", "none given: the catalog's only region"


def _legacy(s, why):
    """The Rackspace Identity v2.0 credentials, as they always were."""
    auth = {"auth_url": s.OS_AUTH_URL, "username": s.OS_USERNAME}
    sources = {"kind": why, "auth_url": s.source("OS_AUTH_URL"), "username": s.source("OS_USERNAME")}
    if s.OS_API_KEY:
        method = "apikey"
        auth["api_key"], sources["api_key"] = s.OS_API_KEY, s.source("OS_API_KEY")
    else:
        method = "password"
        auth["password"], sources["password"] = s.OS_PASSWORD, s.source("OS_PASSWORD")
    if s.OS_TENANT_NAME:
        auth["project_name"], sources["project_name"] = s.OS_TENANT_NAME, s.source("OS_TENANT_NAME")
    sources["method"] = "OS_API_KEY set" if method == "apikey" else "OS_API_KEY empty"
    sources["region_name"] = s.source("OS_REGION_NAME")
    sources["interface"] = "Rackspace catalog"
    return Credentials(kind=LEGACY, method=method, auth=auth, sources=sources, region=s.OS_REGION_NAME)


def require(creds):
    """One line naming every missing credential (settings and clouds.yaml keys)."""
    a = creds.auth
    missing = []
    if creds.kind == LEGACY:
        if not a.get("auth_url"):
            missing.append("OS_AUTH_URL")
        if not a.get("username"):
            missing.append("OS_USERNAME")
        if not creds.region:
            missing.append("OS_REGION_NAME")
        if not (a.get("api_key") or a.get("password")):
            missing.append("OS_API_KEY (or OS_PASSWORD)")
        if missing:
            raise ConfigError(
                f"missing credentials: {', '.join(missing)}; export them or put them in an env file (see README)")
        return
    if not a.get("auth_url"):
        missing.append("OS_AUTH_URL (auth.auth_url)")
    if creds.method == "application_credential":
        if not (a.get("application_credential_id") or a.get("application_credential_name")):
            missing.append("OS_APPLICATION_CREDENTIAL_ID (auth.application_credential_id)")
        if not a.get("application_credential_secret"):
            missing.append("OS_APPLICATION_CREDENTIAL_SECRET (auth.application_credential_secret)")
    else:
        if not (a.get("username") or a.get("user_id")):
            missing.append("OS_USERNAME (auth.username)")
        if not a.get("password"):
            missing.append("OS_PASSWORD or OS_API_KEY (auth.password)")
        if not (a.get("project_name") or a.get("project_id")):
            missing.append("OS_PROJECT_NAME or OS_PROJECT_ID (auth.project_name)")
    if missing:
        where = f" in clouds.yaml entry {creds.cloud_name}" if creds.cloud_name else ""
        raise ConfigError(f"missing Keystone v3 credentials{where}: {', '.join(missing)}; "
                          "set them in clouds.yaml (OS_CLOUD), an env file or the environment (see README)")


def auth_plugin(creds):
    """The keystoneauth plugin for `creds` (imported here, on first use)."""
    a = creds.auth
    if creds.kind == LEGACY:
        from rackspaceauth import v2

        auth_url = a["auth_url"].rstrip("/") + "/"
        if creds.method == "apikey":
            return v2.APIKey(username=a["username"], api_key=a["api_key"], auth_url=auth_url)
        return v2.Password(username=a["username"], password=a["password"], auth_url=auth_url)
    from keystoneauth1.identity import v3

    def pick(*names):
        return {n: a[n] for n in names if _set(a.get(n))}

    if creds.method == "application_credential":
        return v3.ApplicationCredential(
            auth_url=v3_url(a["auth_url"]), application_credential_secret=a["application_credential_secret"],
            **pick("application_credential_id", "application_credential_name", "user_id", "username",
                   "user_domain_id", "user_domain_name"))
    return v3.Password(
        auth_url=v3_url(a["auth_url"]), password=a["password"],
        **pick("username", "user_id", "user_domain_name", "user_domain_id", "project_name", "project_id",
               "project_domain_name", "project_domain_id"))


def load_cloud(s):
    """(entry, entry_sources, cloud name) from openstacksdk's config loader:
    the OS_CLOUD entry of clouds.yaml merged with secure.yaml, or the cloud
    the OS_* environment variables describe."""
    import yaml
    from openstack import config as os_config
    from openstack import exceptions as os_exc

    try:
        loader = os_config.OpenStackConfig()
        region = loader.get_one(cloud=s.OS_CLOUD or None, validate=False)
    except (os_exc.ConfigException, KeyError) as exc:
        where = f"OS_CLOUD={s.OS_CLOUD}" if s.OS_CLOUD else "the OS_* environment"
        known = sorted(getattr(loader, "cloud_config", {}).get("clouds", {})) if "loader" in locals() else []
        raise ConfigError(f"{where}: {exc}" + (f"; clouds.yaml has: {', '.join(known)}" if known else "")
                          ) from None
    entry = dict(region.config)
    name = region.name or ""
    sources = {}
    if name == loader.envvar_key:
        origin = "environment (OS_*)"
        secure_keys = set()
    else:
        origin = f"clouds.yaml {loader.config_filename} ({name})" if loader.config_filename else "clouds.yaml"
        secure_keys = set()
        if loader.secure_config_filename:
            try:
                with open(loader.secure_config_filename) as f:
                    secure = (yaml.safe_load(f) or {}).get("clouds", {}).get(name, {}) or {}
            except (OSError, yaml.YAMLError):
                secure = {}
            secure_keys = set(secure.get("auth") or {}) | set(secure)
    for key in list((entry.get("auth") or {})) + ["region_name", "interface"]:
        sources[key] = (f"secure.yaml {loader.secure_config_filename} ({name})" if key in secure_keys else origin)
    return entry, sources, ("" if name == loader.envvar_key else name)


def load(s):
    """The Credentials for the settings `s`. The legacy cloud never reads
    clouds.yaml: its path stays exactly as it was."""
    kind, _why = kind_of(s.CLOUD_KIND, s.OS_AUTH_URL)
    if not s.OS_CLOUD and kind == LEGACY:
        return resolve(s)
    entry, sources, name = load_cloud(s)
    return resolve(s, entry, sources, cloud_name=name)
