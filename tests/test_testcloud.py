"""Tests of the test cloud itself (run inside a loopback-only namespace)."""
import errno
import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.usefixtures("test_cloud")


# -- helpers ---------------------------------------------------------------
@pytest.fixture
def sess(test_cloud):
    from keystoneauth1 import session
    from rackspaceauth import v2
    auth = v2.APIKey(auth_url=test_cloud.auth_url,
                     username=test_cloud.username,
                     api_key=test_cloud.api_key)
    return session.Session(auth=auth)


@pytest.fixture
def nova(sess):
    from novaclient import client
    return client.Client("2", session=sess, region_name="ORD",
                         endpoint_type="publicURL")


@pytest.fixture
def prefix():
    return "t" + secrets.token_hex(3)


@pytest.fixture
def keypair(tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(key)], check=True)
    return key


def net_request(sess, method, path, body=None):
    url = sess.auth.get_access(sess).service_catalog.url_for(
        service_type="network", region_name="ORD", interface="public")
    return sess.request(url + path, method, json=body, raise_exc=False)


def boot(nova, name, **kw):
    return nova.servers.create(name=name, image="img", flavor="general1-1",
                               **kw)


# -- identity / catalog ------------------------------------------------------
def test_apikey_auth_catalog(sess, test_cloud):
    access = sess.auth.get_access(sess)
    by_type = {s["type"]: s for s in access.service_catalog.catalog}
    assert by_type["compute"]["name"] == "cloudServersOpenStack"
    assert by_type["network"]["name"] == "cloudNetworks"
    assert by_type["object-store"]["name"] == "cloudFiles"
    for t in ("compute", "network", "object-store"):
        assert [e["region"] for e in by_type[t]["endpoints"]] == ["ORD"]
    net_url = by_type["network"]["endpoints"][0]["publicURL"]
    assert net_url.endswith("/cloudNetworks/ORD/v2.0")
    # The tool's way to every service is through its fault proxy.
    assert by_type["object-store"]["endpoints"][0]["publicURL"] == \
        "%s/v1/AUTH_%s" % (test_cloud.proxies["object-store"].url,
                           test_cloud.tenant_id)
    assert net_url.startswith(test_cloud.proxies["network"].url + "/")
    assert by_type["compute"]["endpoints"][0]["publicURL"].startswith(
        test_cloud.proxies["compute"].url + "/")


def test_wrong_api_key_rejected(test_cloud):
    from keystoneauth1 import exceptions, session
    from rackspaceauth import v2
    s = session.Session(auth=v2.APIKey(auth_url=test_cloud.auth_url,
                                       username=test_cloud.username,
                                       api_key="wrong"))
    with pytest.raises(exceptions.Unauthorized):
        s.get_token()


def test_compute_needs_token(sess):
    url = sess.get_endpoint(service_type="compute", region_name="ORD",
                            interface="public")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/servers/detail", timeout=5)
    assert e.value.code == 401


# -- keypairs --------------------------------------------------------------
def test_keypairs_and_fingerprint(nova, keypair, prefix):
    pub = keypair.with_suffix(".pub").read_text()
    kp = nova.keypairs.create(prefix + "-key", public_key=pub)
    try:
        expected = subprocess.run(
            ["ssh-keygen", "-l", "-E", "md5", "-f", str(keypair) + ".pub"],
            check=True, capture_output=True, text=True).stdout.split()[1]
        assert "MD5:" + kp.fingerprint == expected
        got = nova.keypairs.get(prefix + "-key")
        assert got.public_key.strip() == pub.strip()
        assert got.fingerprint == kp.fingerprint
        assert prefix + "-key" in [k.name for k in nova.keypairs.list()]
        from novaclient import exceptions
        with pytest.raises(exceptions.Conflict):
            nova.keypairs.create(prefix + "-key", public_key=pub)
    finally:
        nova.keypairs.delete(prefix + "-key")
    from novaclient import exceptions
    with pytest.raises(exceptions.NotFound):
        nova.keypairs.get(prefix + "-key")


