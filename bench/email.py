"""Figure 4: the email channel. Mail put into a real IMAP server (a throwaway Dovecot on
127.0.0.1, tests/email/dovecot.py) becomes tickets: how fast `helpdesk mailbox fetch` turns a
backlog of varied mail into tickets, none lost or doubled; how fast parse+sanitize alone is;
and, with IMAP IDLE, how soon a new mail's row reaches an agent's open queue stream."""
import base64
import contextlib
import email.header
import email.utils
import html
import json
import math
import os
import quopri
import random
import re
import resource
import socket
import sqlite3
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from bench.common import PASSWORD, Server, fresh_dir, helpdesk, log, login, percentile

MAILS = 5000
REPLY_SHARE = 0.2  # of the mails answer an earlier one, from the same sender
SENDERS = 1500
SEED = 4
FETCH_TIMEOUT = 300  # seconds for `helpdesk mailbox fetch` (at the goal it takes 25 s)
APPEND_BATCH = 100  # mails per MULTIAPPEND
PARSE_EVERY = 5  # the slower parse with the quoted part looked for: every 5th mail (same mix)
PROBES = 40  # mails appended one at a time while the server watches with IDLE
SPACING = (0.5, 1.0)  # seconds between two probes' APPENDs, drawn uniformly
ROW_TIMEOUT = 20.0  # seconds a probe's row may take before it counts as missed
WARM_UP_TIMEOUT = 60.0  # the watcher connects, fetches, then idles
SLUG = "mail"
SUPPORT = "support@mail.example"  # the brand's address
INGEST_USER, LIVE_USER = "ingest@mail.example", "live@mail.example"
IMAP_PASSWORD = "imap-bench-secret"
AGENT = "agent@mail.example"
# Dovecot announces new mail to an IDLE client 500 ms after the change (NOTIFY_DELAY_MSECS,
# compiled into src/lib-storage/mailbox-watch.c, so that a burst of deliveries becomes one
# announcement). No setting lowers it: mailbox_idle_check_interval is the stat() poll behind
# inotify (whole seconds: "100 msecs" is refused), and every inotify event pushes that poll
# back, so the 500 ms timer always fires first. The Dovecot of this benchmark runs with the
# test config unchanged.
DOVECOT_NOTIFY_DELAY_MS = 500

CRLF = "\r\n"


# --- the mails ---------------------------------------------------------------------------

TEXTS = {
    "utf-8": [
        "Hello, my order still hasn't arrived — could you check where it is? 📦",
        "Grüße aus Köln: die Lieferung war unvollständig, es fehlen zwei Teile.",
        "Καλημέρα, η παραγγελία μου δεν έχει φτάσει ακόμα.",
        "我的订单还没有到，请帮我查一下。谢谢！",
        "Zażółć gęślą jaźń — the invoice shows the wrong VAT number.",
        "The app crashes when I tap “Export” on the settings screen 🙁",
        "Can I change the delivery address? I moved last week to Straße 12.",
    ],
    "iso-8859-1": [
        "Bonjour, ma commande n'est pas arrivée et le suivi ne bouge plus.",
        "Könnten Sie mir bitte die Rechnung für März noch einmal schicken?",
        "¿Dónde está mi pedido? Lo pagué hace diez días, señor.",
        "Le produit reçu est abîmé; je voudrais un échange ou un remboursement.",
        "Die Größe passt leider nicht, ich möchte sie gegen eine größere tauschen.",
        "Hej, jag har inte fått någon bekräftelse på min beställning.",
    ],
    "windows-1252": [
        "I was charged twice – once on Monday and again on Tuesday – for €49.90.",
        "The “premium” plan doesn’t show up in my account… is that expected?",
        "Merci d’avance ! J’attends toujours le remboursement de 12 €.",
        "Our team can’t log in since this morning; the error says ‘session expired’.",
        "Please cancel order no. 4711 — we ordered the wrong model.",
        "„Schnelle Lieferung“ stand auf der Seite, aber es dauert schon zwei Wochen.",
    ],
    "koi8-r": [
        "Здравствуйте! Мой заказ до сих пор не пришёл.",
        "Пожалуйста, пришлите счёт ещё раз, старый потерялся.",
        "Приложение закрывается, когда я открываю настройки.",
        "Можно ли изменить адрес доставки? Я переехал на прошлой неделе.",
        "Спасибо за быстрый ответ, но проблема всё ещё не решена.",
    ],
    "shift_jis": [
        "お世話になっております。注文した商品がまだ届いていません。",
        "請求書をもう一度送っていただけますでしょうか。",
        "アプリの設定画面を開くと強制終了してしまいます。",
        "配送先の住所を変更することはできますか。",
        "ご確認のほど、よろしくお願いいたします。",
    ],
}
SUBJECTS = {
    "utf-8": ["Order not arrived 📦", "Lieferung unvollständig", "Παραγγελία", "订单问题",
              "Wrong VAT number", "App crashes on “Export”"],
    "iso-8859-1": ["Commande non reçue", "Rechnung für März", "¿Dónde está mi pedido?",
                   "Produit abîmé", "Größe tauschen"],
    "windows-1252": ["Charged twice – €49.90", "“Premium” plan missing",
                     "Remboursement d’une commande", "Can’t log in", "Schnelle Lieferung?"],
    "koi8-r": ["Заказ не пришёл", "Счёт за март", "Приложение закрывается", "Адрес доставки"],
    "shift_jis": ["商品が届きません", "請求書の再送について", "アプリが終了します", "住所変更のお願い"],
}
NAMES = {
    "utf-8": ["Zoë Ångström", "Łukasz Żółw", "Σοφία Παπαδοπούλου", "李雷", "Ana Lima", "Sam Lee"],
    "iso-8859-1": ["Frédéric Müller", "José Núñez", "Åse Sørensen", "Jürgen Groß", "Inès Léger"],
    "windows-1252": ["Chloë O’Brien", "Renée Dubois", "Seán Ó Murchú", "Zoë Müller"],
    "koi8-r": ["Иван Петров", "Ольга Смирнова", "Дмитрий Козлов", "Анна Волкова"],
    "shift_jis": ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲"],
}
DOMAINS = {"utf-8": "customers.example", "iso-8859-1": "kunden.example",
           "windows-1252": "clients.example", "koi8-r": "pochta.example",
           "shift_jis": "mail.example.jp"}
