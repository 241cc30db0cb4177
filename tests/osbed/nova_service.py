"""nova-conductor / nova-scheduler / nova-compute for the bed:
python -m tests.osbed.nova_service NAME --config-file ... (SQLite
transactions immediate first, see sqlite_immediate.py)."""
import importlib
import sys

import tests.osbed.sqlite_immediate  # noqa: F401

name = sys.argv.pop(1)
sys.argv[0] = "nova-" + name
sys.exit(importlib.import_module("nova.cmd." + name).main())
