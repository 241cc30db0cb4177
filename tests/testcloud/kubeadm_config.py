"""
The test release's `kubeadm config validate --config FILE`, and the config
check of the stub's `kubeadm init|join --config FILE`: what kubeadm 1.31+
does to a config file before it acts, as far as kube-rackspace's configs
reach. Read in kubernetes/kubernetes (cmd/kubeadm/app):

  util/config/common.go ValidateConfig: the documents' kinds must be known
      ("unknown configuration APIs: ..."), old kubeadm API versions are
      refused; then each config is decoded strictly, defaulted and validated.
  apis/bootstraptoken/v1/defaults.go SetDefaults_BootstrapToken: an unset
      ttl becomes 24h (and apis/kubeadm/v1beta4/defaults.go
      SetDefaults_BootstrapTokens: no token at all becomes one token).
  apis/kubeadm/validation/validation.go ValidateBootstrapTokens: the
      token's form, and "the BootstrapToken .TTL and .Expires fields are
      mutually exclusive"; ValidateAPIEndpoint, ValidateCertSANs,
      ValidateNodeRegistrationOptions, ValidateDiscoveryBootstrapToken.
  cmd/config.go newCmdConfigValidate: prints "ok" and exits 0, or the
      error and exits 1.

`validate(text)` returns None or kubeadm's error message.
"""
import datetime
import ipaddress
import re

import yaml

KNOWN = {
    "kubeadm.k8s.io/v1beta4": {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration",
                               "ResetConfiguration", "UpgradeConfiguration"},
    "kubeadm.k8s.io/v1beta3": {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration"},
    "kubelet.config.k8s.io/v1beta1": {"KubeletConfiguration"},
    "kubeproxy.config.k8s.io/v1alpha1": {"KubeProxyConfiguration"},
}
OLD = {"kubeadm.k8s.io/v1alpha1": "v1.11", "kubeadm.k8s.io/v1alpha2": "v1.12",
       "kubeadm.k8s.io/v1alpha3": "v1.14", "kubeadm.k8s.io/v1beta1": "v1.15",
       "kubeadm.k8s.io/v1beta2": "v1.22"}

# Fields of the v1beta4 types kube-rackspace uses (strict decoding refuses others).
FIELDS = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "dryRun", "nodeRegistration",
                          "localAPIEndpoint", "certificateKey", "skipPhases", "patches", "timeouts"},
    "JoinConfiguration": {"apiVersion", "kind", "dryRun", "nodeRegistration", "caCertPath", "discovery",
                          "controlPlane", "skipPhases", "patches", "timeouts"},
}
TOKEN_FIELDS = {"token", "description", "ttl", "expires", "usages", "groups"}
TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
USAGES = {"signing", "authentication"}
GROUP = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
# Go's time.ParseDuration.
DURATION = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$|^[-+]?0$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEFAULT_TTL = "24h0m0s"


class Refused(Exception):
    pass


def _gvk(doc):
    group, _, version = doc["apiVersion"].rpartition("/")
    return 'schema.GroupVersionKind{Group:"%s", Version:"%s", Kind:"%s"}' % (group, version, doc["kind"])


def _invalid(path, value, why):
    return '%s: Invalid value: "%s": %s' % (path, value, why)


def _is_ip(text):
    try:
        ipaddress.ip_address(str(text))
        return True
    except ValueError:
        return False


def _strict(doc, kind, known, where=""):
    for key in doc:
        if key not in known:
            raise Refused('error unmarshaling configuration %s: strict decoding error: unknown field "%s%s"'
                          % (_gvk(doc) if not where else kind, where, key))


def default_token(token):
    """SetDefaults_BootstrapToken: ttl 24h, both usages, kubeadm's group."""
    token = dict(token)
    token.setdefault("ttl", DEFAULT_TTL)
    token.setdefault("usages", sorted(USAGES))
    token.setdefault("groups", ["system:bootstrappers:kubeadm:default-node-token"])
    return token


