"""Settings read once from HELPDESK_* environment variables and passed to create_app."""
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    huey_url: str = ""  # empty: SQLite queue in data_dir; redis://... for scale-out
    secret_key: str = ""  # empty: generated once and kept in data_dir
    base_url: str = "http://127.0.0.1:8000"
    session_hours: int = 12
    auto_close_days: int = 7
    smtp_timeout: float = 20.0
    smtp_max_attempts: int = 6
    smtp_retry_delay: float = 30.0  # first retry; doubles on each failure
    worker_threads: int = 2
    ratelimit_storage: str = "memory://"
    login_max_failures: int = 5  # per account or address in login_window
    login_window_minutes: int = 15
    form_rate_per_address: str = "5/hour"
    form_rate_per_ip: str = "30/minute"
    max_message_chars: int = 20000
    form_min_fill_seconds: float = 3.0  # a form sent sooner after the page was served is refused
    form_max_files: int = 3  # files per form submission
    form_max_file_bytes: int = 10 * 1024 * 1024  # per file
    agent_online_minutes: int = 5  # an agent seen this lately (and not away) can take chats
    chat_idle_minutes: int = 3  # a live chat whose visitor is gone this long ends
    chat_start_rate_per_ip: str = "10/hour"  # new chats and offline messages per visitor address
    chat_rate_per_token: str = "30/minute"  # chat messages (and, apart, typing) per conversation
    chat_rate_per_ip: str = "300/minute"  # all widget requests per visitor address
    chat_max_message_chars: int = 5000
    embedded_worker: bool = True
    mail_poll_seconds: int = 60  # how often every mailbox is checked (IDLE brings mail sooner)
    max_mail_bytes: int = 25 * 1024 * 1024  # bigger mails stay on the server, listed for admins
    reopen_closed_days: int = 30  # an answer to a ticket closed longer ago opens a new one
    ack_quiet_hours: float = 4.0  # one acknowledgement per sender in this time
    imap_timeout: float = 30.0
    access_log: bool = False  # the proxy in front usually keeps one; it costs ~15% of throughput

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'helpdesk.db'}"

    def with_changes(self, **changes) -> "Settings":
        return replace(self, **changes)


_ENV = {
    "data_dir": ("HELPDESK_DATA_DIR", Path),
    "database_url": ("HELPDESK_DATABASE_URL", str),
    "huey_url": ("HELPDESK_HUEY_URL", str),
    "secret_key": ("HELPDESK_SECRET_KEY", str),
    "base_url": ("HELPDESK_BASE_URL", str),
    "session_hours": ("HELPDESK_SESSION_HOURS", int),
    "auto_close_days": ("HELPDESK_AUTO_CLOSE_DAYS", int),
    "smtp_timeout": ("HELPDESK_SMTP_TIMEOUT", float),
    "smtp_max_attempts": ("HELPDESK_SMTP_MAX_ATTEMPTS", int),
    "smtp_retry_delay": ("HELPDESK_SMTP_RETRY_DELAY", float),
    "worker_threads": ("HELPDESK_WORKER_THREADS", int),
    "ratelimit_storage": ("HELPDESK_RATELIMIT_STORAGE", str),
    "login_max_failures": ("HELPDESK_LOGIN_MAX_FAILURES", int),
    "login_window_minutes": ("HELPDESK_LOGIN_WINDOW_MINUTES", int),
    "form_rate_per_address": ("HELPDESK_FORM_RATE_PER_ADDRESS", str),
    "form_rate_per_ip": ("HELPDESK_FORM_RATE_PER_IP", str),
    "max_message_chars": ("HELPDESK_MAX_MESSAGE_CHARS", int),
    "form_min_fill_seconds": ("HELPDESK_FORM_MIN_FILL_SECONDS", float),
    "form_max_files": ("HELPDESK_FORM_MAX_FILES", int),
    "form_max_file_bytes": ("HELPDESK_FORM_MAX_FILE_BYTES", int),
    "agent_online_minutes": ("HELPDESK_AGENT_ONLINE_MINUTES", int),
    "chat_idle_minutes": ("HELPDESK_CHAT_IDLE_MINUTES", int),
    "chat_start_rate_per_ip": ("HELPDESK_CHAT_START_RATE_PER_IP", str),
    "chat_rate_per_token": ("HELPDESK_CHAT_RATE_PER_TOKEN", str),
    "chat_rate_per_ip": ("HELPDESK_CHAT_RATE_PER_IP", str),
    "chat_max_message_chars": ("HELPDESK_CHAT_MAX_MESSAGE_CHARS", int),
    "mail_poll_seconds": ("HELPDESK_MAIL_POLL_SECONDS", int),
    "max_mail_bytes": ("HELPDESK_MAX_MAIL_BYTES", int),
    "reopen_closed_days": ("HELPDESK_REOPEN_CLOSED_DAYS", int),
    "ack_quiet_hours": ("HELPDESK_ACK_QUIET_HOURS", float),
    "imap_timeout": ("HELPDESK_IMAP_TIMEOUT", float),
    "access_log": ("HELPDESK_ACCESS_LOG", lambda raw: raw.strip().lower() in ("1", "true", "yes", "on")),
}


class ConfigError(Exception):
    pass


def from_env(environ=None) -> Settings:
    """Build Settings from HELPDESK_* variables; unknown or malformed values are refused."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, kind) in _ENV.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = kind(raw)
        except ValueError:
            kind_name = {int: "a whole number", float: "a number"}.get(kind, "valid")
            raise ConfigError(f"{var} must be {kind_name}, not {raw!r}.") from None
    return Settings(**values)


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: the configured one, or one kept in the data directory."""
    if settings.secret_key:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.data_dir / "secret_key"
    if not key_file.exists():
        # O_EXCL: two processes starting together must agree on one key.
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
    return settings.with_changes(secret_key=key_file.read_text().strip())
