"""
Smoke tests of the OpenStack bed (tests/osbed) with real clients
(keystoneauth1, python-novaclient, python-swiftclient): what the tool will
do against Rackspace Flex must work here first.
"""
import hashlib
import os
import secrets
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading, session as ks_session
from novaclient import client as nova_client
from swiftclient import client as swift_client
from swiftclient.utils import generate_temp_url


def cloud_session(bed, name="osbed"):
    """A keystoneauth1 session built from the bed's clouds.yaml entry."""
    with open(bed.clouds_yaml) as f:
        cloud = yaml.safe_load(f)["clouds"][name]
    loader = loading.get_plugin_loader(cloud.get("auth_type", "password"))
    return ks_session.Session(auth=loader.load_from_options(**cloud["auth"]))


def ep(kind, region="DFW3"):
    return {"service_type": kind, "interface": "public", "region_name": region}


def wait(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = predicate()
        if out:
            return out
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def sess(os_bed):
    return cloud_session(os_bed)


def test_password_and_application_credential_get_a_flex_like_catalog(os_bed, sess):
    access = sess.auth.get_access(sess)
    assert access.project_name == "123456_Flex"
    assert access.project_domain_name == "rackspace_cloud_domain"
    assert {"member", "reader"} <= set(access.role_names)
    for kind in ("identity", "compute", "network", "image", "placement",
                 "object-store"):
        url = sess.get_endpoint(**ep(kind))
        assert url.startswith("http://127.0.0.1:"), kind
    assert sess.get_endpoint(**ep("object-store")).endswith(
        "/v1/AUTH_" + access.project_id)
    app = cloud_session(os_bed, "osbed-appcred")
    assert app.auth.get_access(app).project_id == access.project_id
    with pytest.raises(ks_exc.Unauthorized):
        bad = ks_session.Session(auth=loading.get_plugin_loader(
            "password").load_from_options(
                auth_url=os_bed.auth_url, username=os_bed.username,
                password="wrong", user_domain_name=os_bed.domain,
                project_name=os_bed.project_name,
                project_domain_name=os_bed.domain))
        bad.get_token()


def test_flavors_image_and_external_network_are_there(os_bed, sess):
    nova = nova_client.Client("2.79", session=sess, region_name="DFW3")
    sizes = {f.name: (f.vcpus, f.ram) for f in nova.flavors.list()}
    assert sizes["gp.0.2.4"] == (2, 4096) and sizes["gp.0.4.8"] == (4, 8192)
    images = sess.get("/v2/images?name=" + os_bed.image_name,
                      endpoint_filter=ep("image")).json()["images"]
    assert [i["status"] for i in images] == ["active"]
    nets = sess.get("/v2.0/networks?router:external=true",
                    endpoint_filter=ep("network")).json()["networks"]
    assert [n["name"] for n in nets] == ["PUBLICNET"]


def test_bed_runs_on_its_own_copy_of_the_template(os_bed):
    """The databases are the template's (tests/osbed/template.py), copied
    and made this run's: WAL, cells in this workdir on this RabbitMQ, a
    per-run admin password, fresh private fernet keys."""
    from tests.osbed import template
    _key, directory = template.current(os_bed.venv)
    assert template.ready(directory)
    for db in template.DATABASES:
        for path in (os.path.join(os_bed.workdir, "db", db + ".db"),
                     os.path.join(directory, "db", db + ".db")):
            assert os.stat(path).st_mode & 0o777 == 0o600, path
            with sqlite3.connect(path) as c:
                assert c.execute("pragma journal_mode").fetchone() == (
                    "wal",), path
            c.close()
    with sqlite3.connect(os.path.join(os_bed.workdir, "db",
                                      "nova_api.db")) as c:
        cells = dict((r[0], r[1:]) for r in c.execute(
            "select name, database_connection, transport_url "
            "from cell_mappings"))
    c.close()
    assert cells["cell1"] == (os_bed.lay.sqlite("nova"),
                              os_bed.lay.transport_url)
    assert cells["cell0"][0] == os_bed.lay.sqlite("nova_cell0")
    admin_hash = ("select password_hash from password p join local_user u"
                  " on u.id = p.local_user_id where u.name = 'admin'")
    hashes = []
    for root in (os_bed.workdir, directory):
        with sqlite3.connect(os.path.join(root, "db", "keystone.db")) as c:
            hashes.append(c.execute(admin_hash).fetchone()[0])
        c.close()
    assert hashes[0] != hashes[1]
    keys = os.path.join(os_bed.workdir, "keystone", "fernet-keys")
    assert os.stat(keys).st_mode & 0o777 == 0o700
    assert {oct(os.stat(os.path.join(keys, k)).st_mode & 0o777)
            for k in os.listdir(keys)} == {"0o600"}
    assert not os.path.exists(os.path.join(directory, "keystone"))


def test_network_router_port_floating_ip_and_server_then_delete_all(os_bed, sess):
    net_ep, tag = ep("network"), "osbed-" + secrets.token_hex(3)
    before = os_bed.request_counts()

    def post(path, body):
        return sess.post(path, json=body, endpoint_filter=net_ep).json()

    net = post("/v2.0/networks", {"network": {"name": tag}})["network"]
    assert net["mtu"] == 1442                       # 1500 less GENEVE's 58 (Flex publishes none)
    subnet = post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24",
        "dns_nameservers": ["192.0.2.53"]}})["subnet"]
    public = sess.get("/v2.0/networks?name=PUBLICNET",
                      endpoint_filter=net_ep).json()["networks"][0]
    router = post("/v2.0/routers", {"router": {
        "name": tag, "external_gateway_info": {
            "network_id": public["id"]}}})["router"]
    sess.put("/v2.0/routers/%s/add_router_interface" % router["id"],
             json={"subnet_id": subnet["id"]}, endpoint_filter=net_ep)
    port = post("/v2.0/ports", {"port": {
        "network_id": net["id"], "name": tag + "-master"}})["port"]
    sess.put("/v2.0/ports/%s/tags/%s" % (port["id"], tag),
             endpoint_filter=net_ep)
    tagged = sess.get("/v2.0/ports?tags=" + tag,
                      endpoint_filter=net_ep).json()["ports"]
    assert [p["id"] for p in tagged] == [port["id"]]
    fip = post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": port["id"]}}
    )["floatingip"]

    nova = nova_client.Client("2.79", session=sess, region_name="DFW3")
    image = sess.get("/v2/images?name=" + os_bed.image_name,
                     endpoint_filter=ep("image")).json()["images"][0]
    server = nova.servers.create(
        tag + "-master", image=image["id"],
        flavor=nova.flavors.find(name="gp.0.2.4").id,
        nics=[{"port-id": port["id"]}], config_drive=True,
        userdata="#cloud-config\nhostname: x\n", tags=[tag])
    server = wait(lambda: (lambda s: s if s.status in ("ACTIVE", "ERROR")
                           else None)(nova.servers.get(server.id)),
                  "server ACTIVE")
    assert server.status == "ACTIVE", getattr(server, "fault", None)
    assert server.config_drive in (True, "True")
    # The floating IP appears once Neutron has told Nova about the port.
    addrs = wait(lambda: (lambda a: a if any(
        x["OS-EXT-IPS:type"] == "floating" for x in a.get(tag, [])) else None)(
            nova.servers.get(server.id).addresses), "floating IP in addresses")
    assert {(x["addr"], x["OS-EXT-IPS:type"]) for x in addrs[tag]} == {
        (port["fixed_ips"][0]["ip_address"], "fixed"),
        (fip["floating_ip_address"], "floating")}
    port_now = sess.get("/v2.0/ports/" + port["id"],
                        endpoint_filter=net_ep).json()["port"]
    assert port_now["device_id"] == server.id and port_now["status"] == "ACTIVE"

    server.delete()
    wait(lambda: not nova.servers.list(search_opts={"name": "^" + tag}),
         "server deleted")
    sess.delete("/v2.0/floatingips/" + fip["id"], endpoint_filter=net_ep)
    sess.delete("/v2.0/ports/" + port["id"], endpoint_filter=net_ep)
    sess.put("/v2.0/routers/%s/remove_router_interface" % router["id"],
             json={"subnet_id": subnet["id"]}, endpoint_filter=net_ep)
    sess.delete("/v2.0/routers/" + router["id"], endpoint_filter=net_ep)
    sess.delete("/v2.0/networks/" + net["id"], endpoint_filter=net_ep)
    for kind in ("networks", "subnets", "ports", "routers", "floatingips"):
        left = sess.get("/v2.0/%s?project_id=%s" % (kind, os_bed.project_id),
                        endpoint_filter=net_ep).json()[kind]
        assert left == [], kind
    after = os_bed.request_counts()
    assert after["network"] - before["network"] >= 15
    assert after["compute"] - before["compute"] >= 4


