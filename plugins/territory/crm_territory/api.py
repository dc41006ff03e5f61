"""The territory API: territories, members and models (under /api/v1/plugins/territory/)."""

from crm_core.api import Blueprint

blueprint = Blueprint("territory_api", __name__, url_prefix="",
                      description="Territories, their members and territory models.")
