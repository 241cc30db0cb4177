"""What both test beds share (tests/testcloud: the legacy Rackspace cloud,
tests/osbed: real OpenStack): free ports, the start/stop lifecycle of a bed's
processes, the rehearsal wrapper behind `python -m tests.<bed> -- CMD`,
resource snapshots, and running the real `inv` command line.  Test modules
import from here, never from one another."""
from tests.harness.inv import REPO_ROOT, run_inv
from tests.harness.lifecycle import Bed, stop_process_groups
from tests.harness.ports import free_port

__all__ = ["REPO_ROOT", "run_inv", "Bed", "stop_process_groups", "free_port", "resources"]


def resources(bed):
    """Everything in the bed's account or project that up/down could touch,
    as {kind: set of IDs or names} (Bed.resources)."""
    return bed.resources()
