"""The OpenStack test bed: real Keystone, Glance, Placement, Neutron, Nova
(fake virt driver) and Swift on loopback (see README.md)."""
from tests.osbed.bed import OSBed, available

__all__ = ["OSBed", "available"]