def _tokens(init):
    errors = []
    tokens = init.get("bootstrapTokens") or [{}]     # SetDefaults_BootstrapTokens
    for i, raw in enumerate(tokens):
        for key in raw:
            if key not in TOKEN_FIELDS:
                raise Refused('error unmarshaling configuration %s: strict decoding error: unknown field '
                              '"bootstrapTokens[%d].%s"' % (_gvk(init), i, key))
        if "token" in raw and not TOKEN.match(str(raw["token"])):
            # The token's own unmarshalling (NewBootstrapTokenString) comes first.
            raise Refused('the bootstrap token "%s" was not of the form "\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"'
                          % raw["token"])
        if "ttl" in raw and not DURATION.match(str(raw["ttl"])):
            raise Refused('time: invalid duration "%s"' % raw["ttl"])
        if "expires" in raw:
            try:
                datetime.datetime.fromisoformat(str(raw["expires"]).replace("Z", "+00:00"))
            except ValueError:
                raise Refused('parsing time "%s" as "2006-01-02T15:04:05Z07:00": cannot parse' % raw["expires"])
        token = default_token(raw)
        path = "bootstrapTokens.%d" % i
        bad_usages = [u for u in token["usages"] if u not in USAGES]
        if bad_usages:
            errors.append(_invalid(path + ".usages", token["usages"], 'invalid bootstrap token usage string: %s, '
                                   'valid usage options: signing,authentication' % ",".join(bad_usages)))
        for group in token["groups"]:
            if not GROUP.match(group):
                errors.append(_invalid(path + ".groups", token["groups"],
                                       'bootstrap group "%s" is invalid (must match %s)' % (group, GROUP.pattern)))
        if "expires" in token and "ttl" in token:
            errors.append(_invalid(path, "", "the BootstrapToken .TTL and .Expires fields are mutually exclusive"))
    return errors


def _node_registration(doc):
    errors = []
    name = (doc.get("nodeRegistration") or {}).get("name", "")
    if name and not (len(name) <= 253 and DNS1123_SUBDOMAIN.match(name)):
        errors.append(_invalid("nodeRegistration.name", name, "a lowercase RFC 1123 subdomain must consist of lower "
                               "case alphanumeric characters, '-' or '.', and must start and end with an "
                               "alphanumeric character"))
    return errors


def _init(init, cluster):
    _strict(init, "InitConfiguration", FIELDS["InitConfiguration"])
    address = (init.get("localAPIEndpoint") or {}).get("advertiseAddress")
    if address is not None and not _is_ip(address):
        # SetAPIEndpointDynamicDefaults, before validation.
        raise Refused('couldn\'t use "%s" as "apiserver-advertise-address", must be ipv4 or ipv6 address' % address)
    errors = _node_registration(init) + _tokens(init)
    for i, san in enumerate(((cluster or {}).get("apiServer") or {}).get("certSANs") or []):
        san = str(san)
        if not (_is_ip(san) or DNS1123_SUBDOMAIN.match(san) or WILDCARD.match(san)):
            errors.append(_invalid("apiServer.certSANs[%d]" % i, san, "altname is not a valid IP address, DNS "
                                   "label or a DNS label with subdomain wildcards"))
    return errors


def _join(join):
    _strict(join, "JoinConfiguration", FIELDS["JoinConfiguration"])
    errors = _node_registration(join)
    discovery = join.get("discovery") or {}
    token = discovery.get("bootstrapToken")
    if token is None and discovery.get("file") is None:
        errors.append(_invalid("discovery", "", "bootstrapToken or file must be set"))
    if token is not None:
        endpoint = str(token.get("apiServerEndpoint", ""))
        if not endpoint:
            errors.append("discovery.bootstrapToken: Required value: APIServerEndpoint is not set")
        elif not re.match(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):\d*$", endpoint):
            errors.append(_invalid("discovery.bootstrapToken.apiServerEndpoint", endpoint,
                                   "address %s: missing port in address" % endpoint))
        if not token.get("caCertHashes") and not token.get("unsafeSkipCAVerification"):
            errors.append(_invalid("discovery.bootstrapToken.caCertHashes", "", "using token-based discovery "
                                   "without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in "
                                   "your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification "
                                   "flag to continue"))
        if not TOKEN.match(str(token.get("token", ""))):
            errors.append(_invalid("discovery.bootstrapToken.token", token.get("token", ""),
                                   "the bootstrap token is invalid"))
    return errors