# -- cloud networks ----------------------------------------------------------
def test_cloud_networks_with_server(sess, nova, prefix):
    r = net_request(sess, "POST", "/networks",
                    {"network": {"name": prefix + "-net"}})
    assert r.status_code == 201, r.text
    net = r.json()["network"]
    r = net_request(sess, "POST", "/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "192.168.3.0/24", "ip_version": 4,
        "name": prefix + "-subnet"}})
    assert r.status_code == 201, r.text
    subnet = r.json()["subnet"]
    listed = net_request(sess, "GET", "/networks?name=%s-net" % prefix).json()
    assert [n["id"] for n in listed["networks"]] == [net["id"]]
    public = "00000000-0000-0000-0000-000000000000"
    server = boot(nova, prefix + "-node-1",
                  nics=[{"net-id": public}, {"net-id": net["id"]}])
    ports = net_request(sess, "GET", "/ports?device_id=" + server.id).json()
    assert len(ports["ports"]) == 1
    port = ports["ports"][0]
    assert port["network_id"] == net["id"]
    ip = port["fixed_ips"][0]["ip_address"]
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert ip.startswith("192.168.3.")
    server = nova.servers.get(server.id)
    assert server.addresses[prefix + "-net"] == [{"addr": ip, "version": 4}]
    assert "public" in server.addresses and "private" not in server.addresses
    assert net_request(sess, "GET", "/ports?network_id=" + net["id"]) \
        .json()["ports"][0]["id"] == port["id"]

    r = net_request(sess, "DELETE", "/networks/" + net["id"])
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "NetworkInUse"
    r = net_request(sess, "DELETE", "/subnets/" + subnet["id"])
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "SubnetInUse"

    nova.servers.delete(server.id)
    assert net_request(sess, "GET", "/ports?device_id=" + server.id) \
        .json()["ports"] == []
    assert net_request(sess, "DELETE", "/networks/" + net["id"]) \
        .status_code == 204
    r = net_request(sess, "GET", "/networks/" + net["id"])
    assert r.status_code == 404
    assert r.json()["NeutronError"]["type"] == "NetworkNotFound"


def test_boot_on_unknown_network_is_400(nova, prefix):
    from novaclient import exceptions
    with pytest.raises(exceptions.BadRequest):
        boot(nova, prefix + "-x", nics=[{"net-id": "nope"}])


