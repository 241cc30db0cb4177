"""
sshd AuthorizedKeysCommand:  ssh_authkeys.py MIMIC_URL USER %C

Prints the public keys registered as Nova keypairs (in Mimic) by the tenant
owning the server whose address was reached (%C = client addr, client port,
local addr, local port; local 127.b.c.d <-> public a.b.c.d).  Only root may
log in.  Nothing is printed for an unknown address.
"""
import json
import sys
import urllib.request


def main():
    mimic_url, user = sys.argv[1], sys.argv[2]
    conn = " ".join(sys.argv[3:]).split()
    if user != "root" or len(conn) < 4:
        return 0
    local = conn[2].split(".")
    with urllib.request.urlopen(mimic_url + "/testcloud/servers",
                                timeout=5) as r:
        servers = json.load(r)
    tenants = {s["tenant_id"] for s in servers
               if s["public_ipv4"] and s["status"] == "ACTIVE"
               and s["public_ipv4"].split(".")[1:] == local[1:]}
    if not tenants:
        return 0
    with urllib.request.urlopen(mimic_url + "/testcloud/keypairs",
                                timeout=5) as r:
        for kp in json.load(r):
            if kp["tenant_id"] in tenants:
                print(kp["public_key"].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
