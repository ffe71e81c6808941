"""Contact forms: building and editing a form's fields, checking a submission against them, and
turning it into a ticket that keeps its own copy of the fields."""
import json
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeSerializer

from app import events
from app.db import transaction
from app.intake import Incoming, one_line
from app.mail import addresses
from app.models import Brand, Form, TicketField, utcnow
from app.numbers import whole_number
from app.services import blobs, contact, directory
from app.templating import render

# What an admin can add, in the order the editor offers them.
KINDS = {
    "text": "Short text", "textarea": "Long text", "email": "Email", "phone": "Phone",
    "number": "Number", "choice": "Choice list", "checkbox": "Checkbox",
    "order": "Order number", "file": "File upload",
}
# What an order number may look like.
PATTERNS = {"": "Anything", "digits": "Digits only", "alnum": "Letters and digits only",
            "shape": "This shape"}
# The queue filters by these; their values are short.
FILTERABLE_KINDS = ("choice", "checkbox")
# Always on every form, in this order around the admin's fields (message comes last).
BUILT_IN = {
    "name": {"key": "name", "kind": "text", "label": "Your name", "help": "", "required": True,
             "input": "name", "autocomplete": "name"},
    "email": {"key": "email", "kind": "email", "label": "Your email",
              "help": "We answer to this address.", "required": True, "input": "email",
              "autocomplete": "email"},
    "message": {"key": "message", "kind": "textarea", "label": "Message", "help": "",
                "required": True, "input": "message", "rows": 8},
}
MAX_FIELDS = 30
MAX_OPTIONS = 50
LIMITS = {"label": 200, "help": 500, "option": 100, "shape": 40, "name": 100, "intro": 2000}
VALUE_LIMITS = {"text": 200, "email": 254, "phone": 40, "number": 30, "choice": 100, "order": 64}
TOKEN_MAX_AGE = 24 * 3600  # a page open longer than this is treated like one we did not serve

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KEY = re.compile(r"^[a-z0-9_]{1,40}$")
_SHAPE = re.compile(r"^[A-Za-z0-9#? ./-]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]+$")
_NUMBER = re.compile(r"^-?[0-9]+([.,][0-9]+)?$")
_SUBMISSION_ID = re.compile(r"^[0-9a-f]{32}$")
_EDITOR_INPUT = re.compile(r"^fields-(\d+)-(key|kind|label|help|required|options|pattern|shape)$")


class FormError(ValueError):
    """What is wrong with a form an admin is saving: a message per input name."""

    def __init__(self, errors: dict):
        super().__init__("Please correct the marked fields.")
        self.errors = errors


# Building and editing forms


def blank_field(kind: str) -> dict:
    return {"key": "", "kind": kind if kind in KINDS else "text", "label": "", "help": "",
            "required": False, "options": [], "pattern": "", "shape": ""}


def fields_from_editor(posted) -> list[dict]:
    """The editor's fields as posted (inputs fields-N-label, ...), in their order on the page."""
    rows: dict[int, dict] = {}
    for name, value in posted.multi_items():
        match = _EDITOR_INPUT.match(name)
        if match and int(match.group(1)) < MAX_FIELDS * 2:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value
    fields = []
    for index in sorted(rows)[:MAX_FIELDS]:
        raw = rows[index]
        fields.append({
            **blank_field(raw.get("kind", "")),
            "key": raw.get("key", "").strip(),
            "label": raw.get("label", "").strip(),
            "help": raw.get("help", "").strip(),
            "required": raw.get("required") == "on",
            "options": [line.strip() for line in raw.get("options", "").splitlines() if line.strip()],
            "pattern": raw.get("pattern", "") if raw.get("pattern", "") in PATTERNS else "",
            "shape": raw.get("shape", "").strip(),
        })
    return fields


def apply_action(fields: list[dict], action: str, new_kind: str = "text") -> list[dict]:
    """The editor's buttons: add, remove-N, up-N, down-N; anything else changes nothing."""
    fields = list(fields)
    verb, _, number = action.partition("-")
    index = whole_number(number)
    if verb == "add" and len(fields) < MAX_FIELDS:
        fields.append(blank_field(new_kind))
    elif index is not None and index < len(fields):
        if verb == "remove":
            del fields[index]
        elif verb == "up" and index > 0:
            fields[index - 1], fields[index] = fields[index], fields[index - 1]
        elif verb == "down" and index < len(fields) - 1:
            fields[index + 1], fields[index] = fields[index], fields[index + 1]
    return fields


