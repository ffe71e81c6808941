"""Mail on the ticket page: sanitized HTML in its box, remote images on request, inline images,
quoted text folded, and files served as downloads that never run."""
import re

import pytest

from app.intake import Incoming, receive
from app.mail.sanitize import clean_html
from app.models import Attachment
from app.security import CONTENT_SECURITY_POLICY
from app.services import blobs

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
       b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
       b"\x00\x00IEND\xaeB`\x82")
RAW = (b"From: Kim <kim@example.org>\r\nTo: support@acme.example\r\nSubject: Broken tent\r\n"
       b"Message-ID: <raw-1@example.org>\r\n\r\nThe pole snapped.\r\n")


def _img_src(csp: str) -> str:
    return re.search(r"img-src ([^;]*)", csp).group(1)


@pytest.fixture
def mail(brand, settings):
    """Receive one mail with the given parts; returns (ticket, message)."""
    count = iter(range(1, 1000))

    def make(text="The pole snapped.", html="", files=(), raw=b"", notes=""):
        attachments = [{"filename": name, "content_type": kind, "size": len(data),
                        "sha256": blobs.store(settings.data_dir, data), "content_id": cid,
                        "inline": bool(cid)} for name, kind, data, cid in files]
        n = next(count)
        result = receive(Incoming(
            channel="email", brand=brand, sender_email="kim@example.org", sender_name="Kim",
            subject="Broken tent", text=text, html=clean_html(html), channel_ref=f"test:{n}",
            message_id=f"<m{n}@example.org>", attachments=attachments, notes=notes,
            raw_sha256=blobs.store(settings.data_dir, raw) if raw else ""), settings.secret_key)
        return result.ticket, result.message

    return make


def test_hostile_html_is_shown_sanitized_inside_an_hx_disable_container(agent_client, mail):
    ticket, _ = mail(html='<p hx-get="/logout" hx-trigger="load" class="row" onclick="x()">Hello '
                          '<b>there</b></p><script>alert(1)</script><form action="/logout">'
                          '<button>Go</button></form><a href="javascript:alert(1)">link</a>')
    page = agent_client.get(f"/tickets/{ticket.id}").text
    container = re.search(r'<div class="body mail-html" hx-disable>(.*?)</div>', page, re.DOTALL)
    assert container and "<p>Hello <b>there</b></p>" in container.group(1)
    conversation = page.split('<ol class="messages">')[1].split("</ol>")[0]
    for bad in ("hx-get", "hx-trigger", "<script", "onclick", "<form", "<button", "javascript:",
                'class="row"'):
        assert bad not in conversation


def test_remote_images_are_hidden_until_asked_for_and_only_then_allowed_by_csp(agent_client, mail):
    ticket, message = mail(html='<p>See <img src="https://tracker.example/pixel.png" alt="pixel">'
                                '<img src="http://cdn.example/photo.jpg" alt="photo"></p>')
    default = agent_client.get(f"/tickets/{ticket.id}")
    assert "tracker.example" not in default.text and "cdn.example" not in default.text
    assert 'alt="pixel"' in default.text
    link = f'href="/tickets/{ticket.id}?images={message.id}#message-{message.id}"'
    assert link in default.text
    assert "Show 2 remote images" in default.text
    assert "https:" not in _img_src(default.headers["content-security-policy"])

    shown = agent_client.get(f"/tickets/{ticket.id}?images={message.id}")
    assert 'src="https://tracker.example/pixel.png"' in shown.text
    assert 'src="http://cdn.example/photo.jpg"' in shown.text
    csp = shown.headers["content-security-policy"]
    assert {"https:", "http:"} <= set(_img_src(csp).split())
    # Everything but img-src is the policy every other page has.
    without_images = re.compile(r"img-src [^;]*")
    assert without_images.sub("", csp) == without_images.sub("", CONTENT_SECURITY_POLICY)