CHARSET_SHARE = {"utf-8": 0.4, "iso-8859-1": 0.15, "windows-1252": 0.2, "koi8-r": 0.1,
                 "shift_jis": 0.15}
# kind -> (share, smallest and largest size in bytes, drawn log-uniformly)
KINDS = {"plain": (0.40, 1_000, 12_000), "html": (0.15, 2_000, 40_000),
         "alternative": (0.30, 3_000, 100_000), "attachments": (0.15, 20_000, 200_000)}
# Transfer encodings a mail program of each charset would use for text.
ENCODINGS = {"utf-8": ["8bit", "quoted-printable", "base64"],
             "iso-8859-1": ["quoted-printable", "8bit"],
             "windows-1252": ["quoted-printable", "8bit"],
             "koi8-r": ["8bit", "base64"], "shift_jis": ["base64", "8bit"]}


@dataclass
class Sender:
    name: str
    address: str
    charset: str


@dataclass
class Mail:
    raw: bytes
    message_id: str
    subject: str  # as written, before encoding
    sender: str
    kind: str
    charset: str
    root: int | None = None  # index of the mail that opened the conversation; None: opens one
    how: str = ""  # how a reply says what it answers: "headers" (In-Reply-To) or "subject" ([#N])


def _pick(rng: random.Random, shares: dict) -> str:
    return rng.choices(list(shares), weights=[v if isinstance(v, float) else v[0]
                                              for v in shares.values()])[0]


def _header(text: str, charset: str) -> str:
    if text.isascii():
        return text
    return email.header.Header(text, charset).encode()


def _address(name: str, address: str, charset: str) -> str:
    return f"{_header(name, charset)} <{address}>" if not name.isascii() else \
        email.utils.formataddr((name, address))


def _text(rng: random.Random, charset: str, size: int) -> str:
    """Lines of the charset's sentences, about size bytes once encoded."""
    lines, total = [], 0
    sentences = TEXTS[charset]
    while total < size:
        line = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.2:
            line += f" Ref {rng.randrange(10 ** 6, 10 ** 7)}."
        lines.append(line)
        total += len(line.encode(charset)) + 2
        if rng.random() < 0.25:
            lines.append("")
    return "\n".join(lines)


def _encode_body(text: str, charset: str, encoding: str) -> str:
    data = text.encode(charset)
    if encoding == "base64":
        body = base64.encodebytes(data).decode("ascii")
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data).decode("ascii")
    else:
        # 8bit: the bytes as they are, as a str that latin-1 maps back to the same bytes
        body = data.decode("latin-1")
    return body.replace("\r\n", "\n").replace("\n", CRLF)


def _text_part(text: str, subtype: str, charset: str, encoding: str) -> str:
    return (f"Content-Type: text/{subtype}; charset=\"{charset}\"{CRLF}"
            f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}"
            f"{_encode_body(text, charset, encoding)}{CRLF}")


def _html(rng: random.Random, text: str, charset: str, images: list[str]) -> str:
    paragraphs = "".join(f"<p style=\"margin:0 0 8px;font-family:Arial\">{html.escape(p)}</p>\n"
                         for p in text.split("\n") if p)
    extras = []
    if rng.random() < 0.5:
        extras.append("<table border=\"0\" cellpadding=\"4\"><tr><td><b>Order</b></td>"
                      f"<td>{rng.randrange(10 ** 5, 10 ** 6)}</td></tr><tr><td>Status</td>"
                      "<td><span style=\"color:#c00\">late</span></td></tr></table>\n")
    if rng.random() < 0.3:
        extras.append("<img src=\"https://tracker.example/open.gif?u=1\" width=\"1\" "
                      "height=\"1\">\n")
    if rng.random() < 0.2:
        extras.append("<script>document.location='https://evil.example/'</script>"
                      "<a href=\"javascript:alert(1)\" onclick=\"steal()\">click</a>\n")
    for cid in images:
        extras.append(f"<img src=\"cid:{cid}\" alt=\"screenshot\">\n")
    extras.append("<p>See <a href=\"https://shop.example/orders\">my orders</a>.</p>\n")
    return (f"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
            f"charset={charset}\"><style>p {{ color: #333 }} .x {{ display:none }}</style>"
            f"</head><body><div class=\"x\">preheader</div>\n{paragraphs}{''.join(extras)}"
            "</body></html>")


