"""The bootstrap token's lifetime (tasks/model/pki.py records, tasks/steps/tokens.py
decides): expiry, the renewal decision, the state file, the Secret. The
renewal against a cluster runs in tests/test_cloud_stages.py."""

import datetime

import pytest

from tasks.model import pki, settings
from tasks.steps import tokens
from tasks.support.errors import ConfigError, UserError

NOW = datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
TOKEN = "abcdef.0123456789abcdef"


def at(**delta):
    return NOW + datetime.timedelta(**delta)


STALE_CASES = [
    ("a day left", at(days=1), 1800, False),
    ("just over the margin", at(seconds=1801), 1800, False),
    ("exactly the margin", at(seconds=1800), 1800, True),
    ("within the margin", at(minutes=10), 1800, True),
    ("expired", at(seconds=-1), 1800, True),
    ("no expiry recorded (a ttl 0s token)", None, 1800, True),
]


@pytest.mark.parametrize("expires, margin, stale", [c[1:] for c in STALE_CASES], ids=[c[0] for c in STALE_CASES])
def test_a_token_is_stale_when_it_expires_within_the_margin(expires, margin, stale):
    assert pki.TokenRecord(TOKEN, expires).stale(NOW, margin) is stale


DECIDE_CASES = [
    ("fresh, cluster up", at(days=1), True, tokens.KEEP),
    ("fresh, no cluster", at(days=1), False, tokens.KEEP),
    ("expired, cluster up: the cluster must learn the new one", at(hours=-1), True, tokens.RENEW),
    ("expiring, cluster up", at(minutes=5), True, tokens.RENEW),
    ("expired, no master yet: its kubeadm init registers it", at(hours=-1), False, tokens.RECORD),
    ("none recorded, cluster up", "missing", True, tokens.RENEW),
    ("none recorded, no cluster", "missing", False, tokens.RECORD),
]


@pytest.mark.parametrize("expires, cluster, action", [c[1:] for c in DECIDE_CASES], ids=[c[0] for c in DECIDE_CASES])
def test_renewal_decision(expires, cluster, action):
    record = None if expires == "missing" else pki.TokenRecord(TOKEN, expires)
    assert tokens.decide(record, NOW, 1800, cluster) == action


def test_the_margin_covers_the_boot_and_the_checks():
    s = settings.load(environ={}, flags={"BOOT_TIMEOUT": "600"})
    assert tokens.renew_margin(s) == 1200


def test_token_file_round_trip_mode_and_legacy_format(tmp_path):
    record = pki.new_token_record(3600, NOW.replace(microsecond=123))
    assert record.expires == at(hours=1) and record.expires_text == "2026-05-01T13:00:00Z"
    pki.write_token(tmp_path, record)
    path = tmp_path / pki.TOKEN_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert pki.read_token(tmp_path) == record
    assert record.token not in repr(record)
    # Written before tokens expired: the token alone. It never expires on
    # the cluster, so it counts as expired and is replaced.
    path.write_text(TOKEN + "\n")
    legacy = pki.read_token(tmp_path)
    assert legacy == pki.TokenRecord(TOKEN, None) and legacy.stale(NOW, 0)
    for garbled in ("not-a-token\n", "token: abcdef.0123456789abcdef\nexpires: tomorrow\n", "[1, 2]\n"):
        path.write_text(garbled)
        with pytest.raises(UserError, match=pki.TOKEN_FILE):
            pki.read_token(tmp_path)


def test_ensure_makes_the_token_with_the_ttl_and_keeps_it(tmp_path):
    first = pki.ensure(tmp_path, now=NOW, token_ttl=7200)
    assert first.bootstrap_token_expires == "2026-05-01T14:00:00Z"
    again = pki.ensure(tmp_path, now=at(days=3), token_ttl=7200)
    # Renewal is tokens.ensure_fresh's decision (it must reach the cluster first).
    assert (again.bootstrap_token, again.bootstrap_token_expires) == (first.bootstrap_token, "2026-05-01T14:00:00Z")


def test_secret_follows_the_bootstrap_token_docs():
    secret = tokens.secret_manifest(pki.TokenRecord(TOKEN, at(hours=24)))
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    data = secret["stringData"]
    assert (data["token-id"], data["token-secret"], data["expiration"]) == \
        ("abcdef", "0123456789abcdef", "2026-05-02T12:00:00Z")
    assert data["usage-bootstrap-authentication"] == data["usage-bootstrap-signing"] == "true"
    # The group kubeadm's default RBAC lets join and CSR auto-approval work for.
    assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"


def test_the_manifest_goes_on_stdin_not_the_command_line():
    s = settings.load(environ={}, flags={"SSH_USER": "core"})
    assert tokens.create_command(s) == "sudo -n /opt/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf create -f -"


def test_ttl_must_outlive_the_waits():
    with pytest.raises(ConfigError, match="BOOTSTRAP_TOKEN_TTL .* BOOT_TIMEOUT"):
        settings.load(environ={}, flags={"BOOTSTRAP_TOKEN_TTL": "1800", "BOOT_TIMEOUT": "900"})
    assert settings.load(environ={}, flags={"BOOTSTRAP_TOKEN_TTL": "1801", "BOOT_TIMEOUT": "900"}).BOOTSTRAP_TOKEN_TTL == 1801
