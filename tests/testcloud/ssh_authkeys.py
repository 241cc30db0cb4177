"""
sshd AuthorizedKeysCommand:  ssh_authkeys.py MIMIC_URL USER

Prints the public keys registered as Nova keypairs in Mimic (all tenants):
those, and only those, may log in, and only as root.  (OpenSSH 9.2 gives
AuthorizedKeysCommand no local address, so keys are not scoped per server;
ssh_route.py already refuses addresses without an ACTIVE server.)
"""
import json
import sys
import urllib.request


def main():
    mimic_url, user = sys.argv[1], sys.argv[2]
    if user != "root":
        return 0
    with urllib.request.urlopen(mimic_url + "/testcloud/keypairs",
                                timeout=5) as r:
        for kp in json.load(r):
            print(kp["public_key"].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
