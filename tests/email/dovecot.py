"""A throwaway Dovecot IMAP server on 127.0.0.1 for tests: a real IMAP peer, never a mock.

    server = Dovecot()
    server.add_user("support@example.test", "secret")
    server.start()                       # its own 0755 dir under /tmp, a free loopback port
    try:
        uidvalidity, uid = server.append("support@example.test", "secret", raw_bytes)
        with server.connect("support@example.test", "secret") as imap:   # an IMAPClient
            imap.select_folder("INBOX")
            ...
    finally:
        server.stop()

Dovecot 2.3 (Debian's dovecot-imapd) runs from a config written into the server's
directory, not through systemd (see shared/testing/README.md beside the project). It is
started as root; its login processes run as dovenull, its auth process as dovecot and the
mail processes as `mail`, so the server's directory and every directory above it must be
traversable by others. pytest's tmp_path is not (/tmp/pytest-of-root is 0700) and its paths
are long (unix sockets live in the run/ folder and have a 108-byte limit), hence a short
directory of its own under /tmp by default. The log can still go to tmp_path: Dovecot's log
process writes it, as root.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ClassVar, Self

from imapclient import IMAPClient, imap_utf7

DOVECOT = "/usr/sbin/dovecot"
NOT_INSTALLED = "dovecot-imapd is not installed: apt-get install dovecot-imapd"
DIR_PREFIX = "helpdesk-dovecot-"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
IMAP_TIMEOUT = 10.0
APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")

CONFIG = """\
# Written by tests/email/dovecot.py for one test; removed with the server.
base_dir = {dir}/run
state_dir = {dir}/run/state
protocols = imap
listen = {host}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={dir}/mail/%u
}}
mail_location = maildir:~/Maildir
log_path = {log_path}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 8
# Test speed, not production: a wrong password is refused at once instead of after 2 s
# and more (the failure delay, and anvil's per-IP penalty, which needs its socket),
# no fsync for throwaway mail, and room for the app's connections plus the helpers' own.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_fsync = never
mail_max_userip_connections = 50
"""


class DovecotError(RuntimeError):
    """The server did not start, stop or answer as expected; the message has its log's tail."""


class Flags(frozenset):
    """The flags of a message as str (e.g. "\\\\Seen"). `in` also takes bytes, so that
    `imapclient.SEEN in flags` (b"\\\\Seen") cannot silently be False."""

    def __contains__(self, flag):
        if isinstance(flag, (bytes, bytearray)):
            flag = bytes(flag).decode("utf-8", errors="replace")
        return frozenset.__contains__(self, flag)


