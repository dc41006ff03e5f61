"""The realignment API: ``models/<id>/realign`` (a job; ``?preview=1`` says what would move)."""

from crm_core.api import Blueprint

blueprint = Blueprint("territory_realign_api", __name__, url_prefix="",
                      description="Realignment of a territory model.")
