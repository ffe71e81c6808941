"""Sending one mail over a brand's SMTP server, with failures explained in words."""
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass
class SmtpServer:
    host: str
    port: int
    security: str  # none, starttls, ssl
    username: str = ""
    password: str = ""


class SendError(Exception):
    """Why a mail could not be sent, in words; permanent when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def _server_answer(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _not_supported(where: str, detail: str) -> str:
    """What the server lacks (smtplib's words), and what to change."""
    if "SMTPUTF8" in detail:
        advice = ("It cannot take an address with letters outside ASCII: use a plain address, "
                  "or a server that offers SMTPUTF8.")
    elif "AUTH" in detail:
        advice = ("It offers no login here: check the security setting (many servers offer "
                  "login only over TLS), or leave the user name empty.")
    else:
        advice = "Check the security setting (STARTTLS, SSL or none)."
    return f"The mail server {where} does not support this: {detail.rstrip('.')}. {advice}"


def require_host(server: SmtpServer) -> None:
    if not server.host:
        raise SendError("No outgoing mail server (SMTP) is set up for this brand.", permanent=True)


def send(server: SmtpServer, message: EmailMessage, timeout: float = 20.0) -> None:
    """Deliver the message to the server or raise SendError saying what went wrong."""
    require_host(server)
    where = f"{server.host}:{server.port}"
    try:
        if server.security == "ssl":
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if server.username:
                client.login(server.username, server.password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"The mail server {where} refused the user name or password: "
                        f"{_server_answer(exc)}", permanent=True) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(_not_supported(where, str(exc)), permanent=True) from None
    except smtplib.SMTPRecipientsRefused as exc:
        answers = "; ".join(f"{rcpt}: {code} {msg.decode('utf-8', 'replace')}"
                            for rcpt, (code, msg) in exc.recipients.items())
        permanent = all(code >= 500 for code, _ in exc.recipients.values())
        raise SendError(f"The mail server {where} refused the recipient: {answers}", permanent) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"The mail server {where} answered: {_server_answer(exc)}",
                        permanent=exc.smtp_code >= 500) from None
    except ssl.SSLError as exc:
        raise SendError(f"The secure connection (TLS) to {where} failed: {exc.reason or exc}. "
                        "Check the security setting and the port.") from None
    except (socket.timeout, TimeoutError):
        raise SendError(f"The mail server {where} did not answer in time.") from None
    except ConnectionRefusedError:
        raise SendError(f"Cannot connect to the mail server {where}: the connection was refused.") from None
    except socket.gaierror:
        raise SendError(f"Cannot find the mail server {server.host}: the host name does not resolve.") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise SendError(f"The mail server {where} closed the connection: {exc}") from None
    except OSError as exc:
        raise SendError(f"Cannot connect to the mail server {where}: {exc.strerror or exc}.") from None
    except smtplib.SMTPException as exc:
        raise SendError(f"Sending through {where} failed: {exc}") from None