def test_members_cannot_put_a_port_on_publicnet(sess):
    public = sess.get("/v2.0/networks?name=PUBLICNET",
                      endpoint_filter=ep("network")).json()["networks"][0]
    with pytest.raises(ks_exc.HttpError) as err:
        sess.post("/v2.0/ports", json={"port": {"network_id": public["id"]}},
                  endpoint_filter=ep("network"))
    assert err.value.http_status in (403, 404)


def test_swift_behind_keystone_with_temp_url_and_slo(os_bed, sess):
    url = sess.get_endpoint(**ep("object-store"))
    token = sess.get_token()
    info = swift_client.get_capabilities(swift_client.http_connection(
        url.split("/v1/")[0] + "/info"))
    assert "tempurl" in info and "slo" in info
    swift_client.put_container(url, token, "osbed-release")
    body = b"kubernetes" * 1000
    swift_client.put_object(url, token, "osbed-release", "k.tar.gz", body)
    with pytest.raises(swift_client.ClientException) as err:
        swift_client.get_object(url, "not-a-token", "osbed-release", "k.tar.gz")
    assert err.value.http_status == 401
    key = secrets.token_hex(16)
    swift_client.post_account(url, token, {"X-Account-Meta-Temp-URL-Key": key})
    path = "/v1/" + url.split("/v1/")[1] + "/osbed-release/k.tar.gz"
    signed = generate_temp_url(path, 300, key, "GET", digest="sha256")
    with urllib.request.urlopen(url.split("/v1/")[0] + signed) as r:
        assert r.read() == body
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.split("/v1/")[0] + signed.replace(
            "temp_url_sig=", "temp_url_sig=0"))
    assert err.value.code == 401
    swift_client.delete_object(url, token, "osbed-release", "k.tar.gz")
    swift_client.delete_container(url, token, "osbed-release")


