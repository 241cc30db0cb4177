"""Invoke root collection of kube-rackspace.

Python sees this file and the tasks/ folder as one module name, `tasks`.
Invoke imports this file as the module `tasks`; setting __path__ below makes
that module a package as well, so `tasks.model.settings` resolves to
tasks/model/settings.py. tasks/ has no __init__.py on purpose: pytest (with the repo
root on sys.path, see pytest.ini) finds this file first too, so `inv` and
pytest import the very same modules.
"""

import os

__path__ = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")]

from invoke import Collection  # noqa: E402

from tasks import build, config, image, keypair, master, network, nodes, upload  # noqa: E402
from tasks import down, kubeconfig, plan, ssh, status, up  # noqa: E402

ns = Collection()
for module in (config, build, upload, image, network, keypair, master, nodes, up, kubeconfig, ssh, status, plan,
               down):
    ns.add_task(getattr(module, module.__name__.rsplit(".", 1)[1]))
