"""
Configuration files of the OpenStack bed's services (pure functions of a
`Layout`: ports, paths, passwords).  Each option here is one the bed needs;
everything else keeps the service's default.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass
class Layout:
    root: str                       # workdir
    region: str
    service_password: str
    rabbit_port: int
    ports: dict = field(default_factory=dict)    # service -> backend port

    def url(self, service):
        return "http://127.0.0.1:%d" % self.ports[service]

    def path(self, *parts):
        import os
        return os.path.join(self.root, *parts)

    def sqlite(self, name):
        # Several processes share a file (nova's api, conductor, scheduler,
        # compute): wait for locks instead of failing after SQLite's 5 s.
        return "sqlite:///%s?timeout=60" % self.path("db", name + ".db")

    @property
    def identity(self):
        return self.url("identity") + "/v3"

    @property
    def transport_url(self):
        return "rabbit://guest:guest@127.0.0.1:%d/" % self.rabbit_port


SERVICE_USER = "osbed-services"
SERVICE_PROJECT = "service"


def _d(text):
    return textwrap.dedent(text).lstrip()


def service_auth(lay, section):
    """A password-auth section for the shared service user (authtoken,
    [nova] in Neutron, [neutron]/[placement] in Nova...)."""
    return _d("""
        [{section}]
        auth_type = password
        auth_url = {ks}
        www_authenticate_uri = {ks}
        username = {user}
        password = {pw}
        user_domain_name = Default
        project_name = {project}
        project_domain_name = Default
        region_name = {region}
        """).format(section=section, ks=lay.identity, user=SERVICE_USER,
                    pw=lay.service_password, project=SERVICE_PROJECT,
                    region=lay.region)


def keystone(lay):
    return _d("""
        [DEFAULT]
        use_stderr = true
        [database]
        connection = {db}
        [token]
        provider = fernet
        [fernet_tokens]
        key_repository = {root}/keystone/fernet-keys
        [fernet_receipts]
        key_repository = {root}/keystone/fernet-keys
        [credential]
        key_repository = {root}/keystone/credential-keys
        # Without a cache each token validation takes ~0.5 s; with it 5-10 ms.
        [cache]
        enabled = true
        backend = dogpile.cache.memory
        """).format(db=lay.sqlite("keystone"), root=lay.root)


def glance(lay):
    return _d("""
        [DEFAULT]
        use_stderr = true
        enabled_backends = file:file
        [glance_store]
        default_backend = file
        [file]
        filesystem_store_datadir = {root}/glance/images
        [os_glance_staging_store]
        filesystem_store_datadir = {root}/glance/staging
        [os_glance_tasks_store]
        filesystem_store_datadir = {root}/glance/tasks
        [database]
        connection = {db}
        [paste_deploy]
        flavor = keystone
        config_file = {paste}
        [oslo_concurrency]
        lock_path = {root}/lock
        [import_filtering_opts]
        # web-download (inv image --via-url) from the loopback release
        # mirror: Glance refuses loopback hosts unless listed, and ports
        # other than 80/443 by default.
        allowed_hosts = [127.0.0.1]
        allowed_ports = []
        """).format(root=lay.root, db=lay.sqlite("glance"),
                    paste=lay.path("etc", "glance", "glance-api-paste.ini")) \
        + service_auth(lay, "keystone_authtoken")


def placement(lay):
    return _d("""
        [DEFAULT]
        use_stderr = true
        [placement_database]
        connection = {db}
        [api]
        auth_strategy = keystone
        """).format(db=lay.sqlite("placement")) \
        + service_auth(lay, "keystone_authtoken")


def neutron(lay):
    return _d("""
        [DEFAULT]
        use_stderr = true
        core_plugin = ml2
        service_plugins = router
        auth_strategy = keystone
        api_paste_config = {paste}
        # No agents: RPC goes nowhere.
        transport_url = fake:/
        rpc_workers = 0
        rpc_state_report_workers = 0
        allow_overlapping_ips = true
        # Floating IPs show in Nova's server addresses only when Neutron
        # tells Nova about port changes.
        notify_nova_on_port_status_changes = true
        notify_nova_on_port_data_changes = true
        send_events_interval = 1
        global_physnet_mtu = 1500
        state_path = {root}/neutron
        [database]
        connection = {db}
        [oslo_concurrency]
        lock_path = {root}/lock
        [agent]
        [ml2]
        type_drivers = flat,geneve
        # Rackspace Flex is OVN over GENEVE: tenant networks get MTU 1442.
        tenant_network_types = geneve
        mechanism_drivers = osbed_bindall
        extension_drivers = port_security,dns
        overlay_ip_version = 4
        [ml2_type_flat]
        flat_networks = public
        [ml2_type_geneve]
        vni_ranges = 1:10000
        max_header_size = 38
        """).format(paste=lay.path("etc", "neutron", "api-paste.ini"),
                    root=lay.root, db=lay.sqlite("neutron")) \
        + service_auth(lay, "keystone_authtoken") \
        + service_auth(lay, "nova") + "endpoint_type = internal\n"


def nova(lay, compute_host):
    return _d("""
        [DEFAULT]
        use_stderr = true
        host = {host}
        my_ip = 127.0.0.1
        state_path = {root}/nova
        instances_path = {root}/nova/instances
        transport_url = {transport}
        compute_driver = fake.FakeDriver
        vif_plugging_is_fatal = false
        vif_plugging_timeout = 0
        graceful_shutdown_timeout = 5
        heal_instance_info_cache_interval = -1
        update_resources_interval = 10
        # Periodic tasks (the scheduler's discover_hosts among them) start
        # after a random 0-60 s by default: the bed waited for that.
        periodic_fuzzy_delay = 0
        instance_build_timeout = 0
        reserved_host_memory_mb = 0
        [api]
        auth_strategy = keystone
        [wsgi]
        api_paste_config = {paste}
        [api_database]
        connection = {api_db}
        [database]
        connection = {db}
        [scheduler]
        discover_hosts_in_cells_interval = 2
        workers = 1
        [conductor]
        workers = 1
        [oslo_concurrency]
        lock_path = {root}/lock
        [oslo_messaging_rabbit]
        heartbeat_timeout_threshold = 0
        [glance]
        valid_interfaces = internal
        [cinder]
        os_region_name = {region}
        [os_vif_ovs]
        [vnc]
        enabled = false
        [spice]
        enabled = false
        """).format(host=compute_host, root=lay.root,
                    transport=lay.transport_url,
                    paste=lay.path("etc", "nova", "api-paste.ini"),
                    api_db=lay.sqlite("nova_api"), db=lay.sqlite("nova"),
                    region=lay.region) \
        + service_auth(lay, "keystone_authtoken") \
        + service_auth(lay, "placement") + "valid_interfaces = internal\n" \
        + service_auth(lay, "neutron") + "valid_interfaces = internal\n" \
        + service_auth(lay, "service_user") \
        + "send_service_user_token = true\n"


def swift_keystone_pipeline(lay):
    """The Swift proxy's auth, as in a Keystone-backed Swift: authtoken
    (delay_auth_decision, so temp URLs and /info still pass) then
    keystoneauth; a request counter in front."""
    return {
        "pipeline_auth": "osbedcount authtoken keystoneauth",
        "filters": _d("""
            [filter:osbedcount]
            paste.filter_factory = tests.osbed.swift_count:filter_factory
            request_log = {log}

            [filter:authtoken]
            paste.filter_factory = keystonemiddleware.auth_token:filter_factory
            delay_auth_decision = true
            auth_type = password
            auth_url = {ks}
            www_authenticate_uri = {ks}
            username = {user}
            password = {pw}
            user_domain_name = Default
            project_name = {project}
            project_domain_name = Default
            region_name = {region}
            interface = internal

            [filter:keystoneauth]
            use = egg:swift#keystoneauth
            operator_roles = admin, member
            reseller_prefix = AUTH_
            """).format(log=lay.path("log", "swift-requests.log"),
                        ks=lay.identity, user=SERVICE_USER,
                        pw=lay.service_password, project=SERVICE_PROJECT,
                        region=lay.region),
    }
