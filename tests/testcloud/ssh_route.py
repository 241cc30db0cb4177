"""
ProxyCommand relay:  ssh_route.py HOST PORT SSHD_PORT SOURCE

Maps a server's public IPv4 a.b.c.d to loopback 127.b.c.d:SSHD_PORT (the
test cloud's sshd listens on all 127.x addresses), so each server has its
own address.  Like a real network, only ACTIVE servers answer: if the cloud
(SOURCE, see lookup.py) has no ACTIVE server with that public address, the
connection is refused; private addresses are not routed from outside.  Loopback
addresses (127.x) are passed through unchanged.
"""
import os
import select
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lookup  # noqa: E402


def target(host, source):
    octets = host.split(".")
    if len(octets) != 4 or not all(o.isdigit() for o in octets):
        return None
    if octets[0] == "127":
        return host
    servers = lookup.servers(source)
    if not any(s["public_ipv4"] == host and s["status"] == "ACTIVE"
               for s in servers):
        return None
    return "127." + ".".join(octets[1:])


def main():
    host, port, sshd_port, source = sys.argv[1:5]
    addr = target(host, source)
    if addr is None:
        sys.stderr.write("ssh: connect to host %s port %s: Connection "
                         "refused\n" % (host, port))
        return 255
    sock = socket.create_connection((addr, int(sshd_port)), timeout=5)
    sock.settimeout(None)
    fds = [0, sock]
    while True:
        readable, _, _ = select.select(fds, [], [])
        if 0 in readable:
            data = os.read(0, 65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                fds.remove(0)
            else:
                sock.sendall(data)
        if sock in readable:
            data = sock.recv(65536)
            if not data:
                return 0
            os.write(1, data)


if __name__ == "__main__":
    sys.exit(main())
