"""
sshd AuthorizedKeysCommand:  ssh_authkeys.py SOURCE USER

Prints the public keys registered as Nova keypairs in the cloud (SOURCE, see
lookup.py; all tenants):
those, and only those, may log in, and only as root.  (OpenSSH 9.2 gives
AuthorizedKeysCommand no local address, so keys are not scoped per server;
ssh_route.py already refuses addresses without an ACTIVE server.)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lookup  # noqa: E402


def main():
    source, user = sys.argv[1], sys.argv[2]
    if user != "root":
        return 0
    for kp in lookup.keypairs(source):
        print(kp["public_key"].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
