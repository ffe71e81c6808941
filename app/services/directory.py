"""Brands, agents and forms, kept in memory for a few seconds: pages need them, they rarely change.

A change made in this process is seen at once (forget()); one made by another process within
TTL_SECONDS."""
import threading
import time

from app import db
from app.models import Agent, Brand, Form

TTL_SECONDS = 5.0
_lock = threading.Lock()
_cache: dict = {}


def forget() -> None:
    with _lock:
        _cache.clear()


def _load() -> dict:
    with _lock:
        if _cache and time.monotonic() < _cache["expires"] and _cache["db"] == db.generation:
            return _cache
    brands = list(Brand.select().order_by(Brand.name))
    agents = list(Agent.select().order_by(Agent.name))
    forms = list(Form.select(Form, Brand).join(Brand).order_by(Brand.name, Form.name))
    read_at = time.monotonic()
    fresh = {
        "read_at": read_at,
        "expires": read_at + TTL_SECONDS,
        "db": db.generation,
        "brands": brands,
        "brand_ids": {b.slug: b.id for b in brands},
        "brand_by_slug": {b.slug: b for b in brands},
        "brand_by_id": {b.id: b for b in brands},
        "default_brand": min(brands, key=lambda b: (not b.is_default, b.id), default=None),
        "agents": agents,
        "active_agents": [a for a in agents if a.active],
        "agent_by_id": {a.id: a for a in agents},
        "forms": forms,
    }
    with _lock:
        _cache.clear()
        _cache.update(fresh)
    return fresh


def read_at() -> float:
    """When the directory was last read from the database: what is made from it and kept
    elsewhere is keyed by this."""
    return _load()["read_at"]


def brands() -> list[Brand]:
    return _load()["brands"]


def brand(slug: str) -> Brand | None:
    return _load()["brand_by_slug"].get(slug)


def brand_by_id(brand_id: int) -> Brand | None:
    return _load()["brand_by_id"].get(brand_id)


def default_brand() -> Brand | None:
    """The brand marked default, else the first one made."""
    return _load()["default_brand"]


def brand_ids_by_slug() -> dict:
    return _load()["brand_ids"]


def active_agents() -> list[Agent]:
    return _load()["active_agents"]


def active_agent(agent_id: int) -> Agent | None:
    agent = _load()["agent_by_id"].get(agent_id)
    return agent if agent is not None and agent.active else None


def forms() -> list[Form]:
    """Every form (closed ones too: their tickets stay), by brand and name."""
    return _load()["forms"]
