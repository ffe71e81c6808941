"""The public pages of the admins' contact forms: the form, its iframe variant, and what a
submission gets back. Plain HTML, no login, no JavaScript needed; posts from other sites (the
embed snippet) are taken without cookies or a CSRF token and screened for spam instead."""
import re

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app import uploads
from app.security import CONTENT_SECURITY_POLICY
from app.services import brands, forms
from app.web import client_ip, render

HONEYPOT = "website"  # hidden from people by CSS; bots fill it in
MAX_TEXT_BYTES_PER_CHAR = 4  # UTF-8


def frame_policy(brand) -> str:
    """The iframe variant's CSP: our policy, framed only by the brand's sites (by any site
    when the brand names none: the page shows nothing but a public form)."""
    ancestors = " ".join(brands.allowed_origins(brand)) or "*"
    return re.sub(r"frame-ancestors [^;]*", f"frame-ancestors {ancestors}", CONTENT_SECURITY_POLICY)


def _form(request):
    form = forms.public_form(request.path_params["brand"], request.path_params["form"])
    if form is None:
        raise HTTPException(404, "There is no form here; it may have been closed.")
    return form


def _limits(settings) -> uploads.Limits:
    text_bytes = settings.max_message_chars * MAX_TEXT_BYTES_PER_CHAR + 1024
    return uploads.Limits(max_files=settings.form_max_files,
                          max_file_bytes=settings.form_max_file_bytes, max_text_bytes=text_bytes,
                          max_total_bytes=settings.form_max_files * settings.form_max_file_bytes
                          + 4 * text_bytes)


def _render(request, template, form, embedded, context, status_code=200):
    headers = {"Content-Security-Policy": frame_policy(form.brand)} if embedded else None
    return render(request, template, {"brand": form.brand, "form": form, "embedded": embedded,
                                      **context}, status_code=status_code, headers=headers)


def _page(request, form, submission, embedded, error="", status_code=200):
    action = f"/forms/{form.brand.slug}/{form.slug}" + ("/embed" if embedded else "")
    return _render(request, "public/form.html", form, embedded, {
        "fields": forms.page_fields(form.field_list), "submission": submission,
        "values": submission.values, "errors": submission.errors, "error": error,
        "alert_class": "notice" if status_code == 200 else "error", "action": action,
        "id_prefix": "f-"}, status_code)


async def form_page(request, embedded=False):
    form = _form(request)
    return _page(request, form, forms.new_submission(form, request.app.state.settings.secret_key),
                 embedded)


async def form_submit(request, embedded=False):
    form = _form(request)
    settings = request.app.state.settings
    try:
        posted = await uploads.read_form(request, _limits(settings))
    except (uploads.FormTooLarge, uploads.FormUnreadable) as exc:
        status = 413 if isinstance(exc, uploads.FormTooLarge) else 400
        return _page(request, form, forms.new_submission(form, settings.secret_key), embedded,
                     str(exc), status)
    submission = forms.read_submission(form, posted.values, posted.files)
    refusal = forms.screen(form, submission, settings, posted.values.get(HONEYPOT, ""))
    if refusal is None and not request.app.state.rate_limits.allow_form(submission.email,
                                                                        client_ip(request)):
        refusal = forms.RATE_LIMITED
        forms.ask_for_files_again(form, submission)
    if refusal is not None:
        return _page(request, form, submission, embedded, refusal.message, refusal.status)
    attachments = await run_in_threadpool(forms.store_uploads, settings.data_dir, submission)
    result = await request.app.state.intake.receive(forms.incoming(form, submission, attachments))
    return _render(request, "public/contact_thanks.html", form, embedded,
                   {"ticket": result.ticket, "email": submission.email})


async def embed_page(request):
    return await form_page(request, embedded=True)


async def embed_submit(request):
    return await form_submit(request, embedded=True)


routes = [
    Route("/forms/{brand}/{form}", form_page, methods=["GET"]),
    Route("/forms/{brand}/{form}", form_submit, methods=["POST"]),
    Route("/forms/{brand}/{form}/embed", embed_page, methods=["GET"]),
    Route("/forms/{brand}/{form}/embed", embed_submit, methods=["POST"]),
]
