"""Admins build contact forms: fields in their order, a live preview, and the embed snippets.

The editor is one plain HTML form. Adding, moving and removing fields are buttons that post it
and show it again with the change (not saved until Save), so it works without JavaScript; with
htmx, every change also refreshes the preview beside it."""
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.numbers import whole_number
from app.services import brands, directory, forms
from app.web import admin_required, render, see_other

UNSAVED = "Not saved yet: press Save to keep your changes."


def _editing(request):
    """The form being edited, or None on the page for a new one."""
    if "form_id" not in request.path_params:
        return None
    form = forms.get_form(request.path_params["form_id"])
    if form is None:
        raise HTTPException(404, "There is no such form.")
    return form


def _brand_id(raw: str) -> int | None:
    return whole_number(raw)


def _posted(posted) -> tuple[dict, list]:
    values = {name: posted.get(name, "") for name in ("name", "slug", "intro")}
    values["active"] = posted.get("active") == "on"  # an unticked box is not sent
    return values, forms.fields_from_editor(posted)


def _editor(request, editing, brand_id, values, fields, errors=None, error="", notice="",
            status_code=200):
    brand = editing.brand if editing else directory.brand_by_id(brand_id)
    context = {"editing": editing, "brand": brand, "brands": directory.brands(), "values": values,
               "fields": fields, "errors": errors or {}, "error": error, "notice": notice,
               "kinds": forms.KINDS, "patterns": forms.PATTERNS, "max_fields": forms.MAX_FIELDS,
               "preview_fields": forms.page_fields(fields)}
    if editing:
        base_url = request.app.state.settings.base_url.rstrip("/")
        context.update(public_url=f"{base_url}/forms/{brand.slug}/{editing.slug}",
                       snippet=forms.embed_snippet(editing, base_url),
                       iframe_snippet=forms.iframe_snippet(editing, base_url),
                       origins=brands.allowed_origins(brand))
    return render(request, "pages/admin/form_editor.html", context, status_code=status_code)


@admin_required
async def form_list(request):
    return render(request, "pages/admin/forms.html", {"forms": forms.list_forms()})


@admin_required
async def new_form_page(request):
    default = directory.default_brand()
    return _editor(request, None, default.id if default else None,
                   {"name": "", "slug": "", "intro": "", "active": True}, [])


@admin_required
async def edit_page(request):
    form = _editing(request)
    notice = "Saved." if request.query_params.get("saved") else ""
    values = {"name": form.name, "slug": form.slug, "intro": form.intro, "active": form.active}
    return _editor(request, form, form.brand_id, values, form.field_list, notice=notice)


@admin_required
async def save(request):
    """Save, or one of the editor's buttons (add, move, remove a field; preview)."""
    editing = _editing(request)
    posted = await request.form()
    values, fields = _posted(posted)
    brand_id = editing.brand_id if editing else _brand_id(posted.get("brand", ""))
    action = posted.get("action", "save")
    if action != "save":
        fields = forms.apply_action(fields, action, posted.get("new_kind", "text"))
        return _editor(request, editing, brand_id, values, fields, notice=UNSAVED)
    try:
        form = forms.save_form(editing.id if editing else None, brand_id, values, fields,
                               by=request.scope["agent"])
    except forms.FormError as exc:
        return _editor(request, editing, brand_id, values, fields, errors=exc.errors,
                       error=str(exc), status_code=400)
    return see_other(f"/admin/forms/{form.id}?saved=1")


@admin_required
async def preview(request):
    """The live preview: the editor's fields as posted, in the public page's own partial."""
    posted = await request.form()
    values, fields = _posted(posted)
    brand_id = _brand_id(posted.get("brand", ""))
    brand = directory.brand_by_id(brand_id)
    return render(request, "partials/_form_preview.html",
                  {"brand": brand, "values": values, "preview_fields": forms.page_fields(fields)})


routes = [
    Route("/admin/forms", form_list, methods=["GET"]),
    Route("/admin/forms/new", new_form_page, methods=["GET"]),
    Route("/admin/forms/new", save, methods=["POST"]),
    Route("/admin/forms/preview", preview, methods=["POST"]),
    Route("/admin/forms/{form_id:id}", edit_page, methods=["GET"]),
    Route("/admin/forms/{form_id:id}", save, methods=["POST"]),
]