# -- swift -------------------------------------------------------------------
def test_swift_token_and_tempurl(sess, test_cloud, prefix):
    import swiftclient
    from swiftclient.utils import generate_temp_url
    token = sess.get_token()
    url = sess.get_endpoint(service_type="object-store", region_name="ORD",
                            interface="public")
    conn = swiftclient.Connection(preauthurl=url, preauthtoken=token,
                                  retries=0)
    container = prefix + "-c"
    conn.put_container(container)
    conn.put_object(container, "obj", b"hello world")
    assert conn.get_object(container, "obj")[1] == b"hello world"

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("%s/%s/obj" % (url, container), timeout=5)
    assert e.value.code == 401
    bad = swiftclient.Connection(preauthurl=url, preauthtoken="bogus",
                                 retries=0)
    with pytest.raises(swiftclient.ClientException) as ce:
        bad.get_object(container, "obj")
    assert ce.value.http_status == 401

    info = json.load(urllib.request.urlopen(test_cloud.swift_url + "/info"))
    assert set(info["tempurl"]["allowed_digests"]) >= {"sha256", "sha512"}
    key = secrets.token_hex(8)
    conn.post_account({"X-Account-Meta-Temp-URL-Key": key})
    path = "/v1/AUTH_%s/%s/obj" % (test_cloud.tenant_id, container)
    signed = generate_temp_url(path, 300, key, "GET", digest="sha256")
    body = urllib.request.urlopen(test_cloud.swift_url + signed,
                                  timeout=5).read()
    assert body == b"hello world"
    sig = signed.split("temp_url_sig=")[1].split("&")[0]
    tampered = signed.replace(sig, sig[:-4] + ("0000" if sig[-4:] != "0000"
                                               else "1111"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(test_cloud.swift_url + tampered, timeout=5)
    assert e.value.code == 401


# -- sshd ----------------------------------------------------------------------
def _public_ip(nova, server_id):
    s = nova.servers.get(server_id)
    return [a["addr"] for a in s.addresses["public"] if a["version"] == 4][0]


def _connect(test_cloud, host, key):
    import fabric
    return fabric.Connection(
        host=host, user="root", connect_timeout=10,
        connect_kwargs={"key_filename": str(key), "look_for_keys": False,
                        "allow_agent": False},
        config=fabric.Config(runtime_ssh_path=test_cloud.ssh_config))


def test_ssh_to_server(test_cloud, nova, keypair, tmp_path, prefix):
    import paramiko
    nova.keypairs.create(prefix + "-key",
                         public_key=keypair.with_suffix(".pub").read_text())
    server = boot(nova, prefix + "-master", key_name=prefix + "-key")
    worker = boot(nova, prefix + "-node-1", key_name=prefix + "-key")
    try:
        ip = _public_ip(nova, server.id)
        with _connect(test_cloud, ip, keypair) as c:
            r = c.run("hostname", hide=True, in_stream=False)
            assert r.stdout.strip() == prefix + "-master"
            r = c.run("systemctl is-active kubelet", hide=True, in_stream=False)
            assert r.stdout.strip() == "active"
            assert c.run("curl -sk https://127.0.0.1:6443/readyz",
                         hide=True, in_stream=False).stdout == "ok"
            nodes = json.loads(c.run("kubectl get nodes -o json",
                                     hide=True, in_stream=False).stdout)
            names = sorted(i["metadata"]["name"] for i in nodes["items"])
            assert names == [prefix + "-master", prefix + "-node-1"]
            assert all(cond["status"] == "True" for i in nodes["items"]
                       for cond in i["status"]["conditions"]
                       if cond["type"] == "Ready")
            assert c.run("test -d / && cat /etc/hostname >/dev/null",
                         warn=True, hide=True, in_stream=False).ok

        test_cloud.set_server_health(prefix + "-node-1", unit="kubelet",
                                     active=False,
                                     journal="line1\nkubelet: boom")
        with _connect(test_cloud, _public_ip(nova, worker.id), keypair) as c:
            assert c.run("hostname", hide=True, in_stream=False).stdout.strip() == \
                prefix + "-node-1"
            r = c.run("systemctl is-active kubelet", warn=True, hide=True, in_stream=False)
            assert (r.stdout.strip(), r.exited) == ("failed", 3)
            r = c.run("journalctl -u kubelet -n 1 --no-pager", hide=True, in_stream=False)
            assert r.stdout.strip() == "kubelet: boom"
            nodes = json.loads(c.run("kubectl get nodes -o json",
                                     hide=True, in_stream=False).stdout)
            ready = {i["metadata"]["name"]: i["status"]["conditions"][0]
                     ["status"] for i in nodes["items"]}
            assert ready == {prefix + "-master": "True",
                             prefix + "-node-1": "False"}

        other = tmp_path / "other"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(other)], check=True)
        with pytest.raises(paramiko.AuthenticationException):
            with _connect(test_cloud, ip, other) as c:
                c.run("hostname", hide=True, in_stream=False)
    finally:
        nova.servers.delete(server.id)
        nova.servers.delete(worker.id)
        nova.keypairs.delete(prefix + "-key")


# -- isolation ---------------------------------------------------------------
def test_public_addresses_unreachable(nova, prefix):
    server = boot(nova, prefix + "-iso")
    try:
        ip = _public_ip(nova, server.id)
        assert not ip.startswith("127.")
        s = socket.socket()
        s.settimeout(5)
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            s.connect((ip, 22))
        assert e.value.errno == errno.ENETUNREACH
        assert time.monotonic() - t0 < 0.5
        s.close()
    finally:
        nova.servers.delete(server.id)


# -- behaviors / counters ------------------------------------------------------
def test_inject_create_failure(test_cloud, nova, prefix):
    from novaclient import exceptions
    bid = test_cloud.inject_nova_behavior(
        "fail", {"code": 500, "message": "boom"}, server_name="^" + prefix)
    try:
        with pytest.raises(exceptions.ClientException) as e:
            boot(nova, prefix + "-fails")
        assert e.value.code == 500
    finally:
        test_cloud.remove_nova_behavior(bid)
    server = boot(nova, prefix + "-works")
    nova.servers.delete(server.id)


