"""
gunicorn entry point for the OpenStack bed's WSGI services (runs in
.venv-openstack):  gunicorn ... tests.osbed.wsgi:application

OSBED_APP = "module:attr" or "module:factory()"; OSBED_ARGV = JSON list.
oslo.config parses the command line of the process that imports it, and
under gunicorn that is gunicorn's own: sys.argv becomes OSBED_ARGV (the
service's program name and --config-file options) before the service's
module is imported.
"""
import importlib
import json
import os
import sys

sys.argv = json.loads(os.environ["OSBED_ARGV"])
_module, _attr = os.environ["OSBED_APP"].split(":")
_obj = getattr(importlib.import_module(_module), _attr.rstrip("()"))
application = _obj() if _attr.endswith("()") else _obj