def make_key(label: str, taken: set) -> str:
    """A field's key, from its label when it is created: lowercase ASCII letters, digits, _."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_label.lower()).strip("_")
    if len(base) > 32:  # cut at a word
        base = base[:33].rsplit("_", 1)[0] if "_" in base[:33] else base[:32]
    base = base or "field"
    key, n = base, 1
    while key in taken or key in BUILT_IN:
        n += 1
        key = f"{base}_{n}"
    return key


def check_fields(fields: list[dict]) -> dict:
    """Per-input messages for what is wrong with the fields; empty when they can be saved."""
    errors, seen = {}, set()
    for n, f in enumerate(fields):
        if f["key"] and (not _KEY.match(f["key"]) or f["key"] in BUILT_IN or f["key"] in seen):
            errors[f"fields-{n}-label"] = "This field's key is damaged; remove the field and add it again."
        seen.add(f["key"])
        if not f["label"]:
            errors[f"fields-{n}-label"] = "Please give this field a label."
        for name, limit in (("label", LIMITS["label"]), ("help", LIMITS["help"])):
            if len(f[name]) > limit:
                errors[f"fields-{n}-{name}"] = f"This is too long: at most {limit} characters."
        if f["kind"] == "choice":
            if not f["options"]:
                errors[f"fields-{n}-options"] = "Please list the options, one per line."
            elif len(f["options"]) > MAX_OPTIONS:
                errors[f"fields-{n}-options"] = f"At most {MAX_OPTIONS} options, please."
            elif any(len(o) > LIMITS["option"] for o in f["options"]):
                errors[f"fields-{n}-options"] = f"An option is at most {LIMITS['option']} characters."
            elif len(set(f["options"])) != len(f["options"]):
                errors[f"fields-{n}-options"] = "An option is listed twice."
        if f["kind"] == "order" and f["pattern"] == "shape":
            if not _SHAPE.match(f["shape"]) or len(f["shape"]) > LIMITS["shape"]:
                errors[f"fields-{n}-shape"] = (
                    "Write the shape with # for a digit and ? for a letter; other letters, digits, "
                    "spaces and . / - stand for themselves (like AB-#####).")
    return errors


def _with_keys(fields: list[dict]) -> list[dict]:
    """Fields made to be stored: a key for each new one (kept forever after), and only the
    settings that belong to its kind."""
    taken = {f["key"] for f in fields if f["key"]}
    stored = []
    for f in fields:
        key = f["key"] or make_key(f["label"], taken)
        taken.add(key)
        stored.append({
            **f, "key": key,
            "options": f["options"] if f["kind"] == "choice" else [],
            "pattern": f["pattern"] if f["kind"] == "order" else "",
            "shape": f["shape"] if f["kind"] == "order" and f["pattern"] == "shape" else "",
        })
    return stored


def check_form_values(values: dict, brand_id: int | None, form_id: int | None) -> tuple[dict, dict]:
    """(cleaned, errors) for the form's own settings: name, slug, intro, active."""
    errors, cleaned = {}, {}
    cleaned["name"] = (values.get("name") or "").strip()
    if not cleaned["name"]:
        errors["name"] = "Please give the form a name."
    elif len(cleaned["name"]) > LIMITS["name"]:
        errors["name"] = f"This is too long: at most {LIMITS['name']} characters."
    slug = (values.get("slug") or "").strip().lower() or make_key(cleaned["name"], set()).replace("_", "-")
    cleaned["slug"] = slug
    if not _SLUG.match(slug):
        errors["slug"] = "The address uses lowercase letters, digits and dashes, like returns."
    elif brand_id and Form.select().where((Form.brand == brand_id) & (Form.slug == slug)
                                          & (Form.id != (form_id or 0))).exists():
        errors["slug"] = f"This brand has a form at {slug} already."
    cleaned["intro"] = (values.get("intro") or "").strip()
    if len(cleaned["intro"]) > LIMITS["intro"]:
        errors["intro"] = f"This is too long: at most {LIMITS['intro']} characters."
    cleaned["active"] = bool(values.get("active"))
    if brand_id is None or Brand.get_or_none(Brand.id == brand_id) is None:
        errors["brand"] = "Please choose the brand this form belongs to."
    return cleaned, errors


