"""nova-conductor / nova-scheduler / nova-compute for the bed:
python -m tests.osbed.nova_service NAME --config-file ... (SQLite
transactions immediate first, see sqlite_immediate.py).

The bed starts these with everything else and they import Nova at once,
then wait before starting the service: for RabbitMQ's port
(OSBED_RABBIT_PORT; a nova-scheduler that found it closed hung in its
retry), and nova-compute also for nova-conductor's service record in
OSBED_CONDUCTOR_DB (a compute's first call to a conductor not yet
consuming is lost, and it waited 10 s for the reply)."""
import importlib
import os
import socket
import sqlite3
import sys
import time

import tests.osbed.sqlite_immediate  # noqa: F401

name = sys.argv.pop(1)
sys.argv[0] = "nova-" + name
module = importlib.import_module("nova.cmd." + name)


def _rabbit_listens(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _conductor_up(db):
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("select count(*) from services where binary ="
                             " 'nova-conductor'").fetchone()[0] > 0
    except sqlite3.Error:
        return False


deadline = time.monotonic() + 120
port = int(os.environ.get("OSBED_RABBIT_PORT", "0"))
while port and not _rabbit_listens(port) and time.monotonic() < deadline:
    time.sleep(0.2)
db = os.environ.get("OSBED_CONDUCTOR_DB")
while db and not _conductor_up(db) and time.monotonic() < deadline:
    time.sleep(0.2)
sys.exit(module.main())
