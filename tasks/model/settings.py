"""Settings: parse env files, layer them, validate every value.

Pure: `load()` takes the environment and flags as arguments and touches no
cloud. Layers, lowest first:

  default      env/config-default.env (the one place a default is declared)
  env file     env/$KUBE_ENV.env, then $KUBE_ENV_FILE
  environment  the process environment
  flag         task flags

Every setting in config-default.env has exactly one parser in SPECS; a test
keeps the two in step.
"""

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ..support.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent.parent
ENV_DIR = REPO / "env"
DEFAULT_FILE = ENV_DIR / "config-default.env"

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_env_text(text, origin="env file"):
    """KEY=value lines as bash would source them (plain values, quotes,
    comments, `export`), without running anything."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ConfigError(f"{origin}, line {number}: expected KEY=value, got {stripped!r}")
        key, raw = match.groups()
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as exc:
            raise ConfigError(f"{origin}, line {number}: {key}: {exc}") from None
        if len(words) > 1:
            raise ConfigError(f"{origin}, line {number}: {key}: quote values that contain spaces")
        values[key] = words[0] if words else ""
    return values


def read_env_file(path, origin=None):
    path = Path(path)
    origin = origin or str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read ({exc.strerror}); check KUBE_ENV / KUBE_ENV_FILE") from None
    return parse_env_text(text, origin)


# --- parsers: raw string -> typed value, ValueError(message) when bad --------

def _str(raw):
    return raw


def _int(minimum):
    def parse(raw):
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _bool(raw):
    lowered = raw.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _cidr(raw):
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError:
        raise ValueError(f"must be a network in CIDR form like 10.0.0.0/16, got {raw!r}") from None
    if net.version != 4:
        raise ValueError(f"must be an IPv4 network, got {raw!r}")
    return net


def _ip(raw):
    try:
        return ipaddress.IPv4Address(raw)
    except ValueError:
        raise ValueError(f"must be an IPv4 address, got {raw!r}") from None


def _ips(raw):
    """Comma-separated IPv4 addresses (may be empty)."""
    return tuple(_ip(part.strip()) for part in raw.split(",") if part.strip())


def _path(raw):
    return Path(os.path.expandvars(raw)).expanduser() if raw else None


_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def _prefix(raw):
    if not _NAME.match(raw):
        raise ValueError(
            f"{raw!r} cannot be part of a server name: use 1-40 lowercase letters, "
            "digits and dashes, not starting or ending with a dash")
    return raw


def _label(raw):
    if raw and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", raw):
        raise ValueError(f"must be letters, digits, '.', '_' or '-', got {raw!r}")
    return raw


def _domain(raw):
    if not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$", raw):
        raise ValueError(f"must be a DNS domain like cluster.local, got {raw!r}")
    return raw


def _choice(*choices, why=""):
    def parse(raw):
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}{why}")
        return raw
    return parse


def _kind(raw):
    if raw not in ("", "legacy", "openstack"):
        raise ValueError(f"must be legacy, openstack or empty (from the identity API), got {raw!r}")
    return raw


def _backend(raw):
    if raw not in ("", "host-gw", "vxlan"):
        raise ValueError(f"must be host-gw, vxlan or empty (the cloud kind's: vxlan on OpenStack, host-gw on "
                         f"legacy), got {raw!r}")
    return raw


def _off(raw):
    value = _bool(raw)
    if value:
        raise ValueError("must be false: that add-on was removed from Kubernetes")
    return value


def _version(raw):
    if raw == "stable" or re.match(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$", raw):
        return raw
    raise ValueError(f"must be 'stable' or a release like v1.31.4, got {raw!r}")


def _fingerprint(raw):
    value = "".join(raw.split()).upper()
    if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", value):
        raise ValueError(f"must be an OpenPGP key fingerprint (40 hex digits), got {raw!r}")
    return value


def _release_template(raw):
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError(f"must be an http(s) URL (with {{channel}} where the channel goes), got {raw!r}")
    return raw.rstrip("/")


def _url(raw):
    if raw and not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError(f"must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/") if raw else raw


@dataclass(frozen=True)
class Spec:
    parse: Callable[[str], object]
    secret: bool = False


SPECS = {
    "KUBE_IMAGE": Spec(_str),
    "SSH_KEY_NAME": Spec(_label),
    "NOVA_NETWORK_LABEL": Spec(_label),
    "NOVA_NETWORK": Spec(_cidr),
    "INSTANCE_PREFIX": Spec(_prefix),
    "KUBE_MASTER_FLAVOR": Spec(_str),
    "KUBE_NODE_FLAVOR": Spec(_str),
    "NUM_NODES": Spec(_int(1)),
    "KUBE_NETWORK": Spec(_cidr),
    "SERVICE_CLUSTER_IP_RANGE": Spec(_cidr),
    "ENABLE_CLUSTER_DNS": Spec(_bool),
    "DNS_SERVER_IP": Spec(_ip),
    "DNS_DOMAIN": Spec(_domain),
    "ENABLE_NODE_LOGGING": Spec(_off),
    "LOGGING_DESTINATION": Spec(_choice("elasticsearch", "gcp")),
    "ENABLE_CLUSTER_LOGGING": Spec(_off),
    "ELASTICSEARCH_LOGGING_REPLICAS": Spec(_int(0)),
    "ENABLE_CLUSTER_MONITORING": Spec(_choice(
        "none", why=" (Heapster/InfluxDB were removed from Kubernetes)")),
    "ENABLE_CLUSTER_UI": Spec(_off),
    "KUBE_ROOT": Spec(_path),
    "KUBE_VERSION": Spec(_version),
    "KUBE_RELEASE_URL": Spec(_url),
    "KUBE_DOWNLOAD_DIR": Spec(_path),
    "FLATCAR_CHANNEL": Spec(_choice("stable", "beta", "alpha", "lts")),
    "FLATCAR_RELEASE_URL": Spec(_release_template),
    "FLATCAR_KEY_FILE": Spec(_path),
    "FLATCAR_KEY_FINGERPRINT": Spec(_fingerprint),
    "IMAGE_IMPORT_TIMEOUT": Spec(_int(10)),
    "CLOUDFILES_CONTAINER": Spec(_label),
    "CONTAINER_PREFIX": Spec(_label),
    "TEMP_URL_TTL": Spec(_int(60)),
    "UPLOAD_SEGMENT_MB": Spec(_int(1)),
    "UPLOAD_CONCURRENCY": Spec(_int(1)),
    "CLOUDFILES_SERVICENET": Spec(_bool),
    "SSH_USER": Spec(_label),
    "SSH_CONFIG": Spec(_path),
    "SSH_KEY_TYPE": Spec(_choice("rsa", "ed25519")),
    "BOOT_TIMEOUT": Spec(_int(1)),
    "PUBLIC_NODEPORTS": Spec(_bool),
    "BOOTSTRAP_TOKEN_TTL": Spec(_int(600)),
    "DRAIN_TIMEOUT": Spec(_int(1)),
    "CREATE_CONCURRENCY": Spec(_int(1)),
    "COMPUTE_POST_LIMIT": Spec(_int(1)),
    "KUBE_STATE_DIR": Spec(_path),
    "KUBECONFIG_PATH": Spec(_path),
    "LOCK_WAIT": Spec(_int(0)),
    "OS_AUTH_URL": Spec(_url),
    "OS_USERNAME": Spec(_str),
    "OS_API_KEY": Spec(_str, secret=True),
    "OS_PASSWORD": Spec(_str, secret=True),
    "OS_REGION_NAME": Spec(_str),
    "OS_TENANT_NAME": Spec(_str),
    "API_TIMEOUT": Spec(_int(1)),
    "EXTERNAL_NETWORK": Spec(_label),
    "DNS_NAMESERVERS": Spec(_ips),
    "ADMIN_CIDR": Spec(_cidr),
    "NODE_FLOATING_IPS": Spec(_bool),
    "POD_NETWORK_BACKEND": Spec(_backend),
    "CLOUD_KIND": Spec(_kind),
    "OS_CLOUD": Spec(_str),
    "OS_PROJECT_NAME": Spec(_str),
    "OS_PROJECT_ID": Spec(_str),
    "OS_USER_DOMAIN_NAME": Spec(_str),
    "OS_PROJECT_DOMAIN_NAME": Spec(_str),
    "OS_APPLICATION_CREDENTIAL_ID": Spec(_str),
    "OS_APPLICATION_CREDENTIAL_SECRET": Spec(_str, secret=True),
    "OS_INTERFACE": Spec(_choice("public", "internal", "admin")),
    "COMPUTE_ENDPOINT": Spec(_url),
    "NETWORK_ENDPOINT": Spec(_url),
    "STORAGE_ENDPOINT": Spec(_url),
    "IMAGE_ENDPOINT": Spec(_url),
}


def _check_cluster(values):
    """Checks across settings; each message names the settings involved."""
    nets = [(n, values[n]) for n in ("NOVA_NETWORK", "KUBE_NETWORK", "SERVICE_CLUSTER_IP_RANGE")]
    for i, (name_a, net_a) in enumerate(nets):
        for name_b, net_b in nets[i + 1:]:
            if net_a.overlaps(net_b):
                raise ConfigError(f"{name_a} ({net_a}) overlaps {name_b} ({net_b}); pick ranges that do not overlap")
    service = values["SERVICE_CLUSTER_IP_RANGE"]
    dns = values["DNS_SERVER_IP"]
    if dns not in service or dns in (service.network_address, service.broadcast_address):
        raise ConfigError(f"DNS_SERVER_IP ({dns}) must be an address inside SERVICE_CLUSTER_IP_RANGE ({service})")
    if dns == service.network_address + 1:
        raise ConfigError(f"DNS_SERVER_IP ({dns}) is taken by the kubernetes service; pick another address in {service}")
    # Each node gets a /24 of the pod network, the master one too.
    if values["KUBE_NETWORK"].prefixlen > 23 or values["NUM_NODES"] + 1 > 2 ** (24 - values["KUBE_NETWORK"].prefixlen):
        raise ConfigError(
            f"KUBE_NETWORK ({values['KUBE_NETWORK']}) is too small: each server takes a /24; "
            f"{values['NUM_NODES'] + 1} servers need a larger network")
    # tokens.renew_margin: a token must outlive the boot and the checks of
    # the nodes that join with it.
    if values["BOOTSTRAP_TOKEN_TTL"] <= 2 * values["BOOT_TIMEOUT"]:
        raise ConfigError(f"BOOTSTRAP_TOKEN_TTL ({values['BOOTSTRAP_TOKEN_TTL']}s) must be longer than twice "
                          f"BOOT_TIMEOUT ({values['BOOT_TIMEOUT']}s): nodes join with the token while up waits")
    if values["NUM_NODES"] + 1 > values["NOVA_NETWORK"].num_addresses - 4:
        raise ConfigError(f"NOVA_NETWORK ({values['NOVA_NETWORK']}) has too few addresses for NUM_NODES={values['NUM_NODES']}")


class Settings(Mapping):
    """Resolved, validated settings: `s.NUM_NODES` (typed), `s.source(name)`."""

    def __init__(self, values, sources):
        self._values = dict(values)
        self._sources = dict(sources)

    def __getattr__(self, name):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def source(self, name):
        return self._sources[name]

    def display(self, name):
        """The value as `inv config` shows it: secrets masked."""
        value = self._values[name]
        if SPECS[name].secret and value:
            return "****"
        if value is None:
            return ""
        return str(value)

    def replace(self, **changes):
        """A copy with some values changed (typed values), e.g. for flags
        that are already parsed."""
        values = dict(self._values, **changes)
        sources = dict(self._sources, **{k: "flag" for k in changes})
        return Settings(values, sources)

    def require(self, *names, why):
        """Fail with one line listing every named setting that is empty."""
        missing = [n for n in names if self._values.get(n) in (None, "")]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set: {why}")

    def require_credentials(self):
        """Before the first API call: name every missing credential at once."""
        missing = [n for n in ("OS_AUTH_URL", "OS_USERNAME", "OS_REGION_NAME") if not self._values[n]]
        if not (self._values["OS_API_KEY"] or self._values["OS_PASSWORD"]):
            missing.append("OS_API_KEY (or OS_PASSWORD)")
        if missing:
            raise ConfigError(
                f"missing credentials: {', '.join(missing)}; export them or put them in an env file (see README)")


def load(environ=None, flags=None, env_dir=ENV_DIR):
    """Resolve every setting. `environ` defaults to os.environ; `flags` maps
    setting names to raw strings given on the command line (None: not given)."""
    environ = os.environ if environ is None else environ
    env_dir = Path(env_dir)
    default_file = env_dir / DEFAULT_FILE.name
    raw = read_env_file(default_file, origin=f"{default_file.name}")
    sources = {k: "default" for k in raw}
    unknown = set(raw) - set(SPECS)
    if unknown or set(SPECS) - set(raw):
        raise ConfigError(f"{default_file.name} and settings.SPECS disagree on: {', '.join(sorted(unknown ^ (set(SPECS) - set(raw))))}")

    layers = []
    if environ.get("KUBE_ENV"):
        name = environ["KUBE_ENV"]
        if not re.match(r"^[A-Za-z0-9_.-]+$", name):
            raise ConfigError(f"KUBE_ENV={name!r}: give the name of a file env/NAME.env")
        path = env_dir / f"{name}.env"
        if not path.is_file():
            known = sorted(p.stem for p in env_dir.glob("*.env") if p != default_file)
            raise ConfigError(f"KUBE_ENV={name}: no file env/{name}.env; known: {', '.join(known) or 'none'}")
        layers.append((path, f"env file env/{name}.env"))
    if environ.get("KUBE_ENV_FILE"):
        path = Path(environ["KUBE_ENV_FILE"]).expanduser()
        layers.append((path, f"env file {path}"))
    for path, origin in layers:
        for key, value in read_env_file(path, origin=origin).items():
            if key not in SPECS:
                raise ConfigError(f"{origin}: unknown setting {key}; see env/config-default.env for the names")
            raw[key], sources[key] = value, origin
    for key in SPECS:
        if key in environ:
            raw[key], sources[key] = environ[key], "environment"
    for key, value in (flags or {}).items():
        if value is not None:
            raw[key], sources[key] = str(value), "flag"

    values = {}
    for key, spec in SPECS.items():
        try:
            values[key] = spec.parse(raw[key])
        except ValueError as exc:
            where = "" if sources[key] == "default" else f" (from {sources[key]})"
            raise ConfigError(f"{key}{where} {exc}") from None
    _check_cluster(values)
    return Settings(values, sources)
