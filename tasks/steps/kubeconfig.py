"""The cluster's admin kubeconfig: in the state dir, and merged into yours.

The admin kubeconfig (from pki) is renamed to the context
rackspace_INSTANCE_PREFIX (its cluster and user entries too), pointed at
https://<master public IPv4>:6443 and written to the state dir. Merging
replaces only the entries of that name in the target file (KUBECONFIG_PATH,
or --path): other clusters, users and contexts stay as they were. TLS is
always verified against the cluster CA: a kubeconfig that asks to skip
verification is refused.
"""

import copy
import os
import tempfile
from pathlib import Path

from ..model import names
from ..model.layout import API_PORT
from ..support import lazy
from ..support.errors import UserError

yaml = lazy.module("yaml")

SECTIONS = ("clusters", "users", "contexts")


def server_url(address):
    return f"https://{address}:{API_PORT}"


def state_path(s):
    return names.state_dir(s) / "kubeconfig"


def single(config, context, server):
    """A kubeconfig holding exactly one cluster, user and context, all
    named `context`, with the cluster's server set to `server`."""
    if not isinstance(config, dict):
        raise ValueError("not a kubeconfig (expected a mapping)")
    contexts = config.get("contexts") or []
    wanted = config.get("current-context") or (contexts[0]["name"] if contexts else None)
    ctx = next((c for c in contexts if c.get("name") == wanted), None)
    if ctx is None:
        raise ValueError("the admin kubeconfig has no context")
    cluster = _entry(config, "clusters", ctx["context"]["cluster"])
    user = _entry(config, "users", ctx["context"]["user"])
    cluster = copy.deepcopy(cluster.get("cluster") or {})
    if cluster.get("insecure-skip-tls-verify"):
        raise ValueError("the admin kubeconfig skips TLS verification")
    if not (cluster.get("certificate-authority-data") or cluster.get("certificate-authority")):
        raise ValueError("the admin kubeconfig has no certificate authority to verify the API server")
    cluster["server"] = server
    context_body = {"cluster": context, "user": context}
    if ctx["context"].get("namespace"):
        context_body["namespace"] = ctx["context"]["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": copy.deepcopy(user.get("user") or {})}],
        "contexts": [{"name": context, "context": context_body}],
        "current-context": context,
    }


def _entry(config, section, name):
    for item in config.get(section) or []:
        if item.get("name") == name:
            return item
    raise ValueError(f"the admin kubeconfig's context names {section[:-1]} {name!r}, which it lacks")


def merge(base, new, set_current=True):
    """`base` with every cluster, user and context of `new` added, replacing
    entries of the same name and leaving all others as they were. Pure:
    neither argument is changed."""
    merged = copy.deepcopy(base) if base else {}
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    if merged.get("preferences") is None:
        merged["preferences"] = {}
    for section in SECTIONS:
        items = list(merged.get(section) or [])
        for entry in new.get(section) or []:
            index = next((i for i, item in enumerate(items) if item.get("name") == entry["name"]), None)
            if index is None:
                items.append(copy.deepcopy(entry))
            else:
                items[index] = copy.deepcopy(entry)
        merged[section] = items
    if set_current and new.get("current-context"):
        merged["current-context"] = new["current-context"]
    return merged


def remove(base, context):
    """`base` without the cluster, user and context named `context` (for
    `inv down`); current-context is cleared only when it was ours."""
    merged = copy.deepcopy(base) if base else {}
    for section in SECTIONS:
        merged[section] = [i for i in merged.get(section) or [] if i.get("name") != context]
    if merged.get("current-context") == context:
        merged["current-context"] = ""
    return merged


def load_file(path):
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({_first_line(exc)}); fix it or pass another --path") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a kubeconfig (expected a mapping); fix it or pass another --path")
    return data


def _first_line(exc):
    return str(exc).strip().splitlines()[0]


def write_file(path, data):
    """Atomically replace `path` (its target, if a symlink) with `data` as
    YAML, mode 0600: a crash leaves the old file or the new one."""
    path = Path(path).expanduser()
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(data, out, default_flow_style=False, sort_keys=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def install(s, admin_text, master_address, target=None):
    """Write the cluster's kubeconfig to the state dir and merge it into
    `target` (default KUBECONFIG_PATH). Returns (state file, target)."""
    context = names.kube_context(s)
    try:
        config = single(yaml.safe_load(admin_text), context, server_url(master_address))
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot use the admin kubeconfig of {s.INSTANCE_PREFIX}: {exc}") from None
    names.state_dir(s).mkdir(parents=True, exist_ok=True, mode=0o700)
    state = write_file(state_path(s), config)
    target = Path(target or s.KUBECONFIG_PATH).expanduser()
    merged = merge(load_file(target), config)
    write_file(target, merged)
    return state, target


def uninstall(s, target=None):
    """Remove the cluster's entries from `target` (default KUBECONFIG_PATH);
    True when something was removed."""
    target = Path(target or s.KUBECONFIG_PATH).expanduser()
    base = load_file(target)
    if not base:
        return False
    context = names.kube_context(s)
    if not any(i.get("name") == context for section in SECTIONS for i in base.get(section) or []):
        return False
    write_file(target, remove(base, context))
    return True


def write_for(s, master, target=None):
    """Install the admin kubeconfig for `master` (a servers.Server) from the
    cluster's PKI in the state dir. Refuses to invent a new CA: one that
    the servers do not trust would only make a kubeconfig that fails."""
    from ..model import pki

    state = names.state_dir(s)
    if not (state / pki.FILES["ca_cert_pem"]).is_file():
        raise UserError(f"no cluster CA in {state}: the servers of {s.INSTANCE_PREFIX} were made with "
                        "another state directory (KUBE_STATE_DIR); copy it here, or recreate the cluster")
    if not master.public_ip:
        raise UserError(f"{master.name} has no public address yet ({master.status}); run `inv up`")
    material = pki.ensure(state)
    text = pki.admin_kubeconfig(names.kube_context(s), server_url(master.public_ip), material)
    return install(s, text, master.public_ip, target)
