"""
The OpenStack bed's Keystone content, made in the template (runs in
.venv-openstack after keystone-manage bootstrap, no server):

    python -m tests.osbed.keystone_content KEYSTONE_CONF SPEC_JSON

Keystone's own managers, called as its API handlers call them: the service
user and project, the catalog (URLs are placeholders a start rewrites), the
Flex-like domain, project, user with member + reader, and an application
credential of that user.  Passwords and the secret are placeholders too: a
start sets new hashes (tests/osbed/template.py).
"""
import json
import sys
import uuid

import keystone.conf
from keystone.common import provider_api, sql
from keystone.server import backends


def main(conf_file, spec):
    conf = keystone.conf.CONF
    keystone.conf.configure()
    sql.initialize()
    conf(["--config-file", conf_file], project="keystone")
    backends.load_backends()
    p = provider_api.ProviderAPIs
    roles = {r["name"]: r["id"] for r in p.role_api.list_roles()}

    def project(name, domain_id):
        pid = uuid.uuid4().hex
        return p.resource_api.create_project(pid, {
            "id": pid, "name": name, "domain_id": domain_id,
            "enabled": True, "description": ""})

    def user(name, domain_id, **extra):
        return p.identity_api.create_user(dict(
            name=name, domain_id=domain_id, enabled=True,
            password=uuid.uuid4().hex, **extra))

    def grant(role, user_ref, project_ref):
        p.assignment_api.create_grant(roles[role], user_id=user_ref["id"],
                                      project_id=project_ref["id"])

    default = conf.identity.default_domain_id
    sproject = project(spec["service_project"], default)
    suser = user(spec["service_user"], default)
    for role in ("admin", "service"):
        grant(role, suser, sproject)
    for kind, name, url in spec["catalog"]:
        sid = uuid.uuid4().hex
        p.catalog_api.create_service(sid, {"id": sid, "type": kind,
                                           "name": name, "enabled": True})
        for iface in ("public", "internal"):
            eid = uuid.uuid4().hex
            p.catalog_api.create_endpoint(eid, {
                "id": eid, "service_id": sid, "interface": iface,
                "region_id": spec["region"], "url": url, "enabled": True})
    did = uuid.uuid4().hex
    p.resource_api.create_domain(did, {"id": did, "name": spec["domain"],
                                       "enabled": True})
    uproject = project(spec["project"], did)
    uuser = user(spec["user"], did, default_project_id=uproject["id"])
    for role in ("member", "reader"):
        grant(role, uuser, uproject)
    p.application_credential_api.create_application_credential({
        "id": uuid.uuid4().hex, "name": spec["app_cred"],
        "user_id": uuser["id"], "project_id": uproject["id"],
        "secret": uuid.uuid4().hex, "unrestricted": False,
        "roles": [{"id": roles[r], "name": r} for r in ("member", "reader")]})


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
