"""Our Message-IDs: they name the ticket and carry an HMAC, so answers can be matched safely."""
import functools
import hmac
import re
import secrets
from email.utils import parseaddr

_OURS = re.compile(r"^<hd\.(\d+)\.([0-9a-z]+)\.([0-9a-f]{16})@([^>]+)>$")


def _sign(secret_key: str, ticket_id: int, nonce: str) -> str:
    return hmac.digest(secret_key.encode(), f"{ticket_id}.{nonce}".encode(), "sha256").hex()[:16]


@functools.lru_cache(maxsize=256)  # a brand's address, for each mail it sends
def domain_of(address: str) -> str:
    _, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "helpdesk.invalid"


def make_message_id(secret_key: str, ticket_id: int, domain: str) -> str:
    nonce = secrets.token_hex(8)
    return f"<hd.{ticket_id}.{nonce}.{_sign(secret_key, ticket_id, nonce)}@{domain}>"


def ticket_of_message_id(secret_key: str, message_id: str) -> int | None:
    """The ticket one of our Message-IDs belongs to, or None if it is not ours or was forged."""
    match = _OURS.match(message_id.strip())
    if not match:
        return None
    ticket_id, nonce, signature = int(match.group(1)), match.group(2), match.group(3)
    if not hmac.compare_digest(signature, _sign(secret_key, ticket_id, nonce)):
        return None
    return ticket_id
