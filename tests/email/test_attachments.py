"""Real mails with files, from the shared corpus, through IMAP to the ticket: each file is an
attachment with its name, its bytes in the blob store, and the original is kept."""
import email
import email.policy

import pytest

from app.models import Attachment
from app.services import blobs
from tests.conftest import shared_path
from tests.email.mailtools import append, fetch, incoming

pytest_plugins = ["tests.email.mailfixtures"]


def crlf(raw: bytes) -> bytes:
    """Line ends as on the wire (the corpus files have bare LF; IMAP speaks CRLF)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def files_of(raw: bytes) -> dict:
    """The mail's attachments as the standard library reads them: filename -> bytes."""
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    return {part.get_filename(): part.get_payload(decode=True) for part in mail.iter_attachments()}


@pytest.mark.parametrize("sample, expected", [
    (("django-helpdesk", "blank-body-with-attachment.eml"), {"baf"}),
    (("mail-parser", "tests", "mails", "mail_test_7"),
     {"20170609091403417.pdf", "image001.jpg", "image002.jpg", "image003.jpg"}),
], ids=["blank body with attachment", "outlook mail with pdf and images"])
def test_attachments_of_a_real_mail_are_kept_with_their_names_and_bytes(
        sample, expected, mailbox, dovecot, settings):
    raw = crlf(shared_path("corpus", *sample).read_bytes())
    append(dovecot, raw)

    assert fetch(mailbox, settings).fetched == 1

    message = incoming()[0]
    assert blobs.read(settings.data_dir, message.raw_sha256) == raw
    stored = {a.filename: a for a in Attachment.select().where(Attachment.message == message)}
    assert expected <= set(stored)
    originals = files_of(raw)
    for name in expected:
        data = blobs.read(settings.data_dir, stored[name].sha256)
        assert data == originals[name]
        assert stored[name].size == len(data)