def test_inject_over_limit(test_cloud, nova, prefix):
    from novaclient import exceptions
    bid = test_cloud.inject_nova_behavior("over-limit", {"retry_after": 7},
                                          server_name="^" + prefix)
    try:
        with pytest.raises(exceptions.OverLimit) as e:
            boot(nova, prefix + "-limited")
        assert e.value.code == 413 and e.value.retry_after == 7
    finally:
        test_cloud.remove_nova_behavior(bid)


def test_request_counter(test_cloud, nova):
    before = test_cloud.compute_request_count()
    nova.servers.list()
    nova.keypairs.list()
    assert test_cloud.compute_request_count() == before + 2


def test_release_mirror(test_cloud):
    import hashlib
    base = "%s/%s/kubernetes/server/linux/amd64/" % (
        test_cloud.release_base_url, test_cloud.release_version)
    blob = urllib.request.urlopen(
        base + "kubernetes-server-linux-amd64.tar.gz").read()
    sha = urllib.request.urlopen(
        base + "kubernetes-server-linux-amd64.tar.gz.sha256").read().decode()
    assert hashlib.sha256(blob).hexdigest() == sha.strip()
    stable = urllib.request.urlopen(test_cloud.release_base_url +
                                    "/release/stable.txt").read().decode()
    assert stable.strip() == test_cloud.release_version


def test_request_log_and_injected_faults(test_cloud, nova):
    from novaclient import exceptions
    mark = test_cloud.request_log_mark()
    test_cloud.inject_fault(r"^GET /mimicking/.*/os-keypairs$", 502,
                            headers={"Retry-After": "3"})
    with pytest.raises(exceptions.ClientException) as e:
        nova.keypairs.list()
    assert e.value.code == 502
    nova.keypairs.list()      # the fault was used up
    log = [r for r in test_cloud.request_log(mark)
           if r["path"].endswith("/os-keypairs")]
    assert [(r["method"], r["status"]) for r in log] == [("GET", 502),
                                                         ("GET", 200)]
    assert log[0]["service"] == "compute" and log[0]["t"] <= log[1]["t"]
    test_cloud.inject_fault("^GET /nothing-matches-this", 500)
    test_cloud.clear_faults()
    nova.keypairs.list()


def test_password_credentials(test_cloud):
    def tokens(password):
        body = {"auth": {"passwordCredentials": {
            "username": test_cloud.username, "password": password}}}
        return test_cloud._request("POST", test_cloud.auth_url + "/tokens",
                                   body)["access"]
    access = tokens(test_cloud.password)
    assert access["token"]["tenant"]["id"] == test_cloud.tenant_id
    with pytest.raises(urllib.error.HTTPError) as e:
        tokens("wrong-" + test_cloud.password)
    assert e.value.code == 401


def test_internal_object_store_is_another_proxy_without_info(sess,
                                                             test_cloud):
    catalog = sess.auth.get_access(sess).service_catalog
    public = catalog.url_for(service_type="object-store", region_name="ORD",
                             interface="public")
    internal = catalog.url_for(service_type="object-store",
                               region_name="ORD", interface="internal")
    assert public == test_cloud.public_storage_url
    assert internal == test_cloud.internal_storage_url != public
    token = {"X-Auth-Token": test_cloud.token()}
    req = urllib.request.Request(internal, headers=token, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 204)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(test_cloud.swift_internal_url + "/info",
                               timeout=10)
    assert e.value.code == 403


def test_each_worker_has_a_loopback_namespace_of_its_own():
    """The thread running the tests is in a loopback-only namespace; on a
    pytest-xdist worker it is not the controller's (tests/conftest.py
    unshares again per worker), so workers' beds never share ports, routes
    or servers."""
    import os

    from tests.testcloud.netns import in_loopback_namespace, namespace_id
    assert in_loopback_namespace()
    here = namespace_id()
    if "PYTEST_XDIST_WORKER" in os.environ:
        assert here != namespace_id(os.getppid())
