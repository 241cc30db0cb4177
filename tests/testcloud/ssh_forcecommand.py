"""
sshd ForceCommand:  ssh_forcecommand.py CONF_JSON

Finds the Nova server reached (local address of SSH_CONNECTION, 127.b.c.d
<-> public a.b.c.d), then runs SSH_ORIGINAL_COMMAND (or an interactive
shell) with PATH=<stub dir>:$PATH, HOME and cwd = <workdir>/servers/<name>,
and TESTCLOUD_* variables describing the server for the stubs (stubs.py).
SFTP subsystem requests are passed to the real sftp-server.
"""
import json
import os
import sys
import urllib.request


def main():
    conf = json.load(open(sys.argv[1]))
    local = os.environ.get("SSH_CONNECTION", "").split()
    local_ip = local[2] if len(local) >= 3 else ""
    with urllib.request.urlopen(conf["mimic_url"] + "/testcloud/servers",
                                timeout=5) as r:
        servers = json.load(r)
    matches = [s for s in servers if s["public_ipv4"] and
               s["public_ipv4"].split(".")[1:] == local_ip.split(".")[1:]]
    if not matches:
        sys.stderr.write("testcloud: no server has address %s\n" % local_ip)
        return 255
    server = matches[0]
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
