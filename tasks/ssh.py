"""inv ssh: a shell, or one command, on the master or a node."""

import os
import shlex
import sys

from invoke import task
from invoke.exceptions import Exit

from .support import lazy
from .model import names
from .support.errors import UserError

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
shutil = lazy.module("shutil")
_cloud = lazy.module("tasks.services.session")
cluster = lazy.module("tasks.steps.cluster")
servers = lazy.module("tasks.model.servers")
settings = lazy.module("tasks.model.settings")

remote = lazy.module("tasks.services.ssh")

# Logging in to a server that is up needs no boot-length wait.
LOGIN_TIMEOUT = 30


def pick(s, found, node=None):
    """The server `inv ssh` means: the master, or node number `node`.
    `found` is servers.cluster_servers(); one line when it is not there."""
    if not found:
        raise UserError(f"no cluster named {s.INSTANCE_PREFIX} (no servers); run `inv up`")
    if node is None:
        master = servers.master_of(found)
        if master is None:
            raise UserError(f"cluster {s.INSTANCE_PREFIX} has no master; run `inv up`")
        chosen = master
    else:
        nodes = {servers.node_index(srv): srv for srv in found if servers.role_of(srv) == "node"}
        try:
            number = int(node)
        except ValueError:
            number = None
        if number not in nodes:
            raise UserError(f"no node {node} in cluster {s.INSTANCE_PREFIX}: {_valid(nodes)}")
        chosen = nodes[number]
    if not chosen.ssh_address:
        raise UserError(f"{chosen.name} has no address to reach it at yet (status {chosen.status}); "
                        "wait for `inv up` to finish, then retry")
    return chosen


def _valid(nodes):
    if not nodes:
        return "it has no nodes"
    numbers = sorted(nodes)
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        span = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
    else:
        span = ", ".join(map(str, numbers))
    return f"nodes are {span}"


def ssh_argv(s, address, command=None, gateway="", binary=None):
    """The system ssh command line: SSH_CONFIG, the cluster key only, the
    cluster's own known_hosts (a new key is recorded, a changed one refused).
    With `gateway`, through it as a jump host: a ProxyCommand running the
    same ssh with the same options (ProxyJump would not pass -i and -o on
    to the first hop)."""
    binary = binary or shutil.which("ssh")
    if not binary:
        raise UserError("no `ssh` on PATH; install OpenSSH's client (or use --command)")
    argv = [binary]
    if s.SSH_CONFIG:
        argv += ["-F", str(s.SSH_CONFIG)]
    argv += [
        "-i", str(names.private_key_path(s)),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={remote.known_hosts_path(s)}",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", "HashKnownHosts=no",
        "-l", s.SSH_USER,
    ]
    if gateway:
        hop = ssh_argv(s, gateway, binary=binary)[:-1] + ["-W", "%h:%p", gateway]
        argv += ["-o", "ProxyCommand=" + shlex.join(hop)]
    argv.append(address)
    if command:
        argv += ["--", command]
    return argv


@task(help={"node": "node number (1..NUM_NODES) instead of the master",
            "command": "run this command, print its output and exit with its status"})
def ssh(c, node=None, command=None):
    """Open a shell on the master (or --node N), or run --command there."""
    s = settings.load()
    found = cluster.find_cluster(s, _cloud.Cloud(s))
    server = pick(s, found, node)
    key = names.private_key_path(s)
    if not key.is_file():
        raise UserError(f"no cluster key {key}; it is set by SSH_KEY_NAME={s.SSH_KEY_NAME}")
    remote.ensure_state_dir(s)
    if command is None:
        argv = ssh_argv(s, server.ssh_address, gateway=server.ssh_gateway)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)
    try:
        conn = remote.open_connection(s, remote.target(server), LOGIN_TIMEOUT)
    except TimeoutError as exc:
        raise UserError(str(exc)) from None
    try:
        # Output streams as it comes; stdin is not forwarded (a command that
        # wants a terminal belongs in the interactive shell).
        result = conn.run(command, warn=True, pty=False, in_stream=False)
    finally:
        remote.close(conn)
    if result.exited:
        raise Exit(code=result.exited)
