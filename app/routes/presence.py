"""An agent sets themselves away (no new chats) or available again, from the top bar."""
from urllib.parse import urlsplit

from starlette.routing import Route

from app.services import agents
from app.web import login_required, see_other


def _back(request) -> str:
    """The page the form was on, when it is a page of this site; else the queue."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/") \
            or referer.path.startswith("//"):
        return "/"
    return referer.path + (f"?{referer.query}" if referer.query else "")


@login_required
async def set_presence(request):
    form = await request.form()
    agents.set_away(request.scope["agent"].id, form.get("away") == "1")
    return see_other(_back(request))


routes = [Route("/presence", set_presence, methods=["POST"])]
