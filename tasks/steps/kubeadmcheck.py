"""The kubeadm configs the servers will boot with, checked by the release's
own kubeadm (`kubeadm config validate --config FILE`) before anything is
created: `inv plan` and `inv up`'s preflight.

The release tarball carries the very kubeadm the servers run
(kubernetes/server/bin/kubeadm, linux-amd64). Where it can run (a
linux-amd64 machine) it is extracted once per tarball, keyed by the
tarball's sha256 (KUBE_DOWNLOAD_DIR/kubeadm/<sha256>/kubeadm), and given
each config with the boot-time placeholders filled the way the bootstrap
scripts fill them, with sample addresses. `kubeadm config validate` decodes
strictly, defaults and validates exactly as `kubeadm init` / `join` do
before their first phase (kubernetes/kubernetes cmd/kubeadm/app/cmd/config.go
newCmdConfigValidate -> cmd/kubeadm/app/util/config/common.go ValidateConfig).

A config kubeadm refuses stops the command with one line (kubeadm's own
first line); a check that cannot run (another OS or CPU, no tarball here,
a kubeadm that does not execute) is said in one line and is no error.

The configs hold the bootstrap token: they go to kubeadm in a 0600 temp
file that is removed afterwards, never on a command line, and the token is
masked in anything kubeadm says back.
"""

import dataclasses
import datetime
import ipaddress
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..model import release
from ..support.errors import UserError

KUBEADM_MEMBER = "kubernetes/server/bin/kubeadm"
CACHE_DIR = "kubeadm"
TIMEOUT = 60
# What the servers' bootstrap scripts fill in at boot (bootstrap-master.sh,
# bootstrap-node.sh); the check fills the same, with samples.
PLACEHOLDERS = ("@CLOUD_NETWORK_IP@", "@PUBLIC_IP@", "@TOKEN_TTL@")
_PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")
# RFC 5737's documentation range: no server has it.
SAMPLE_PUBLIC_IP = "203.0.113.10"
# klog's header (I1208 01:02:03.456789 ...) and kubeadm's trailer.
_NOISE = re.compile(r"^[IWEF]\d{4} |^To see the stack trace of this error")


class CannotCheck(Exception):
    """The check could not run here; the message says why."""


# --- pure ---------------------------------------------------------------------

def unsupported_platform(system, machine):
    """None when the release's linux-amd64 kubeadm runs on this machine,
    else why not."""
    if system == "Linux" and machine.lower() in ("x86_64", "amd64"):
        return None
    return f"this machine is {system} {machine}, the release's kubeadm is linux-amd64"


def boot_ttl(expires, now):
    """The ttl bootstrap-master.sh gives kubeadm, in whole seconds: what is
    left of the token's life, at least 1 (0 would mean never expires)."""
    return max(1, int((expires - now).total_seconds()))


def parse_expiry(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def sample_values(nova_network, token_expires, now):
    """{placeholder: value} as a server fills them at boot: its Cloud
    Network address (a sample inside NOVA_NETWORK), a public address
    (RFC 5737) and the token's ttl from its recorded expiry."""
    network = ipaddress.ip_network(nova_network)
    cloud_ip = network.network_address + min(10, network.num_addresses - 2)
    ttl = boot_ttl(parse_expiry(token_expires), now) if token_expires else 1
    return {"@CLOUD_NETWORK_IP@": str(cloud_ip), "@PUBLIC_IP@": SAMPLE_PUBLIC_IP, "@TOKEN_TTL@": f"{ttl}s"}


def fill(text, values):
    """`text` with the placeholders replaced. ValueError when one is left
    that no bootstrap script fills (a template and its script disagree)."""
    for key, value in values.items():
        text = text.replace(key, value)
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"placeholders no bootstrap script fills: {', '.join(left)}")
    return text


def verdict(returncode, stdout, stderr):
    """None when kubeadm took the config, else its message's first line
    (klog lines and the stack-trace hint skipped)."""
    if returncode == 0:
        return None
    for text in (stderr, stdout):
        for line in (text or "").splitlines():
            line = line.strip()
            if line and not _NOISE.match(line):
                return line.removeprefix("error: ")
    return f"exit status {returncode}"


def mask(text, secrets):
    """`text` with every secret (and a token's secret half) masked."""
    for secret in secrets:
        if not secret:
            continue
        parts = [secret] + ([secret.split(".", 1)[1]] if "." in secret else [])
        for part in parts:
            text = text.replace(part, "<bootstrap token>" if part == secret else "<secret>")
    return text


def refused_line(name, role, message):
    return (f"kubeadm refuses the kubeadm config of {name} (cloud-config/addons/kubeadm-{role}.yaml.j2): "
            f"{message}; nothing was created")


def not_checked_line(reason):
    return f"kubeadm configs not checked with kubeadm: {reason}"


# --- the release's kubeadm ------------------------------------------------------

def cached_path(download_dir, sha256):
    return Path(download_dir) / CACHE_DIR / sha256 / "kubeadm"