def _attachment(rng: random.Random, n: int, size: int, charset: str) -> tuple[str, bytes, str]:
    """(content type, bytes, filename) of one file of about size bytes."""
    choice = (n + rng.randrange(4)) % 4
    if choice == 0:
        return ("application/pdf", b"%PDF-1.4\n" + rng.randbytes(size),
                f"invoice-{rng.randrange(10 ** 6)}.pdf")
    if choice == 1:
        return "image/jpeg", b"\xff\xd8\xff\xe0" + rng.randbytes(size), "photo.jpg"
    if choice == 2:
        return "application/pdf", b"%PDF-1.5\n" + rng.randbytes(size), "Rechnung März 2026.pdf"
    return "text/csv", _text(rng, charset, size).encode(charset), "export.csv"


def _file_part(content_type: str, data: bytes, filename: str, charset: str,
               inline_cid: str = "") -> str:
    if filename.isascii():
        name_params = f"; filename=\"{filename}\""
    else:  # RFC 2231, as most mail programs send it
        name_params = f"; filename*=utf-8''{quote(filename)}"
    params = f"; charset=\"{charset}\"" if content_type.startswith("text/") else ""
    name = filename if filename.isascii() else "file"
    head = (f"Content-Type: {content_type}{params}; name=\"{name}\"{CRLF}"
            f"Content-Disposition: {'inline' if inline_cid else 'attachment'}{name_params}{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}")
    if inline_cid:
        head += f"Content-ID: <{inline_cid}>{CRLF}"
    return head + CRLF + base64.encodebytes(data).decode("ascii").replace("\n", CRLF)


def _multipart(subtype: str, boundary: str, parts: list[str]) -> str:
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts)
    return (f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"{CRLF}{CRLF}"
            f"This is a multi-part message in MIME format.{CRLF}{CRLF}{body}--{boundary}--{CRLF}")