def validate(text):
    """None when kubeadm would take the config `text`, else its message."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return "error converting YAML to JSON: %s" % str(exc).splitlines()[0]
    try:
        unknown = []
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                return "invalid configuration: kind and apiVersion is mandatory information that must be specified"
            if doc["apiVersion"] in OLD:
                continue     # validateKnownGVKs skips them; decoding refuses them below
            if doc["kind"] not in KNOWN.get(doc["apiVersion"], ()):
                unknown.append(_gvk(doc))
        if unknown:
            return "unknown configuration APIs: []schema.GroupVersionKind{%s}" % ", ".join(unknown)
        for doc in docs:
            if doc["apiVersion"] in OLD:
                return ("your configuration file uses an old API spec: %s (kind: \"%s\"). Please use kubeadm %s "
                        "instead and run 'kubeadm config migrate --old-config old.yaml --new-config new.yaml', "
                        "which will write the new, similar spec using a newer API version."
                        % ('"%s"' % doc["apiVersion"], doc["kind"], OLD[doc["apiVersion"]]))
        by_kind = {doc["kind"]: doc for doc in docs}
        errors = []
        if "InitConfiguration" in by_kind or "ClusterConfiguration" in by_kind:
            errors += _init(by_kind.get("InitConfiguration") or {"apiVersion": "kubeadm.k8s.io/v1beta4",
                                                                  "kind": "InitConfiguration"},
                            by_kind.get("ClusterConfiguration"))
        if "JoinConfiguration" in by_kind:
            errors += _join(by_kind["JoinConfiguration"])
    except Refused as exc:
        return str(exc)
    if not errors:
        return None
    # utilerrors.NewAggregate(...).Error()
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration_seconds(text):
    """Go's time.ParseDuration, in seconds (text already matched DURATION)."""
    text = str(text)
    sign = -1 if text.startswith("-") else 1
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def token_secrets(text, now):
    """The bootstrap tokens `kubeadm init` would create from the config
    `text` at `now`, as their Secrets' data: {"token-id", "expiration"
    (RFC 3339, absent when the token never expires)}. As
    apis/bootstraptoken/v1/utils.go encodeTokenSecretData: expires wins,
    else a ttl above 0 counts from now, else no expiration."""
    init = next((d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind") == "InitConfiguration"),
                {})
    secrets = []
    for raw in init.get("bootstrapTokens") or [{}]:
        token = default_token(raw)
        data = {"token-id": str(token.get("token", "")).split(".")[0]}
        if token.get("expires"):
            data["expiration"] = str(token["expires"])
        elif duration_seconds(token["ttl"]) > 0:
            data["expiration"] = (now + datetime.timedelta(seconds=duration_seconds(token["ttl"]))).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        secrets.append(data)
    return secrets


def config_path(args):
    """The value of --config in kubeadm's arguments, or None."""
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
    return None


def check_file(path):
    """kubeadm's message for the config file at `path`, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        return "open %s: %s" % (path, exc.strerror.lower())
    return validate(text)


def main(args, version):
    """The release's kubeadm: `config validate --config F`; `version`; any
    other command prints what it is, as the stub always did."""
    import sys

    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["config", "validate"]:
        path = config_path(args)
        if path is None:
            sys.stderr.write("the --config flag is mandatory\n")
            return 1
        error = check_file(path)
        if error:
            sys.stderr.write(error + "\nTo see the stack trace of this error execute with --v=5 or higher\n")
            return 1
        print("ok")
        return 0
    if words[:1] == ["version"]:
        print(version if "-o" in args or any(a.startswith("--output") for a in args) else
              'kubeadm version: &version.Info{GitVersion:"%s"}' % version)
        return 0
    print("kubeadm %s (testcloud)" % version)
    return 0
