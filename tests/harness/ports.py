"""free_port for every server the tests start."""
import random
import socket

_taken = set()


def free_port():
    """A free port below Linux's ephemeral range (32768-60999), never handed
    out twice in this process: a bed binds its ports one by one while its
    services already open outgoing connections, and a port from bind(0)
    may be taken by one of those before its server binds it.  Every
    pytest-xdist worker has a network namespace of its own
    (tests/conftest.py), so workers never compete for ports."""
    while True:
        port = random.randrange(20000, 32000)
        if port in _taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
