"""What every route shares: page-or-fragment rendering and who the agent is."""
import functools
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.models import Agent
from app.numbers import whole_number
from app.services import agents, directory
from app.templating import env


def _context(request: Request) -> dict:
    csrf = request.scope.get("csrftoken")
    return {"agent": request.scope.get("agent"), "csrf_token": csrf() if csrf else ""}


templates = Jinja2Templates(env=env, context_processors=[_context])


def is_htmx(request: Request) -> bool:
    """An htmx request that wants a fragment (boosted links want the whole page)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def render(request: Request, page: str, context: dict, fragment: str | None = None,
           status_code: int = 200, headers: dict | None = None) -> Response:
    """The full page, or, when htmx asks, the partial that the page includes."""
    name = fragment if fragment and is_htmx(request) else page
    return templates.TemplateResponse(request, name, context, status_code=status_code,
                                      headers=headers)


MAX_FORM_FIELDS = 1000


class BodyTooLarge(Exception):
    """A request body over the size its route takes."""


async def limited_stream(request: Request, max_bytes: int):
    """The request body's chunks; raises BodyTooLarge once it passes max_bytes, whether or
    not the client declared its length (a chunked body does not)."""
    declared = whole_number(request.headers.get("content-length"))
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge  # refused before it is read
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge
        yield chunk


async def read_body(request: Request, max_bytes: int) -> bytes:
    return b"".join([chunk async for chunk in limited_stream(request, max_bytes)])


async def posted_form(request: Request, max_bytes: int) -> FormData:
    """The posted form, at most max_bytes (else BodyTooLarge). A plain (urlencoded) one is
    parsed by the standard library, at less than half the cost of Starlette's streaming
    parser; a multipart one by Starlette, without files."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parser = MultiPartParser(request.headers, limited_stream(request, max_bytes),
                                 max_files=0, max_fields=MAX_FORM_FIELDS)
        try:
            return await parser.parse()
        except MultiPartException as exc:
            raise HTTPException(400, str(exc)) from None
    body = await read_body(request, max_bytes)
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return FormData()
    try:
        return FormData(parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                                  max_num_fields=MAX_FORM_FIELDS))
    except ValueError:
        raise HTTPException(400, "The form has too many fields.") from None


def current_agent(request: Request) -> Agent | None:
    """The logged-in, still active agent, or None."""
    agent_id = request.session.get("agent_id")
    if not agent_id:
        return None
    agent = directory.active_agent(agent_id)
    if agent is None:
        request.session.clear()  # deactivated since: the session ends now
    return agent


def _login_redirect(request: Request) -> Response:
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}" if target != "/" else "/login",
                            303)


def login_required(handler, admin_only: bool = False):
    """Run the handler for a logged-in agent (in scope["agent"]); send others to log in."""
    @functools.wraps(handler)
    async def wrapper(request: Request):
        agent = current_agent(request)
        if agent is None:
            return _login_redirect(request)
        if admin_only and not agent.is_admin:
            raise HTTPException(403, "Only admins can do this.")
        request.scope["agent"] = agent
        agents.record_seen(agent.id)  # at most once a minute: keeps the agent online for chats
        return await handler(request)
    return wrapper


def admin_required(handler):
    return login_required(handler, admin_only=True)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
