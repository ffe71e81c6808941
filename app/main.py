"""create_app(settings): the routes, the middleware and the lifespan, all in one place."""
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from asgi_csrf import asgi_csrf
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from app import db
from app.config import Settings, ensure_secret_key
from app.events import Broadcaster
from app.intake import WebIntake
from app.live import QueueFeed
from app.routes import attachments, auth, contact, forms, presence, queue, tickets, widget
from app.routes.admin import agents as admin_agents
from app.routes.admin import brands as admin_brands
from app.routes.admin import forms as admin_forms
from app.routes.admin import mailboxes as admin_mailboxes
from app.security import RateLimits, SecurityHeadersMiddleware
from app.templating import render as render_template
from app.ticket_streams import TicketFeed
from app.web import is_htmx, render
from workers import queue as worker_queue
from workers import tasks  # noqa: F401 (registers the tasks, periodic ones included)
from workers.watcher import Watchers

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


# Visitors' pages and posts: they carry no session, and are guarded by rate limits and the
# spam checks instead of a CSRF token (they are posted from other sites too).
VISITOR_PREFIXES = ("/contact", "/forms/", "/widget/")


def _error_context(path: str, status_code: int, detail: str) -> dict:
    # Visitors have no queue to go back to.
    return {"status_code": status_code, "detail": detail,
            "back_to_queue": not path.startswith(VISITOR_PREFIXES)}


def _error_html(scope, status_code: int, detail: str) -> str:
    """The error page; for htmx, its partial, which htmx swaps in where the answer goes."""
    name = "partials/_error.html" if is_htmx(Request(scope)) else "pages/error.html"
    return render_template(name, agent=None, **_error_context(scope["path"], status_code, detail))


async def _csrf_failed(scope, send, reason):
    body = _error_html(scope, 403, "This form has expired or was sent from another site. "
                                   "Go back, reload the page and try again.")
    await HTMLResponse(body, status_code=403)(scope, None, send)


class AgentsOnly:
    """The session and CSRF middleware, for agents' pages only: visitors' paths go around both.
    Visitors have no session to read, and asgi_csrf's own skip option would still sign a fresh
    token for every request without its cookie, which is every visitor's request."""

    def __init__(self, app, settings):
        self.app = app
        self.for_agents = SessionMiddleware(
            asgi_csrf(app, signing_secret=settings.secret_key,
                      always_protect={"/login", "/setup"}, cookie_secure=settings.secure_cookies,
                      send_csrf_failed=_csrf_failed),
            secret_key=settings.secret_key, session_cookie="session",
            max_age=settings.session_hours * 3600, same_site="lax",
            https_only=settings.secure_cookies)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(VISITOR_PREFIXES):
            return await self.app(scope, receive, send)
        return await self.for_agents(scope, receive, send)


async def _http_error(request, exc: HTTPException):
    return render(request, "pages/error.html",
                  _error_context(request.url.path, exc.status_code, exc.detail),
                  fragment="partials/_error.html", status_code=exc.status_code,
                  headers=exc.headers)


async def _server_error(request, exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return HTMLResponse(_error_html(request.scope, 500, "Something went wrong on our side. "
                                                        "It has been logged; please try again."),
                        status_code=500)


def create_app(settings: Settings) -> Starlette:
    settings = ensure_secret_key(settings)
    db.connect(settings)
    worker_queue.configure(settings)
    broadcaster = Broadcaster()

    @asynccontextmanager
    async def lifespan(app):
        await broadcaster.start()
        consumer = watchers = None
        if settings.embedded_worker:
            consumer = worker_queue.start_embedded(settings.worker_threads)
            watchers = Watchers(settings)
            watchers.start()
        try:
            yield
        finally:
            if consumer:
                watchers.stop()
                await run_in_threadpool(consumer.stop, True)
            await broadcaster.stop()

    middleware = [Middleware(SecurityHeadersMiddleware), Middleware(AgentsOnly, settings=settings)]
    routes = [
        # Visitors' routes first: they take the most requests, and routes match in order.
        *contact.routes, *forms.routes, *widget.routes,
        *auth.routes, *queue.routes, *tickets.routes, *presence.routes,
        *admin_forms.routes,
        *admin_agents.routes, *admin_brands.routes, *admin_mailboxes.routes, *attachments.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.settings = settings
    app.state.broadcaster = broadcaster
    app.state.queue_feed = QueueFeed()
    app.state.ticket_feed = TicketFeed()
    broadcaster.subscribe(app.state.ticket_feed)
    app.state.rate_limits = RateLimits(settings)
    app.state.intake = WebIntake(settings.secret_key)
    return app
