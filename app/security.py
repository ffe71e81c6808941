"""Security headers, login throttling and the rate limits of public forms (all from libraries)."""
import time

from limits import parse, storage, strategies

# Scripts only from this site. Inline style attributes are allowed: mail keeps its formatting,
# after the sanitizer dropped every property that could escape the message's box or load.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def _names_framers(headers) -> bool:
    """Whether the response's own CSP lets some sites frame it (a form's iframe variant).
    X-Frame-Options cannot name sites, so it is left out there: browsers follow the CSP."""
    return any(name == b"content-security-policy" and b"frame-ancestors" in value
               and b"frame-ancestors 'none'" not in value for name, value in headers)


class SecurityHeadersMiddleware:
    """Adds the same security headers to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                if _names_framers(message.get("headers", [])):
                    present.add(b"x-frame-options")
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PacedMemoryStorage(storage.MemoryStorage):
    """limits' in-process storage, dropping expired entries at most once a second. As it comes,
    it starts a thread for that whenever the last one ended (10 ms after it started): under
    load, a thread for every request. Entries past their time never count either way."""

    _next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # the name its private method gets
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            super()._MemoryStorage__schedule_expiry()


class RateLimits:
    """Counters shared by this process (memory://) or by all of them (redis://)."""

    def __init__(self, settings):
        url = settings.ratelimit_storage
        self.limiter = strategies.MovingWindowRateLimiter(
            PacedMemoryStorage() if url.startswith("memory://") else storage.storage_from_string(url))
        window = settings.login_window_minutes
        self.login_per_account = parse(f"{settings.login_max_failures}/{window} minutes")
        # One address may hold several agents' browsers (an office), so it gets more tries.
        self.login_per_address = parse(f"{settings.login_max_failures * 4}/{window} minutes")
        self.form_per_address = parse(settings.form_rate_per_address)
        self.form_per_ip = parse(settings.form_rate_per_ip)
        self.chat_start_per_ip = parse(settings.chat_start_rate_per_ip)
        self.chat_per_token = parse(settings.chat_rate_per_token)
        self.chat_per_ip = parse(settings.chat_rate_per_ip)

    # Login failures

    def _login_keys(self, email: str, ip: str):
        return ((self.login_per_account, "account", email.strip().lower()),
                (self.login_per_address, "ip", ip))

    def login_refused_for(self, email: str, ip: str) -> int:
        """Seconds until this account and address may try again; 0 when they may now."""
        for item, kind, key in self._login_keys(email, ip):
            if not self.limiter.test(item, "login", kind, key):
                reset_at = self.limiter.get_window_stats(item, "login", kind, key).reset_time
                return max(1, int(reset_at - time.time()))
        return 0

    def login_failures(self, email: str) -> int:
        stats = self.limiter.get_window_stats(self.login_per_account, "login", "account",
                                              email.strip().lower())
        return self.login_per_account.amount - stats.remaining

    def record_login_failure(self, email: str, ip: str) -> None:
        for item, kind, key in self._login_keys(email, ip):
            self.limiter.hit(item, "login", kind, key)

    def clear_login_failures(self, email: str) -> None:
        self.limiter.clear(self.login_per_account, "login", "account", email.strip().lower())

    # Public forms

    def allow_form(self, email: str, ip: str) -> bool:
        """Counts one submission; False when the address or the visitor's IP sent too many."""
        return (self.limiter.hit(self.form_per_ip, "form", "ip", ip)
                and self.limiter.hit(self.form_per_address, "form", "email", email.strip().lower()))

    # The chat widget

    def allow_widget_request(self, ip: str) -> bool:
        """Counts one widget request of any kind from this visitor address."""
        return self.limiter.hit(self.chat_per_ip, "widget", "ip", ip)

    def allow_chat_start(self, ip: str) -> bool:
        """Counts one new chat or offline message from this visitor address."""
        return self.limiter.hit(self.chat_start_per_ip, "widget", "start", ip)

    def allow_chat_post(self, kind: str, token_hash: str) -> bool:
        """Counts one message (kind "message") or typing signal ("typing") of a conversation."""
        return self.limiter.hit(self.chat_per_token, "widget", kind, token_hash)
