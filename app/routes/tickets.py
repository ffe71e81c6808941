"""A ticket's page and what agents do on it: status, assignment, replies, notes, retries; and
its live stream (new messages, the chat's state, the visitor typing)."""
import re

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from app.mail import display
from app.models import Message, Ticket
from app.numbers import whole_number
from app.routes.queue import StreamResponse
from app.security import CONTENT_SECURITY_POLICY
from app.services import chat, forms, history, tickets
from app.ticket_streams import TicketStream, agent_frames
from app.web import current_agent, is_htmx, login_required, render, see_other

STATUS_CHOICES = tickets.SETTABLE_STATUSES
# The page showing one mail's remote images: the same policy, with images from anywhere. The
# security middleware keeps a policy the response already has.
REMOTE_IMAGES_CSP = re.sub(r"img-src ([^;]*)", r"img-src \1 https: http:", CONTENT_SECURITY_POLICY)


def ticket_context(ticket_id: int, show_images_of: int | None = None, **extra) -> dict:
    try:
        ticket = tickets.get_ticket(ticket_id)
    except tickets.TicketError as exc:
        raise HTTPException(404, str(exc)) from None
    messages = tickets.conversation(ticket)
    return {
        "ticket": ticket,
        "messages": messages,
        "views": display.message_views(messages, show_images_of),
        "history": history.history(ticket.id),
        "chat": chat.session_of_ticket(ticket.id) if ticket.channel == "chat" else None,
        "form_panel": forms.ticket_panel(ticket),
        **tickets.assignee_choices(ticket),
        "statuses": STATUS_CHOICES,
        "error": "",
        "draft": "",
        **extra,
    }


def _show(request, ticket_id: int, status_code: int = 200, **extra):
    return render(request, "pages/ticket.html", ticket_context(ticket_id, **extra),
                  fragment="partials/_ticket.html", status_code=status_code)


def _done(request, ticket_id: int):
    """After an action: the fresh fragment for htmx, a redirect for a plain form post."""
    if request.headers.get("hx-request") == "true":
        return _show(request, ticket_id)
    return see_other(f"/tickets/{ticket_id}")


def _ticket_id(request) -> int:
    return request.path_params["ticket_id"]


@login_required
async def ticket_page(request):
    """The ticket; with ?images=MESSAGE_ID, that mail's remote images are loaded too."""
    raw = request.query_params.get("images", "")
    shown = whole_number(raw)
    context = ticket_context(_ticket_id(request), show_images_of=shown)
    view = context["views"].get(shown)
    headers = {"Content-Security-Policy": REMOTE_IMAGES_CSP} if view and view.images_shown else None
    return render(request, "pages/ticket.html", context, fragment="partials/_ticket.html",
                  headers=headers)


@login_required
async def set_status(request):
    form = await request.form()
    try:
        tickets.change_status(_ticket_id(request), form.get("status", ""), request.scope["agent"])
    except tickets.TicketError as exc:
        return _show(request, _ticket_id(request), 400, error=str(exc))
    return _done(request, _ticket_id(request))


@login_required
async def set_assignee(request):
    form = await request.form()
    raw = form.get("assignee", "")
    agent = request.scope["agent"]
    assignee_id = agent.id if raw == "me" else whole_number(raw)
    try:
        tickets.assign(_ticket_id(request), assignee_id, agent)
    except tickets.TicketError as exc:
        return _show(request, _ticket_id(request), 400, error=str(exc))
    return _done(request, _ticket_id(request))


@login_required
async def send_reply(request):
    form = await request.form()
    text = form.get("text", "")
    then = form.get("then", "") or None
    try:
        if form.get("kind") == "note":
            tickets.add_note(_ticket_id(request), text, request.scope["agent"])
            return _done(request, _ticket_id(request))
        message = tickets.reply(_ticket_id(request), text, request.scope["agent"],
                                request.app.state.settings.secret_key, then_status=then)
    except tickets.TicketError as exc:
        return _show(request, _ticket_id(request), 400, error=str(exc), draft=text)
    if message.in_chat and is_htmx(request):
        # A chat goes fast: the page's stream brings the answer into the conversation (as it
        # does the visitor's messages), so only the reply box and the status come back.
        return render(request, "partials/_chat_answered.html",
                      {"ticket": message.ticket, "draft": "", "statuses": STATUS_CHOICES},
                      headers={"HX-Retarget": "#reply-form", "HX-Reswap": "outerHTML"})
    return _done(request, _ticket_id(request))


@login_required
async def retry(request):
    message = Message.get_or_none(Message.id == request.path_params["message_id"])
    if message is None:
        raise HTTPException(404, "There is no such message.")
    try:
        tickets.retry_message(message.id, request.scope["agent"])
    except tickets.TicketError as exc:
        return _show(request, message.ticket_id, 400, error=str(exc))
    return _done(request, message.ticket_id)


@login_required
async def message_fragment(request):
    """One message, for the page to follow a queued reply until it is sent or has failed."""
    message = Message.get_or_none((Message.id == request.path_params["message_id"])
                                  & (Message.ticket == _ticket_id(request)))
    if message is None:
        raise HTTPException(404, "There is no such message.")
    return render(request, "partials/_message.html",
                  {"message": message, "ticket": message.ticket,
                   "views": display.message_views([message])})


@login_required
async def end_chat(request):
    """The agent closes a live chat; the ticket stays, answered by email from now on."""
    chat.end_chat_of_ticket(_ticket_id(request), request.scope["agent"])
    return _done(request, _ticket_id(request))


@login_required
async def typing(request):
    """The agent types an answer to a live chat (htmx, throttled): the visitor sees it."""
    chat.agent_typing(_ticket_id(request), request.scope["agent"])
    return Response(status_code=204)


async def ticket_stream(request):
    """Server-sent events for the open ticket page; resumes after the last message it has."""
    agent = current_agent(request)
    if agent is None:
        return Response("Please log in.", status_code=401)
    ticket_id = _ticket_id(request)
    if not Ticket.select().where(Ticket.id == ticket_id).exists():
        return Response("There is no such ticket.", status_code=404)
    raw = request.headers.get("last-event-id") or request.query_params.get("after", "")
    after = whole_number(raw) or 0
    feed = request.app.state.ticket_feed
    stream = TicketStream(ticket_id)
    feed.add(stream)

    async def frames():
        try:
            async for frame in agent_frames(stream, agent, after,
                                            request.query_params.get("live") == "1",
                                            request.scope["csrftoken"]()):
                yield frame
        finally:
            feed.remove(stream)

    return StreamResponse(frames(), ping=15, headers={"Cache-Control": "no-store"})


routes = [
    Route("/tickets/{ticket_id:id}", ticket_page),
    Route("/tickets/{ticket_id:id}/stream", ticket_stream),
    Route("/tickets/{ticket_id:id}/typing", typing, methods=["POST"]),
    Route("/tickets/{ticket_id:id}/chat/end", end_chat, methods=["POST"]),
    Route("/tickets/{ticket_id:id}/status", set_status, methods=["POST"]),
    Route("/tickets/{ticket_id:id}/assignee", set_assignee, methods=["POST"]),
    Route("/tickets/{ticket_id:id}/reply", send_reply, methods=["POST"]),
    Route("/tickets/{ticket_id:id}/messages/{message_id:id}", message_fragment),
    Route("/messages/{message_id:id}/retry", retry, methods=["POST"]),
]
