"""Logging in and out, and the one-time creation of the first admin."""
import asyncio

from starlette.routing import Route

from app.services import agents
from app.web import client_ip, current_agent, render, see_other


def _safe_next(target: str) -> str:
    # Only paths on this site: never "//evil.example", "/\\evil.example" (browsers read the
    # backslash as a slash) or "https://...".
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


async def login_page(request):
    if not agents.any_agent_exists():
        return see_other("/setup")
    if current_agent(request):
        return see_other("/")
    return render(request, "pages/login.html", {"email": "", "error": "",
                                                "next": _safe_next(request.query_params.get("next", "/"))})


async def login(request):
    form = await request.form()
    email, password = form.get("email", "").strip(), form.get("password", "")
    next_url = _safe_next(form.get("next", "/"))
    limits = request.app.state.rate_limits
    ip = client_ip(request)

    def refuse(error: str, status: int):
        return render(request, "pages/login.html", {"email": email, "error": error, "next": next_url},
                      status_code=status)

    wait = limits.login_refused_for(email, ip)
    if wait:
        minutes = max(1, round(wait / 60))
        return refuse(f"Too many failed logins. Please try again in {minutes} minute"
                      f"{'s' if minutes != 1 else ''}.", 429)
    agent = agents.authenticate(email, password)
    if agent is None:
        limits.record_login_failure(email, ip)
        # Each failure past the second costs the guesser more time.
        await asyncio.sleep(min(3.0, 0.5 * max(0, limits.login_failures(email) - 2)))
        return refuse("The email or password is wrong, or the account is deactivated.", 400)
    limits.clear_login_failures(email)
    request.session.clear()
    request.session["agent_id"] = agent.id
    agents.record_seen(agent.id, force=True)
    return see_other(next_url)


async def logout(request):
    agent = current_agent(request)
    if agent is not None:
        agents.record_gone(agent.id)  # no chats for an agent who has left
    request.session.clear()
    return see_other("/login")


async def setup_page(request):
    if agents.any_agent_exists():
        return see_other("/login")
    return render(request, "pages/setup.html", {"values": {}, "error": "", "field": ""})


async def setup(request):
    form = await request.form()
    values = {"email": form.get("email", ""), "name": form.get("name", "")}
    try:
        agent = agents.create_first_admin(values["email"], values["name"], form.get("password", ""))
    except agents.AgentError as exc:
        if agents.any_agent_exists():
            return see_other("/login")
        return render(request, "pages/setup.html", {"values": values, "error": str(exc),
                                                    "field": exc.field}, status_code=400)
    request.session.clear()
    request.session["agent_id"] = agent.id
    return see_other("/")


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/setup", setup_page, methods=["GET"]),
    Route("/setup", setup, methods=["POST"]),
]
