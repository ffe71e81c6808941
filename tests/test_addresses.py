"""Addresses typed into forms: the quick check of plain addresses accepts exactly what
email-validator accepts, and gives the same address back."""
import random

import pytest
from email_validator import EmailNotValidError, validate_email

from app.mail.addresses import InvalidAddress, normalize

LISTED = [
    "maria@example.org", "Maria.Lopez@Example.ORG", " spaced@example.org ", "a+tag@mail.shop.co.uk",
    "under_score%x@example.org", "a@b.co", "x@localhost", "x@example.test", "x@mail.local",
    "x@host.invalid", "x@1.0.0.127.in-addr.arpa", "x@ab--cd.com", "x@xn--bcher-kva.de",
    "a..b@example.org", ".a@example.org", "a.@example.org", "a@-b.com", "a@b-.com", "a@b.c0m",
    "a@b.c", "a@example.org.", "a@.example.org", "a@example..org", "a@[127.0.0.1]",
    "\"quoted\"@example.org", "Name <a@example.org>", "a@exam_ple.org", "a b@example.org",
    "a@example.org\n", "a@example.org\r\nBcc: b@example.org", "ü@example.org", "a@bücher.de",
    "x" * 64 + "@example.org", "x" * 65 + "@example.org", "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com", "a@" + ".".join(["abcdefghi"] * 25) + ".com",
]


def library(address: str, internal_ok: bool) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False,
                              globally_deliverable=not internal_ok,
                              test_environment=internal_ok).normalized.lower()
    except EmailNotValidError:
        return "invalid"


def ours(address: str, internal_ok: bool) -> str:
    try:
        return normalize(address, internal_ok=internal_ok)
    except InvalidAddress:
        return "invalid"


def fuzzed(count: int) -> list[str]:
    rng = random.Random(5)
    pieces = ["a", "Z", "0", "-", "--", ".", "_", "%", "+", "xn", "@", "test", "arpa", "co", "é"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(3, 14))) + rng.choice(
        ["@example.org", ".com", "", "@a.b", "@x-y.io", ".test", "@local"]) for _ in range(count)]


@pytest.mark.parametrize("internal_ok", [False, True])
def test_an_address_is_judged_as_email_validator_judges_it(internal_ok):
    for address in LISTED + fuzzed(3000):
        assert ours(address, internal_ok) == library(address, internal_ok), address
