"""Sign-in throttling: shared by every worker process, and never locking the real user out."""

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import pytest

from crm_core.testing import DEFAULT_PASSWORD, CrmServer, browser_login, make_user, subprocess_env
from crm_core.users import throttle


def test_five_wrong_passwords_from_one_address_block_that_address(app):
    user = make_user("anna@example.com")
    for _ in range(throttle.RULES[0].limit):
        assert browser_login(app.test_client(), user.email, "wrong wrong wrong").status_code == 401
    blocked = browser_login(app.test_client(), user.email, DEFAULT_PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in blocked.get_data(as_text=True)


def test_the_real_user_from_another_address_still_signs_in(app):
    user = make_user("anna@example.com")
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(throttle.RULES[0].limit + 2):
        client = app.test_client()
        client.environ_base.update(attacker)
        browser_login(client, user.email, "guess guess guess")
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert browser_login(owner, user.email).status_code == 302


def test_a_distributed_guess_is_stopped_but_known_addresses_pass(app):
    user = make_user("anna@example.com")
    home = app.test_client()
    home.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert browser_login(home, user.email).status_code == 302  # a known address from now on
    account_rule = next(rule for rule in throttle.RULES if rule.kind == "account")
    now = dt.datetime.now(dt.timezone.utc)
    for index in range(account_rule.limit):
        throttle.record_failure(user.email, f"10.0.{index // 250}.{index % 250}", now=now)
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "192.0.2.77"
    assert browser_login(stranger, user.email).status_code == 429
    again = app.test_client()
    again.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert browser_login(again, user.email).status_code == 302


def test_a_sweep_across_accounts_from_one_address_is_stopped(app):
    address_rule = next(rule for rule in throttle.RULES if rule.kind == "address")
    for index in range(address_rule.limit):
        throttle.record_failure(f"user{index}@example.com", "203.0.113.50")
    user = make_user("real@example.com")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.50"
    assert browser_login(client, user.email).status_code == 429


def test_a_block_expires(app):
    user = make_user("anna@example.com")
    rule = throttle.RULES[0]
    past = dt.datetime.now(dt.timezone.utc) - rule.block - rule.window - dt.timedelta(minutes=1)
    for _ in range(rule.limit):
        throttle.record_failure(user.email, "127.0.0.1", now=past)
    assert throttle.retry_after(user.email, "127.0.0.1") == 0
    assert browser_login(app.test_client(), user.email).status_code == 302


def test_api_tokens_share_the_throttle(app):
    user = make_user("anna@example.com")
    for _ in range(throttle.RULES[0].limit):
        app.test_client().post("/api/v1/auth/token", json={"username": user.email, "password": "nope nope"})
    response = app.test_client().post("/api/v1/auth/token",
                                      json={"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert response.json["error"]["code"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) > 0


def _token_request(port, email, password):
    """POST /api/v1/auth/token on a new connection (so gunicorn may pick either worker)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        body = json.dumps({"username": email, "password": password})
        conn.request("POST", "/api/v1/auth/token", body=body,
                     headers={"Content-Type": "application/json", "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.slow
def test_throttling_holds_across_two_gunicorn_workers(app, tmp_path):
    """Failures counted by one worker block the next try served by the other."""
    user = make_user("workers@example.com")
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=app.config["CRM_DATABASE_URL"],
                         CRM_INSTANCE_PATH=tmp_path / "instance", CRM_PLUGINS="",
                         CRM_SECRET_KEY="a-secret-key-for-two-workers-123456")
    guesses, most = 2 * throttle.RULES[0].limit, 12 * throttle.RULES[0].limit
    statuses = []
    with CrmServer(env, workers=2, log_path=tmp_path / "server.log") as server:
        assert server.wait_for_workers(2), server.stop()
        port = server.port
        # Concurrent wrong guesses, so both workers (each one request at a time) take some;
        # on a busy machine one may still take a whole batch: go on until both did.
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(max_workers=4) as pool:
            while len(statuses) < most and time.monotonic() < deadline and (
                    len(statuses) < guesses or len(server.answered_by("POST /api/v1/auth/token")) < 2):
                statuses += pool.map(lambda _: _token_request(port, user.email, "wrong wrong wrong"),
                                     range(4))
        assert set(statuses) <= {401, 429} and statuses.count(401) <= throttle.RULES[0].limit
        assert _token_request(port, user.email, DEFAULT_PASSWORD) == 429
    workers = server.worker_pids
    assert len(workers) == 2
    assert server.answered_by("POST /api/v1/auth/token") == workers  # both answered this account


def test_purge_drops_only_finished_counters(app):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    throttle.record_failure("old@example.com", "10.0.0.1", now=old)
    throttle.record_failure("new@example.com", "10.0.0.2")
    assert throttle.purge_expired() == 3  # the old pair, address and account counters
    from crm_core.users.models import LoginThrottle
    assert LoginThrottle.select().count() == 3
