"""Admins set up mailboxes (a brand's IMAP accounts), test them, and check them for mail now."""
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.mail.imap import ImapError
from app.models import SkippedMail
from app.numbers import whole_number
from app.services import brands, mailboxes
from app.web import admin_required, render, see_other

FORM_FIELDS = ("name", *mailboxes.FIELDS)
CHECKBOXES = ("mark_seen", "paused")


def _mailbox(request):
    try:
        return mailboxes.get_mailbox(request.path_params["name"])
    except mailboxes.MailboxError as exc:
        raise HTTPException(404, str(exc)) from None


def _values(mailbox) -> dict:
    return {**{k: getattr(mailbox, k) for k in FORM_FIELDS}, "brand": mailbox.brand.slug}


def _form_values(form) -> dict:
    values = {k: form.get(k, "") for k in FORM_FIELDS}
    values.update({k: form.get(k) == "on" for k in CHECKBOXES})  # unticked boxes are not sent
    return values


def _form(request, editing, values, error="", field="", status_code=200, result=None):
    skipped = []
    if editing:
        skipped = list(SkippedMail.select().where(SkippedMail.mailbox == editing.id)
                       .order_by(SkippedMail.id.desc()).limit(100))
    return render(request, "pages/admin/mailbox_form.html",
                  {"editing": editing, "values": values, "error": error, "field": field,
                   "result": result, "brands": brands.list_brands(), "skipped": skipped},
                  status_code=status_code)


@admin_required
async def mailbox_list(request):
    return render(request, "pages/admin/mailboxes.html", {"mailboxes": mailboxes.list_mailboxes()})


@admin_required
async def new_mailbox_page(request):
    default = next((b for b in brands.list_brands() if b.is_default), None)
    return _form(request, None, {"brand": default.slug if default else "", "imap_port": 993,
                                 "imap_security": "ssl", "folder": "INBOX", "mark_seen": True})


@admin_required
async def create(request):
    form = await request.form()
    values = _form_values(form)
    try:
        mailbox = mailboxes.create_mailbox(values["name"], values, form.get("password", ""),
                                           by=request.scope["agent"])
    except mailboxes.MailboxError as exc:
        return _form(request, None, values, str(exc), exc.field, 400)
    return see_other(f"/admin/mailboxes/{mailbox.name}")


@admin_required
async def edit_page(request):
    mailbox = _mailbox(request)
    return _form(request, mailbox, _values(mailbox))


@admin_required
async def update(request):
    mailbox = _mailbox(request)
    form = await request.form()
    values = {**_form_values(form), "name": mailbox.name}
    # An empty password field keeps the stored password; it is never sent back to the browser.
    password = form.get("password") or None
    try:
        mailboxes.update_mailbox(mailbox.name, values, password, by=request.scope["agent"])
    except mailboxes.MailboxError as exc:
        return _form(request, mailbox, values, str(exc), exc.field, 400)
    return see_other(f"/admin/mailboxes/{mailbox.name}")


async def _run_action(request, work, *args):
    """Run a mailbox action (it waits on the mail server) in the thread pool and show the
    mailbox page with its outcome in words."""
    mailbox = _mailbox(request)
    try:
        result = {"ok": True, "text": await run_in_threadpool(work, mailbox, *args)}
    except (mailboxes.MailboxError, ImapError) as exc:
        result = {"ok": False, "text": str(exc)}
    mailbox = _mailbox(request)  # the action may have changed its state
    return _form(request, mailbox, _values(mailbox), result=result,
                 status_code=200 if result["ok"] else 502)


def _fetch(mailbox, settings) -> str:
    report = mailboxes.fetch(mailbox.id, settings)
    if report.error:
        raise ImapError(report.error)
    details = [f"{report.duplicates} already stored"]
    if report.skipped:
        details.append(f"{report.skipped} over the size limit, left on the server")
    if report.failed:
        details.append(f"{len(report.failed)} could not be stored")
    mails = "mail" if report.fetched == 1 else "mails"
    return f"Fetched {report.fetched} new {mails} ({', '.join(details)})."


def _retry(mailbox, skipped_id: int, settings) -> str:
    return mailboxes.retry_skipped(skipped_id, settings)


@admin_required
async def test_connection(request):
    return await _run_action(request, mailboxes.test_connection,
                             request.app.state.settings.imap_timeout)


@admin_required
async def fetch_now(request):
    return await _run_action(request, _fetch, request.app.state.settings)


@admin_required
async def retry_skipped(request):
    raw = (await request.form()).get("skipped", "")
    return await _run_action(request, _retry, whole_number(raw) or 0,
                             request.app.state.settings)


routes = [
    Route("/admin/mailboxes", mailbox_list, methods=["GET"]),
    Route("/admin/mailboxes", create, methods=["POST"]),
    Route("/admin/mailboxes/new", new_mailbox_page, methods=["GET"]),
    Route("/admin/mailboxes/{name}", edit_page, methods=["GET"]),
    Route("/admin/mailboxes/{name}", update, methods=["POST"]),
    Route("/admin/mailboxes/{name}/test", test_connection, methods=["POST"]),
    Route("/admin/mailboxes/{name}/fetch", fetch_now, methods=["POST"]),
    Route("/admin/mailboxes/{name}/retry", retry_skipped, methods=["POST"]),
]