class Dovecot:
    """One Dovecot IMAP server on 127.0.0.1 with plain-text logins (no TLS) and Maildir storage.

    The helpers (append, uids, flags_of, create_folder, uidvalidity) each log in over their
    own real IMAP connection and log out again; they look with EXAMINE (read-only), so they
    change nothing the code under test could notice. restart() and change_uidvalidity() drop
    every connection, like a server crash."""

    host = "127.0.0.1"
    # stopped at interpreter exit if a test run is cut short
    _running: ClassVar[set["Dovecot"]] = set()

    def __init__(self, binary: str = DOVECOT):
        self.binary = binary
        self.port: int | None = None
        self.dir: Path | None = None
        self.log_path: Path | None = None
        self.pid: int | None = None
        self._users: dict[str, str] = {}
        self._owns_dir = False

    # --- users ---------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add a login, before or after start(); the password is stored as {PLAIN}.

        While the server runs there is no reload: Dovecot's passwd-file driver stats the
        file again at a login, but at most once per second (a lookup in the same second as
        the previous one gets the copy in memory: db-passwd-file.c, passwd_file_sync). So
        this returns once the clock has passed into the next second after the write, at most
        1 s; from then on the next login reads the new file (its size differs, as users are
        only ever added)."""
        for value in (username, password):
            if not value or any(c in value for c in ":\r\n\0"):
                raise ValueError(f"{value!r}: a login or password can't be empty or hold ':' "
                                 "or a line break (the users file is colon-separated)")
        if username in self._users:
            raise ValueError(f"{username} is already a user of this server")
        self._users[username] = password
        if self.dir is not None:
            self._write_users()
            if self.pid is not None:
                written = int(time.time())
                while int(time.time()) <= written:
                    time.sleep(0.01)

    def _write_users(self) -> None:
        # Written whole to a temp file and renamed over, so a login never reads half a file.
        # 0644: these are test passwords, and the file is read by Dovecot's auth process,
        # which runs as the `dovecot` user.
        text = "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self._users.items())
        users = self.dir / "users"
        temp = users.with_name("users.tmp")
        temp.write_text(text)
        temp.chmod(0o644)
        os.replace(temp, users)

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    def installed(cls, binary: str = DOVECOT) -> bool:
        return os.access(binary, os.X_OK)

    def start(self, tmp_dir: str | os.PathLike | None = None,
              log_path: str | os.PathLike | None = None) -> Self:
        """Write the config and users into tmp_dir, start Dovecot on a free 127.0.0.1 port and
        return once it greets IMAP clients.

        tmp_dir: an empty (or missing) directory that `mail` and `dovenull` can reach, with a
        short path; by default a new one under /tmp that stop() removes. A given tmp_dir is
        left in place. log_path: where Dovecot logs (default tmp_dir/dovecot.log); any path
        root can write, e.g. pytest's tmp_path, to keep the log after the test."""
        if self.pid is not None:
            raise DovecotError("this Dovecot is already running")
        if not self.installed(self.binary):
            raise DovecotError(NOT_INSTALLED)
        if tmp_dir is None:
            _remove_abandoned_servers()
            self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
            self._owns_dir = True
        else:
            self.dir = Path(tmp_dir).resolve()
            self.dir.mkdir(parents=True, exist_ok=True)
            self._owns_dir = False
        try:
            self._prepare_dir(log_path)
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_dir(self, log_path) -> None:
        self.dir.chmod(0o755)
        for parent in self.dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise DovecotError(f"{parent} is not traversable by others (mode "
                                   f"{parent.stat().st_mode & 0o777:o}), so Dovecot's `mail` "
                                   f"and `dovenull` processes can't reach {self.dir}")
        socket_path = self.dir / "run" / "login" / "imap-urlauth"  # the longest socket name
        if len(str(socket_path)) >= 100:
            raise DovecotError(f"{self.dir} is too long a path for Dovecot's unix sockets")
        (self.dir / "owner").write_text(str(os.getpid()))
        self.log_path = Path(log_path).resolve() if log_path else self.dir / "dovecot.log"
        mail = self.dir / "mail"
        mail.mkdir(exist_ok=True)
        shutil.chown(mail, "mail", "mail")
        self._write_users()

    def _launch(self, port: int | None = None) -> None:
        conf = self.dir / "dovecot.conf"
        Dovecot._running.add(self)
        attempts = 1 if port else 5  # another process may take a free port before Dovecot does
        for attempt in range(attempts):
            self.port = port or _free_port(self.host)
            conf.write_text(CONFIG.format(dir=self.dir, host=self.host, port=self.port,
                                          log_path=self.log_path))
            # `dovecot -c` binds the listeners, then daemonizes and returns; the daemon (the
            # master process) writes its pid to run/master.pid. Its output goes to a file, not
            # a pipe: the daemon keeps the inherited descriptors, so a pipe never ends.
            output_path = self.dir / "start.out"
            with open(output_path, "w+") as output_file:
                done = subprocess.run([self.binary, "-c", str(conf)], check=False,
                                      stdin=subprocess.DEVNULL, stdout=output_file,
                                      stderr=subprocess.STDOUT, timeout=START_TIMEOUT)
            if done.returncode == 0:
                break
            output = output_path.read_text(errors="replace").strip()
            if "Address already in use" not in output or attempt == attempts - 1:
                raise DovecotError(f"dovecot -c {conf} exited with {done.returncode}: "
                                   f"{output}\n{self._log_tail()}")
        deadline = time.monotonic() + START_TIMEOUT
        pid_file = self.dir / "run" / "master.pid"
        while not self._read_pid(pid_file):
            if time.monotonic() > deadline:
                raise DovecotError(f"Dovecot wrote no {pid_file}\n{self._log_tail()}")
            time.sleep(0.005)
        self.pid = self._read_pid(pid_file)
        self._wait_for_greeting(deadline)

    @staticmethod
    def _read_pid(pid_file: Path) -> int | None:
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):  # missing, or read between its creation and its write
            return None

    def _wait_for_greeting(self, deadline: float) -> None:
        """Wait for "* OK": the port accepts as soon as it is bound, but a login process
        answers only once the master has spawned it."""
        while True:
            if not _alive(self.pid):
                raise DovecotError(f"Dovecot (pid {self.pid}) exited at start\n{self._log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    if conn.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DovecotError(f"Dovecot did not greet on {self.host}:{self.port} within "
                                   f"{START_TIMEOUT}s\n{self._log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill the server (see _kill), wait until its processes are gone and the port is
        closed, and remove the directory start() made. Safe to call twice, or after a failed
        start()."""
        try:
            self._kill()
        finally:
            Dovecot._running.discard(self)
            if self._owns_dir and self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port with the same mail and users,
        as after a crash: connected clients see their connection end (EOF), then can
        reconnect to the same address."""
        if self.pid is None:
            raise DovecotError("the server is not running: call start() first")
        self._kill()
        self._launch(port=self.port)

    def _kill(self) -> None:
        """SIGKILL the master's process group (the master is a session leader and every
        Dovecot process of this server is in its group) and wait, with a deadline, until
        none of them runs and the port is closed.

        Not SIGTERM: on SIGTERM Dovecot 2.3's master always sleeps 1 s before it exits (a
        stop then took 1.1 s) and, with clients connected, keeps the port 6 s and their mail
        processes 10 s. Nothing of a throwaway server needs a graceful end."""
        pid, self.pid = self.pid, None
        if pid is None and self.dir is not None:  # start() failed after Dovecot daemonized
            pid = _our_master(self.dir)
        if pid is not None:
            _kill_group(pid, self.host, self.port)
        if self.dir is not None:
            # A dead master may stay a zombie for a while (not every container's init reaps
            # orphans promptly), and `dovecot -c` refuses to start while the pid in
            # master.pid answers kill(pid, 0).
            (self.dir / "run" / "master.pid").unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self if self.pid is not None else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def _log_tail(self, lines: int = 20) -> str:
        tail = self.log().splitlines()[-lines:]
        return "Dovecot's log ends with:\n" + "\n".join(tail) if tail else "Dovecot's log is empty"

    # --- IMAP helpers --------------------------------------------------------------------

    def connect(self, username: str, password: str) -> IMAPClient:
        """A logged-in imapclient.IMAPClient; use it as a context manager to log out."""
        if self.pid is None:
            raise DovecotError("the server is not running: call start() first")
        client = IMAPClient(self.host, self.port, ssl=False, timeout=IMAP_TIMEOUT)
        try:
            client.login(username, password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(self, username: str, password: str, raw_bytes: bytes, folder: str = "INBOX",
               flags=()) -> tuple[int, int]:
        """APPEND a raw message (bytes, CRLF line ends as on the wire); return
        (uidvalidity, uid) from the server's APPENDUID response code."""
        if not isinstance(raw_bytes, (bytes, bytearray)):
            raise TypeError("append() takes the raw message as bytes")
        with self.connect(username, password) as imap:
            response = imap.append(folder, bytes(raw_bytes), flags=tuple(flags))
        match = APPENDUID.search(response)
        if not match:
            raise DovecotError(f"APPEND answered without APPENDUID: {response!r}")
        return int(match.group(1)), int(match.group(2))

    def uids(self, username: str, password: str, folder: str = "INBOX") -> list[int]:
        """The UIDs in the folder, ascending (UID SEARCH ALL after EXAMINE)."""
        with self.connect(username, password) as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(imap.search("ALL"))

    def flags_of(self, username: str, password: str, uid: int, folder: str = "INBOX") -> Flags:
        """The message's flags as str, e.g. {"\\\\Seen"}, without \\Recent (a per-session
        flag: who sees it depends on which session selected the folder first)."""
        with self.connect(username, password) as imap:
            imap.select_folder(folder, readonly=True)
            found = imap.fetch([uid], ["FLAGS"])
        if uid not in found:
            raise DovecotError(f"no message with UID {uid} in {folder} of {username}")
        flags = {flag.decode("ascii") if isinstance(flag, bytes) else flag
                 for flag in found[uid][b"FLAGS"]}
        return Flags(flags - {"\\Recent"})

    def create_folder(self, username: str, password: str, folder: str) -> None:
        with self.connect(username, password) as imap:
            imap.create_folder(folder)

    def uidvalidity(self, username: str, password: str, folder: str = "INBOX") -> int:
        """UIDVALIDITY as a SELECT (EXAMINE) reports it."""
        with self.connect(username, password) as imap:
            return int(imap.select_folder(folder, readonly=True)[b"UIDVALIDITY"])

    def change_uidvalidity(self, username: str, password: str,
                           folder: str = "INBOX") -> tuple[int, int]:
        """Make the folder's UIDVALIDITY change, as on a server that lost its UID database
        (restored from a backup, migrated), and return (old, new). Works for INBOX too.

        How: the server is killed, the folder's dovecot-uidlist and dovecot.index* files are
        deleted and the server is started again on the same port (restart()), which drops
        every IMAP connection; the next SELECT or STATUS shows the new value. The messages
        stay, with their flags, and get new UIDs from 1 (in file order).

        What this Dovecot (2.3.19, Maildir) does, tried out:
        - deleting dovecot-uidlist alone changes nothing: Dovecot rebuilds it from
          dovecot.index*, UIDVALIDITY and UIDs included;
        - deleting dovecot-uidlist and dovecot.index* does: the folder is rescanned and takes
          a new UIDVALIDITY from the user's dovecot-uidvalidity counter (old + 1 or more).
          That works without a restart too, but a session that has the folder selected
          then either is disconnected ("IMAP session state is inconsistent") or goes on
          with its stale view while Dovecot logs index errors, depending on timing; hence
          the restart, which makes it the same every time;
        - DELETE then CREATE of a folder also gives a new UIDVALIDITY, but loses its
          messages, and INBOX can't be deleted."""
        old = self.uidvalidity(username, password, folder)  # the folder exists on disk now
        directory = self.maildir(username, folder)
        self._kill()
        for path in [directory / "dovecot-uidlist", *directory.glob("dovecot.index*")]:
            path.unlink(missing_ok=True)
        self._launch(port=self.port)
        new = self.uidvalidity(username, password, folder)
        if new == old:
            raise DovecotError(f"UIDVALIDITY of {folder} stayed {old}\n{self._log_tail()}")
        return old, new

    def maildir(self, username: str, folder: str = "INBOX") -> Path:
        """The folder's directory on disk (Maildir++: INBOX is ~/Maildir, "A.B" is
        ~/Maildir/.A.B, names in modified UTF-7). It exists once the user logged in."""
        root = self.dir / "mail" / username / "Maildir"
        if folder.upper() == "INBOX":
            path = root
        else:
            path = root / ("." + imap_utf7.encode(folder).decode())
        if not path.is_dir():
            raise DovecotError(f"{path} does not exist: no folder {folder!r} for {username}")
        return path


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """True while the process runs. A zombie counts as gone: the daemonized master is not our
    child, and the init of some containers reaps orphans only now and then."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def _kill_group(pid: int, host: str, port: int | None) -> None:
    """SIGKILL the master and its process group; wait until all are gone and the port is
    closed (the port is probed only then: a connection would make the master spawn a login
    process)."""
    try:
        in_group = os.getpgid(pid) == pid
        if in_group:
            os.killpg(pid, signal.SIGKILL)
        else:  # not a group leader (not seen with dovecot -c): the master alone
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        in_group = False
    deadline = time.monotonic() + STOP_TIMEOUT
    while (in_group and group_members(pid)) or _alive(pid) or (port and _port_open(host, port)):
        if time.monotonic() > deadline:
            raise DovecotError(f"Dovecot (pid {pid}) still runs or port {port} is still open "
                               f"{STOP_TIMEOUT}s after SIGKILL")
        time.sleep(0.005)


def _remove_abandoned_servers() -> None:
    """Stop and remove servers of earlier test runs that ended without stop() (a killed
    pytest): directories of ours whose owner process is gone. Only a master whose command
    line names that directory's config is signalled."""
    for directory in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        try:
            owner = int((directory / "owner").read_text())
        except (OSError, ValueError):
            continue  # not ours, or being set up right now
        if _alive(owner):
            continue
        pid = _our_master(directory)
        if pid:
            try:
                _kill_group(pid, Dovecot.host, None)
            except DovecotError:
                continue
        shutil.rmtree(directory, ignore_errors=True)


def _our_master(directory: Path) -> int | None:
    """The pid in directory/run/master.pid if that process runs and its command line names
    directory/dovecot.conf (so a reused pid is never signalled), else None."""
    pid = Dovecot._read_pid(directory / "run" / "master.pid")
    if not pid or not _alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if str(directory / "dovecot.conf").encode() + b"\0" in cmdline + b"\0" else None


@atexit.register
def _stop_all() -> None:
    for server in list(Dovecot._running):
        try:
            server.stop()
        except (DovecotError, OSError):
            continue  # the others are still worth stopping
