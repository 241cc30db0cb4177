"""Scale down: NUM_NODES lower than the nodes that exist never removes
anything silently; `inv nodes --prune` drains the extra nodes through the
master and removes them, highest index first, and stops when a drain fails."""

import json

import pytest

from tasks.model import layout, servers, settings
from tasks.steps import nodes
from tasks.model.servers import Server
from tests.harness import resources, run_inv


def node(index, prefix="k8s"):
    return Server(id=f"id{index}", name=f"{prefix}-node-{index}", status="ACTIVE",
                  metadata={"kube-rackspace-cluster": prefix, "kube-rackspace-role": "node",
                            "kube-rackspace-index": str(index)})


def test_extra_nodes_go_highest_index_first():
    extra = [node(3), node(10), node(4)]
    assert [srv.name for srv in servers.prune_order(extra)] == ["k8s-node-10", "k8s-node-4", "k8s-node-3"]
    s = settings.load(environ={"INSTANCE_PREFIX": "k8s", "NUM_NODES": "2"})
    assert servers.surplus_message(s, extra) == (
        "NUM_NODES=2, but 3 more node(s) exist: k8s-node-10, k8s-node-4, k8s-node-3; left as they are "
        "(`inv nodes --prune` drains and removes them)")


@pytest.mark.parametrize("rc,stderr,outcome", [
    (0, "", "ok"),
    (1, 'Error from server (NotFound): nodes "k8s-node-3" not found\n', "gone"),
    (1, "error: unable to drain node \"k8s-node-3\" due to error: cannot evict pod", "failed"),
    (124, "timed out after 360s", "failed"),
])
def test_drain_outcome(rc, stderr, outcome):
    assert nodes.drain_outcome(rc, stderr) == outcome


def test_drain_commands_cordon_drain_with_a_timeout_then_delete_the_node():
    steps = layout.drain_commands("k8s-node-3", 120)
    assert [step for step, _ in steps] == ["cordon", "drain", "delete"]
    assert steps[1][1][-4:] == ("k8s-node-3", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s")
    assert steps[2][1][-4:] == ("delete", "node", "k8s-node-3", "--ignore-not-found")


def _names(cloud, prefix):
    return sorted(srv["name"] for srv in cloud.servers() if srv["name"].startswith(prefix + "-"))


def _health(cloud, name):
    try:
        with open(f"{cloud.health_dir}/{name}.json") as f:
            return json.load(f)
    except OSError:
        return {}


def test_prune_drains_and_removes_extra_nodes_and_refuses_when_a_drain_fails(test_cloud, cloud_env):
    env = dict(cloud_env, NUM_NODES="4", KUBE_IMAGE="CoreOS (Stable)", BOOT_TIMEOUT="60", DRAIN_TIMEOUT="5")
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    run_inv(["up", "--no-checks"], env)
    ports_before = {srv["name"]: srv["addresses"][f"{prefix}-pool-net"] for srv in test_cloud.servers()
                    if srv["name"].startswith(prefix + "-")}
    assert len(ports_before) == 5
    small = dict(env, NUM_NODES="1")

    # Lower NUM_NODES: plan and nodes name the extra nodes, nothing is removed.
    plan = run_inv(["plan"], small).stdout
    for i in (2, 3, 4):
        assert f"{prefix}-node-{i}" in plan and "`inv nodes --prune` drains and removes it" in plan
    quiet = run_inv(["nodes"], small)
    assert (f"NUM_NODES=1, but 3 more node(s) exist: {prefix}-node-4, {prefix}-node-3, {prefix}-node-2; "
            "left as they are") in quiet.stdout
    assert len(_names(test_cloud, prefix)) == 5

    # node-2's pods cannot be evicted: node-4 and node-3 go, then the prune stops.
    test_cloud.set_server_health(f"{prefix}-node-2", drain_error='cannot evict pod "default/db-0": '
                                 "it would violate the pod's disruption budget")
    try:
        refused = run_inv(["nodes", "--prune"], small, check=False)
    finally:
        test_cloud.set_server_health(f"{prefix}-node-2", drain_error="")
    assert refused.returncode == 1 and "Traceback" not in refused.stdout
    last = refused.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: draining {prefix}-node-2 failed, so its server stays (cordoned): ")
    assert "disruption budget" in last and "re-run `inv nodes --prune`" in last
    out = refused.stdout
    assert out.index(f"drained {prefix}-node-4") < out.index(f"drained {prefix}-node-3")
    assert _names(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    assert _health(test_cloud, f"{prefix}-node-4").get("node_deleted") is True
    assert _health(test_cloud, f"{prefix}-node-2").get("cordoned") is True
    assert not _health(test_cloud, f"{prefix}-node-2").get("node_deleted")

    # The re-run finishes the job, and the one after it has nothing to do.
    done = run_inv(["nodes", "--prune"], small)
    assert f"removed node {prefix}-node-2" in done.stdout
    assert _names(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1"]
    assert _health(test_cloud, f"{prefix}-node-2").get("node_deleted") is True
    again = run_inv(["nodes", "--prune"], small)
    assert "removed" not in again.stdout
    # The removed nodes' addresses on the cluster network are free again.
    ports = resources(test_cloud)["ports"]
    run_inv(["down", "--yes"], small)
    assert len(ports - resources(test_cloud)["ports"]) == 2     # only master's and node-1's were left
