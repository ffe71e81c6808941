"""Checking email addresses people type (with email-validator), in one place."""
from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """The address is not valid; the message says why, in words."""


def normalize(address: str, internal_ok: bool = True) -> str:
    """The address, checked and lowercased. internal_ok admits names that only work inside a
    network or a test setup (support@helpdesk.internal, support@example.test), which admins may
    use for brands and agents; the public form asks for an address the world can reach."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False,
                                 globally_deliverable=not internal_ok,
                                 test_environment=internal_ok)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return checked.normalized.lower()
