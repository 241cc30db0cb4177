"""The test cloud: a stand-in for Rackspace Cloud on loopback (see README.md)."""
from tests.testcloud.netns import (assert_loopback_namespace,
                                   enter_loopback_namespace,
                                   in_loopback_namespace)
from tests.testcloud.cloud import TestCloud

__all__ = ["TestCloud", "enter_loopback_namespace", "in_loopback_namespace",
           "assert_loopback_namespace"]
