"""The chat widget's domain: who may chat now, starting a chat or leaving a message, the
visitor's messages and typing, ending chats, and the transcript (the ticket's conversation)."""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import peewee

from app import events
from app.db import transaction
from app.intake import Incoming, one_line, receive
from app.mail import addresses
from app.models import Agent, Brand, ChatSession, Event, Message, Ticket, prepared, utcnow
from app.models.chat import ENDED_OFFLINE
from app.services import agents, hours
from app.services.tickets import lock_ticket

LIMITS = {"name": 200, "email": 254, "page_url": 2000}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# How often an open stream or a post of the visitor is written down as "still here".
VISITOR_SEEN_EVERY = timedelta(seconds=30)
ENDED_BY_VISITOR = "the visitor closed it"
ENDED_IDLE = "the visitor left"
ENDED_BY_AGENT = "an agent closed it"


class ChatError(ValueError):
    """What the visitor asked cannot be done; `code` says what kind of no it is."""

    def __init__(self, message: str, code: str = "invalid", field: str = ""):
        super().__init__(message)
        self.code = code  # invalid, too_large, too_many, unavailable, ended, not_found, forbidden
        self.field = field


@dataclass
class Availability:
    online: bool  # an agent is online (not away, seen lately)
    open: bool  # within the brand's business hours

    @property
    def can_chat(self) -> bool:
        return self.online and self.open


def availability(brand: Brand, online_minutes: int) -> Availability:
    return Availability(online=agents.anyone_online(online_minutes),
                        open=hours.is_open(brand.business_hours, brand.timezone, utcnow()))


def unavailable_notice(brand: Brand, available: Availability) -> str:
    if not available.open:
        return (f"We are closed now (our hours: {brand.business_hours}, {brand.timezone} time). "
                "Leave a message and we will answer by email.")
    if not available.online:
        return "Nobody is available to chat right now. Leave a message and we will answer by email."
    return ""


def status(brand: Brand, online_minutes: int) -> dict:
    """What the widget shows on a page: the brand, and a chat or the offline form."""
    available = availability(brand, online_minutes)
    return {"name": brand.name, "color": brand.widget_color, "online": available.online,
            "open": available.open, "show": "chat" if available.can_chat else "offline",
            "notice": unavailable_notice(brand, available)}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Visitor:
    name: str
    email: str
    text: str
    page_url: str


def clean_visitor(name, email, text, page_url, max_chars: int) -> Visitor:
    """The visitor's details and first message, checked; ChatError names the field."""
    values = {"name": name, "email": email, "page_url": page_url}
    for field, value in values.items():
        if not isinstance(value, str):
            raise ChatError(f"The {field.replace('_', ' ')} must be text.", field=field)
        if len(value) > LIMITS[field]:
            raise ChatError(f"This is too long: at most {LIMITS[field]} characters.", field=field)
    if not name.strip():
        raise ChatError("Please tell us your name.", field="name")
    if not email.strip():
        raise ChatError("Please give your email address, so that we can answer.", field="email")
    try:
        email = addresses.normalize(email, internal_ok=False)
    except addresses.InvalidAddress as exc:
        raise ChatError(f"This email address does not look right: {exc}", field="email") from None
    page_url = page_url.strip()
    if page_url and not page_url.lower().startswith(("http://", "https://")):
        raise ChatError("The page address must start with http:// or https://.", field="page_url")
    return Visitor(name=one_line(name, LIMITS["name"]), email=email, text=clean_text(text, max_chars),
                   page_url=one_line(page_url, LIMITS["page_url"]))


