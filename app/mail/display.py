"""How a message shows on the ticket page: its mail HTML with remote images held back and inline
images pointed at their files, or its text with the quoted earlier mail set apart."""
import html
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from app.mail.quotes import split_reply
from app.mail.sanitize import without_remote_images
from app.models import Attachment

# Raster images a browser shows as pictures and never runs: the only types served as they are.
# Everything else (HTML, SVG, PDF, ...) is served as application/octet-stream, to be saved.
SAFE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

# An <img ...src="cid:..."> in HTML as nh3 writes it: attribute values always in double quotes,
# a quote inside a value written as &quot;, so a literal quote only ever delimits a value.
_CID_IMAGE = re.compile(r'(<img\b[^>]*?\ssrc=")cid:([^"]*)(")', re.IGNORECASE)


@dataclass
class MessageView:
    """What the message template shows, worked out beforehand."""

    html: str = ""  # sanitized mail HTML, ready to place in an hx-disable container
    hidden_images: int = 0  # remote images left out of html
    images_shown: bool = False  # html has its remote images (the agent asked for them)
    text: str = ""  # what the sender wrote now (or the whole text)
    quoted: str = ""  # the earlier mail it quotes, shown folded
    attachments: list = field(default_factory=list)
    original: bool = False  # the raw mail is kept and can be downloaded


def attachment_url(attachment_id: int, inline: bool = False) -> str:
    return f"/attachments/{attachment_id}" + ("?inline=1" if inline else "")


def served_type(content_type: str) -> str:
    """The Content-Type a stored file is served with: a safe raster image type, or bytes."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind if kind in SAFE_IMAGE_TYPES else "application/octet-stream"


def inline_images(clean_html: str, attachments) -> str:
    """Point src="cid:X" at the file of the attachment whose Content-ID is X; an image whose
    file is not there keeps its cid: address, which the browser cannot load (its alt shows)."""
    by_cid = {a.content_id: a.id for a in attachments if a.content_id}
    if not by_cid:
        return clean_html

    def point(match: re.Match) -> str:
        cid = html.unescape(match.group(2)).strip().strip("<>")
        # RFC 2392: a cid: URL is the Content-ID %-encoded.
        attachment_id = by_cid.get(cid) or by_cid.get(unquote(cid))
        if attachment_id is None:
            return match.group(0)
        return match.group(1) + attachment_url(attachment_id, inline=True) + match.group(3)

    return _CID_IMAGE.sub(point, clean_html)


def mail_html(clean_html: str, attachments, show_remote_images: bool = False) -> tuple[str, int]:
    """(html, hidden): the sanitized HTML to show, with remote images left out unless asked
    for (hidden says how many), and inline images served from their attachments."""
    if show_remote_images:
        shown, hidden = clean_html, 0
    else:
        shown, hidden = without_remote_images(clean_html)
    return inline_images(shown, attachments), hidden


# Messages typed into a form or the chat (their channel references): shown as typed, as only
# mail quotes what it answers.
TYPED = ("form:", "chat:")


def message_view(message, attachments, show_remote_images: bool = False) -> MessageView:
    view = MessageView(attachments=list(attachments), original=bool(message.raw_sha256))
    if message.direction != "incoming" or (message.channel_ref or "").startswith(TYPED):
        view.text = message.body_text
    elif message.body_html:
        view.html, view.hidden_images = mail_html(message.body_html, attachments,
                                                  show_remote_images)
        view.images_shown = show_remote_images
    else:
        view.text, view.quoted = split_reply(message.body_text)
    return view


def message_views(messages, show_images_of: int | None = None) -> dict[int, MessageView]:
    """{message id: view} for a conversation, its attachments read in one query (none when no
    message can have any: a live chat's stream asks for every message)."""
    files: dict[int, list] = {m.id: [] for m in messages}
    wanted = [m.id for m in messages if m.may_have_files]
    if wanted:
        query = (Attachment.select().where(Attachment.message.in_(wanted))
                 .order_by(Attachment.id))
        for attachment in query:
            files[attachment.message_id].append(attachment)
    return {m.id: message_view(m, files[m.id], m.id == show_images_of) for m in messages}
