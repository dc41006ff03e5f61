"""The core's pages: health check and the dashboard."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template

from crm_core.db import database, utcnow
from crm_core.version import __version__
from crm_core.web.auth import public

log = logging.getLogger("crm.web")

blueprint = Blueprint("core", __name__)


@blueprint.get("/healthz")
@public
def healthz():
    """For load balancers: 200 when the database answers, 503 otherwise."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # any failure of the database is "unhealthy"
        log.warning("health check failed: %s", exc)
        return jsonify({"status": "unavailable", "database": "error"}), 503
    return jsonify({"status": "ok", "database": "ok", "version": __version__})


@blueprint.get("/")
def home():
    host = current_app.extensions["crm"]
    return render_template("crm_core/home.html", plugins=host.plugins, version=__version__,
                           now=utcnow())
