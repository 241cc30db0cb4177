"""
Real OpenStack Swift on loopback: proxy + account + container + object
servers, 1 replica, storage under <workdir>/swift.  Config files, rings and
logs all live in that directory; nothing is read from /etc/swift.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.testcloud.util import free_port, REPO_ROOT

SERVERS = ("account", "container", "object")


def _write(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())


def build_rings(etc, ports):
    """Run in a subprocess: importing swift monkey-patches via eventlet,
    which must never happen in the test process."""
    subprocess.run([sys.executable, "-c",
                    "import sys, json; from tests.testcloud.swift import "
                    "_build_rings_here as b; b(sys.argv[1], "
                    "json.loads(sys.argv[2]))", etc, json.dumps(ports)],
                   check=True, cwd=REPO_ROOT)


def _build_rings_here(etc, ports):
    from swift.common.ring import RingBuilder
    for kind in SERVERS:
        rb = RingBuilder(6, 1, 1)          # part_power 6, 1 replica
        rb.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                    "port": ports[kind], "device": "sdb1", "weight": 100})
        rb.rebalance()
        rb.get_ring().save(os.path.join(etc, "%s.ring.gz" % kind))


def configure(root, mimic_url, proxy_port=None, auth=None):
    """auth: None for Mimic's tokens (swift_auth.py), or {"pipeline_auth":
    filters that replace mimicauth in the pipeline, "filters": their
    sections} (the OpenStack bed's keystonemiddleware + keystoneauth)."""
    etc = os.path.join(root, "etc")
    devices = os.path.join(root, "devices")
    logs = os.path.join(root, "log")
    for d in (etc, os.path.join(devices, "sdb1"), logs,
              os.path.join(root, "run")):
        os.makedirs(d, exist_ok=True)
    ports = {k: free_port() for k in SERVERS}
    ports["proxy"] = proxy_port or free_port()
    _write(os.path.join(etc, "swift.conf"), """
        [swift-hash]
        swift_hash_path_suffix = testcloud
        swift_hash_path_prefix = testcloud

        [storage-policy:0]
        name = gold
        default = yes
        """)
    build_rings(etc, ports)
    auth_names, auth_filters = "mimicauth", """
        [filter:mimicauth]
        paste.filter_factory = tests.testcloud.swift_auth:filter_factory
        mimic_url = {mimic_url}
        request_log = {logs}/requests.log
        """.format(mimic_url=mimic_url, logs=logs)
    if auth is not None:
        auth_names = auth["pipeline_auth"]
        auth_filters = "\n" + textwrap.indent(auth["filters"], " " * 8)
    common = """
        [DEFAULT]
        bind_ip = 127.0.0.1
        bind_port = {port}
        workers = 0
        user = root
        swift_dir = {etc}
        devices = {devices}
        mount_check = false
        disable_fallocate = true
        log_name = {name}
        log_facility = LOG_LOCAL0
        log_udp_host =
        log_level = INFO
        """
    for kind in SERVERS:
        _write(os.path.join(etc, "%s-server.conf" % kind),
               common.format(port=ports[kind], etc=etc, devices=devices,
                             name=kind) + """
        [pipeline:main]
        pipeline = {kind}-server

        [app:{kind}-server]
        use = egg:swift#{kind}

        [{kind}-replicator]
        [{kind}-updater]
        [{kind}-auditor]
        """.format(kind=kind))
    _write(os.path.join(etc, "proxy-server.conf"),
           common.format(port=ports["proxy"], etc=etc, devices=devices,
                         name="proxy") + """
        [pipeline:main]
        pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl {auth_names} copy slo dlo proxy-logging proxy-server

        [app:proxy-server]
        use = egg:swift#proxy
        account_autocreate = true
        allow_account_management = true
        {auth_filters}

        [filter:tempurl]
        use = egg:swift#tempurl
        allowed_digests = sha1 sha256 sha512

        [filter:catch_errors]
        use = egg:swift#catch_errors
        [filter:gatekeeper]
        use = egg:swift#gatekeeper
        [filter:healthcheck]
        use = egg:swift#healthcheck
        [filter:proxy-logging]
        use = egg:swift#proxy_logging
        [filter:cache]
        use = egg:swift#memcache
        memcache_servers = 127.0.0.1:1
        [filter:listing_formats]
        use = egg:swift#listing_formats
        [filter:bulk]
        use = egg:swift#bulk
        [filter:copy]
        use = egg:swift#copy
        [filter:slo]
        use = egg:swift#slo
        [filter:dlo]
        use = egg:swift#dlo
        """.replace("{auth_filters}", auth_filters.strip("\n").lstrip()
                    ).replace("{auth_names}", auth_names))
    return etc, ports


def start(root, mimic_url, proxy_port=None, auth=None, python=None):
    """Start the four servers (with `python`, default this interpreter);
    returns (processes, ports, proxy_url)."""
    etc, ports = configure(root, mimic_url, proxy_port, auth)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    procs = []
    for kind in SERVERS + ("proxy",):
        log = open(os.path.join(root, "log", "%s.log" % kind), "ab")
        code = "import sys; from swift.%s.server import main; " \
            "sys.exit(main())" % {"object": "obj"}.get(kind, kind)
        procs.append(subprocess.Popen(
            [python or sys.executable, "-c", code,
             os.path.join(etc, "%s-server.conf" % kind)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=root, start_new_session=True))
        log.close()
    return procs, ports, "http://127.0.0.1:%d" % ports["proxy"]

