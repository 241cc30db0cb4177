"""
Stand-ins for what a booted cluster server would answer over SSH.  Each stub
in <workdir>/ssh/stubs is `exec python stubs.py NAME "$@"`.

  hostname                  the Nova server name
  systemctl is-active U..   "active" (exit 0) or "failed" (exit 3)
  systemctl status U        a short status block, exit 0 / 3
  systemctl other ...       exit 0 (start/stop/enable/daemon-reload ...)
  journalctl -u U -n N      the unit's journal lines (see set_server_health)
  curl ... /readyz|healthz|livez   "ok"; exit 7 if kube-apiserver is failed
  kubectl get nodes [-o json]      the cluster's servers as nodes (not those
                            whose Node was deleted; cordoned ones unschedulable)
  kubectl create -f -       records the object read from stdin in
                            $HOME/kube-objects/<namespace>/<kind>/<name>.yaml;
                            AlreadyExists (exit 1) when it is there
  kubectl cordon NODE       marks it unschedulable
  kubectl drain NODE [--timeout=D] ...   cordons, then "evicts" its pods:
                            fails as kubectl does when the node's health has
                            "drain_error" (a pod that cannot be evicted)
  kubectl delete node NODE [--ignore-not-found]   deletes the Node object
  kubectl get pods -n NS -l SEL [-o json|wide]   flannel's pod on every
                            server, CoreDNS's two on the master (see
                            cluster_pods; states from the health below)
  kubectl version / other   prints a version / nothing, exit 0
  dig +short @IP NAME       the kubernetes Service's address; times out
                            (exit 9) from a server whose pod network is down
  ip route show             a host-gw node's routes
  kubeadm init|reset|config images list   on a server root given by
                            $TESTCLOUD_SERVER_ROOT (see cmd_kubeadm)

Health state: <workdir>/health/<server name>.json
  {"units": {"kubelet": {"active": false, "journal": "..."}},
   "node_ready": true, "cordoned": false, "node_deleted": false,
   "drain_error": "pod default/db-0 ... disruption budget",
   "flannel": "CrashLoopBackOff", "coredns": "Pending", "pod_network": false}
Unknown nodes (no such server, or its Node deleted) answer as kubectl does:
'Error from server (NotFound): nodes "NAME" not found', exit 1.
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
import kubeadm_config  # noqa: E402

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


def set_health(name, **changes):
    path = os.path.join(os.environ.get("TESTCLOUD_HEALTH_DIR", "/nonexistent"),
                        name + ".json")
    state = health(name)
    state.update(changes)
    tmp = path + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def node_names():
    return [s["name"] for s in cluster_servers()
            if not health(s["name"]).get("node_deleted")]


def not_found(name):
    sys.stderr.write('Error from server (NotFound): nodes "%s" not found\n'
                     % name)
    return 1


def cmd_node_change(words, args):
    """kubectl cordon / drain / delete node, on the cluster's Node objects."""
    verb = words[0]
    name = words[2] if verb == "delete" else words[1]
    known = name in node_names()
    if verb == "delete":
        if not known:
            return 0 if "--ignore-not-found" in args or \
                "--ignore-not-found=true" in args else not_found(name)
        set_health(name, node_deleted=True)
        print('node "%s" deleted' % name)
        return 0
    if not known:
        return not_found(name)
    set_health(name, cordoned=True)
    print("node/%s cordoned" % name)
    if verb == "cordon":
        return 0
    error = health(name).get("drain_error")
    if error:
        timeout = next((a.split("=", 1)[1] for a in args
                        if a.startswith("--timeout=")), "0s")
        sys.stderr.write("error: unable to drain node \"%s\" due to error: "
                         "%s, continuing command...\nThere are pending "
                         "nodes to be drained:\n %s\nerror: %s; global "
                         "timeout reached: %s\n"
                         % (name, error, name, error, timeout))
        return 1
    print("node/%s drained" % name)
    return 0


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
        "spec": {"unschedulable": True} if h.get("cordoned") else {},
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
    takes_value = {"--kubeconfig", "--context", "--server", "-n", "--namespace", "-o", "--output",
                   "-l", "--selector", "--field-selector"}
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
    if words[:1] == ["create"]:
        return kubectl_create(args)
    if words[:2] in (["get", "pods"], ["get", "pod"], ["get", "po"]):
        return kubectl_get_pods(args)
    if words[:1] in (["cordon"], ["drain"]) and len(words) > 1 or \
            words[:2] == ["delete", "node"] and len(words) > 2:
        if not unit_active(me(), "kube-apiserver"):
            sys.stderr.write("The connection to the server localhost:6443 "
                             "was refused - did you specify the right host "
                             "or port?\n")
            return 1
        return cmd_node_change(words, args)
    if words[:2] in (["get", "nodes"], ["get", "node"], ["get", "no"]):
        if not unit_active(me(), "kube-apiserver"):
            sys.stderr.write("The connection to the server localhost:6443 "
                             "was refused - did you specify the right host "
                             "or port?\n")
            return 1
        nodes = [node_json(s) for s in cluster_servers()
                 if not health(s["name"]).get("node_deleted")]
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