def save_form(form_id: int | None, brand_id: int | None, values: dict, fields: list[dict],
              by=None) -> Form:
    """Create (form_id None) or change a form; raises FormError with a message per input.
    Tickets made earlier keep their own copy of the fields, so nothing of theirs changes."""
    with transaction():
        form = Form.get_or_none(Form.id == form_id) if form_id else None
        if form is not None:
            brand_id = form.brand_id  # a form stays with its brand
            values = {**values, "slug": values.get("slug") or form.slug}  # and at its address
        cleaned, errors = check_form_values(values, brand_id, form_id)
        errors.update(check_fields(fields))
        if errors:
            raise FormError(errors)
        stored = json.dumps(_with_keys(fields))
        if form is None:
            form = Form.create(brand=brand_id, fields=stored, **cleaned)
            events.record("form.created", agent=by, form=form.id, name=form.name)
        else:
            for name, value in cleaned.items():
                setattr(form, name, value)
            form.fields, form.updated_at = stored, utcnow()
            form.save()
            events.record("form.updated", agent=by, form=form.id, name=form.name)
    directory.forget()
    return form


def get_form(form_id: int) -> Form | None:
    return Form.select(Form, Brand).join(Brand).where(Form.id == form_id).first()


def public_form(brand_slug: str, form_slug: str) -> Form | None:
    """The active form at /forms/<brand>/<form>."""
    return (Form.select(Form, Brand).join(Brand)
            .where((Brand.slug == brand_slug) & (Form.slug == form_slug) & Form.active).first())


def list_forms() -> list[Form]:
    return list(Form.select(Form, Brand).join(Brand).order_by(Brand.name, Form.name))


# What pages show


def pattern_regex(f: dict) -> str:
    """The regular expression an order number must match whole, or "" for anything. The same
    text serves Python's re and the browser's pattern attribute."""
    if f.get("kind") != "order":
        return ""
    if f.get("pattern") == "digits":
        return "[0-9]+"
    if f.get("pattern") == "alnum":
        return "[A-Za-z0-9]+"
    if f.get("pattern") == "shape" and f.get("shape"):
        parts = {"#": "[0-9]", "?": "[A-Za-z]", ".": r"\.", "/": r"\/"}
        return "".join(parts.get(char, char) for char in f["shape"])
    return ""


def page_fields(form_fields: list[dict]) -> list[dict]:
    """Everything the form shows, in order: name, email, the admin's fields, message; each with
    its input name and, for order numbers, its pattern."""
    custom = [{**f, "input": f"field-{f['key']}" if f["key"] else "",
               "html_pattern": pattern_regex(f)} for f in form_fields]
    return [BUILT_IN["name"], BUILT_IN["email"], *custom, BUILT_IN["message"]]


def filter_fields(form_id: str) -> list[dict]:
    """For the queue's filters: the chosen form's choice and checkbox fields, with the values
    each can be filtered by (the options as they are now; older values still filter by URL)."""
    form = next((f for f in directory.forms() if str(f.id) == form_id), None) if form_id else None
    if form is None:
        return []
    return [{"key": f["key"], "label": f["label"],
             "values": f["options"] if f["kind"] == "choice" else ["yes", "no"]}
            for f in form.field_list if f["kind"] in FILTERABLE_KINDS]


def embed_snippet(form: Form, base_url: str) -> str:
    """The plain HTML form for another website, as text to copy."""
    return render("public/snippet_form.html", form=form, fields=page_fields(form.field_list),
                  base_url=base_url.rstrip("/"), values={}, errors={}, id_prefix="hd-")


def iframe_snippet(form: Form, base_url: str) -> str:
    """The iframe variant for another website, as text to copy."""
    return render("public/snippet_iframe.html", form=form, base_url=base_url.rstrip("/"))


def ticket_panel(ticket) -> dict | None:
    """The fields a ticket was submitted with, for its sidebar; None for a ticket of no form."""
    if not ticket.form_id:
        return None
    rows = list(TicketField.select().where(TicketField.ticket == ticket.id)
                .order_by(TicketField.position))
    return {"form_id": ticket.form_id, "form": Form.get_or_none(Form.id == ticket.form_id),
            "fields": rows, "filterable": FILTERABLE_KINDS}


# Submissions


def start_token(secret_key: str, form_id: int, started_at: float | None = None) -> str:
    """Signed (form, time the page was served): the minimum fill time is measured from it."""
    moment = int(started_at if started_at is not None else time.time())
    return URLSafeSerializer(secret_key, salt="form-started").dumps([form_id, moment])


