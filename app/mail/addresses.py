"""Checking email addresses people type (with email-validator), in one place."""
import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

# email-validator checks each character against Unicode tables: a third of what a contact
# form post costs. Plain ASCII addresses (nearly all) are checked by this expression instead,
# by the library's own rules for them: at most 254 characters, 64 before the @; labels of
# letters, digits and inner hyphens, at most 63 long, none with "--" in third and fourth place
# (those may be Punycode); a period and a top-level domain of letters. Anything else goes to
# the library, which also words the errors.
_PLAIN = re.compile(r"""
    (?=.{6,254}\Z) (?=[^@]{1,64}@)
    [a-z0-9_%+-]+ (?:\.[a-z0-9_%+-]+)*
    @ (?: (?!..--) [a-z0-9] (?:[a-z0-9-]{0,61}[a-z0-9])? \. )+ [a-z]{2,63} \Z
""", re.ASCII | re.VERBOSE)


class InvalidAddress(ValueError):
    """The address is not valid; the message says why, in words."""


def normalize(address: str, internal_ok: bool = True) -> str:
    """The address, checked and lowercased. internal_ok admits names that only work inside a
    network or a test setup (support@helpdesk.internal, support@example.test), which admins may
    use for brands and agents; the public form asks for an address the world can reach."""
    plain = address.strip().lower()
    if _PLAIN.match(plain) and not _special_use(plain.rpartition("@")[2]):
        return plain
    try:
        checked = validate_email(address.strip(), check_deliverability=False,
                                 globally_deliverable=not internal_ok,
                                 test_environment=internal_ok)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return checked.normalized.lower()


def _special_use(domain: str) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES)
