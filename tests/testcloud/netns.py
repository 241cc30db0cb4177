"""
Loopback-only network namespace for tests: nothing the test cloud hands out
(public-looking server addresses) can ever be reached, because the namespace
has no interface but ``lo`` (connects to them fail at once with ENETUNREACH).

Call enter_loopback_namespace() before any thread starts: network namespaces
are per thread, and only the calling thread (and processes it starts later)
moves into the new namespace.
"""
import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def in_loopback_namespace():
    """True if the only network interface in this namespace is ``lo``."""
    return [name for _idx, name in socket.if_nameindex()] == ["lo"]


def _lo_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS,
                        struct.pack("16sH22x", b"lo", flags | IFF_UP))


def enter_loopback_namespace(new=False):
    """unshare(CLONE_NEWNET) and bring ``lo`` up; idempotent; needs root.
    new=True makes a new namespace even when this one is loopback-only
    already: a pytest-xdist worker starts inside its controller's namespace
    and must have one of its own (its beds' fixed port 22 and local routes,
    and no worker seeing another's servers)."""
    if new or not in_loopback_namespace():
        if os.geteuid() != 0:
            raise PermissionError(
                "the test cloud must run in a loopback-only network namespace "
                "and creating one needs root (run as root, or wrap the command "
                "in `unshare -n sh -c 'ip link set lo up; ...'`)")
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                           use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "unshare(CLONE_NEWNET) failed: %s (is this a "
                          "container without CAP_SYS_ADMIN?)"
                          % os.strerror(err))
    _lo_up()
    if not in_loopback_namespace():
        raise RuntimeError("network namespace still has non-loopback "
                           "interfaces: %s" % socket.if_nameindex())


def assert_loopback_namespace():
    if not in_loopback_namespace():
        raise AssertionError(
            "refusing to start the test cloud outside a loopback-only network "
            "namespace (interfaces: %s); call "
            "tests.testcloud.netns.enter_loopback_namespace() first"
            % [n for _i, n in socket.if_nameindex()])


def namespace_id(tid=None):
    """The network namespace of this thread (or of thread/process `tid`),
    as the kernel names it: "net:[4026532...]"."""
    tid = tid or threading.get_native_id()
    return os.readlink("/proc/%d/ns/net" % tid)


__all__ = ["enter_loopback_namespace", "in_loopback_namespace",
           "assert_loopback_namespace", "namespace_id"]