def seconds_since_start(secret_key: str, form_id: int, token: str) -> float | None:
    """How long ago the page with this token was served; None when the token is missing, not
    ours, of another form or too old (a page from the embed snippet has none)."""
    try:
        token_form, started = URLSafeSerializer(secret_key, salt="form-started").loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    elapsed = time.time() - started
    if token_form != form_id or not 0 <= elapsed <= TOKEN_MAX_AGE:
        return None
    return elapsed


@dataclass
class Submission:
    """What a visitor sent: the text of each field by key, the files of each file field."""

    values: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # key -> [app.uploads.PostedFile]
    submission_id: str = field(default_factory=lambda: secrets.token_hex(16))
    token: str = ""
    errors: dict = field(default_factory=dict)

    @property
    def email(self) -> str:
        return self.values.get("email", "")


def new_submission(form: Form, secret_key: str) -> Submission:
    return Submission(token=start_token(secret_key, form.id))


def read_submission(form: Form, posted, files: list) -> Submission:
    """The submission from the posted values (a multidict) and files (app.uploads.PostedFile)."""
    values, by_key = {}, {}
    for f in page_fields(form.field_list):
        if f["kind"] == "file":
            by_key[f["key"]] = [p for p in files if p.name == f["input"]]
        else:
            values[f["key"]] = posted.get(f["input"], "")
    submission_id = posted.get("submission_id", "")
    return Submission(values=values, files=by_key,
                      submission_id=submission_id if _SUBMISSION_ID.match(submission_id)
                      else secrets.token_hex(16),
                      token=posted.get("started", ""))


def _field_error(f: dict, value: str, files: list, settings) -> str:
    kind = f["kind"]
    if kind == "file":
        refused = [p for p in files if p.refused]
        if any(p.refused == "size" for p in refused):
            limit = settings.form_max_file_bytes / 1024 / 1024
            names = ", ".join(p.filename for p in refused if p.refused == "size")
            return (f"{names}: a file can be at most {limit:g} MB. Please choose a smaller file "
                    "(a browser cannot keep a chosen file, so choose every file again).")
        if refused:
            return (f"At most {settings.form_max_files} files can be sent with the form. Please "
                    "choose fewer (a browser cannot keep a chosen file, so choose them again).")
        return "Please attach a file." if f["required"] and not files else ""
    if kind == "checkbox":
        return "Please tick this box to go on." if f["required"] and not value else ""
    value = value.strip()
    if not value:
        return ("Please choose one." if kind == "choice" else "Please fill this in.") \
            if f["required"] else ""
    limit = VALUE_LIMITS.get(kind, settings.max_message_chars)
    if len(value) > limit:
        return f"This is too long: {len(value):,} characters, at most {limit:,}."
    if kind == "choice" and value not in f["options"]:
        return "Please choose one of the listed options."
    if kind == "phone" and (not _PHONE.match(value) or sum(c.isdigit() for c in value) < 5):
        return "This phone number does not look right: use digits, spaces and + ( ) - only."
    if kind == "number" and not _NUMBER.match(value):
        return "Please give a number, like 3 or 2.5."
    if kind == "email":
        try:
            addresses.normalize(value, internal_ok=False)
        except addresses.InvalidAddress as exc:
            return f"This email address does not look right: {exc}"
    if kind == "order" and pattern_regex(f) and not re.fullmatch(pattern_regex(f), value):
        return {"digits": "Please use digits only, like 12345.",
                "alnum": "Please use letters and digits only, without spaces or dashes.",
                }.get(f["pattern"], f"It should look like {f['shape']}, where # is a digit "
                                    "and ? a letter.")
    return ""


def validate(form: Form, submission: Submission, settings) -> dict:
    """Per-field messages for what is wrong; empty when the submission can be taken. Name,
    email and message are checked as on the basic contact form (the email is normalized)."""
    basic = contact.ContactSubmission(name=submission.values.get("name", ""),
                                      email=submission.values.get("email", ""),
                                      message=submission.values.get("message", ""))
    errors = contact.validate(basic, settings.max_message_chars)
    submission.values["email"] = basic.email
    for f in form.field_list:
        message = _field_error(f, submission.values.get(f["key"], ""),
                               submission.files.get(f["key"], []), settings)
        if message:
            errors[f["key"]] = message
    return errors