def clean_text(text, max_chars: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ChatError("Please write a message.", field="message")
    if len(text) > max_chars:
        raise ChatError(f"Your message is too long: {len(text):,} characters, at most "
                        f"{max_chars:,}.", field="message")
    return text.strip()


def clean_client_id(client_id) -> str:
    """The widget's own id for a message, so that a post sent twice is stored once."""
    if client_id is None or client_id == "":
        return secrets.token_hex(8)
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ChatError("client_id is 1 to 64 letters, digits, - or _.", field="client_id")
    return client_id


def _new_ticket(brand: Brand, visitor: Visitor, secret_key: str, acknowledge: bool) -> Ticket:
    return receive(Incoming(
        channel="chat", brand=brand, sender_email=visitor.email, sender_name=visitor.name,
        subject=one_line(visitor.text[:80]), text=visitor.text, acknowledge=acknowledge,
    ), secret_key).ticket


def _new_session(brand: Brand, ticket: Ticket, visitor: Visitor, origin: str, live: bool):
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = ChatSession.create(
        brand=brand, ticket=ticket, token_hash=hash_token(token), visitor_name=visitor.name,
        visitor_email=visitor.email, page_url=visitor.page_url, origin=origin,
        state="live" if live else "ended", ended_reason="" if live else ENDED_OFFLINE,
        created_at=now, last_visitor_seen_at=now, ended_at=None if live else now)
    return token, session


def start_chat(brand: Brand, origin: str, visitor: Visitor, secret_key: str,
               online_minutes: int) -> tuple[str, ChatSession]:
    """A live chat: a new chat ticket, marked live, with the visitor's first message.
    Returns the visitor token (only its hash is kept) and the session."""
    available = availability(brand, online_minutes)
    if not available.can_chat:
        raise ChatError(unavailable_notice(brand, available), code="unavailable")
    # Intake stores and announces the ticket in its own transaction; the session follows.
    # Should this process die in between, the ticket is an ordinary chat ticket (not live)
    # that the team answers by email.
    ticket = _new_ticket(brand, visitor, secret_key, acknowledge=False)
    with transaction():
        token, session = _new_session(brand, ticket, visitor, origin, live=True)
        ticket = lock_ticket(ticket.id)
        ticket.is_live = True
        ticket.save(only=[Ticket.is_live])
        events.record("chat.started", ticket=ticket, session_id=session.id, page=visitor.page_url)
    events.notify()
    return token, session


def leave_message(brand: Brand, origin: str, visitor: Visitor,
                  secret_key: str) -> tuple[str, ChatSession]:
    """The offline form: a chat ticket answered by email, confirmed by email when the brand
    sends acknowledgements. The session (already ended) lets the visitor see it again."""
    ticket = _new_ticket(brand, visitor, secret_key, acknowledge=brand.ack_enabled)
    with transaction():
        token, session = _new_session(brand, ticket, visitor, origin, live=False)
    return token, session


def find_session(brand: Brand, token: str, origin: str) -> ChatSession:
    """The visitor's session. A token of another brand or site is refused (forbidden), with
    nothing of its conversation."""
    if not token or len(token) > 200:
        raise ChatError("There is no such conversation.", code="not_found")
    found = list(_session_by_token(hash_token(token)))
    if not found:
        raise ChatError("There is no such conversation.", code="not_found")
    session = found[0]
    if session.brand_id != brand.id or session.origin != origin:
        raise ChatError("This conversation belongs elsewhere.", code="forbidden")
    session.brand = brand  # the caller's: not read again when the session needs it
    return session


@prepared
def _session_by_token(token_hash):
    return ChatSession.select().where(ChatSession.token_hash == token_hash)


def visitor_seen(session: ChatSession) -> None:
    """The visitor is still here (a post or an open stream); written at most every 30 s."""
    now = utcnow()
    if session.state != "live" or now - session.last_visitor_seen_at < VISITOR_SEEN_EVERY:
        return
    session.last_visitor_seen_at = now
    with transaction():
        (ChatSession.update(last_visitor_seen_at=now)
         .where((ChatSession.id == session.id) & (ChatSession.last_visitor_seen_at < now))
         .execute())


def _require_live(session: ChatSession) -> None:
    if session.state != "live":
        raise ChatError("This chat has ended. We will answer by email; you can also start a "
                        "new conversation.", code="ended")


def visitor_message(session: ChatSession, text: str, client_id: str, secret_key: str) -> Message:
    """The visitor's message into their live chat; the same client_id twice is one message."""
    _require_live(session)
    result = receive(Incoming(
        channel="chat", brand=session.brand, sender_email=session.visitor_email,
        sender_name=session.visitor_name, subject="", text=text, ticket_id=session.ticket_id,
        channel_ref=f"chat:{session.id}:{client_id}",
    ), secret_key)
    visitor_seen(session)
    return result.message


def visitor_typing(session: ChatSession) -> None:
    _require_live(session)
    with transaction():
        events.record("chat.typing", ticket=session.ticket_id, who="visitor")
    events.notify()


def agent_typing(ticket_id: int, agent: Agent) -> bool:
    """The agent types an answer on a live chat; False (nothing sent) when it is not live."""
    if not Ticket.select().where((Ticket.id == ticket_id) & Ticket.is_live).exists():
        return False
    with transaction():
        events.record("chat.typing", ticket=ticket_id, agent=agent, who="agent", name=agent.name)
    events.notify()
    return True


def end_chat(session_id: int, reason: str, idle_before=None, agent: Agent | None = None) -> bool:
    """End a live chat: the ticket stays in the queue, answered by email from now on. With
    idle_before, only if the visitor has not been seen since (checked under the lock); agent:
    who closed it, when an agent did."""
    with transaction():
        ticket = lock_ticket(ChatSession.select(ChatSession.ticket)
                             .where(ChatSession.id == session_id).scalar())
        session = ChatSession.get_by_id(session_id)  # read under the ticket's lock
        if session.state != "live":
            return False
        if idle_before is not None and session.last_visitor_seen_at >= idle_before:
            return False
        session.state, session.ended_reason, session.ended_at = "ended", reason, utcnow()
        session.save(only=[ChatSession.state, ChatSession.ended_reason, ChatSession.ended_at])
        ticket.is_live = False
        ticket.save(only=[Ticket.is_live])
        # Typing signals only mattered while the chat was live; the log keeps what happened.
        (Event.delete().where((Event.ticket == ticket.id) & (Event.kind == "chat.typing"))
         .execute())
        events.record("chat.ended", ticket=ticket, agent=agent, session_id=session.id,
                      reason=reason)
    events.notify()
    return True


def end_chat_of_ticket(ticket_id: int, agent: Agent) -> bool:
    """An agent closes the ticket's live chat (the visitor's widget says it has ended)."""
    session = session_of_ticket(ticket_id)
    return session is not None and end_chat(session.id, ENDED_BY_AGENT, agent=agent)


def end_idle_chats(idle_minutes: int) -> int:
    """End live chats whose visitor has not been seen for idle_minutes; returns how many."""
    cutoff = utcnow() - timedelta(minutes=idle_minutes)
    idle = (ChatSession.select(ChatSession.id)
            .where((ChatSession.state == "live") & (ChatSession.last_visitor_seen_at < cutoff))
            .limit(500))
    return sum(end_chat(row.id, ENDED_IDLE, idle_before=cutoff) for row in list(idle))


def session_of_ticket(ticket_id: int) -> ChatSession | None:
    return (ChatSession.select().where(ChatSession.ticket == ticket_id)
            .order_by(ChatSession.id.desc()).first())


VISIBLE_DIRECTIONS = ("incoming", "outgoing")


def is_visible(message: Message) -> bool:
    """The visitor sees their messages and the team's answers, never notes or automatic mail."""
    return message.direction in VISIBLE_DIRECTIONS and not message.is_auto


def visible_messages(ticket_id: int, after: int = 0, limit: int = 500) -> list:
    """What the visitor sees of the conversation (is_visible), oldest first; only the columns
    the widget shows, with the author's name."""
    return list(Message.select(Message.id, Message.direction, Message.body_text,
                               Message.created_at, Message.channel_ref, Agent.id, Agent.name)
                .join(Agent, peewee.JOIN.LEFT_OUTER, on=(Message.author == Agent.id))
                .where((Message.ticket == ticket_id) & (Message.id > after)
                       & Message.direction.in_(VISIBLE_DIRECTIONS)
                       & (Message.is_auto == False))  # noqa: E712 (peewee expression)
                .order_by(Message.id).limit(limit))


def message_json(message, session: ChatSession) -> dict:
    """A message as the widget shows it (with textContent there): read with its author's name
    (visible_messages(), the ticket streams), or the visitor's own just stored."""
    incoming = message.direction == "incoming"
    prefix = f"chat:{session.id}:"
    ref = message.channel_ref or ""
    return {
        "id": message.id,
        "from": "visitor" if incoming else "agent",
        "name": session.visitor_name if incoming else (message.author.name if message.author
                                                       else session.brand.name),
        "text": message.body_text,
        "at": message.created_at.isoformat(timespec="seconds") + "Z",
        "client_id": ref[len(prefix):] if ref.startswith(prefix) else None,
    }


def transcript(session: ChatSession, after: int = 0) -> dict:
    return {"state": session.state,
            "reference": session.ticket.reference,
            "visitor": {"name": session.visitor_name, "email": session.visitor_email},
            "messages": [message_json(m, session)
                         for m in visible_messages(session.ticket_id, after)]}
