"""Reading a posted public form with files, within limits. A file over a limit is not kept but
marked, and every other field is read, so the page can say what was wrong and keep what was
typed (Starlette's own parser stops at the first file over its limit and loses the rest)."""
from dataclasses import dataclass, field

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException

from app.numbers import whole_number
from app.web import BodyTooLarge, limited_stream


class FormTooLarge(Exception):
    """The request is over the limits a person filling in the form can reach; in words."""


class FormUnreadable(Exception):
    """Not a form a browser would send."""


@dataclass
class Limits:
    max_files: int  # files kept per submission; more are marked "count"
    max_file_bytes: int  # per file; a bigger one is marked "size"
    max_text_bytes: int  # per text field
    max_total_bytes: int  # the whole request
    max_parts: int = 200


@dataclass
class PostedFile:
    name: str  # the input's name
    filename: str
    content_type: str
    data: bytearray = field(default_factory=bytearray)
    size: int = 0
    refused: str = ""  # "size" or "count": its bytes were read and dropped


@dataclass
class PostedForm:
    values: ImmutableMultiDict
    files: list


class _Parts:
    """The callbacks of python-multipart's streaming parser: text fields kept, files kept up
    to the limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.values: list[tuple[str, str]] = []
        self.files: list[PostedFile] = []
        self.count = 0
        self._header_name = self._header_value = b""
        self._headers: dict = {}
        self._name = ""
        self._text: bytearray | None = None
        self._file: PostedFile | None = None

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}

    def on_part_begin(self) -> None:
        self._headers = {}
        self.count += 1
        if self.count > self.limits.max_parts:
            raise FormTooLarge("The form has too many fields to be read.")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = _text(options.get(b"name", b""))
        if b"filename" in options:
            self._text = None
            self._file = PostedFile(self._name, _text(options[b"filename"]),
                                    _text(self._headers.get(b"content-type", b"")))
        else:
            self._file = None
            self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            upload = self._file
            upload.size += end - start
            if not upload.refused and upload.size > self.limits.max_file_bytes:
                upload.refused, upload.data = "size", bytearray()
            if not upload.refused:
                upload.data += data[start:end]
        elif self._text is not None:
            if len(self._text) + end - start > self.limits.max_text_bytes:
                raise FormTooLarge(f"A field is over {self.limits.max_text_bytes // 1024} KB, "
                                   "more than the form takes. Please shorten it.")
            self._text += data[start:end]

    def on_part_end(self) -> None:
        if self._file is not None:
            upload = self._file
            # A file input left empty still sends a part, without a name or bytes.
            if upload.filename or upload.size:
                kept = sum(1 for f in self.files if not f.refused)
                if not upload.refused and kept >= self.limits.max_files:
                    upload.refused, upload.data = "count", bytearray()
                self.files.append(upload)
        elif self._text is not None:
            self.values.append((self._name, _text(self._text)))
        self._file = self._text = None


def _text(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _too_large(limits: Limits) -> FormTooLarge:
    return FormTooLarge(f"What you sent is too large: at most {limits.max_total_bytes / 1024 / 1024:.0f} "
                        f"MB in all, and {limits.max_file_bytes / 1024 / 1024:g} MB per file. "
                        "Please send smaller files.")


async def read_form(request, limits: Limits) -> PostedForm:
    """The posted text fields and files; raises FormTooLarge or FormUnreadable."""
    length = whole_number(request.headers.get("content-length"))
    if length is not None and length > limits.max_total_bytes:
        raise _too_large(limits)  # refused before it is read
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=limits.max_parts,
                                      max_part_size=limits.max_text_bytes)
        except HTTPException:
            raise FormTooLarge(f"A field is over {limits.max_text_bytes // 1024} KB, more than "
                               "the form takes. Please shorten it.") from None
        return PostedForm(values=ImmutableMultiDict(form.multi_items()), files=[])
    if not options.get(b"boundary"):
        raise FormUnreadable("The form was sent without its boundary.")
    parts = _Parts(limits)
    parser = MultipartParser(options[b"boundary"], parts.callbacks())
    try:
        async for chunk in limited_stream(request, limits.max_total_bytes):
            parser.write(chunk)
        parser.finalize()
    except BodyTooLarge:
        raise _too_large(limits) from None
    except ParseError:
        raise FormUnreadable("The form could not be read.") from None
    return PostedForm(values=ImmutableMultiDict(parts.values), files=parts.files)
