"""The web-to-lead rate limit through a real server: two gunicorn workers share the counters
(in the database), so an address gets no more than the limit however its posts are spread."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import pytest

from crm_core.leads.models import Lead
from crm_core.testing import CrmServer, make_user, subprocess_env
from crm_core.webforms import services
from crm_core.webforms.models import WebFormSubmission

LIMIT = 4
POSTS = 12  # at least this many, three times the limit
MAX_POSTS = 60  # and more until both workers took some, within this many and TIMEOUT
TIMEOUT = 60.0
WEB_TO_LEAD = "POST /api/v1/web-to-lead/"


def _post(port, key, token, number):
    """One JSON submission on a new connection (so gunicorn may pick either worker)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        body = json.dumps({services.TOKEN_FIELD: token, "last_name": f"Visitor {number}",
                           "email": f"visitor{number}@example.com"})
        conn.request("POST", f"/api/v1/web-to-lead/{key}", body=body,
                     headers={"Content-Type": "application/json", "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.slow
def test_the_rate_limit_holds_across_two_gunicorn_workers(app, tmp_path):
    admin = make_user("admin@example.com", is_admin=True, password=None)
    form = services.create_form({"name": "Contact", "rate_limit": LIMIT, "fields": [
        {"name": "last_name", "label": "Name", "required": True}, {"name": "email", "label": "Email"}]},
        actor_id=admin.id)
    tokens = [services.issue_token(form) for _ in range(MAX_POSTS)]
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=app.config["CRM_DATABASE_URL"],
                         CRM_INSTANCE_PATH=tmp_path / "instance", CRM_PLUGINS="",
                         CRM_SECRET_KEY="a-secret-key-for-two-workers-123456")
    statuses = []
    with CrmServer(env, workers=2, log_path=tmp_path / "server.log") as server:
        assert server.wait_for_workers(2), server.stop()
        # Four at a time, so that both workers (each one request at a time) take some; on a
        # busy machine one worker may still take a whole batch: go on until both did.
        deadline = time.monotonic() + TIMEOUT
        with ThreadPoolExecutor(max_workers=4) as pool:
            while len(statuses) < MAX_POSTS and (
                    len(statuses) < POSTS or len(server.answered_by(WEB_TO_LEAD)) < 2):
                if time.monotonic() > deadline:
                    break
                numbers = range(len(statuses), min(len(statuses) + 4, MAX_POSTS))
                statuses += pool.map(lambda n: _post(server.port, form.key, tokens[n], n), numbers)
    assert sorted(statuses) == [201] * LIMIT + [429] * (len(statuses) - LIMIT), statuses
    assert Lead.select().count() == LIMIT and WebFormSubmission.select().count() == LIMIT
    workers = server.worker_pids
    assert len(workers) == 2
    assert server.answered_by(WEB_TO_LEAD) == workers  # both workers took posts of this address