@dataclass
class Refusal:
    """Why a submission is not taken, in words for a person, and the HTTP status."""

    message: str
    status: int


def screen(form: Form, submission: Submission, settings, honeypot: str) -> Refusal | None:
    """The checks before a submission becomes a ticket (the rate limit aside): the honeypot,
    the fields, and the time since the page was served. On a refusal, submission.errors says
    what to correct and submission.token is what the page sent again should carry."""
    submission.errors = validate(form, submission, settings)
    refusal = None
    if honeypot:
        refusal = Refusal("Your message was not sent because a field meant to stay empty was "
                          "filled in. If you are a person, please clear the “Leave this empty” "
                          "field and send again.", 400)
    elapsed = seconds_since_start(settings.secret_key, form.id, submission.token)
    if refusal is None and elapsed is None:
        # Sent from a page we did not serve (the embed snippet on another site) or one open
        # for a day: shown again with everything kept, to send with one more click. The new
        # token counts as old enough, so that click is taken at once.
        submission.token = start_token(settings.secret_key, form.id,
                                       time.time() - settings.form_min_fill_seconds)
        if not submission.errors:
            refusal = Refusal("Please check what you entered and press Send to confirm.", 200)
    if refusal is None and submission.errors:
        refusal = Refusal("Please correct the marked fields.", 400)
    if refusal is None and elapsed is not None and elapsed < settings.form_min_fill_seconds:
        refusal = Refusal(f"This form was sent {elapsed:.0f} seconds after the page opened, "
                          "faster than a person can fill it in, so we did not take it. Please "
                          "check your entries and press Send again.", 400)
    if refusal is not None:
        ask_for_files_again(form, submission)
    return refusal


def ask_for_files_again(form: Form, submission: Submission) -> None:
    """A page shown again cannot keep the files the visitor chose: say so on each such field."""
    for f in form.field_list:
        if f["kind"] == "file" and submission.files.get(f["key"]) and f["key"] not in submission.errors:
            submission.errors[f["key"]] = ("Please choose your file again: a browser cannot keep "
                                           "a chosen file when the page is shown again.")


RATE_LIMITED = Refusal("You have sent several messages in a short time. Please wait a while "
                       "before sending another; we have your earlier ones.", 429)


def clean_filename(filename: str) -> str:
    name = re.split(r"[\\/]", filename or "")[-1]
    return one_line(name, 200) or "file"


def store_uploads(data_dir, submission: Submission) -> list[dict]:
    """Keep the submitted files in the blob store, as mail attachments are; returns their
    app.models.Attachment fields. Writes and syncs files: run it off the event loop."""
    stored = []
    for uploads in submission.files.values():
        for upload in uploads:
            stored.append({"filename": clean_filename(upload.filename),
                           "content_type": one_line(upload.content_type, 100)
                           or "application/octet-stream",
                           "size": upload.size, "sha256": blobs.store(data_dir, bytes(upload.data)),
                           "content_id": "", "inline": False})
    return stored


def snapshot(form: Form, submission: Submission) -> list[dict]:
    """The ticket's own copy of the admin's fields (app.models.TicketField), as submitted."""
    rows = []
    for position, f in enumerate(form.field_list):
        if f["kind"] == "file":
            value = ", ".join(clean_filename(u.filename) for u in submission.files.get(f["key"], []))
        elif f["kind"] == "checkbox":
            value = "yes" if submission.values.get(f["key"]) else "no"
        else:
            value = submission.values.get(f["key"], "").strip()
        rows.append({"position": position, "key": f["key"], "label": f["label"][:255],
                     "kind": f["kind"], "value": value,
                     "choice": value[:200] if f["kind"] in FILTERABLE_KINDS else ""})
    return rows


def incoming(form: Form, submission: Submission, attachments: list[dict]) -> Incoming:
    """The submission as intake takes it, for a ticket of the form's brand: the message is
    only what the visitor wrote in Message; the fields go to the ticket's panel."""
    text = submission.values["message"].strip()
    return Incoming(
        channel="form", brand=form.brand, sender_email=submission.email,
        sender_name=one_line(submission.values.get("name", ""), 200),
        subject=f"{form.name}: {one_line(text, 80)}", text=text,
        channel_ref=f"form:{submission.submission_id}", acknowledge=form.brand.ack_enabled,
        attachments=attachments, fields=snapshot(form, submission), form_id=form.id,
    )