def build_mail(rng: random.Random, n: int, sender: Sender, kind: str, subject: str,
               size: int, when: datetime, reply_to: "Mail | None" = None,
               references: list[str] = (), ticket_ref: int | None = None) -> Mail:
    """One mail of the given kind, about size bytes, as a mail program would send it."""
    charset = sender.charset
    encoding = rng.choice(ENCODINGS[charset])
    domain = sender.address.split("@")[1]
    message_id = f"<{when:%Y%m%d%H%M%S}.{n}.{rng.randrange(16 ** 8):08x}@{domain}>"
    if reply_to is not None:
        reference = f"[#{ticket_ref}] " if ticket_ref else ""
        subject = f"Re: {reference}{reply_to.subject.removeprefix('Re: ')}"
    budget = size
    if kind == "attachments":
        budget = max(800, size // 6)
    elif kind == "alternative":
        budget = max(600, size // 3)  # the HTML takes about twice the text's room
    text = _text(rng, charset, budget)
    if reply_to is not None:
        quoted = "\n".join(f"> {line}" for line in TEXTS[charset][:3])
        text += (f"\n\nOn {email.utils.format_datetime(when - timedelta(hours=3))}, "
                 f"{SUPPORT} wrote:\n{quoted}\n")
    images = []
    if kind == "html":
        body = _text_part(_html(rng, text, charset, images), "html", charset, encoding)
    elif kind == "plain":
        body = _text_part(text, "plain", charset, encoding)
    elif kind == "alternative":
        body = _multipart("alternative", f"=_alt_{n}", [
            _text_part(text, "plain", charset, encoding),
            _text_part(_html(rng, text, charset, images), "html", charset, encoding)])
    else:  # attachments: text or alternative text, then one to three files
        files = []
        remaining = max(1_000, int((size - 2 * budget) * 3 / 4))  # base64 takes 4/3
        count = rng.randint(1, 3)
        for k in range(count):
            files.append(_attachment(rng, k, remaining // count, charset))
        if rng.random() < 0.3:  # a screenshot shown inside the HTML
            cid = f"img{n}.{rng.randrange(16 ** 6):06x}@mail"
            images.append(cid)
            related = _multipart("related", f"=_rel_{n}", [
                _text_part(_html(rng, text, charset, images), "html", charset, encoding),
                _file_part("image/png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(3_000), "shot.png",
                           charset, inline_cid=cid)])
            first = _multipart("alternative", f"=_alt_{n}", [
                _text_part(text, "plain", charset, encoding), related])
        else:
            first = _text_part(text, "plain", charset, encoding)
        body = _multipart("mixed", f"=_mix_{n}", [
            first, *(_file_part(t, d, f, charset) for t, d, f in files)])
    headers = [
        f"Return-Path: <{sender.address}>",
        (f"Received: from mx.{sender.address.split('@')[1]} (mx [192.0.2.{n % 250 + 1}]) by "
         f"mail.example with ESMTPS id {n:08X}; {email.utils.format_datetime(when)}"),
        f"From: {_address(sender.name, sender.address, charset)}",
        f"To: Support <{SUPPORT}>",
        f"Subject: {_header(subject, charset)}",
        f"Date: {email.utils.format_datetime(when)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    if reply_to is not None and references:
        headers.append(f"In-Reply-To: {references[-1]}")
        headers.append(f"References: {' '.join(references)}")
    headers.append(f"X-Mailer: Bench Mailer {n % 7}.0")
    raw = (CRLF.join(headers) + CRLF + body).encode("latin-1")
    return Mail(raw=raw, message_id=message_id, subject=subject, sender=sender.address,
                kind=kind, charset=charset)


def generate(count: int, seed: int = SEED) -> list[Mail]:
    """count varied mails in order; about REPLY_SHARE of them answer an earlier conversation,
    from its sender, by In-Reply-To/References or by [#N] (N: the ticket the conversation's
    first mail becomes in a fresh database, where tickets are numbered from 1 in UID order)."""
    rng = random.Random(seed)
    senders: list[Sender] = []
    for k in range(SENDERS):
        charset = _pick(rng, CHARSET_SHARE)
        senders.append(Sender(rng.choice(NAMES[charset]), f"customer{k}@{DOMAINS[charset]}",
                              charset))
    by_address = {s.address: s for s in senders}
    mails: list[Mail] = []
    openers: list[int] = []  # index of each conversation's first mail; ticket id = position + 1
    threads: dict[int, list[str]] = {}  # opener -> Message-IDs of the conversation so far
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for n in range(count):
        kind = _pick(rng, KINDS)
        low, high = KINDS[kind][1:]
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        when = start + timedelta(seconds=37 * n)
        if openers and rng.random() < REPLY_SHARE:
            position = rng.randrange(max(0, len(openers) - 300), len(openers))
            root = openers[position]
            sender = by_address[mails[root].sender]
            by_headers = rng.random() < 0.5
            mail = build_mail(rng, n, sender, kind, "", size, when, reply_to=mails[root],
                              references=threads[root] if by_headers else (),
                              ticket_ref=None if by_headers else position + 1)
            mail.root, mail.how = root, "headers" if by_headers else "subject"
            threads[root].append(mail.message_id)
        else:
            sender = rng.choice(senders)
            subject = f"{rng.choice(SUBJECTS[sender.charset])} ({n})"
            mail = build_mail(rng, n, sender, kind, subject, size, when)
            openers.append(n)
            threads[n] = [mail.message_id]
        mails.append(mail)
    return mails


# --- Dovecot -----------------------------------------------------------------------------

def _dovecot_cpu(master_pid: int) -> float:
    """CPU seconds used so far by a Dovecot server: its live processes, plus the children its
    master has reaped (an IMAP session's process ends at logout)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) != master_pid:  # process group
            continue
        total += int(fields[11]) + int(fields[12])
        if int(entry) == master_pid:
            total += int(fields[13]) + int(fields[14])
    return total / tick


def _start_dovecot(log_path: Path):
    from tests.email.dovecot import Dovecot  # only this benchmark needs it

    if not Dovecot.installed():
        raise RuntimeError("dovecot-imapd is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        raise RuntimeError("Dovecot is started as root (its mail processes switch to `mail`)")
    server = Dovecot()
    server.add_user(INGEST_USER, IMAP_PASSWORD)
    server.add_user(LIVE_USER, IMAP_PASSWORD)
    return server.start(log_path=log_path)


def _add_mailbox(data_dir: Path, name: str, dovecot, user: str) -> None:
    helpdesk(data_dir, "brand", "add", SLUG, "--name", "Mail shop", "--address", SUPPORT)
    helpdesk(data_dir, "mailbox", "add", name, "--brand", SLUG, "--imap-host", dovecot.host,
             "--imap-port", str(dovecot.port), "--security", "none", "--username", user,
             "--addresses", SUPPORT, "--password-stdin", stdin=IMAP_PASSWORD + "\n")


# --- 4a. a backlog of mail, fetched by `helpdesk mailbox fetch` --------------------------

def _ingest_counts(db_path: Path, mails: list[Mail]) -> dict:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        one = lambda sql: connection.execute(sql).fetchone()[0]
        ticket_of = dict(connection.execute(
            "SELECT message.message_id, message.ticket_id FROM message JOIN ticket "
            "ON ticket.id = message.ticket_id WHERE ticket.channel = 'email' "
            "AND message.direction = 'incoming'"))
        misthreaded = sum(1 for m in mails if m.root is not None and (
            ticket_of.get(m.message_id) is None
            or ticket_of.get(m.message_id) != ticket_of.get(mails[m.root].message_id)))
        return {
            "stored": one("SELECT COUNT(*) FROM message JOIN ticket ON ticket.id = "
                          "message.ticket_id WHERE ticket.channel = 'email' AND "
                          "message.direction = 'incoming' AND message.channel_ref LIKE 'imap:%'"),
            "tickets": one("SELECT COUNT(*) FROM ticket WHERE channel = 'email'"),
            # Messages whose Message-ID is stored more than once (every copy counts).
            "duplicated": one("SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM "
                              "message WHERE message_id != '' GROUP BY message_id HAVING n > 1)"),
            "skipped": one("SELECT COUNT(*) FROM skipped_mail"),
            "acks": one("SELECT COUNT(*) FROM message WHERE is_auto = 1"),
            "attachments": one("SELECT COUNT(*) FROM attachment"),
            "with_html": one("SELECT COUNT(*) FROM message WHERE direction = 'incoming' "
                             "AND body_html != ''"),
            "with_notes": one("SELECT COUNT(*) FROM message WHERE notes != ''"),
            "events": one("SELECT COUNT(*) FROM event"),
            "span": connection.execute(
                "SELECT MIN(created_at), MAX(created_at) FROM message "
                "WHERE direction = 'incoming'").fetchone(),
            "misthreaded": misthreaded,
        }
    finally:
        connection.close()


def _append_all(dovecot, user: str, mails: list[Mail]) -> float:
    """MULTIAPPEND (RFC 3502) in batches over one connection: one APPEND per mail takes ~5 ms
    on this Dovecot once the folder holds a thousand mails (it syncs its index every time),
    25 s for the 5,000; batches of APPEND_BATCH take about a second."""
    started = time.monotonic()
    with dovecot.connect(user, IMAP_PASSWORD) as client:
        for start in range(0, len(mails), APPEND_BATCH):
            client.multiappend("INBOX", [m.raw for m in mails[start:start + APPEND_BATCH]])
        status = client.folder_status("INBOX", [b"MESSAGES"])
    if status[b"MESSAGES"] != len(mails):
        raise RuntimeError(f"INBOX holds {status[b'MESSAGES']} mails after {len(mails)} APPENDs")
    return time.monotonic() - started


def _parse_alone(mails: list[Mail], parse_one) -> tuple[float, dict, int, int]:
    """parse_one(raw) over the mails in this process, on one core: seconds, seconds per kind,
    subjects and Message-IDs read back as written."""
    parse_one(mails[0].raw)  # imports and caches on first use are not counted
    per_kind: dict[str, list[float]] = {}
    subjects_ok = ids_ok = 0
    started = time.perf_counter()
    for mail in mails:
        before = time.perf_counter()
        parsed = parse_one(mail.raw)
        per_kind.setdefault(mail.kind, []).append(time.perf_counter() - before)
        subjects_ok += parsed.subject == mail.subject
        ids_ok += parsed.message_id == mail.message_id
    seconds = time.perf_counter() - started
    return seconds, per_kind, subjects_ok, ids_ok


def run_ingest(results: dict, dovecot, mails: list[Mail], base: Path) -> None:
    data_dir = base / "ingest"
    _add_mailbox(data_dir, "ingest", dovecot, INGEST_USER)
    sizes = [len(m.raw) for m in mails]
    replies = [m for m in mails if m.root is not None]
    kinds = {k: sum(m.kind == k for m in mails) for k in KINDS}
    charsets = {c: sum(m.charset == c for m in mails) for c in CHARSET_SHARE}
    log(f"{len(mails):,} mails, {sum(sizes) / 1e6:.1f} MB: sizes {min(sizes):,} B to "
        f"{max(sizes):,} B (median {statistics.median(sizes) / 1000:.1f} KB, mean "
        f"{statistics.mean(sizes) / 1000:.1f} KB); "
        + ", ".join(f"{v:,} {k}" for k, v in kinds.items()) + "; "
        + ", ".join(f"{v:,} {k}" for k, v in charsets.items()) + f"; {len(replies):,} replies "
        f"({sum(m.how == 'headers' for m in replies):,} by In-Reply-To/References, "
        f"{sum(m.how == 'subject' for m in replies):,} by [#N] in the subject) to "
        f"{len(mails) - len(replies):,} conversations.")
    seconds = _append_all(dovecot, INGEST_USER, mails)
    log(f"Put into {INGEST_USER}'s INBOX on Dovecot {dovecot.host}:{dovecot.port} by "
        f"MULTIAPPEND, {APPEND_BATCH} mails each, over one IMAP connection in {seconds:.1f}s. "
        f"Fresh data dir {data_dir}: brand `{SLUG}` and mailbox `ingest` added by `helpdesk "
        "brand add` and `helpdesk mailbox add --password-stdin` (no SMTP server: "
        "acknowledgements are queued, not sent).")

    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    dovecot_before = _dovecot_cpu(dovecot.pid)
    started = time.monotonic()
    output = helpdesk(data_dir, "mailbox", "fetch", "ingest", timeout=FETCH_TIMEOUT)
    seconds = time.monotonic() - started
    dovecot_cpu = _dovecot_cpu(dovecot.pid) - dovecot_before
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = (usage.ru_utime - usage_before.ru_utime, usage.ru_stime - usage_before.ru_stime)
    counts = _ingest_counts(data_dir / "helpdesk.db", mails)
    first, last = (datetime.fromisoformat(v) for v in counts["span"])
    log(f"`helpdesk mailbox fetch ingest` (a new process, as a user runs it; no server runs) "
        f"took {seconds:.1f}s and said: {output}")
    log(f"Stored: {counts['stored']:,} incoming messages on {counts['tickets']:,} email tickets "
        f"(expected {len(mails) - len(replies):,}), {counts['attachments']:,} attachments, "
        f"{counts['with_html']:,} with HTML, {counts['with_notes']:,} with notes on what could "
        f"not be read; {counts['acks']:,} acknowledgements queued; {counts['events']:,} events; "
        f"{counts['skipped']} skipped; messages whose Message-ID is stored more than once: "
        f"{counts['duplicated']}; replies not on their conversation's ticket: "
        f"{counts['misthreaded']}. First to last message stored: "
        f"{(last - first).total_seconds():.1f}s.")
    log(f"CPU during the fetch: the helpdesk process {user + system:.1f} s ({user:.1f} user, "
        f"{system:.1f} system) of {seconds:.1f} s; Dovecot {dovecot_cpu:.1f} s. Per mail: "
        f"{1000 * seconds / len(mails):.2f} ms wall, {1000 * (user + system) / len(mails):.2f} ms "
        "helpdesk CPU.")

    # What the ingest calls (receive_mail, the parsing process): without looking for the
    # quoted part, which the ticket page does when it shows the mail.
    from app.mail.parse import parse
    from app.mail.parse_ahead import parse_for_intake

    parse_seconds, per_kind, subjects_ok, ids_ok = _parse_alone(mails, parse_for_intake)
    log(f"parse_for_intake(raw) alone, as the ingest calls it (app.mail.parse without the "
        f"quoted part: MIME, charsets, sanitizing), in this process on one core: "
        f"{parse_seconds:.1f}s for {len(mails):,} mails, "
        f"{1000 * parse_seconds / len(mails):.2f} ms per mail; median per kind: "
        + ", ".join(f"{k} {1000 * statistics.median(v):.2f} ms (max {1000 * max(v):.0f})"
                    for k, v in per_kind.items())
        + f". Subjects read back as written: {subjects_ok:,}, Message-IDs: {ids_ok:,} of "
          f"{len(mails):,}.")
    sample = mails[::PARSE_EVERY]
    full_seconds = _parse_alone(sample, parse)[0]
    log(f"For comparison, parse(raw) with the quoted part looked for (as the ticket page "
        f"splits it), on every {PARSE_EVERY}th mail: {1000 * full_seconds / len(sample):.2f} "
        "ms per mail.")
    results["email_ingest_per_s"] = round(counts["stored"] / seconds, 1)
    results["email_lost"] = len(mails) - counts["stored"]
    results["email_duplicated"] = counts["duplicated"]
    results["email_misthreaded"] = counts["misthreaded"]
    results["email_parse_per_s"] = round(len(mails) / parse_seconds, 1)


# --- 4b. one mail at a time, to an agent's screen, with IDLE -------------------------------

class QueueStream(threading.Thread):
    """GET /events/queue with an agent's cookie; notes when each probe's row first arrives."""
    PROBE = re.compile(rb"Latency probe (\d+) [0-9a-f]{8}")

    def __init__(self, port: int, cookie: str):
        super().__init__(name="queue-stream", daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET /events/queue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the queue stream closed before its headers")
            head += chunk
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(f"the queue stream answered {status.decode()}")
        self.tail = head.split(b"\r\n\r\n", 1)[1]
        self.arrivals: dict[int, float] = {}
        self.stopped = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            now = time.monotonic()
            if not data:
                break
            chunk = self.tail + data
            with self.changed:
                for match in self.PROBE.finditer(chunk):
                    self.arrivals.setdefault(int(match.group(1)), now)
                self.changed.notify_all()
            self.tail = chunk[-64:]

    def wait_for(self, probe: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while probe not in self.arrivals and time.monotonic() < deadline:
                self.changed.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            return self.arrivals.get(probe)

    def close(self) -> None:
        self.stopped.set()
        self.join(5)
        self.sock.close()


class ImapWire(threading.Thread):
    """Watches the loopback interface for the Dovecot port (a raw AF_PACKET socket: root):
    when a client connects (its SYN) and when Dovecot sends a client `* N EXISTS`. That shows,
    without touching the server, when Dovecot told the watcher's IDLE connection about a mail
    and when the watcher's fetch connected. Only TCP headers and the first bytes of Dovecot's
    answers are read; the thread ends when stopped or after ten minutes."""
    EXISTS = re.compile(rb"\* (\d+) EXISTS\r\n")

    def __init__(self, port: int):
        super().__init__(name="imap-wire", daemon=True)
        self.port = port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.syns: list[tuple[float, int]] = []  # (time.monotonic(), client port)
        # (time, client port, N, in a SELECT answer, in the packet of IDLE's "+ idling")
        self.exists: list[tuple[float, int, int, bool, bool]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.stopped.is_set() and time.monotonic() < deadline:
            try:
                frame, address = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            now = time.monotonic()
            if address[2] == socket.PACKET_OUTGOING:  # loopback shows each packet twice
                continue
            ip = frame[14:]
            if len(ip) < 20 or ip[9] != 6:  # TCP only
                continue
            tcp = ip[(ip[0] & 0x0F) * 4:]
            source, destination = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
            flags = tcp[13]
            if destination == self.port and flags & 0x02 and not flags & 0x10:  # SYN
                self.syns.append((now, source))
            elif source == self.port:
                payload = tcp[(tcp[12] >> 4) * 4:]
                in_select = b"[UIDVALIDITY " in payload or b"* FLAGS (" in payload
                with_idling = payload.startswith(b"+ ")
                for match in self.EXISTS.finditer(payload):
                    self.exists.append((now, destination, int(match.group(1)), in_select,
                                        with_idling))

    def close(self) -> None:
        self.stopped.set()
        self.join(5)
        self.sock.close()

    def idle_ports(self) -> set:
        """The watcher's IDLE connection(s): told of mail outside a SELECT, and connected
        before this capture began (each fetch connects anew, and is seen connecting)."""
        fetching = {port for _, port in self.syns}
        return {e[1] for e in self.exists if not e[3]} - fetching

    def told(self, after: float, count: int, idle_ports: set) -> tuple[float, bool] | None:
        """When an IDLE connection first heard of message number `count` (or a later one)
        after `after`, and whether that came in the packet of IDLE's "+ idling"."""
        return next(((t, with_idling) for t, port, n, in_select, with_idling in self.exists
                     if port in idle_ports and not in_select and n >= count and t >= after),
                    None)

    def connected_before(self, moment: float, after: float) -> float | None:
        """The last fetch connection made between `after` (less 5 s) and `moment`."""
        return max((t for t, _ in self.syns if after - 5 <= t <= moment), default=None)


def _probe_mail(rng: random.Random, k: int, token: str) -> bytes:
    sender = Sender("Probe Sender", f"probe{k}@customers.example", rng.choice(list(CHARSET_SHARE)))
    kind = ["plain", "html", "alternative", "plain"][k % 4]
    when = datetime.now(UTC)
    mail = build_mail(rng, 100_000 + k, sender, kind, f"Latency probe {k} {token}",
                      rng.randint(1_500, 12_000), when)
    return mail.raw


def run_to_screen(results: dict, dovecot, base: Path) -> None:
    data_dir = base / "live"
    _add_mailbox(data_dir, "live", dovecot, LIVE_USER)
    helpdesk(data_dir, "create-agent", AGENT, "--name", "Mail Agent", "--password-stdin",
             stdin=PASSWORD + "\n")
    log(f"Fresh data dir {data_dir}: brand `{SLUG}`, mailbox `live` ({LIVE_USER}) and an agent, "
        "all by `helpdesk` commands, before the server starts: its embedded worker starts an "
        "IDLE watcher for each mailbox (the supervisor looks again every 15 s). Served by "
        "`helpdesk serve` in the default configuration; the agent's queue stream is GET "
        "/events/queue with the session cookie of a login through /login.")
    rng = random.Random(SEED + 1)
    appended: dict[int, tuple[float, float]] = {}  # probe -> (monotonic, wall clock) at APPEND
    append_ms: dict[int, float] = {}
    wire = None
    with Server.helpdesk_serve(data_dir, name="email-server") as server:
        cookie = login(server.port, AGENT)
        stream = QueueStream(server.port, cookie)
        stream.start()
        sender = dovecot.connect(LIVE_USER, IMAP_PASSWORD)
        try:
            warm_started = time.monotonic()
            sender.append("INBOX", _probe_mail(rng, 0, f"{rng.randrange(16 ** 8):08x}"))
            if stream.wait_for(0, WARM_UP_TIMEOUT) is None:
                raise RuntimeError(f"the warm-up mail's row did not arrive in "
                                   f"{WARM_UP_TIMEOUT:.0f}s; see {server.log_path}")
            log(f"Warm-up mail: its row was on the stream {time.monotonic() - warm_started:.2f}s "
                "after its APPEND (the watcher connects and fetches, then idles).")
            try:
                wire = ImapWire(dovecot.port)
                wire.start()
            except OSError as exc:  # no raw socket here: the figures stand without the breakdown
                log(f"(No loopback capture for the breakdown: {exc}.)")
                wire = None
            time.sleep(1.5)  # the watcher is back in IDLE
            next_at = time.monotonic()
            for k in range(1, PROBES + 1):
                time.sleep(max(0.0, next_at - time.monotonic()))
                raw = _probe_mail(rng, k, f"{rng.randrange(16 ** 8):08x}")
                appended[k] = (time.monotonic(), time.time())
                sender.append("INBOX", raw)
                append_ms[k] = (time.monotonic() - appended[k][0]) * 1000
                next_at = appended[k][0] + rng.uniform(*SPACING)
            for k in range(1, PROBES + 1):  # every row, each within ROW_TIMEOUT of its APPEND
                stream.wait_for(k, max(0.0, appended[k][0] + ROW_TIMEOUT - time.monotonic()))
        finally:
            with contextlib.suppress(Exception):  # only closing
                sender.logout()
            if wire:
                wire.close()
            stream.close()

    stored = _stored_at(data_dir / "helpdesk.db")
    idle_ports = wire.idle_ports() if wire else set()
    delays, missed, rows = [], [], []
    for k, (at, wall) in appended.items():
        arrived = stream.arrivals.get(k)
        if arrived is None:
            missed.append(k)
            continue
        delays.append((arrived - at) * 1000)
        row = {"probe": k, "append_ms": round(append_ms[k], 1), "row_ms": round(delays[-1], 1)}
        if k in stored:
            stored_ms = (stored[k] - datetime.fromtimestamp(wall, UTC).replace(tzinfo=None)) \
                .total_seconds() * 1000
            row["stored_ms"] = round(stored_ms, 1)
            told = wire.told(at, k + 1, idle_ports) if wire else None  # message 1: warm-up
            connected = wire.connected_before(at + stored_ms / 1000, at) if wire else None
            if told:
                row["idle_told_ms"] = round((told[0] - at) * 1000, 1)
                row["told_with_idling"] = told[1]
            if connected is not None:
                row["fetch_connected_ms"] = round((connected - at) * 1000, 1)
            # How the watcher came to fetch it: told of it while idling; told of it with the
            # "+ idling" of a new IDLE (it came while the watcher was fetching); or taken by
            # a fetch already on its way (for an earlier mail, or the minute's poll).
            if wire and told and connected is not None and told[0] <= connected:
                row["path"] = "told with + idling" if told[1] else "told while idling"
            elif wire:
                row["path"] = "fetch under way"
        rows.append(row)
    (base / "probes.json").write_text(json.dumps(rows, indent=1) + "\n")
    if not delays:
        raise RuntimeError("no probe's row reached the queue stream")
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    log(f"{PROBES} mails APPENDed one at a time, {SPACING[0]}–{SPACING[1]} s apart, each a new "
        f"ticket with its own subject; rows on the agent's queue stream: {len(delays)}, missed "
        f"{len(missed)}{f' {missed}' if missed else ''}. APPEND to row: p50 {p50:.0f} ms, p99 "
        f"{p99:.0f} ms, min {min(delays):.0f} ms, max {max(delays):.0f} ms. APPEND answered "
        f"after {statistics.median(append_ms.values()):.1f} ms (median).")
    paths: dict[str, list] = {}
    for row in rows:
        if "path" in row:
            paths.setdefault(row["path"], []).append(row)
    if paths:
        log("How each mail was fetched (the IMAP side seen on the loopback interface): "
            + "; ".join(f"{name}: {len(group)}, APPEND to row median "
                        f"{statistics.median(r['row_ms'] for r in group):.0f} ms, max "
                        f"{max(r['row_ms'] for r in group):.0f} ms"
                        for name, group in sorted(paths.items())) + ".")
    idling = paths.get("told while idling", [])
    if idling:
        def med(part) -> float:
            return statistics.median(part(r) for r in idling)
        log(f"Told while idling ({len(idling)} mails), medians: Dovecot sends `* N EXISTS` to "
            f"the watcher's IDLE connection {med(lambda r: r['idle_told_ms']):.0f} ms after the "
            f"APPEND (its {DOVECOT_NOTIFY_DELAY_MS} ms notify delay); the watcher's fetch "
            f"connects {med(lambda r: r['fetch_connected_ms'] - r['idle_told_ms']):.0f} ms later "
            "(DONE, then a new connection); the message is stored (its created_at) "
            f"{med(lambda r: r['stored_ms'] - r['fetch_connected_ms']):.0f} ms after that "
            "(login, SELECT, STATUS, SEARCH, FETCH, parse, store); its row is on the stream "
            f"{med(lambda r: r['row_ms'] - r['stored_ms']):.0f} ms after it is stored.")
    stuck = paths.get("told with + idling", [])
    if stuck:
        log(f"Told with + idling ({len(stuck)} mails): they came while the watcher was between "
            "two IDLEs, and Dovecot sent `* N EXISTS` in the same packet as the `+ idling` of "
            "the next IDLE. IMAPClient.idle() reads only the `+ idling` line, the EXISTS line "
            "stays in imaplib's read buffer, and idle_check() polls the socket, so the watcher "
            "sees it only with Dovecot's next packet: here the next probe's EXISTS; with no more "
            "mail, the minute's poll or Dovecot's `* OK Still here` after 2 minutes. Told "
            f"{statistics.median(r['idle_told_ms'] for r in stuck):.0f} ms after the APPEND, "
            f"fetch connected {statistics.median(r['fetch_connected_ms'] for r in stuck):.0f} "
            "ms after it (medians).")
    slowest = max(rows, key=lambda r: r["row_ms"])
    log(f"Slowest: {slowest}. Every probe: {base / 'probes.json'}.")
    log(f"Dovecot's IDLE notify delay ({DOVECOT_NOTIFY_DELAY_MS} ms, NOTIFY_DELAY_MSECS in "
        "src/lib-storage/mailbox-watch.c) is compiled in; mailbox_idle_check_interval (whole "
        "seconds, default 30 s) is only the fallback stat() poll, which inotify events keep "
        "pushing back, so it cannot lower it. This Dovecot runs the test config unchanged.")
    results["email_to_screen_p50_ms"] = round(p50, 1)
    results["email_to_screen_p99_ms"] = round(p99, 1)
    results["email_to_screen_missed"] = len(missed)


def _stored_at(db_path: Path) -> dict[int, datetime]:
    """Probe number -> when its incoming message was stored (naive UTC)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT ticket.subject, message.created_at FROM message JOIN ticket ON "
            "ticket.id = message.ticket_id WHERE message.direction = 'incoming'").fetchall()
    finally:
        connection.close()
    found = {}
    for subject, created_at in rows:
        match = re.match(r"Latency probe (\d+) ", subject)
        if match:
            found[int(match.group(1))] = datetime.fromisoformat(created_at)
    return found


def run(results: dict) -> None:
    log(f"== 4. Email channel: {MAILS:,} mails fetched into tickets; {PROBES} mails to the "
        "screen with IDLE ==")
    started = time.monotonic()
    mails = generate(MAILS)
    log(f"Generated {len(mails):,} mails in {time.monotonic() - started:.1f}s (seed {SEED}).")
    base = fresh_dir("email")
    dovecot = _start_dovecot(base / "dovecot.log")
    try:
        log(f"Dovecot on {dovecot.host}:{dovecot.port} (tests/email/dovecot.py as the tests run "
            f"it: Maildir, no TLS, mail_fsync = never), its log in {base / 'dovecot.log'}.")
        run_ingest(results, dovecot, mails, base)
        run_to_screen(results, dovecot, base)
    finally:
        dovecot.stop()
