"""
OpenSSH sshd for the test cloud: one sshd on 0.0.0.0:<port> (inside the
loopback-only namespace), keys from Mimic's keypairs (ssh_authkeys.py),
commands through ssh_forcecommand.py + stubs.py.  Also writes the SSH_CONFIG
file clients use (ProxyCommand ssh_route.py maps a.b.c.d -> 127.b.c.d).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.testcloud.util import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
STUBS = ("hostname", "systemctl", "journalctl", "curl", "kubectl", "dig", "ip")


def find_sshd():
    for p in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if p and os.path.exists(p):
            return p
    raise RuntimeError("sshd not found: apt-get install -y openssh-server")


def find_sftp_server():
    for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server",
              "/usr/lib/ssh/sftp-server"):
        if os.path.exists(p):
            return p
    return "/usr/lib/openssh/sftp-server"


def configure(root, mimic_url, health_dir, servers_dir, extra_ports=()):
    """mimic_url: where servers and keys are looked up (lookup.py: Mimic's
    URL or "osbed:<state.json>").  extra_ports: more ports sshd listens on
    (the OpenStack bed adds 22, where jump-host forwards to fixed IPs land).
    """
    os.makedirs(root, exist_ok=True)
    stub_dir = os.path.join(root, "stubs")
    os.makedirs(stub_dir, exist_ok=True)
    py = sys.executable
    for name in STUBS:
        path = os.path.join(stub_dir, name)
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec "%s" "%s" %s "$@"\n'
                    % (py, os.path.join(HERE, "stubs.py"), name))
        os.chmod(path, 0o755)
    host_key = os.path.join(root, "ssh_host_ed25519_key")
    if not os.path.exists(host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                        "-C", "testcloud-host", "-f", host_key], check=True)
    sftp = find_sftp_server()
    port = free_port()
    conf_json = os.path.join(root, "testcloud.json")
    with open(conf_json, "w") as f:
        json.dump({"mimic_url": mimic_url, "stub_dir": stub_dir,
                   "ports": [port, *extra_ports],
                   "health_dir": health_dir, "servers_dir": servers_dir,
                   "sftp_server": sftp}, f)
    # sshd checks that AuthorizedKeysCommand's program (realpath) lives in
    # root-owned, non-world-writable directories: use the real interpreter.
    real_py = os.path.realpath(py)
    sshd_config = os.path.join(root, "sshd_config")
    with open(sshd_config, "w") as f:
        f.write("""\
Port {port}
{extra_ports}ListenAddress 0.0.0.0
HostKey {host_key}
PidFile {root}/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
AuthorizedKeysCommand {real_py} {authkeys} {mimic_url} %u
AuthorizedKeysCommandUser root
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 50
LogLevel VERBOSE
ForceCommand {py} {force} {conf_json}
Subsystem sftp {sftp}
""".format(port=port, extra_ports="".join(
        "Port %d\n" % p for p in extra_ports), host_key=host_key, root=root, real_py=real_py,
           authkeys=os.path.join(HERE, "ssh_authkeys.py"),
           mimic_url=mimic_url, py=py,
           force=os.path.join(HERE, "ssh_forcecommand.py"),
           conf_json=conf_json, sftp=sftp))
    ssh_config = os.path.join(root, "ssh_config")
    with open(ssh_config, "w") as f:
        f.write("""\
# test cloud: every host is reached through the loopback relay
Host *
    ProxyCommand {py} {route} %h %p {port} {mimic_url}
""".format(py=py, route=os.path.join(HERE, "ssh_route.py"), port=port,
           mimic_url=mimic_url))
    return sshd_config, ssh_config, port


def start(root, mimic_url, health_dir, servers_dir, extra_ports=()):
    sshd_config, ssh_config, port = configure(root, mimic_url, health_dir,
                                              servers_dir, extra_ports)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # privsep dir
    sshd = find_sshd()
    subprocess.run([sshd, "-t", "-f", sshd_config], check=True)
    log = open(os.path.join(root, "sshd.log"), "ab")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", sshd_config],
                            stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc, port, ssh_config
