"""Live streams of one ticket: the agent's ticket page (HTML fragments for htmx) and the
visitor's chat widget (JSON). Both read new messages from the ticket's conversation whenever
an event about the ticket arrives, so nothing depends on which process made the change."""
import asyncio
import json
from collections import OrderedDict

import peewee
from sse_starlette import ServerSentEvent

from app import db
from app.events import SIGNAL_KINDS, end_stream, event_data
from app.mail import display
from app.models import Agent, ChatSession, Customer, Message, Ticket, prepared
from app.services import agents, chat, history, tickets
from app.templating import render

# An open stream also says "still here": the agent stays online, the visitor's chat live.
PRESENCE_EVERY_SECONDS = 30
CATCH_UP = object()  # what a stream starts with: everything after the client's last message


class TicketFeed:
    """The broadcaster's one subscriber for every single-ticket stream of this process: each
    event goes to the streams of its ticket only (one dict lookup, however many are open)."""

    def __init__(self):
        self.streams: dict[int, set] = {}

    def add(self, stream: "TicketStream") -> None:
        self.streams.setdefault(stream.ticket_id, set()).add(stream)

    def remove(self, stream: "TicketStream") -> None:
        streams = self.streams.get(stream.ticket_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.streams[stream.ticket_id]

    @property
    def listening(self) -> bool:
        return bool(self.streams)

    def offer(self, event, is_new: bool) -> None:
        for stream in list(self.streams.get(event.ticket_id, ())):
            stream.offer(event)

    def close(self) -> None:
        for streams in list(self.streams.values()):
            for stream in list(streams):
                stream.close()


class TicketStream:
    """One open stream of a ticket: the events waiting for it (None ends it)."""

    def __init__(self, ticket_id: int, max_pending: int = 200):
        self.ticket_id = ticket_id
        self.pending: asyncio.Queue = asyncio.Queue(maxsize=max_pending)

    def offer(self, event) -> None:
        try:
            self.pending.put_nowait(event)
        except asyncio.QueueFull:
            self.close()  # the client reconnects and catches up from its last message

    def close(self) -> None:
        end_stream(self.pending)

    async def next_event(self, still_here):
        """The next event, or None when the stream must end. Meanwhile, and on every event,
        still_here() tells that the reader is still there (it throttles its own writes)."""
        while True:
            still_here()
            try:
                async with asyncio.timeout(PRESENCE_EVERY_SECONDS):
                    return await self.pending.get()
            except TimeoutError:
                continue


def _ticket(ticket_id: int) -> Ticket:
    """The ticket with its customer, whose name the message partial shows."""
    return Ticket.select(Ticket, Customer).join(Customer).where(Ticket.id == ticket_id).get()


def _messages_after(ticket_id: int, after: int) -> list[Message]:
    """The ticket's messages after the one the stream has, with their author's name."""
    return list(_select_messages_after(ticket_id, after))


@prepared
def _select_messages_after(ticket_id, after):
    return (Message.select(Message, Agent.id, Agent.name).join(Agent, peewee.JOIN.LEFT_OUTER)
            .where((Message.ticket == ticket_id) & (Message.id > after))
            .order_by(Message.id).limit(500))


# What an event brought, read once for every stream of its ticket in this process: the agent's
# page and the visitor's widget ask the same on each message of a chat. Only the reads of the
# last few events are kept; keyed by database too, as event ids start again in a new one.
_READS_KEPT = 256
_reads: OrderedDict = OrderedDict()


def _new_messages(ticket_id: int, after: int, event) -> list[Message]:
    if event is CATCH_UP:
        return _messages_after(ticket_id, after)
    key = (db.generation, event.id, after)  # an event is about one ticket
    messages = _reads.get(key)
    if messages is None:
        messages = _reads[key] = _messages_after(ticket_id, after)
        while len(_reads) > _READS_KEPT:
            _reads.popitem(last=False)
    return messages


def _fragment(html: str, message_id: int | None = None) -> bytes:
    return ServerSentEvent(data=html, event="ticket",
                           id=str(message_id) if message_id else None).encode()


def _chat_state_fragment(ticket: Ticket) -> bytes:
    return _fragment(render("partials/_chat_state.html", ticket=ticket,
                            chat=chat.session_of_ticket(ticket.id), oob=True))


def _typing_fragment(name: str) -> bytes:
    return _fragment(render("partials/_chat_typing.html", typing=name, oob=True))


def _history_fragment(ticket_id: int) -> bytes:
    return _fragment(render("partials/_history.html", history=history.history(ticket_id),
                            oob=True))


@prepared
def _status_and_assignee(ticket_id):
    return Ticket.select(Ticket.status, Ticket.assignee).where(Ticket.id == ticket_id).tuples()


def _controls_fragment(ticket_id: int, agent: Agent, csrf_token: str) -> bytes:
    """The status and assignee controls as the ticket is now (another agent changed them)."""
    ticket = Ticket.get_by_id(ticket_id)
    return b"".join(_fragment(render(name, ticket=ticket, agent=agent, csrf_token=csrf_token,
                                     statuses=tickets.SETTABLE_STATUSES, oob=True,
                                     **tickets.assignee_choices(ticket)))
                    for name in ("partials/_ticket_status.html", "partials/_ticket_assignee.html"))


async def agent_frames(stream: TicketStream, agent: Agent, after: int, page_live: bool,
                       csrf_token: str):
    """The ticket page's stream: new messages (the page's own message partial), the status and
    assignee controls and the history on every change, the chat's state when it changes, and
    "… is typing" while the visitor types. csrf_token: the page's, for the controls' forms."""
    def still_here():
        agents.record_seen(agent.id)

    ticket = _ticket(stream.ticket_id)  # what the message partial shows of it never changes
    live = page_live
    controls = (ticket.status, ticket.assignee_id)  # as the page shows them
    event = CATCH_UP
    while event is not None:
        if event is not CATCH_UP and event.kind in SIGNAL_KINDS:
            if event_data(event).get("who") == "visitor":
                yield _typing_fragment(ticket.customer.display_name)
        else:
            # Only chat.started and chat.ended change it. (One hidden behind a later change of
            # the same moment shows on the next load; reply() decides by the ticket anyway.)
            if event is not CATCH_UP and event.kind.startswith("chat."):
                ticket.is_live = (Ticket.select(Ticket.is_live).where(Ticket.id == ticket.id)
                                  .scalar())
            messages = _new_messages(ticket.id, after, event)
            views = display.message_views(messages) if messages else {}
            for message in messages:
                yield _fragment(render("partials/_message_push.html", message=message,
                                       ticket=ticket, views=views), message.id)
                after = message.id
            if any(m.direction == "incoming" for m in messages):
                yield _typing_fragment("")  # the visitor sent what they typed
            if ticket.is_live != live:
                live = ticket.is_live
                yield _chat_state_fragment(ticket)
            if event is not CATCH_UP:
                # Looked at on every change (several at once reach a stream as the last of
                # them); sent again only when they changed.
                now = next(iter(_status_and_assignee(ticket.id)), controls)
                if now != controls:
                    controls = now
                    yield _controls_fragment(ticket.id, agent, csrf_token)
                # A live chat's messages show as they come: the history of them ("wrote a
                # message", "sent a reply") follows with the next other change.
                if not (ticket.is_live and messages):
                    yield _history_fragment(ticket.id)
        event = await stream.next_event(still_here)


def _json_frame(kind: str, data: dict, message_id: int | None = None) -> bytes:
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), event=kind,
                           id=str(message_id) if message_id else None).encode()


async def visitor_frames(stream: TicketStream, session: ChatSession, after: int):
    """The widget's stream: new messages of the conversation as JSON (`message`, with the
    message id as the event id), `typing` while an agent types, and `state` when it ends."""
    def still_here():
        chat.visitor_seen(session)

    event = CATCH_UP
    while event is not None:
        if event is not CATCH_UP and event.kind in SIGNAL_KINDS:
            data = event_data(event)
            if data.get("who") == "agent":
                yield _json_frame("typing", {"name": data.get("name", "")})
        else:
            for message in _new_messages(session.ticket_id, after, event):
                if chat.is_visible(message):
                    yield _json_frame("message", chat.message_json(message, session), message.id)
                after = message.id  # past notes too: the agent's stream then reads the same
            # Read again only when the chat may have ended. (Should another change of the
            # ticket hide its chat.ended in the same moment, the visitor's next post is told.)
            if event is not CATCH_UP and event.kind.startswith("chat."):
                session.state = (ChatSession.select(ChatSession.state)
                                 .where(ChatSession.id == session.id).scalar())
            if session.state != "live":
                yield _json_frame("state", {"state": session.state})
                return  # the widget closes its EventSource on this
        event = await stream.next_event(still_here)
