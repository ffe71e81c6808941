"""Admins create, edit and deactivate agents."""
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.models import Agent
from app.services import agents
from app.web import admin_required, render, see_other


def _agent(request) -> Agent:
    agent = Agent.get_or_none(Agent.id == request.path_params["agent_id"])
    if agent is None:
        raise HTTPException(404, "There is no such agent.")
    return agent


@admin_required
async def agent_list(request):
    return render(request, "pages/admin/agents.html",
                  {"agents": list(Agent.select().order_by(Agent.active.desc(), Agent.name))})


@admin_required
async def new_agent_page(request):
    return render(request, "pages/admin/agent_form.html",
                  {"editing": None, "values": {"role": "agent", "active": True}, "error": "",
                   "field": ""})


@admin_required
async def create(request):
    form = await request.form()
    values = {k: form.get(k, "") for k in ("email", "name", "role")}
    try:
        agents.create_agent(values["email"], values["name"], form.get("password", ""),
                            values["role"] or "agent", by=request.scope["agent"])
    except agents.AgentError as exc:
        return render(request, "pages/admin/agent_form.html",
                      {"editing": None, "values": values, "error": str(exc), "field": exc.field},
                      status_code=400)
    return see_other("/admin/agents")


@admin_required
async def edit_page(request):
    agent = _agent(request)
    values = {"email": agent.email, "name": agent.name, "role": agent.role, "active": agent.active}
    return render(request, "pages/admin/agent_form.html",
                  {"editing": agent, "values": values, "error": "", "field": ""})


@admin_required
async def update(request):
    agent = _agent(request)
    form = await request.form()
    values = {"email": form.get("email", ""), "name": form.get("name", ""),
              "role": form.get("role", "agent"), "active": form.get("active") == "on"}
    try:
        agents.update_agent(agent.id, password=form.get("password", ""), by=request.scope["agent"],
                            **values)
    except agents.AgentError as exc:
        return render(request, "pages/admin/agent_form.html",
                      {"editing": agent, "values": values, "error": str(exc), "field": exc.field},
                      status_code=400)
    return see_other("/admin/agents")


routes = [
    Route("/admin/agents", agent_list, methods=["GET"]),
    Route("/admin/agents", create, methods=["POST"]),
    Route("/admin/agents/new", new_agent_page, methods=["GET"]),
    Route("/admin/agents/{agent_id:id}", edit_page, methods=["GET"]),
    Route("/admin/agents/{agent_id:id}", update, methods=["POST"]),
]
