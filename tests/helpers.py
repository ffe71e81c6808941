"""Small things tests share: waiting with a deadline, logging in, reading form tokens."""
import re
import socket
import time

CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll until predicate() is truthy; return its value, or fail after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def csrf_token(client, path: str = "/login") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrftoken": token, "email": email, "password": password,
                                       "next": "/"}, follow_redirects=False)


def post_form(client, path: str, data: dict, page: str | None = None, **kwargs):
    """Post a form as a browser would: with the CSRF token of the page it is on, if it has one."""
    match = CSRF.search(client.get(page or path).text)
    token = {"csrftoken": match.group(1)} if match else {}
    return client.post(path, data={**token, **data}, **kwargs)