def test_glance_takes_a_qcow2_upload_and_deletes_it(os_bed, sess):
    img_ep = ep("image")
    image = sess.post("/v2/images", json={
        "name": "osbed-upload", "disk_format": "qcow2",
        "container_format": "bare"}, endpoint_filter=img_ep).json()
    with open(os_bed.workdir + "/test-image.qcow2", "rb") as f:
        data = f.read()
    sess.put("/v2/images/%s/file" % image["id"], data=data,
             headers={"Content-Type": "application/octet-stream"},
             endpoint_filter=img_ep)
    got = sess.get("/v2/images/" + image["id"], endpoint_filter=img_ep).json()
    assert got["status"] == "active" and got["visibility"] == "shared"
    assert got["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # Glance 33 checks the bytes against disk_format.
    bad = sess.post("/v2/images", json={
        "name": "osbed-bad", "disk_format": "qcow2",
        "container_format": "bare"}, endpoint_filter=img_ep).json()
    with pytest.raises(ks_exc.HttpError):
        sess.put("/v2/images/%s/file" % bad["id"], data=b"not qcow2" * 100,
                 headers={"Content-Type": "application/octet-stream"},
                 endpoint_filter=img_ep)
    for i in (image, bad):
        sess.delete("/v2/images/" + i["id"], endpoint_filter=img_ep)
    left = sess.get("/v2/images?owner=" + os_bed.project_id,
                    endpoint_filter=img_ep).json()["images"]
    # Other tests of the session may leave images of their own (inv image).
    assert {i["id"] for i in left} & {image["id"], bad["id"]} == set()


def make_cluster(sess, nova, bed, tag, key_name):
    """Network 10.0.0.0/24 + router on PUBLICNET; a master with a floating
    IP and a node (fixed 10.0.0.20) without: what the tool builds on Flex."""
    net_ep = ep("network")

    def post(path, body):
        return sess.post(path, json=body, endpoint_filter=net_ep).json()

    public = sess.get("/v2.0/networks?name=PUBLICNET",
                      endpoint_filter=net_ep).json()["networks"][0]
    net = post("/v2.0/networks", {"network": {"name": tag}})["network"]
    subnet = post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 4,
        "cidr": "10.0.0.0/24"}})["subnet"]
    router = post("/v2.0/routers", {"router": {
        "name": tag, "external_gateway_info": {
            "network_id": public["id"]}}})["router"]
    sess.put("/v2.0/routers/%s/add_router_interface" % router["id"],
             json={"subnet_id": subnet["id"]}, endpoint_filter=net_ep)
    ports = {role: post("/v2.0/ports", {"port": {
        "network_id": net["id"], "name": "%s-%s" % (tag, role),
        "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": ip}]}}
    )["port"] for role, ip in (("master", "10.0.0.10"), ("node-1", "10.0.0.20"))}
    fip = post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"],
        "port_id": ports["master"]["id"]}})["floatingip"]
    flavor = nova.flavors.find(name="gp.0.2.4").id
    servers = [nova.servers.create("%s-%s" % (tag, role), image=bed.image_id,
                                   flavor=flavor, key_name=key_name,
                                   nics=[{"port-id": port["id"]}])
               for role, port in ports.items()]
    for s in servers:
        wait(lambda: nova.servers.get(s.id).status == "ACTIVE",
             s.name + " ACTIVE")
    return {"net": net, "subnet": subnet, "router": router, "fip": fip,
            "servers": servers, "ports": list(ports.values())}


