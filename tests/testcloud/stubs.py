"""
Stand-ins for what a booted cluster server would answer over SSH.  Each stub
in <workdir>/ssh/stubs is `exec python stubs.py NAME "$@"`.

  hostname                  the Nova server name
  systemctl is-active U..   "active" (exit 0) or "failed" (exit 3)
  systemctl status U        a short status block, exit 0 / 3
  systemctl other ...       exit 0 (start/stop/enable/daemon-reload ...)
  journalctl -u U -n N      the unit's journal lines (see set_server_health)
  curl ... /readyz|healthz|livez   "ok"; exit 7 if kube-apiserver is failed
  kubectl get nodes [-o json]      the cluster's servers as nodes
  kubectl version / other   prints a version / nothing, exit 0

Health state: <workdir>/health/<server name>.json
  {"units": {"kubelet": {"active": false, "journal": "..."}},
   "node_ready": true}
The cluster of a server: ACTIVE servers of the same tenant whose names share
its prefix, where the prefix is the name minus a trailing
-master/-control-plane/-controller/-node/-worker/-minion[-N] part.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lookup  # noqa: E402

ROLE_RE = re.compile(r"^(.*?)-(master|control-plane|controller|node|worker|"
                     r"minion)(-?\d+)?$")


def health(name):
    path = os.path.join(os.environ.get("TESTCLOUD_HEALTH_DIR", "/nonexistent"),
                        name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def me():
    return os.environ.get("TESTCLOUD_SERVER_NAME", "localhost")


def unit_state(server, unit):
    unit = unit[:-len(".service")] if unit.endswith(".service") else unit
    return health(server).get("units", {}).get(unit, {})


def unit_active(server, unit):
    return unit_state(server, unit).get("active", True)


def cmd_hostname(args):
    print(me())
    return 0


def cmd_systemctl(args):
    args = [a for a in args if not a.startswith("-")]
    if not args:
        return 0
    verb, units = args[0], args[1:]
    if verb == "is-active":
        rc = 0
        for u in units:
            ok = unit_active(me(), u)
            print("active" if ok else "failed")
            rc = rc or (0 if ok else 3)
        return rc
    if verb == "is-enabled":
        for u in units:
            print("enabled")
        return 0
    if verb == "status":
        rc = 0
        for u in units:
            ok = unit_active(me(), u)
            name = u if "." in u else u + ".service"
            print("* %s - %s" % (name, u))
            print("     Loaded: loaded (/etc/systemd/system/%s; enabled)" % name)
            print("     Active: %s" % ("active (running)" if ok else
                                       "failed (Result: exit-code)"))
            rc = rc or (0 if ok else 3)
        return rc
    return 0


def cmd_journalctl(args):
    unit, lines = None, 10
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "--unit"):
            unit, i = args[i + 1], i + 1
        elif a.startswith("--unit="):
            unit = a.split("=", 1)[1]
        elif a in ("-n", "--lines"):
            lines, i = int(args[i + 1]), i + 1
        elif a.startswith("--lines="):
            lines = int(a.split("=", 1)[1])
        i += 1
    if unit is None:
        return 0
    state = unit_state(me(), unit)
    text = state.get("journal")
    if text is None:
        stamp = time.strftime("%b %d %H:%M:%S")
        text = "%s %s systemd[1]: Started %s." % (stamp, me(), unit)
    out = text.splitlines()[-lines:] if lines else []
    if out:
        print("\n".join(out))
    return 0


def cmd_curl(args):
    url = " ".join(a for a in args if not a.startswith("-"))
    if re.search(r"/(readyz|healthz|livez)", url):
        if unit_active(me(), "kube-apiserver"):
            sys.stdout.write("ok")
            return 0
        sys.stderr.write("curl: (7) Failed to connect: Connection refused\n")
        return 7
    sys.stderr.write("curl: (7) Failed to connect (testcloud stub)\n")
    return 7


def cluster_servers():
    servers = lookup.servers(os.environ["TESTCLOUD_MIMIC_URL"])
    tenant = os.environ.get("TESTCLOUD_TENANT_ID")
    m = ROLE_RE.match(me())
    prefix = (m.group(1) if m else me().split("-")[0]) + "-"
    return [s for s in servers if s["tenant_id"] == tenant and
            s["status"] == "ACTIVE" and s["name"].startswith(prefix)]


def node_json(server):
    name = server["name"]
    h = health(name)
    ready = h.get("node_ready", True) and unit_active(name, "kubelet")
    role = ROLE_RE.match(name)
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if role and role.group(2) in ("master", "control-plane", "controller"):
        labels["node-role.kubernetes.io/control-plane"] = ""
    addrs = [{"type": "Hostname", "address": name}]
    if server.get("public_ipv4"):
        addrs.append({"type": "ExternalIP", "address": server["public_ipv4"]})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "addresses": addrs,
            "conditions": [{
                "type": "Ready", "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if ready else
                "kubelet stopped posting node status",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": os.environ.get(
                "TESTCLOUD_KUBE_VERSION", "v1.31.4")},
        },
    }


def cmd_kubectl(args):
    # Positional words only: skip flags and the values of flags that take one.
    takes_value = {"--kubeconfig", "--context", "--server", "-n", "--namespace", "-o", "--output"}
    words, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif not a.startswith("-"):
            words.append(a)
    if "version" in words[:1]:
        print("Client Version: v1.31.4")
        return 0
    if words[:2] in (["get", "nodes"], ["get", "node"], ["get", "no"]):
        if not unit_active(me(), "kube-apiserver"):
            sys.stderr.write("The connection to the server localhost:6443 "
                             "was refused - did you specify the right host "
                             "or port?\n")
            return 1
        nodes = [node_json(s) for s in cluster_servers()]
        out = None
        for i, a in enumerate(args):
            if a in ("-o", "--output") and i + 1 < len(args):
                out = args[i + 1]
            elif a.startswith("-o") and len(a) > 2:
                out = a[2:].lstrip("=")
            elif a.startswith("--output="):
                out = a.split("=", 1)[1]
        if out == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List",
                              "items": nodes, "metadata": {}}, indent=2))
        elif out == "name":
            for n in nodes:
                print("node/" + n["metadata"]["name"])
        else:
            print("%-30s %-10s %-15s %-5s %s" % ("NAME", "STATUS", "ROLES",
                                                 "AGE", "VERSION"))
            for n in nodes:
                ready = n["status"]["conditions"][0]["status"] == "True"
                roles = "control-plane" if \
                    "node-role.kubernetes.io/control-plane" in \
                    n["metadata"]["labels"] else "<none>"
                print("%-30s %-10s %-15s %-5s %s" % (
                    n["metadata"]["name"], "Ready" if ready else "NotReady",
                    roles, "1m", n["status"]["nodeInfo"]["kubeletVersion"]))
        return 0
    return 0


COMMANDS = {"hostname": cmd_hostname, "systemctl": cmd_systemctl,
            "journalctl": cmd_journalctl, "curl": cmd_curl,
            "kubectl": cmd_kubectl}


def main():
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
