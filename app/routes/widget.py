"""The chat widget: its script, and the public JSON endpoints it calls from the brand's sites
(CORS for the brand's allowed origins only, rate-limited, size-limited). See the README."""
import functools
import gzip
import hashlib
import json
from pathlib import Path

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.numbers import whole_number
from app.routes.queue import StreamResponse
from app.services import chat, directory
from app.services.brands import allowed_origins
from app.ticket_streams import TicketStream, visitor_frames
from app.web import BodyTooLarge, client_ip, read_body

WIDGET_JS = Path(__file__).resolve().parents[1] / "static" / "widget.js"
MAX_BODY_BYTES = 64 * 1024  # a 5,000-character message fits many times over
STATUS_OF = {"invalid": 400, "too_large": 413, "unavailable": 409, "ended": 409,
             "not_found": 404, "forbidden": 403, "too_many": 429}
PREFLIGHT_HEADERS = {"Access-Control-Allow-Methods": "GET, POST",
                     "Access-Control-Allow-Headers": "Content-Type, X-Visitor-Token",
                     "Access-Control-Max-Age": "7200"}


def _error(message: str, code: str, origin: str | None = None, field: str = "") -> JSONResponse:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else None
    return JSONResponse({"error": message, "code": code, "field": field},
                        status_code=STATUS_OF[code], headers=headers)


def widget_endpoint(handler):
    """Find the brand, admit only its allowed origins, answer preflights, count the request
    against the visitor's address, and turn a ChatError into a JSON error in words."""
    @functools.wraps(handler)
    async def wrapper(request):
        slug = request.path_params["brand"]
        brand = directory.brand(slug)
        if brand is None:
            return _error("There is no chat here.", "not_found")
        origin = request.headers.get("origin", "")
        if origin not in allowed_origins(brand):
            # No Access-Control-Allow-Origin: the browser keeps even this answer from the page.
            return _error("This site may not use this chat.", "forbidden")
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Access-Control-Allow-Origin": origin,
                                                      "Vary": "Origin", **PREFLIGHT_HEADERS})
        if not request.app.state.rate_limits.allow_widget_request(client_ip(request)):
            return _error("Too many requests from your address; please wait a minute.",
                          "too_many", origin)
        try:
            response = await handler(request, brand, origin)
        except chat.ChatError as exc:
            return _error(str(exc), exc.code, origin, exc.field)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response
    return wrapper


async def _json_body(request) -> dict:
    """The request's JSON object, refused past MAX_BODY_BYTES before it is all read."""
    try:
        body = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        raise chat.ChatError(_too_large(), code="too_large") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise chat.ChatError("The request is not valid JSON.") from None
    if not isinstance(data, dict):
        raise chat.ChatError("The request must be a JSON object.")
    return data


def _too_large() -> str:
    return f"The request is too large (more than {MAX_BODY_BYTES // 1024} KB)."


def _session(request, brand, origin, token: str | None = None):
    return chat.find_session(brand, token or request.headers.get("x-visitor-token", ""), origin)


def _visitor(request, data: dict) -> chat.Visitor:
    return chat.clean_visitor(data.get("name", ""), data.get("email", ""), data.get("message"),
                              data.get("page_url", ""),
                              request.app.state.settings.chat_max_message_chars)


def _may_start(request) -> None:
    if not request.app.state.rate_limits.allow_chat_start(client_ip(request)):
        raise chat.ChatError("You have started several conversations in a short time. Please "
                             "wait a while before starting another.", code="too_many")


@widget_endpoint
async def status(request, brand, origin):
    settings = request.app.state.settings
    return JSONResponse(chat.status(brand, settings.agent_online_minutes),
                        headers={"Cache-Control": "no-store"})


@widget_endpoint
async def start_chat(request, brand, origin):
    visitor = _visitor(request, await _json_body(request))
    _may_start(request)
    settings = request.app.state.settings
    token, session = chat.start_chat(brand, origin, visitor, settings.secret_key,
                                     settings.agent_online_minutes)
    return JSONResponse({"token": token, **chat.transcript(session)}, status_code=201)


@widget_endpoint
async def leave_message(request, brand, origin):
    visitor = _visitor(request, await _json_body(request))
    _may_start(request)
    token, session = chat.leave_message(brand, origin, visitor,
                                        request.app.state.settings.secret_key)
    return JSONResponse({"token": token, **chat.transcript(session)}, status_code=201)


@widget_endpoint
async def post_message(request, brand, origin):
    session = _session(request, brand, origin)
    data = await _json_body(request)
    settings = request.app.state.settings
    text = chat.clean_text(data.get("text"), settings.chat_max_message_chars)
    client_id = chat.clean_client_id(data.get("client_id"))
    if not request.app.state.rate_limits.allow_chat_post("message", session.token_hash):
        raise chat.ChatError("You are sending messages very fast; please wait a moment.",
                             code="too_many")
    message = chat.visitor_message(session, text, client_id, settings.secret_key)
    return JSONResponse({"message": chat.message_json(message, session)}, status_code=201)


@widget_endpoint
async def typing(request, brand, origin):
    session = _session(request, brand, origin)
    if request.app.state.rate_limits.allow_chat_post("typing", session.token_hash):
        chat.visitor_typing(session)
    return Response(status_code=204)


@widget_endpoint
async def transcript(request, brand, origin):
    session = _session(request, brand, origin)
    after = request.query_params.get("after", "")
    return JSONResponse(chat.transcript(session, whole_number(after) or 0),
                        headers={"Cache-Control": "no-store"})


@widget_endpoint
async def end_chat(request, brand, origin):
    session = _session(request, brand, origin)
    chat.end_chat(session.id, chat.ENDED_BY_VISITOR)
    return JSONResponse({"state": "ended"})


@widget_endpoint
async def stream(request, brand, origin):
    """Server-sent events of the conversation. EventSource cannot send headers: the token
    comes in the query string, and Last-Event-ID (the last message id) on reconnects."""
    session = _session(request, brand, origin, request.query_params.get("token", ""))
    raw = request.headers.get("last-event-id") or request.query_params.get("after", "")
    after = whole_number(raw) or 0
    feed = request.app.state.ticket_feed
    ticket_stream = TicketStream(session.ticket_id)
    feed.add(ticket_stream)

    async def frames():
        try:
            async for frame in visitor_frames(ticket_stream, session, after):
                yield frame
        finally:
            feed.remove(ticket_stream)

    return StreamResponse(frames(), ping=15, headers={"Cache-Control": "no-store"})


@functools.cache
def _script() -> tuple[bytes, bytes, str]:
    raw = WIDGET_JS.read_bytes()
    return raw, gzip.compress(raw, 9, mtime=0), f'"{hashlib.sha256(raw).hexdigest()[:20]}"'


async def widget_script(request):
    """The widget's script, for any site's <script> tag (compressed when the browser can)."""
    raw, packed, etag = _script()
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        raw = packed
    return Response(raw, media_type="text/javascript", headers=headers)


def _api(path: str, endpoint, methods: list[str]) -> Route:
    return Route(f"/widget/{{brand}}{path}", endpoint, methods=[*methods, "OPTIONS"])


routes = [
    Route("/widget.js", widget_script),
    _api("/status", status, ["GET"]),
    _api("/chats", start_chat, ["POST"]),
    _api("/offline", leave_message, ["POST"]),
    _api("/chats/messages", post_message, ["POST"]),
    _api("/chats/typing", typing, ["POST"]),
    _api("/chats/transcript", transcript, ["GET"]),
    _api("/chats/end", end_chat, ["POST"]),
    _api("/chats/stream", stream, ["GET"]),
]