def remove_cluster(sess, c):
    net_ep = ep("network")
    for s in c["servers"]:
        s.delete()
    sess.delete("/v2.0/floatingips/" + c["fip"]["id"], endpoint_filter=net_ep)
    for s in c["servers"]:
        wait(lambda: not sess.get("/v2.0/ports?device_id=" + s.id,
                                  endpoint_filter=net_ep).json()["ports"],
             "ports of %s released" % s.name)
    for p in c["ports"]:      # pre-made ports outlive their server
        sess.delete("/v2.0/ports/" + p["id"], endpoint_filter=net_ep)
    sess.put("/v2.0/routers/%s/remove_router_interface" % c["router"]["id"],
             json={"subnet_id": c["subnet"]["id"]}, endpoint_filter=net_ep)
    sess.delete("/v2.0/routers/" + c["router"]["id"], endpoint_filter=net_ep)
    sess.delete("/v2.0/networks/" + c["net"]["id"], endpoint_filter=net_ep)


def test_ssh_reaches_the_master_by_floating_ip_and_nodes_only_through_it(
        os_bed, sess, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(key)], check=True)
    nova = nova_client.Client("2.79", session=sess, region_name="DFW3")
    kp_name = "osbed-" + secrets.token_hex(3)
    nova.keypairs.create(kp_name, public_key=key.with_suffix(".pub").read_text())
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host *\n    IdentityFile %s\n    StrictHostKeyChecking no\n"
        "    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n"
        "    ConnectTimeout 10\nInclude %s\n" % (key, os_bed.ssh_config))

    def ssh(*args):
        return subprocess.run(["ssh", "-F", str(config), *args, "hostname"],
                              capture_output=True, text=True, timeout=60)

    a = make_cluster(sess, nova, os_bed, "osa" + secrets.token_hex(2), kp_name)
    b = make_cluster(sess, nova, os_bed, "osb" + secrets.token_hex(2), kp_name)
    try:
        for c in (a, b):
            master, node = c["servers"]
            fip = c["fip"]["floating_ip_address"]
            out = ssh("root@" + fip)
            assert out.stdout.strip() == master.name, out.stderr
            # Both clusters' nodes are 10.0.0.20: the jump host decides.
            out = ssh("-J", "root@" + fip, "root@10.0.0.20")
            assert out.stdout.strip() == node.name, out.stderr
        # A fixed address is not reachable from outside the cloud.
        out = ssh("root@10.0.0.20")
        assert out.returncode == 255 and out.stdout == ""
        # Nor is a floating IP that no server holds.
        out = ssh("root@198.51.100.251")
        assert out.returncode == 255 and out.stdout == ""
    finally:
        for c in (a, b):
            remove_cluster(sess, c)
        nova.keypairs.delete(kp_name)
