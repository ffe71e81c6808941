"""A ticket's history, read from the event log, in words."""
from app.events import SIGNAL_KINDS, event_data
from app.models import Agent, Event

DESCRIPTIONS = {
    "ticket.created": lambda d: f"created the ticket by {d.get('channel', '')}",
    "ticket.status": lambda d: f"changed the status from {d.get('old')} to {d.get('new')}"
                               + (f" ({d['reason']})" if d.get("reason") else ""),
    "ticket.assigned": lambda d: f"assigned it to {d['assignee']}" if d.get("assignee")
                                 else "unassigned it",
    "message.received": lambda d: "wrote a message",
    "message.queued": lambda d: "queued a confirmation email" if d.get("auto") else "queued a reply",
    "message.sent": lambda d: f"sent {'the confirmation' if d.get('auto') else 'a reply'} "
                              f"to {d.get('to', '')}",
    "message.retrying": lambda d: f"could not send a message (try {d.get('attempts')}), "
                                  f"will try again: {d.get('reason', '')}",
    "message.failed": lambda d: f"could not send a message: {d.get('reason', '')}",
    "message.retried": lambda d: "sent a failed message again",
    "note.added": lambda d: "added an internal note",
    "chat.started": lambda d: "started a live chat",
    "chat.ended": lambda d: f"ended the chat ({d.get('reason', '')})" if d.get("reason")
                            else "ended the chat",
}

# Who did it, when no agent did.
SYSTEM_ACTORS = {"ticket.created": "Customer", "message.received": "Customer",
                 "chat.started": "Customer"}


def history(ticket_id: int) -> list[dict]:
    rows = (Event.select(Event, Agent).left_outer_join(Agent, on=(Event.agent == Agent.id))
            .where((Event.ticket == ticket_id) & Event.kind.not_in(tuple(SIGNAL_KINDS)))
            .order_by(Event.id))
    entries = []
    for event in rows:
        describe = DESCRIPTIONS.get(event.kind)
        actor = event.agent.name if event.agent_id else SYSTEM_ACTORS.get(event.kind, "System")
        entries.append({
            "id": event.id,
            "kind": event.kind,
            "actor": actor,
            "text": describe(event_data(event)) if describe else event.kind,
            "at": event.created_at,
        })
    return entries
