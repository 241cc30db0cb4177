"""
Paste filter for the test cloud's Swift proxy: a request passes only with an
X-Auth-Token that Mimic issued for the tenant owning the account
(``AUTH_<tenant>``).  Temp URL requests are authorized by ``tempurl`` (which
sits before this filter and sets ``swift.authorize_override``); ``/info`` and
``/healthcheck`` are public, as in Swift.  Valid tokens are cached 10 s.

    [filter:mimicauth]
    paste.filter_factory = tests.testcloud.swift_auth:filter_factory
    mimic_url = http://127.0.0.1:PORT
    request_log = /path/requests.log     (optional: one line per request)
"""
import json
import time
import urllib.error
import urllib.request

from swift.common.swob import HTTPUnauthorized, HTTPForbidden, Request
from swift.common.utils import split_path


class MimicAuth:
    def __init__(self, app, conf):
        self.app = app
        self.mimic_url = conf["mimic_url"].rstrip("/")
        self.request_log = conf.get("request_log")
        self.cache = {}

    def tenant_for_token(self, token):
        hit = self.cache.get(token)
        if hit and hit[1] > time.time():
            return hit[0]
        try:
            with urllib.request.urlopen(
                    "%s/testcloud/tokens/%s" % (self.mimic_url, token),
                    timeout=5) as resp:
                tenant = json.load(resp)["tenant_id"]
        except urllib.error.HTTPError:
            return None
        self.cache[token] = (tenant, time.time() + 10)
        return tenant

    def __call__(self, env, start_response):
        req = Request(env)
        if self.request_log and not env.get("swift.source"):
            with open(self.request_log, "a") as f:
                f.write("%s %s\n" % (req.method, req.path))
        if env.get("swift.authorize_override") or \
                req.path in ("/info", "/healthcheck"):
            return self.app(env, start_response)
        try:
            version, account, _rest = split_path(req.path, 1, 3, True)
        except ValueError:
            return HTTPUnauthorized()(env, start_response)
        token = env.get("HTTP_X_AUTH_TOKEN") or env.get("HTTP_X_STORAGE_TOKEN")
        tenant = self.tenant_for_token(token) if token else None
        if tenant is None:
            return HTTPUnauthorized(
                headers={"Www-Authenticate": 'Swift realm="unknown"'}
            )(env, start_response)
        if account != "AUTH_" + tenant:
            return HTTPForbidden()(env, start_response)
        env["REMOTE_USER"] = tenant
        env["swift_owner"] = True     # account owner may set Temp-URL keys
        return self.app(env, start_response)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)

    def auth_filter(app):
        return MimicAuth(app, conf)
    return auth_filter
