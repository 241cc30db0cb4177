"""
sshd ForceCommand:  ssh_forcecommand.py CONF_JSON

Finds the Nova server reached (local address of SSH_CONNECTION, 127.b.c.d
<-> public a.b.c.d), then runs SSH_ORIGINAL_COMMAND (or an interactive
shell) with PATH=<stub dir>:$PATH, HOME and cwd = <workdir>/servers/<name>,
and TESTCLOUD_* variables describing the server for the stubs (stubs.py).
SFTP subsystem requests are passed to the real sftp-server.

A private (fixed) address is reached as on a real cloud only from a server
on the same network: ssh_route refuses it from outside, and a jump host's
sshd forwards to it (direct-tcpip to <fixed ip>:22, which the OpenStack bed
routes to this sshd).  The jump host is found by tracing the forwarded
connection back through /proc to the sshd session that made it; the target
is the server with that fixed IP on one of the jump host's networks.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lookup  # noqa: E402


def _tcp_sockets():
    """{inode: ((local ip, port), (remote ip, port))} of IPv4 TCP sockets."""
    def addr(text):
        ip, port = text.split(":")
        return (".".join(str(b) for b in bytes.fromhex(ip)[::-1]),
                int(port, 16))
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            out[cols[9]] = (addr(cols[1]), addr(cols[2]))
    return out


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir("/proc/%s/fd" % pid):
            try:
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def jump_address(client, server, sshd_ports):
    """The address by which the jump host was reached, for a connection
    that one of our sshd sessions forwarded (client -> server), or None."""
    socks = _tcp_sockets()
    fwd = [i for i, (loc, rem) in socks.items()
           if loc == client and rem == server]
    if not fwd:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        inodes = _socket_inodes(pid)
        if fwd[0] not in inodes:
            continue
        for inode in inodes:
            loc, rem = socks.get(inode, (None, None))
            if loc and loc[1] in sshd_ports and inode != fwd[0]:
                return loc[0]
    return None


def find_server(servers, local_ip, ssh_connection, sshd_ports):
    """The ACTIVE server this connection reached, or None."""
    if local_ip.startswith("127."):
        matches = [s for s in servers if s["public_ipv4"] and
                   s["public_ipv4"].split(".")[1:] == local_ip.split(".")[1:]]
        return matches[0] if matches else None
    cip, cport, sip, sport = ssh_connection
    jump_ip = jump_address((cip, int(cport)), (sip, int(sport)), sshd_ports)
    if jump_ip is None:
        return None
    jump = find_server(servers, jump_ip, None, sshd_ports) \
        if jump_ip.startswith("127.") else None
    if jump is None:
        return None
    nets = {f["network_id"] for f in jump.get("fixed", [])}
    matches = [s for s in servers if s["status"] == "ACTIVE" and any(
        f["ip"] == local_ip and f["network_id"] in nets
        for f in s.get("fixed", []))]
    return matches[0] if matches else None


def main():
    conf = json.load(open(sys.argv[1]))
    local = os.environ.get("SSH_CONNECTION", "").split()
    local_ip = local[2] if len(local) >= 3 else ""
    server = find_server(lookup.servers(conf["mimic_url"]), local_ip, local,
                         conf.get("ports", []))
    if server is None:
        sys.stderr.write("testcloud: no server has address %s\n" % local_ip)
        return 255
    home = os.path.join(conf["servers_dir"], server["name"])
    os.makedirs(home, exist_ok=True)
    os.environ.update({
        "TESTCLOUD_SERVER_NAME": server["name"],
        "TESTCLOUD_SERVER_ID": server["id"],
        "TESTCLOUD_TENANT_ID": server["tenant_id"],
        "TESTCLOUD_MIMIC_URL": conf["mimic_url"],
        "TESTCLOUD_HEALTH_DIR": conf["health_dir"],
        "HOME": home,
        "PATH": conf["stub_dir"] + ":" + os.environ.get(
            "PATH", "/usr/local/bin:/usr/bin:/bin"),
    })
    os.chdir(home)
    cmd = os.environ.get("SSH_ORIGINAL_COMMAND")
    if cmd is None:
        os.execv("/bin/sh", ["-sh", "-i"])
    # A booted server has kubectl & co. in /opt/bin (installed by
    # kube-release.service); on this stand-in that directory is the stubs'.
    cmd = cmd.replace("/opt/bin/", conf["stub_dir"] + "/")
    if cmd.strip() in ("internal-sftp", conf["sftp_server"]) or \
            cmd.strip().endswith("/sftp-server"):
        os.execv(conf["sftp_server"], [conf["sftp_server"]])
    os.execv("/bin/sh", ["sh", "-c", cmd])


if __name__ == "__main__":
    sys.exit(main())