def test_asking_for_images_of_another_message_keeps_the_strict_policy(agent_client, mail):
    ticket, message = mail(html='<p><img src="https://tracker.example/pixel.png" alt="pixel"></p>')
    response = agent_client.get(f"/tickets/{ticket.id}?images={message.id + 99}")
    assert response.status_code == 200 and "tracker.example" not in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_cid_images_point_at_their_attachment_served_inline(agent_client, mail):
    ticket, message = mail(html='<p>Logo: <img src="cid:logo@acme.example" alt="logo"></p>',
                           files=[("logo.png", "image/png", PNG, "logo@acme.example")])
    file = Attachment.get(Attachment.message == message.id)
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert f'src="/attachments/{file.id}?inline=1"' in page and "cid:" not in page
    image = agent_client.get(f"/attachments/{file.id}?inline=1")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"] == "inline; filename*=UTF-8''logo.png"


@pytest.mark.parametrize("name, kind", [("invoice.html", "text/html"),
                                        ("drawing.svg", "image/svg+xml")])
def test_active_files_download_as_bytes_never_inline(agent_client, mail, name, kind):
    data = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    _, message = mail(files=[(name, kind, data, "")])
    file = Attachment.get(Attachment.message == message.id)
    for url in (f"/attachments/{file.id}", f"/attachments/{file.id}?inline=1"):
        response = agent_client.get(url)
        assert response.status_code == 200 and response.content == data
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{name}"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_png_downloads_as_png_and_file_names_are_rfc5987_quoted(agent_client, mail):
    ticket, message = mail(files=[("Foto März \"1\".png", "image/png", PNG, "")])
    file = Attachment.get(Attachment.message == message.id)
    response = agent_client.get(f"/attachments/{file.id}")
    assert response.content == PNG and response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == \
        "attachment; filename*=UTF-8''Foto%20M%C3%A4rz%20%221%22.png"
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert f'<a href="/attachments/{file.id}">Foto März &#34;1&#34;.png</a>' in page


def test_original_mail_downloads_as_eml_with_the_raw_bytes(agent_client, mail):
    ticket, message = mail(raw=RAW)
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert f'href="/messages/{message.id}/original.eml"' in page
    assert "Download original (.eml)" in page
    response = agent_client.get(f"/messages/{message.id}/original.eml")
    assert response.status_code == 200 and response.content == RAW
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")


def test_message_without_original_or_file_offers_no_download(agent_client, mail):
    ticket, message = mail()
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "original.eml" not in page and "/attachments/" not in page
    assert agent_client.get(f"/messages/{message.id}/original.eml").status_code == 404


def test_quoted_earlier_mail_is_folded_inside_details(agent_client, mail):
    text = ("Still broken, see below.\n\nOn Mon, 1 Jan 2024 at 10:00, Acme <support@acme.example> "
            "wrote:\n> Have you tried turning the pole?\n> Acme care team")
    ticket, _ = mail(text=text)
    page = agent_client.get(f"/tickets/{ticket.id}").text
    details = re.search(r'<details class="quoted"><summary>Show quoted text</summary>'
                        r"(.*?)</details>", page, re.DOTALL)
    assert details and "Have you tried turning the pole?" in details.group(1)
    assert "Still broken, see below." in page.split("<details")[0]


def test_what_could_not_be_read_shows_as_a_warning(agent_client, mail):
    ticket, _ = mail(notes="The file huge.zip (30,000,000 bytes) was over the size limit.")
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert 'class="mail-notes" role="note"' in page and "huge.zip" in page


def test_not_logged_in_gets_no_file(client, mail):
    _, message = mail(files=[("logo.png", "image/png", PNG, "")], raw=RAW)
    file = Attachment.get(Attachment.message == message.id)
    for url in (f"/attachments/{file.id}", f"/attachments/{file.id}?inline=1",
                f"/messages/{message.id}/original.eml"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        assert PNG not in response.content and RAW not in response.content


def test_unknown_ids_and_missing_files_are_404(agent_client, mail, settings):
    _, message = mail(files=[("gone.png", "image/png", b"vanished bytes", "")])
    file = Attachment.get(Attachment.message == message.id)
    blobs.path_of(settings.data_dir, file.sha256).unlink()
    assert agent_client.get(f"/attachments/{file.id}").status_code == 404
    assert agent_client.get(f"/attachments/{file.id + 99}").status_code == 404
    assert agent_client.get(f"/messages/{message.id + 99}/original.eml").status_code == 404
