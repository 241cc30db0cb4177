"""Which ports `inv down` may delete: pure, data-driven."""

import pytest

from tasks.kinds.legacy import foreign_ports

OURS = {"m", "n1"}
LIVE = {"m", "n1", "other"}

CASES = [
    ("ours and unattached ports go", [{"id": "p1", "device_id": "m"}, {"id": "p2", "device_id": ""}], []),
    ("a live server of someone else's keeps the network", [{"id": "p3", "device_id": "other"}], ["p3"]),
    ("a port left by a server already gone is a leftover", [{"id": "p4", "device_id": "gone"}], []),
]


@pytest.mark.parametrize("ports,expected", [(p, e) for _, p, e in CASES], ids=[c[0] for c in CASES])
def test_foreign_ports(ports, expected):
    assert [p["id"] for p in foreign_ports(ports, OURS, LIVE.__contains__)] == expected
