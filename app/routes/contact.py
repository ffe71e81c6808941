"""The public contact form of each brand: plain HTML, no login, no JavaScript needed."""
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.services import contact, directory
from app.web import BodyTooLarge, client_ip, posted_form, render

MAX_BODY_BYTES = 256 * 1024
HONEYPOT = "website"  # hidden from people by CSS; bots fill it in


def _brand(request):
    slug = request.path_params.get("slug")
    brand = directory.brand(slug) if slug else directory.default_brand()
    if brand is None:
        raise HTTPException(404, "There is no contact form here.")
    return brand


def _form(request, brand, submission, error="", status_code=200):
    return render(request, "public/contact.html",
                  {"brand": brand, "form": submission, "error": error,
                   "max_message_chars": request.app.state.settings.max_message_chars},
                  status_code=status_code)


async def contact_page(request):
    return _form(request, _brand(request), contact.ContactSubmission())


async def contact_submit(request):
    brand = _brand(request)
    settings = request.app.state.settings
    try:
        form = await posted_form(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _form(request, brand, contact.ContactSubmission(),
                     f"Your message is too large to send (more than {MAX_BODY_BYTES // 1024} KB). "
                     "Please shorten it.", 413)
    submission = contact.ContactSubmission.from_form(form)
    if form.get(HONEYPOT):
        return _form(request, brand, submission, "Your message was not sent because a field meant "
                     "to stay empty was filled in. If you are a person, please clear the "
                     "“Leave this empty” field and send again.", 400)
    submission.errors = contact.validate(submission, settings.max_message_chars)
    if submission.errors:
        return _form(request, brand, submission, "Please correct the marked fields.", 400)
    if not request.app.state.rate_limits.allow_form(submission.email, client_ip(request)):
        return _form(request, brand, submission, "You have sent several messages in a short time. "
                     "Please wait a while before sending another; we have your earlier ones.", 429)
    result = await request.app.state.intake.receive(contact.incoming(brand, submission))
    return render(request, "public/contact_thanks.html",
                  {"brand": brand, "ticket": result.ticket, "email": submission.email})


routes = [
    Route("/contact", contact_page, methods=["GET"]),
    Route("/contact", contact_submit, methods=["POST"]),
    Route("/contact/{slug}", contact_page, methods=["GET"]),
    Route("/contact/{slug}", contact_submit, methods=["POST"]),
]