def extract(tarball, target):
    """Copy kubeadm out of the tarball to `target` (mode 0755), reading the
    gzip stream only as far as kubeadm. CannotCheck when it is not there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r|gz") as tar:
            for member in tar:
                if member.name.removeprefix("./") == KUBEADM_MEMBER and member.isfile():
                    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".kubeadm.")
                    try:
                        with os.fdopen(fd, "wb") as out:
                            shutil.copyfileobj(tar.extractfile(member), out, release.CHUNK)
                        os.chmod(tmp, 0o755)
                        os.replace(tmp, target)
                    except BaseException:
                        os.unlink(tmp)
                        raise
                    return target
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise CannotCheck(f"cannot read {tarball} ({exc})") from None
    raise CannotCheck(f"{tarball} holds no {KUBEADM_MEMBER}")


def kubeadm_binary(download_dir, tarball, sha256):
    """The release's kubeadm, extracted once per tarball digest; older
    extractions are removed."""
    path = cached_path(download_dir, sha256)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    root = path.parent.parent
    if root.is_dir():
        for old in root.iterdir():
            if old.name != sha256:
                shutil.rmtree(old, ignore_errors=True)
    try:
        return extract(tarball, path)
    except OSError as exc:
        raise CannotCheck(f"cannot keep kubeadm in {path.parent} ({exc.strerror})") from None


def validate(binary, text):
    """(returncode, stdout, stderr) of `kubeadm config validate` on `text`,
    given in a 0600 temp file removed afterwards. CannotCheck when kubeadm
    does not run (or dies of a signal, or hangs)."""
    fd, tmp = tempfile.mkstemp(prefix="kubeadm-check-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            result = subprocess.run([str(binary), "config", "validate", "--config", tmp], capture_output=True,
                                    text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise CannotCheck(f"the release's kubeadm does not run here ({exc.strerror})") from None
        except subprocess.TimeoutExpired:
            raise CannotCheck(f"the release's kubeadm did not answer within {TIMEOUT}s") from None
    finally:
        os.unlink(tmp)
    if result.returncode < 0:
        raise CannotCheck(f"the release's kubeadm died of signal {-result.returncode}")
    return result.returncode, result.stdout, result.stderr


# --- the check ------------------------------------------------------------------

def check(s, configs, tarball=None, now=None):
    """Validate `configs` [(server name, role, config text as rendered,
    bootstrap token, its expiry)] (config_of) with the release's kubeadm.
    Returns one line to show (checked, or why not); UserError with one line
    when kubeadm refuses one. `tarball`: the release tarball (found when
    None)."""
    reason = unsupported_platform(platform.system(), platform.machine())
    if reason:
        return not_checked_line(reason)
    if not configs:
        return not_checked_line("the tarball's Kubernetes version is unknown, so no config was rendered "
                                "(set KUBE_VERSION to it)")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        if tarball is None:
            try:
                tarball = release.find_tarball(s)
            except UserError:
                raise CannotCheck("no release tarball here (inv build makes one)") from None
        cache = release.DigestCache(s.KUBE_DOWNLOAD_DIR)
        sha256 = release.file_digests(tarball, cache, md5=False)["sha256"]
        binary = kubeadm_binary(s.KUBE_DOWNLOAD_DIR, tarball, sha256)
        for name, role, text, token, expires in configs:
            filled = fill(text, sample_values(s.NOVA_NETWORK, expires, now))
            code, out, err = validate(binary, filled)
            message = verdict(code, out, err)
            if message is not None:
                raise UserError(refused_line(name, role, mask(message, [token])))
    except CannotCheck as exc:
        return not_checked_line(str(exc))
    names = ", ".join(name for name, *_ in configs)
    return f"kubeadm configs of {names} checked with the release's kubeadm (kubeadm config validate): ok"


def config_of(s, name, role, facts):
    """One entry of check()'s `configs` for the server `name`."""
    from ..model import userdata

    return (name, role, userdata.kubeadm_config(role, s, facts), facts.bootstrap_token,
            facts.bootstrap_token_expires)


def up_configs(s, roles):
    """(tarball, configs) for the servers of `roles` that `inv up` must
    create, before anything is uploaded or created: the PKI from the state
    dir (made now when missing, as up would), the release's version from
    the local tarball. Only the kubeadm config is rendered, so the release
    URL, digest and SSH key are samples, and a node's master address too
    (the config's shape does not depend on it). No configs when the
    tarball's version cannot be told (up then stops with its own line)."""
    from ..model import names, pki, userdata

    tarball = release.find_tarball(s)
    version = release.version_of(s, tarball, release.DigestCache(s.KUBE_DOWNLOAD_DIR)) or (
        s.KUBE_VERSION if s.KUBE_VERSION != "stable" else None)
    if not version:
        return tarball, []
    material = pki.ensure(names.state_dir(s), token_ttl=s.BOOTSTRAP_TOKEN_TTL)
    base = userdata.ClusterFacts.from_pki(material, kube_version=version, release_url="https://release.invalid/",
                                          release_sha256="0" * 64, ssh_public_key="ssh-ed25519 sample")
    configs = []
    if "master" in roles:
        configs.append(config_of(s, names.master_name(s), "master", base))
    if "node" in roles:
        facts = dataclasses.replace(base, master_ip=sample_values(s.NOVA_NETWORK, "", None)["@CLOUD_NETWORK_IP@"],
                                    node_index=1)
        configs.append(config_of(s, names.node_name(s, 1), "node", facts))
    return tarball, configs
