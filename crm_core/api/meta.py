"""``/api/v1/meta``: what this server is, for programs that talk to it."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from crm_core.api.frame import Blueprint, Schema
from crm_core.config import LOCALES
from crm_core.version import __version__

blueprint = Blueprint("meta", __name__, url_prefix="/meta",
                      description="The server's version, plugins and languages.")


class PluginInfoSchema(Schema):
    name = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    version = ma.fields.String(required=True)


class MetaSchema(Schema):
    version = ma.fields.String(required=True)
    plugins = ma.fields.List(ma.fields.Nested(PluginInfoSchema), required=True)
    locales = ma.fields.List(ma.fields.String(), required=True)


@blueprint.route("")
class Meta(MethodView):
    @blueprint.response(200, MetaSchema)
    def get(self):
        """The core version, the enabled plugins and the supported languages."""
        host = current_app.extensions["crm"]
        return {
            "version": __version__,
            "plugins": [{"name": p.name, "label": str(p.manifest.label),
                         "version": p.manifest.version} for p in host.plugins],
            "locales": list(LOCALES),
        }
