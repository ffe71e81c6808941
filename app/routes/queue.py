"""The queue: the home page for agents, and its live stream of changed tickets."""
import asyncio
import time

from markupsafe import Markup
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response
from starlette.routing import Route

from app import events
from app.live import QueueStream
from app.numbers import whole_number
from app.services import agents, directory, forms, queue
from app.templating import render as render_template
from app.web import current_agent, login_required, render

CATCH_UP_LIMIT = 1000
PRESENCE_EVERY_SECONDS = 30


class StreamResponse(EventSourceResponse):
    """sse-starlette's response without a timeout scope around every send: with a thousand
    open queues that scope cost more than the send itself. A stuck client only stalls its own
    stream, whose queue of pending frames is bounded (QueueStream)."""

    async def _send_with_timeout(self, send, message) -> None:
        await send(message)


@login_required
async def queue_page(request):
    agent = request.scope["agent"]
    queue_filter = queue.QueueFilter.from_params(request.query_params)
    brand_ids = directory.brand_ids_by_slug()
    version = queue.version()
    page = queue.list_tickets(queue_filter, agent.id, brand_ids, version)
    context = {
        "filter": queue_filter,
        "page": page,
        "rows_html": _rows_html(queue_filter, agent.id, page, version),
        "filters_html": _filters_html(queue_filter, agent.id, brand_ids, version),
    }
    # The stream resumes from here, so nothing that happens after this page was read is missed.
    query = queue_filter.query_string()
    context["stream_url"] = (f"/events/queue{query}{'&' if query else '?'}"
                             f"after={request.app.state.broadcaster.last_id}")
    return render(request, "pages/queue.html", context, fragment="partials/_queue.html")


def _rows_html(queue_filter, agent_id: int, page, version: tuple) -> Markup:
    """The page's rows as the row partial renders them (the stream pushes the same partial),
    kept with the page they show, for at most a minute: the rows say how long ago things were,
    to the minute."""
    minute = int(time.time() // 60)
    return queue.kept(version, ("rows", queue_filter, agent_id, minute), lambda: Markup(
        render_template("partials/_ticket_row.html", rows=page.tickets)))


def _filters_html(queue_filter, agent_id: int, brand_ids: dict, version: tuple) -> Markup:
    """The filters bar with its counters, as its partial renders it, kept like the rows (its
    two dozen links cost as much to render as the rest of the page) until the event log grows
    or the brands and forms are read again."""
    return queue.kept(version, ("filters", queue_filter, agent_id, directory.read_at()),
                      lambda: Markup(render_template(
                          "partials/_queue_filters.html", filter=queue_filter,
                          counts=queue.counters(queue_filter, agent_id, brand_ids, version),
                          brands=directory.brands(), forms=directory.forms(),
                          form_fields=forms.filter_fields(queue_filter.form))))


def _resume_point(request) -> int | None:
    """The last event the page has seen; None when it did not say (0 is an empty log)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after", "")
    return whole_number(raw)


async def queue_stream(request):
    agent = current_agent(request)
    if agent is None:
        return Response("Please log in.", status_code=401)
    broadcaster = request.app.state.broadcaster
    stream = QueueStream(request.app.state.queue_feed,
                         queue.QueueFilter.from_params(request.query_params), agent.id)
    resume_from = _resume_point(request)
    # Subscribed first, then the log read up to where the broadcaster is: no gap, no overlap.
    broadcaster.subscribe(stream)
    missed = ([] if resume_from is None
              else list(events.events_after(resume_from, CATCH_UP_LIMIT + 1)))
    missed = [e for e in missed if e.id <= broadcaster.last_id]

    async def frames():
        try:
            if len(missed) > CATCH_UP_LIMIT:
                # Too far behind to replay: tell the page to load itself again.
                yield ServerSentEvent(data="reload", event="reload", id=str(broadcaster.last_id))
                return
            for event, is_new in events.latest_per_ticket(missed):
                ready = stream.frame_for(event, is_new)
                if ready:
                    yield ready
            while True:
                agents.record_seen(agent.id)  # an open queue keeps its agent online (throttled)
                try:
                    async with asyncio.timeout(PRESENCE_EVERY_SECONDS):
                        ready = await stream.pending.get()
                except TimeoutError:
                    continue
                if ready is None:
                    return
                yield ready
        finally:
            broadcaster.unsubscribe(stream)

    return StreamResponse(frames(), ping=15, headers={"Cache-Control": "no-store"})


routes = [
    Route("/", queue_page),
    Route("/events/queue", queue_stream),
]
