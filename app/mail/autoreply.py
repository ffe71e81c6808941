"""When an automatic acknowledgement may be sent (RFC 3834): never to machines, lists, bounces,
ourselves, or a sender who got one a short while ago. Two helpdesks must not loop."""

MACHINE_SENDERS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply")


def is_automatic(mail) -> bool:
    """Sent by a machine on someone's behalf (an out-of-office reply, a notification)."""
    auto_submitted = mail.auto_submitted.strip().lower().split(";")[0].strip()
    return bool(auto_submitted and auto_submitted != "no") or mail.x_autoreply


def refusal(mail, own_addresses: set, recently_acknowledged: bool) -> str:
    """Why no acknowledgement may answer this mail, in words; "" when one may."""
    auto_submitted = mail.auto_submitted.strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"the mail is Auto-Submitted: {auto_submitted}"
    precedence = mail.precedence.strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"the mail has Precedence: {precedence}"
    if mail.list_id:
        return "the mail comes from a mailing list (List-Id)"
    if mail.x_autoreply:
        return "the mail is marked as an automatic reply or asks for none"
    if mail.return_path.strip() == "<>":
        return "the mail has an empty return path (a bounce or notification)"
    if mail.is_bounce:
        return "the mail is a delivery status notification"
    sender = mail.from_address
    if not sender:
        return "the mail has no sender address"
    if sender.split("@")[0] in MACHINE_SENDERS:
        return f"the sender {sender} is a machine"
    if sender in own_addresses:
        return "the sender is one of our own addresses"
    if recently_acknowledged:
        return f"{sender} got an acknowledgement a short while ago"
    return ""