def kubectl_create(args):
    """`kubectl create -f -`: keep the object where a test can read it (the
    server's HOME, see ssh_forcecommand.py), refusing a second one of the
    same name as the API server does."""
    import yaml

    if "-" not in args or not any(a in ("-f", "--filename") for a in args):
        sys.stderr.write("testcloud stub: only `kubectl create -f -` is known\n")
        return 1
    # kubectl reads the whole file before it calls the API server.
    text = sys.stdin.read()
    if not unit_active(me(), "kube-apiserver"):
        sys.stderr.write("The connection to the server localhost:6443 was refused - did you specify the "
                         "right host or port?\n")
        return 1
    try:
        obj = yaml.safe_load(text)
        kind, meta = obj["kind"], obj["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        sys.stderr.write("error: error parsing STDIN: %s\n" % exc)
        return 1
    folder = os.path.join(os.environ["HOME"], "kube-objects", namespace, kind)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + ".yaml")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        sys.stderr.write('Error from server (AlreadyExists): error when creating "STDIN": %ss "%s" '
                         'already exists\n' % (kind.lower(), name))
        return 1
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(obj, f)
    print("%s/%s created" % (kind.lower(), name))
    return 0


# --- pods, cluster DNS, routes: the post-boot checks past "nodes are Ready" ---
# Health of a server (set_server_health): "flannel": the state of its
# flannel pod ("" or absent: Running and Ready; else a container's waiting
# reason such as CrashLoopBackOff); on the master, "coredns": the state of
# the CoreDNS pods (kubeadm runs two; they land on the master, the first
# Ready node); "pod_network": false makes dig from that server time out, as
# a query whose path to CoreDNS crosses a broken pod network does.

def _option(args, *names):
    for i, a in enumerate(args):
        for name in names:
            if a == name and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(name + "=") and name.startswith("--"):
                return a.split("=", 1)[1]
            if not name.startswith("--") and a.startswith(name) and len(a) > len(name):
                return a[len(name):]
    return None


