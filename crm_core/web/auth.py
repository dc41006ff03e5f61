"""Who is asking: API tokens (Authorization: Bearer) or a server-side browser session.

Every endpoint needs a signed-in, active user unless its view is marked
``public``. Cookie-authenticated changes need a CSRF token and a same-origin
request; token-authenticated API calls need neither (a cookie is never sent
with them by a browser on another site).
"""

from __future__ import annotations

from urllib.parse import urlparse

from flask import redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask.sessions import SecureCookieSessionInterface
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from crm_core.api.errors import ApiError, handle_http_exception, is_api_request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_KEY = "sid"


class Actor(UserMixin):
    """The signed-in user of this request, and how they proved it."""

    def __init__(self, user, via):
        self.user = user
        self.via = via  # "session" or "token"

    def get_id(self):
        return str(self.user.id)

    @property
    def id(self):
        return self.user.id

    @property
    def is_admin(self):
        return bool(self.user.is_admin)

    def __getattr__(self, name):
        return getattr(self.user, name)


class Anonymous(AnonymousUserMixin):
    id = None
    is_admin = False
    locale = None
    timezone = None
    via = None


def public(view):
    """Mark a view function or MethodView class as reachable without signing in."""
    view.crm_public = True
    return view


def is_public_endpoint(app, endpoint):
    if endpoint is None:
        return True  # no route: let the 404/405 handlers answer
    if endpoint == "static" or endpoint.endswith(".static") or endpoint.startswith("api-docs."):
        return True
    return _view_flag(app, "crm_public", endpoint)


class CrmSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie (holding the session id and the CSRF secret), Secure when the
    request came over HTTPS."""

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def client_address():
    return request.remote_addr or "unknown"


def _load_actor():
    from crm_core.users.services import resolve_session, resolve_token

    token = bearer_token()
    if token is not None:
        user = resolve_token(token)
        return Actor(user, "token") if user else None
    user = resolve_session(session.get(SESSION_KEY))
    return Actor(user, "session") if user else None


def _same_origin():
    """Refuse cookie-authenticated changes sent from another site."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site",):
        return False
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return urlparse(origin).netloc == request.host
    if origin == "null":
        return False
    referer = request.headers.get("Referer")
    if referer:
        return urlparse(referer).netloc == request.host
    return True  # neither header: an old client or a privacy setting; the token still decides


def init_auth(app):
    app.session_interface = CrmSessionInterface()
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # we decide when (see below)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # bound to the session instead
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)  # _same_origin checks Origin/Referer
    csrf = CSRFProtect(app)
    login = LoginManager(app)
    login.anonymous_user = Anonymous
    login.request_loader(lambda _request: _load_actor())
    app.extensions["crm_csrf"] = csrf

    @app.before_request
    def _require_sign_in_and_csrf():
        public_endpoint = is_public_endpoint(app, request.endpoint)
        if public_endpoint and request.method in SAFE_METHODS:
            return None  # nothing to check; the user loads only if the page asks
        actor = current_user  # loads the actor (token or session)
        if not actor.is_authenticated and not public_endpoint:
            if is_api_request() or bearer_token() is not None:
                raise ApiError(401, headers={"WWW-Authenticate": 'Bearer realm="crm"'})
            return redirect(url_for("users.login", next=request.full_path.rstrip("?")))
        if (request.method not in SAFE_METHODS and getattr(actor, "via", None) != "token"
                and request.endpoint is not None and not _view_flag(app, "crm_csrf_exempt")):
            if not _same_origin():
                raise ApiError(403, "cross_origin",
                               _l("This change came from another site and was refused."))
            csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def _csrf_failed(_error):
        return handle_http_exception(ApiError(
            400, "csrf_failed", _l("The form has expired. Reload the page and try again.")))


def _view_flag(app, flag, endpoint=None):
    view = app.view_functions.get(endpoint or request.endpoint)
    return bool(getattr(view, flag, False) or getattr(getattr(view, "view_class", None), flag, False))


def csrf_exempt(view):
    """For public endpoints that other sites post to on purpose (web-to-lead forms)."""
    view.crm_csrf_exempt = True
    return view


def require_admin():
    if not current_user.is_authenticated or not current_user.is_admin:
        raise ApiError(403)


def actor_id():
    return current_user.id if current_user.is_authenticated else None
