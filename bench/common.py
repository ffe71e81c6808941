"""What the benchmarks share: paths, the server subprocess, wrk, logging in, process memory."""
import asyncio
import http.client
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VAR = BENCH / "var"
BIN = Path(sys.executable).parent  # .venv/bin when run as `.venv/bin/python -m bench.run`
HELPDESK = BIN / "helpdesk"
PASSWORD = "bench-password-123"
NOFILE = 16384  # open files for the server and the SSE clients (1,000 streams and more)


def log(text: str = "") -> None:
    print(text, flush=True)


def fresh_dir(name: str) -> Path:
    path = VAR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def env_for(data_dir: Path, **extra) -> dict:
    """The environment of the helpdesk commands: only HELPDESK_DATA_DIR and the given extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env["HELPDESK_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def raise_nofile(limit: int = NOFILE) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def helpdesk(data_dir: Path, *args, stdin: str = "", timeout: float = 60) -> str:
    """Run one `helpdesk` command against the bench data; fail loudly when it fails."""
    done = subprocess.run([str(HELPDESK), *args], input=stdin, capture_output=True, text=True,
                          env=env_for(data_dir), timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"helpdesk {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The helpdesk served in its own process: `helpdesk serve`, or the bench wrapper module."""

    def __init__(self, data_dir: Path, command: list[str], extra_env: dict | None = None,
                 name: str = "server"):
        self.data_dir = data_dir
        self.port = free_port()
        self.command = [*command, "--port", str(self.port)]
        self.env = env_for(data_dir, **(extra_env or {}))
        self.log_path = data_dir.parent / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @classmethod
    def helpdesk_serve(cls, data_dir: Path, extra_env: dict | None = None, name: str = "server"):
        return cls(data_dir, [str(HELPDESK), "serve"], extra_env, name)

    def start(self, timeout: float = 60) -> "Server":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=ROOT,
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start; see {self.log_path}")
            try:
                status, _, _ = request(self.port, "GET", "/login", timeout=2)
                if status in (200, 303):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class EventStream(asyncio.Protocol):
    """A server-sent event stream read on a raw socket, no HTTP library: `opened` resolves
    once the headers are in (failing unless the status is 200), then every piece of the body
    goes to body_received with the time it came."""

    def __init__(self, opened: asyncio.Future):
        self.opened = opened
        self.head = b""
        self.transport = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        now = time.monotonic()
        if not self.opened.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b" ", 2)[1] if b" " in self.head else b"?"
            if status != b"200":
                self.opened.set_exception(RuntimeError(f"stream answered {status.decode()}"))
                return
            self.opened.set_result(True)
            data, self.head = self.head[end + 4:], b""
        self.body_received(data, now)

    def body_received(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def connection_lost(self, exc):
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(RuntimeError("stream closed before its headers"))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_of(stat_path: Path) -> float:
    fields = stat_path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by a process: (its main thread, its other threads)."""
    main = _cpu_of(Path(f"/proc/{pid}/task/{pid}/stat"))
    return main, _cpu_of(Path(f"/proc/{pid}/stat")) - main


class CpuMeter:
    """CPU used by a process between start() and stop(), split main thread / other threads."""

    def __init__(self, pid: int):
        self.pid = pid

    def start(self) -> "CpuMeter":
        self.at, self.before = time.monotonic(), cpu_seconds(self.pid)
        return self

    def stop(self) -> "CpuMeter":
        after = cpu_seconds(self.pid)
        self.seconds = time.monotonic() - self.at
        # Clock ticks: a difference can come out a tick below zero.
        self.main, self.others = (max(0.0, a - b) for a, b in zip(after, self.before))
        return self

    def describe(self, per: int = 0, unit: str = "request") -> str:
        text = (f"server CPU {self.main + self.others:.1f} s in {self.seconds:.1f} s: event-loop "
                f"thread {self.main:.1f} s ({self.main / self.seconds:.0%} of a core), other "
                f"threads (Huey worker, scheduler) {self.others:.1f} s")
        if per:
            text += (f"; per {unit}: {1000 * (self.main + self.others) / per:.2f} ms "
                     f"({1000 * self.main / per:.2f} ms on the event loop)")
        return text


def request(port: int, method: str, path: str, body: str | bytes | None = None,
            headers: dict | None = None, timeout: float = 10):
    """One HTTP request on a new connection; returns (status, headers list, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _cookies(headers) -> dict:
    jar = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            jar[key.strip()] = val.strip()
    return jar


def login(port: int, email: str, password: str = PASSWORD) -> str:
    """Log in through /login as a browser does (CSRF token from the form); returns the Cookie
    header a browser would then send: the session and the CSRF cookie."""
    status, headers, body = request(port, "GET", "/login")
    match = re.search(r'name="csrftoken" value="([^"]+)"', body)
    if status != 200 or not match:
        raise RuntimeError(f"GET /login gave {status} without a CSRF token")
    jar = _cookies(headers)
    form = urlencode({"csrftoken": match.group(1), "email": email, "password": password,
                      "next": "/"})
    status, headers, body = request(port, "POST", "/login", form, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    jar.update(_cookies(headers))
    if status != 303 or "session" not in jar:
        raise RuntimeError(f"logging in gave {status}, not a redirect with a session")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


# wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests/sec, latency percentiles (ms), request count, errors and non-2xx/3xx answers."""
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        if match:
            result[f"p{pct}_ms"] = _ms(match.group(1))
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    result["requests"] = int(match.group(1))
    result["duration_s"] = _ms(match.group(2) + match.group(3)) / 1000
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx_3xx"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(g) for g in match.groups()) if match else 0
    return result


def wrk(url: str, *, threads: int = 2, connections: int = 16, seconds: int = 10,
        headers: dict | None = None, script: Path | None = None, script_args=()) -> tuple[dict, str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout), done.stdout