def _pod(name, namespace, node, labels, state, container):
    """A Pod as `kubectl get pods -o json` shows it: Running and Ready when
    `state` is empty, else Running with `container` waiting for `state`
    (Pending with it for ContainerCreating and image pulls)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = not state
    phase = "Pending" if state in ("ContainerCreating", "PodInitializing", "ErrImagePull",
                                   "ImagePullBackOff") else "Running"
    running = {"running": {"startedAt": now}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastTransitionTime": now}],
            "containerStatuses": [{
                "name": container, "ready": ready, "restartCount": 0 if ready else 4,
                "state": running if ready else {"waiting": {"reason": state}}}],
        },
    }


def cluster_pods(namespace, selector):
    """The pods of the cluster's flannel DaemonSet and CoreDNS Deployment
    that `namespace` and `selector` pick."""
    servers = [s for s in cluster_servers() if not health(s["name"]).get("node_deleted")]
    pods = []
    if namespace == "kube-flannel" and selector in (None, "app=flannel"):
        for i, s in enumerate(servers):
            pods.append(_pod("kube-flannel-ds-%05d" % (i + 1), namespace, s["name"],
                             {"app": "flannel", "tier": "node"},
                             health(s["name"]).get("flannel", ""), "kube-flannel"))
    if namespace == "kube-system" and selector in (None, "k8s-app=kube-dns"):
        master = next((s["name"] for s in servers if ROLE_RE.match(s["name"]) and
                       ROLE_RE.match(s["name"]).group(2) in ("master", "control-plane", "controller")),
                      None)
        if master:
            for suffix in ("6f6b679f8f-4kx2z", "6f6b679f8f-9sdlq"):
                pods.append(_pod("coredns-" + suffix, namespace, master, {"k8s-app": "kube-dns"},
                                 health(master).get("coredns", ""), "coredns"))
    return pods


def kubectl_get_pods(args):
    if not unit_active(me(), "kube-apiserver"):
        sys.stderr.write("The connection to the server localhost:6443 was refused - did you specify the "
                         "right host or port?\n")
        return 1
    pods = cluster_pods(_option(args, "--namespace", "-n") or "default",
                        _option(args, "--selector", "-l"))
    out = _option(args, "--output", "-o")
    if out == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods, "metadata": {}},
                         indent=2))
        return 0
    if not pods:
        sys.stderr.write("No resources found in %s namespace.\n"
                         % (_option(args, "--namespace", "-n") or "default"))
        return 0
    print("%-32s %-6s %-18s %-9s %-4s %s" % ("NAME", "READY", "STATUS", "RESTARTS", "AGE",
                                            "NODE" if out == "wide" else ""))
    for p in pods:
        c = p["status"]["containerStatuses"][0]
        status = c["state"].get("waiting", {}).get("reason") or p["status"]["phase"]
        print("%-32s %-6s %-18s %-9s %-4s %s" % (p["metadata"]["name"], "1/1" if c["ready"] else "0/1",
                                                status, c["restartCount"], "5m",
                                                p["spec"]["nodeName"] if out == "wide" else ""))
    return 0


def cmd_dig(args):
    """dig +short @SERVER NAME [TYPE], as BIND 9.18's dig prints it: the
    address of kubernetes.default.svc.<domain> (the first of the default
    SERVICE_CLUSTER_IP_RANGE); when the server's "pod_network" health is
    false, no answer: a ";;" line per try on stdout and exit status 9."""
    server = next((a[1:] for a in args if a.startswith("@")), None)
    words = [a for a in args if not a.startswith(("+", "@", "-"))]
    tries = int(next((a.split("=", 1)[1] for a in args if a.startswith("+tries=")), "3"))
    if server is None or not words:
        sys.stderr.write("dig stub: expected @SERVER NAME\n")
        return 1
    if health(me()).get("pod_network", True) is False:
        for _ in range(tries):
            print(";; communications error to %s#53: timed out" % server)
        print(";; no servers could be reached")
        return 9
    if words[0].rstrip(".").startswith("kubernetes.default.svc."):
        print("10.0.0.1")
    return 0


def cmd_ip(args):
    """`ip route show`: the routes of a host-gw node (one per other server's
    pod subnet, via its Cloud Network address); health "routes" replaces them."""
    text = health(me()).get("routes")
    if text is None:
        lines = ["default via 192.0.2.1 dev eth0 proto dhcp src 192.0.2.10 metric 1024"]
        for i, s in enumerate(cluster_servers()):
            if s["name"] != me():
                lines.append("10.244.%d.0/24 via 192.168.3.%d dev eth2" % (i, i + 10))
        text = "\n".join(lines)
    if text:
        print(text)
    return 0


# kubeadm init's phases, in kubeadm's order (`kubeadm init --help`).
INIT_PHASES = ("preflight", "certs", "kubeconfig", "etcd", "control-plane",
               "kubelet-start", "wait-control-plane", "upload-config",
               "upload-certs", "mark-control-plane", "bootstrap-token",
               "kubelet-finalize", "addon")
KUBECONFIGS = ("admin.conf", "super-admin.conf", "kubelet.conf",
               "controller-manager.conf", "scheduler.conf")
MANIFESTS = ("etcd.yaml", "kube-apiserver.yaml",
             "kube-controller-manager.yaml", "kube-scheduler.yaml")


def _update_health(name, change):
    path = os.path.join(os.environ["TESTCLOUD_HEALTH_DIR"], name + ".json")
    state = health(name)
    change(state)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def cmd_kubeadm(args):
    """kubeadm on a server whose filesystem is under $TESTCLOUD_SERVER_ROOT
    (the stub refuses to run without one). What it leaves behind follows
    kubeadm's phases; the cluster's own state (what the phases after
    kubeconfig put into the API) is <root>/var/lib/etcd/stub-cluster.json.

      init      preflight fails when a static pod manifest exists (as
                kubeadm's FileAvailable checks do); certs makes a new CA
                when none is in place; bootstrap-token records the tokens
                (id, expiration) as kubeadm would create them. Health {"kubeadm": {"init_fail_after":
                PHASE, "init_failures": N}} makes the next N inits exit 1
                after PHASE.
      reset -f  removes what kubeadm reset removes: manifests, pki (the CA
                too), the kubeconfigs, /var/lib/etcd, /var/lib/kubelet.
      join      writes kubelet.conf, as a finished join does.
      config images list --kubernetes-version V   kubeadm 1.34's images.
      init|join --config F   refused (exit 1) as kubeadm refuses F
                (kubeadm_config.py), before anything else.
    Every call is logged to <root>/var/log/kubeadm-stub.log."""
    root = os.environ.get("TESTCLOUD_SERVER_ROOT")
    if not root:
        sys.stderr.write("kubeadm stub: TESTCLOUD_SERVER_ROOT is not set\n")
        return 2
    etc, etcd = os.path.join(root, "etc/kubernetes"), os.path.join(root, "var/lib/etcd")
    log = os.path.join(root, "var/log/kubeadm-stub.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(" ".join(["kubeadm"] + args) + "\n")
    words = [a for a in args if not a.startswith("-")]
    if words[:3] == ["config", "images", "list"]:
        version = next((a.split("=", 1)[1] for a in args if a.startswith("--kubernetes-version=")), None)
        if version is None and "--kubernetes-version" in args:
            version = args[args.index("--kubernetes-version") + 1]
        version = version or "v1.34.1"
        for image in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
            print("registry.k8s.io/%s:%s" % (image, version))
        print("registry.k8s.io/coredns/coredns:v1.12.1")
        print("registry.k8s.io/pause:3.10.1")
        print("registry.k8s.io/etcd:3.6.4-0")
        return 0
    if words[:1] == ["reset"]:
        import shutil
        if "-f" not in args and "--force" not in args:
            sys.stderr.write("kubeadm stub: reset asks for confirmation; pass -f\n")
            return 1
        for sub in ("manifests", "pki"):
            shutil.rmtree(os.path.join(etc, sub), ignore_errors=True)
        for name in KUBECONFIGS:
            if os.path.exists(os.path.join(etc, name)):
                os.unlink(os.path.join(etc, name))
        shutil.rmtree(etcd, ignore_errors=True)
        shutil.rmtree(os.path.join(root, "var/lib/kubelet"), ignore_errors=True)
        return 0
    if words[:1] in (["init"], ["join"]) and kubeadm_config.config_path(args):
        # kubeadm loads, defaults and validates --config before any phase.
        error = kubeadm_config.check_file(kubeadm_config.config_path(args))
        if error:
            sys.stderr.write(error + "\n")
            return 1
    if words[:1] == ["join"]:
        # What a finished join leaves: the kubelet's kubeconfig (TLS bootstrap).
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "kubelet.conf"), "w") as f:
            f.write("# kubeconfig (kubeadm stub)\n")
        return 0
    if words[:1] != ["init"]:
        return 0
    settings = health(me()).get("kubeadm", {})
    fail_after = settings.get("init_fail_after") if settings.get("init_failures", 0) > 0 else None
    cluster = {"phases": []}
    for phase in INIT_PHASES:
        if phase == "preflight":
            taken = [m for m in MANIFESTS if os.path.exists(os.path.join(etc, "manifests", m))]
            if taken:
                for m in taken:
                    sys.stderr.write("\t[ERROR FileAvailable--etc-kubernetes-manifests-%s]: "
                                     "/etc/kubernetes/manifests/%s already exists\n"
                                     % (m.replace(".", "-"), m))
                return 1
        elif phase == "certs":
            os.makedirs(os.path.join(etc, "pki"), exist_ok=True)
            for name in ("ca.crt", "ca.key"):
                path = os.path.join(etc, "pki", name)
                if not os.path.exists(path):
                    with open(path, "w") as f:
                        f.write("CA MADE BY KUBEADM\n")
        elif phase == "kubeconfig":
            for name in KUBECONFIGS:
                with open(os.path.join(etc, name), "w") as f:
                    f.write("# kubeconfig (kubeadm stub)\n")
        elif phase == "bootstrap-token" and kubeadm_config.config_path(args):
            import datetime
            with open(kubeadm_config.config_path(args)) as f:
                cluster["bootstrap_tokens"] = kubeadm_config.token_secrets(
                    f.read(), datetime.datetime.now(datetime.timezone.utc))
        elif phase in ("etcd", "control-plane"):
            os.makedirs(os.path.join(etc, "manifests"), exist_ok=True)
            for m in MANIFESTS if phase == "control-plane" else MANIFESTS[:1]:
                with open(os.path.join(etc, "manifests", m), "w") as f:
                    f.write("# static pod (kubeadm stub)\n")
        cluster["phases"].append(phase)
        os.makedirs(etcd, exist_ok=True)
        with open(os.path.join(etcd, "stub-cluster.json"), "w") as f:
            json.dump(cluster, f)
        if phase == fail_after:
            _update_health(me(), lambda s: s["kubeadm"].update(
                init_failures=s["kubeadm"]["init_failures"] - 1))
            sys.stderr.write("error execution phase %s: injected failure "
                             "(kubeadm stub)\n" % phase)
            return 1
    return 0


COMMANDS = {"hostname": cmd_hostname, "systemctl": cmd_systemctl,
            "journalctl": cmd_journalctl, "curl": cmd_curl,
            "kubectl": cmd_kubectl, "kubeadm": cmd_kubeadm,
            "dig": cmd_dig, "ip": cmd_ip}


def main():
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
