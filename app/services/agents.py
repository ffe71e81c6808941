"""Agents: creating, editing, deactivating, checking passwords, and presence (who can chat)."""
import threading
import time
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app import db, events
from app.services import directory
from app.db import transaction
from app.mail import addresses
from app.models import Agent, utcnow
from app.models.accounts import ROLES

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown address like a real one.
_DUMMY_HASH = _hasher.hash("not a real password")

MIN_PASSWORD_LENGTH = 8


class AgentError(ValueError):
    """A problem with what was asked, in words for the person who asked."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def normalize_email(raw: str, field: str = "email") -> str:
    try:
        return addresses.normalize(raw)
    except addresses.InvalidAddress as exc:
        raise AgentError(f"That is not a valid email address: {exc}", field) from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", "password")


def any_agent_exists() -> bool:
    return Agent.select().exists()


def _clean(email: str, name: str, role: str) -> tuple[str, str]:
    if not name.strip():
        raise AgentError("Please give the agent's name.", "name")
    if role not in ROLES:
        raise AgentError("The role must be admin or agent.", "role")
    return normalize_email(email), name.strip()


def create_agent(email: str, name: str, password: str, role: str = "agent", by=None) -> Agent:
    email, name = _clean(email, name, role)
    _check_password(password)
    with transaction():
        if Agent.select().where(Agent.email == email).exists():
            raise AgentError(f"An agent with the address {email} already exists.", "email")
        agent = Agent.create(email=email, name=name, role=role, password_hash=_hasher.hash(password))
        events.record("agent.created", agent=by, agent_id=agent.id, email=email, role=role)
    directory.forget()
    return agent


def create_first_admin(email: str, name: str, password: str) -> Agent:
    """The setup page's one action: only while no agent exists at all."""
    with transaction():
        if any_agent_exists():
            raise AgentError("This helpdesk already has an administrator.")
        return create_agent(email, name, password, role="admin")


def update_agent(agent_id: int, *, name: str, email: str, role: str, active: bool,
                 password: str = "", by=None) -> Agent:
    email, name = _clean(email, name, role)
    with transaction():
        agent = Agent.get_by_id(agent_id)
        if Agent.select().where((Agent.email == email) & (Agent.id != agent_id)).exists():
            raise AgentError(f"An agent with the address {email} already exists.", "email")
        if by is not None and by.id == agent_id and (not active or role != "admin"):
            raise AgentError("You cannot deactivate yourself or take away your own admin role.")
        if agent.role == "admin" and (role != "admin" or not active):
            other_admins = Agent.select().where(
                (Agent.role == "admin") & Agent.active & (Agent.id != agent_id)).count()
            if other_admins == 0:
                raise AgentError("The helpdesk needs at least one active admin.")
        agent.name, agent.email, agent.role, agent.active = name, email, role, active
        if password:
            _check_password(password)
            agent.password_hash = _hasher.hash(password)
        agent.save()
        events.record("agent.updated", agent=by, agent_id=agent.id, role=role, active=active)
    directory.forget()
    return agent


def authenticate(email: str, password: str) -> Agent | None:
    """The active agent with this address and password, or None."""
    agent = Agent.get_or_none(Agent.email == email.strip().lower())
    try:
        _hasher.verify(agent.password_hash if agent else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if agent is None or not agent.active:
        return None
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher.hash(password)
        agent.save()
    return agent


# Presence. last_seen_at is written at most once a minute per agent and process (the moment
# this process last wrote it is remembered here, keyed by the database like directory's cache);
# the conditional UPDATE keeps several processes from writing it more often than that too.
SEEN_EVERY_SECONDS = 60
_seen_written: dict = {}
_seen_lock = threading.Lock()


def record_seen(agent_id: int, force: bool = False) -> None:
    """The agent is here (a request, an open live stream): keep them online."""
    key, now = (db.generation, agent_id), time.monotonic()
    with _seen_lock:
        if not force and now - _seen_written.get(key, -SEEN_EVERY_SECONDS) < SEEN_EVERY_SECONDS:
            return
        _seen_written[key] = now
    moment = utcnow()
    query = Agent.update(last_seen_at=moment).where(Agent.id == agent_id)
    if not force:
        cutoff = moment - timedelta(seconds=SEEN_EVERY_SECONDS)
        query = query.where(Agent.last_seen_at.is_null() | (Agent.last_seen_at < cutoff))
    with transaction():
        query.execute()


def record_gone(agent_id: int) -> None:
    """The agent logged out: offline at once, not after the online window."""
    with _seen_lock:
        _seen_written.pop((db.generation, agent_id), None)
    with transaction():
        Agent.update(last_seen_at=None).where(Agent.id == agent_id).execute()


def set_away(agent_id: int, away: bool) -> None:
    with transaction():
        Agent.update(away=away).where(Agent.id == agent_id).execute()
    if not away:
        record_seen(agent_id, force=True)
    directory.forget()


def anyone_online(online_minutes: int) -> bool:
    """Whether an active agent who is not away was seen within the last online_minutes."""
    cutoff = utcnow() - timedelta(minutes=online_minutes)
    return Agent.select().where(Agent.active & (Agent.away == False)  # noqa: E712 (peewee)
                                & (Agent.last_seen_at >= cutoff)).exists()
