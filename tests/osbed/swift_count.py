"""
Paste filter in the OpenStack bed's Swift proxy: one line per client request
(not Swift's own subrequests) in `request_log`, for the bed's counters.
"""


def filter_factory(global_conf, **local_conf):
    path = local_conf["request_log"]

    def count_filter(app):
        def counted(env, start_response):
            if not env.get("swift.source"):
                with open(path, "a") as f:
                    f.write("%s %s\n" % (env["REQUEST_METHOD"],
                                         env.get("PATH_INFO", "")))
            return app(env, start_response)
        return counted
    return count_filter
