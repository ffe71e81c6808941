"""The public contact form: checking a submission and handing it to intake."""
import re
import secrets
from dataclasses import dataclass, field

from app.intake import Incoming, one_line
from app.mail import addresses
from app.models import Brand

LIMITS = {"name": 200, "email": 254, "subject": 200}
_SUBMISSION_ID = re.compile(r"^[0-9a-f]{32}$")


class SpamRefused(Exception):
    """A submission the spam guard refuses; the message says why, for a real person."""


@dataclass
class ContactSubmission:
    name: str = ""
    email: str = ""
    subject: str = ""
    message: str = ""
    submission_id: str = field(default_factory=lambda: secrets.token_hex(16))
    errors: dict = field(default_factory=dict)

    @classmethod
    def from_form(cls, form) -> "ContactSubmission":
        submission_id = form.get("submission_id", "")
        return cls(
            name=form.get("name", ""), email=form.get("email", ""),
            subject=form.get("subject", ""), message=form.get("message", ""),
            submission_id=submission_id if _SUBMISSION_ID.match(submission_id)
            else secrets.token_hex(16),
        )


def validate(submission: ContactSubmission, max_message_chars: int) -> dict:
    """Per-field messages for what is wrong; empty when the submission can be taken."""
    errors = {}
    for name, limit in LIMITS.items():
        if len(getattr(submission, name)) > limit:
            errors[name] = f"This is too long: at most {limit} characters."
    if not submission.name.strip():
        errors.setdefault("name", "Please tell us your name.")
    if not submission.email.strip():
        errors.setdefault("email", "Please give your email address, so that we can answer.")
    elif "email" not in errors:
        try:
            submission.email = addresses.normalize(submission.email, internal_ok=False)
        except addresses.InvalidAddress as exc:
            errors["email"] = f"This email address does not look right: {exc}"
    if not submission.message.strip():
        errors["message"] = "Please write your message."
    elif len(submission.message) > max_message_chars:
        errors["message"] = (f"Your message is too long: {len(submission.message):,} characters, "
                             f"at most {max_message_chars:,}.")
    return errors


def incoming(brand: Brand, submission: ContactSubmission) -> Incoming:
    """The submission as intake takes it."""
    text = submission.message.strip()
    # Without a subject, the message's first line stands in for one.
    subject = one_line(submission.subject) or one_line(text.split("\n", 1)[0][:80])
    return Incoming(
        channel="form", brand=brand, sender_email=submission.email,
        sender_name=one_line(submission.name, 200), subject=subject, text=text,
        channel_ref=f"form:{submission.submission_id}", acknowledge=brand.ack_enabled,
    )
