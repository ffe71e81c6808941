"""Admins manage brands (outgoing mail, acknowledgements, chat widget) and send a test email."""
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.mail.smtp import SendError
from app.services import brands
from app.web import admin_required, render, see_other

FORM_FIELDS = ("slug", *brands.FIELDS)


def _brand(request):
    try:
        return brands.get_brand(request.path_params["slug"])
    except brands.BrandError as exc:
        raise HTTPException(404, str(exc)) from None


def _form(request, editing, values, error="", field="", status_code=200, test_result=None):
    return render(request, "pages/admin/brand_form.html",
                  {"editing": editing, "values": values, "error": error, "field": field,
                   "test_result": test_result, "base_url": request.app.state.settings.base_url},
                  status_code=status_code)


@admin_required
async def brand_list(request):
    return render(request, "pages/admin/brands.html", {"brands": brands.list_brands()})


@admin_required
async def new_brand_page(request):
    return _form(request, None, {"smtp_port": 587, "smtp_security": "starttls",
                                 "widget_color": "#2f5fd0", "timezone": "UTC"})


@admin_required
async def create(request):
    form = await request.form()
    values = {k: form.get(k, "") for k in FORM_FIELDS}
    values["ack_enabled"] = form.get("ack_enabled") == "on"
    try:
        brand = brands.create_brand(values["slug"], values, form.get("smtp_password", ""),
                                    by=request.scope["agent"])
    except brands.BrandError as exc:
        return _form(request, None, values, str(exc), exc.field, 400)
    return see_other(f"/admin/brands/{brand.slug}")


@admin_required
async def edit_page(request):
    brand = _brand(request)
    return _form(request, brand, {k: getattr(brand, k) for k in FORM_FIELDS})


@admin_required
async def update(request):
    brand = _brand(request)
    form = await request.form()
    values = {k: form.get(k, "") for k in FORM_FIELDS}
    values["slug"] = brand.slug
    values["ack_enabled"] = form.get("ack_enabled") == "on"
    # An empty password field keeps the stored password; it is never sent back to the browser.
    password = form.get("smtp_password") or None
    if form.get("clear_smtp_password") == "on":
        password = ""
    try:
        brands.update_brand(brand.slug, values, password, by=request.scope["agent"])
    except brands.BrandError as exc:
        return _form(request, brand, values, str(exc), exc.field, 400)
    return see_other(f"/admin/brands/{brand.slug}")


@admin_required
async def test_email(request):
    brand = _brand(request)
    form = await request.form()
    to = form.get("to", "") or request.scope["agent"].email
    status_code = 200
    try:
        await run_in_threadpool(brands.send_test_email, brand, to,
                                request.app.state.settings.smtp_timeout)
        result = {"ok": True, "text": f"The test email to {to} was accepted by "
                                      f"{brand.smtp_host}:{brand.smtp_port}."}
    except brands.BrandError as exc:  # the address typed in
        result, status_code = {"ok": False, "text": str(exc)}, 400
    except SendError as exc:  # the server's answer, or none
        result, status_code = {"ok": False, "text": str(exc)}, 502
    return _form(request, brand, {k: getattr(brand, k) for k in FORM_FIELDS},
                 test_result=result, status_code=status_code)


routes = [
    Route("/admin/brands", brand_list, methods=["GET"]),
    Route("/admin/brands", create, methods=["POST"]),
    Route("/admin/brands/new", new_brand_page, methods=["GET"]),
    Route("/admin/brands/{slug}", edit_page, methods=["GET"]),
    Route("/admin/brands/{slug}", update, methods=["POST"]),
    Route("/admin/brands/{slug}/test-email", test_email, methods=["POST"]),
]
