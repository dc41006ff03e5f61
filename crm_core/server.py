"""``crm run``: gunicorn with several worker processes, each building its own app."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class CrmServer(BaseApplication):
    def __init__(self, options):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from crm_core.app import create_app

        # Built in each worker after the fork: one database pool per process.
        return create_app()


def serve(host, port, workers):
    CrmServer({
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": "-",
        # pid= names the worker that answered (the throttling test relies on it).
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" pid=%(p)s',
        "errorlog": "-",
        "preload_app": False,
        "forwarded_allow_ips": "127.0.0.1",
        "timeout": 60,
    }).run()
