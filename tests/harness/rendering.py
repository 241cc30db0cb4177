"""Rendering the servers' user data for tests: settings with sentinel
secrets, cluster facts, both roles on either cloud kind, and the golden
configuration. Shared by tests/test_userdata.py and
tests/test_cloudinit_parser.py (test modules never import one another)."""

import dataclasses

from tasks.kinds import legacy as kind_legacy
from tasks.model import settings, userdata


SENTINEL_API_KEY = "sentinel-api-key-0b5e4f"


SENTINEL_PASSWORD = "sentinel-password-77aa1c"


def load_settings(**flags):
    environ = {"OS_API_KEY": SENTINEL_API_KEY, "OS_PASSWORD": SENTINEL_PASSWORD, "OS_USERNAME": "tester"}
    return settings.load(environ=environ, flags={k: str(v) for k, v in flags.items()})


def make_facts(material, **changes):
    facts = userdata.ClusterFacts.from_pki(
        material,
        kube_version="v1.31.4",
        release_url="https://storage.example.invalid/v1/AUTH_t/kubernetes-releases-tester/kubernetes/"
                    "kubernetes-server-linux-amd64.tar.gz?temp_url_sig=5ecre7519&temp_url_expires=1700000000",
        release_sha256="ab" * 32,
        ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly kube-rackspace-test",
        # The legacy cloud's, said outright: render assumes no kind.
        net=kind_legacy.template_facts(load_settings(), "master"),
    )
    return dataclasses.replace(facts, **changes)


def node_facts(facts, index=1):
    return dataclasses.replace(facts, master_ip="192.0.2.10", node_index=index)


def render_both(s, facts):
    """Both roles on the legacy kind, with its facts for these settings."""
    return {
        "master": userdata.render("master", s, dataclasses.replace(
            facts, net=kind_legacy.template_facts(s, "master"))),
        "node": userdata.render("node", s, dataclasses.replace(
            node_facts(facts), net=kind_legacy.template_facts(s, "node"))),
    }


VARIANTS = {
    "defaults": {},
    "no-dns": {"ENABLE_CLUSTER_DNS": "false"},
    "custom-dns": {"DNS_SERVER_IP": "10.0.0.53", "DNS_DOMAIN": "dev.example"},
    "odd-networks": {"NOVA_NETWORK": "172.16.16.0/20", "KUBE_NETWORK": "10.244.0.0/14",
                     "SERVICE_CLUSTER_IP_RANGE": "10.96.0.0/12", "DNS_SERVER_IP": "10.96.0.10",
                     "INSTANCE_PREFIX": "dev-7", "NUM_NODES": 7},
}


# OpenStack (Rackspace Flex): the kind's facts (floating IP known before
# boot, the cluster network for cluster traffic, flannel's backend).
OPENSTACK_VARIANTS = {
    "openstack": {"CLOUD_KIND": "openstack"},
    "openstack-vxlan": {"CLOUD_KIND": "openstack", "POD_NETWORK_BACKEND": "vxlan"},
    "openstack-host-gw": {"CLOUD_KIND": "openstack", "POD_NETWORK_BACKEND": "host-gw"},
}


VARIANTS.update(OPENSTACK_VARIANTS)


VARIANTS["legacy-vxlan"] = {"POD_NETWORK_BACKEND": "vxlan"}


# flannel's backend per variant: the kind's default (vxlan on OpenStack,
# host-gw on legacy) unless POD_NETWORK_BACKEND says.
BACKENDS = {"openstack": "vxlan", "openstack-vxlan": "vxlan", "openstack-host-gw": "host-gw",
            "legacy-vxlan": "vxlan"}


MASTER_FLOATING_IP = "198.51.100.7"


def render_openstack(s, facts):
    from tasks.kinds import openstack as kind_openstack
    from tasks import kinds

    master = dataclasses.replace(facts, net=kind_openstack.template_facts(
        s, "master", kinds.Attach(nics=(), cluster_ip="192.168.0.5", public_ip=MASTER_FLOATING_IP)))
    node = dataclasses.replace(node_facts(facts), net=kind_openstack.template_facts(
        s, "node", kinds.Attach(nics=(), cluster_ip="192.168.0.6")))
    return {"master": userdata.render("master", s, master), "node": userdata.render("node", s, node)}


# Test-only placeholders: not a certificate or key, so no real private key
# sits in the repository. The renderer treats PKI material as opaque text.
GOLDEN_FACTS = userdata.ClusterFacts(
    kube_version="v1.31.4",
    release_url="https://storage.example.invalid/v1/AUTH_golden/kubernetes-releases-golden/golden/"
                "kubernetes-server-linux-amd64.tar.gz?temp_url_sig=GOLDEN-TEST-SIGNATURE&temp_url_expires=0",
    release_sha256="0123456789abcdef" * 4,
    ssh_public_key="ssh-ed25519 AAAAGOLDEN-TEST-PLACEHOLDER-NOT-A-KEY golden@kube-rackspace",
    ca_cert_pem="-----BEGIN CERTIFICATE-----\nGOLDEN-TEST-PLACEHOLDER-NOT-A-CERTIFICATE\n-----END CERTIFICATE-----\n",
    ca_key_pem="-----BEGIN PRIVATE KEY-----\nGOLDEN-TEST-PLACEHOLDER-NOT-A-KEY\n-----END PRIVATE KEY-----\n",
    bootstrap_token="golden.0123456789abcdef",
    discovery_hash="sha256:" + "0" * 64,
    bootstrap_token_expires="2030-01-02T03:04:05Z",
)


def golden_renders():
    s = settings.load(environ={}, flags={"INSTANCE_PREFIX": "golden", "NUM_NODES": "2"})
    return {
        "master.yaml": userdata.render("master", s, dataclasses.replace(
            GOLDEN_FACTS, net=kind_legacy.template_facts(s, "master"))),
        "node-1.yaml": userdata.render("node", s, dataclasses.replace(
            GOLDEN_FACTS, master_ip="192.0.2.10", node_index=1, net=kind_legacy.template_facts(s, "node"))),
    }
