"""Files of messages and their original mails, served to agents as downloads that never run."""
import re
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse
from starlette.routing import Route

from app.mail import display
from app.models import Attachment, Message
from app.services import blobs
from app.web import login_required

# RFC 5987 attr-char: what may stand unencoded in filename*=UTF-8''...
_ATTR_CHARS = "!#$&+-.^_`|~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def content_disposition(kind: str, filename: str) -> str:
    name = _CONTROL.sub("", filename or "").strip() or "attachment"
    return f"{kind}; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


def _blob(request, sha256: str, media_type: str, disposition: str) -> FileResponse:
    try:
        path = blobs.path_of(request.app.state.settings.data_dir, sha256)
    except ValueError:
        raise HTTPException(404, "This file is not kept.") from None
    if not path.is_file():
        raise HTTPException(404, "This file is not kept.")
    return FileResponse(path, media_type=media_type,
                        headers={"Content-Disposition": disposition, "Cache-Control": "private"})


@login_required
async def attachment(request):
    """The file as a download; ?inline=1 lets an <img> show it, for safe raster images only."""
    file = Attachment.get_or_none(Attachment.id == request.path_params["attachment_id"])
    if file is None:
        raise HTTPException(404, "There is no such file.")
    media_type = display.served_type(file.content_type)
    inline = request.query_params.get("inline") == "1" and media_type in display.SAFE_IMAGE_TYPES
    return _blob(request, file.sha256, media_type,
                 content_disposition("inline" if inline else "attachment", file.filename))


@login_required
async def original(request):
    """The mail as it was received, to open in a mail program."""
    message = Message.get_or_none(Message.id == request.path_params["message_id"])
    if message is None or not message.raw_sha256:
        raise HTTPException(404, "There is no original of this message.")
    name = f"ticket-{message.ticket_id}-message-{message.id}.eml"
    return _blob(request, message.raw_sha256, "message/rfc822",
                 content_disposition("attachment", name))


routes = [
    Route("/attachments/{attachment_id:id}", attachment),
    Route("/messages/{message_id:id}/original.eml", original),
]
