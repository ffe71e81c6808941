"""The `helpdesk` command: serve, worker, create-agent, demo, brand add|list|edit."""
import argparse
import gc
import getpass
import logging
import sys

from app.config import ConfigError, ensure_secret_key, from_env
from app.numbers import whole_number


class CommandError(Exception):
    """A mistake on the command line: printed as one sentence, exit status 2."""


def _settings():
    return ensure_secret_key(from_env())


def _connect():
    from app import db
    from workers import queue

    settings = _settings()
    db.connect(settings)
    queue.configure(settings)
    return settings


def _read_password(from_stdin: bool, prompt: str = "Password: ") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CommandError("No terminal to ask for the password: pass it with --password-stdin.")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise CommandError("The two passwords differ.")
    return first


def run_server(app, settings, host: str, port: int) -> None:
    """Serve with uvicorn as `helpdesk serve` does (uvloop and httptools when installed)."""
    import uvicorn

    print(f"Helpdesk on http://{host}:{port} (data in {settings.data_dir.resolve()})", flush=True)
    # What start-up made (modules, templates, models) lives as long as the process: frozen,
    # the collector's full passes walk only what came after. Every request waits while one
    # runs (they took up to 180 ms with 1,000 queue streams open).
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True,
                access_log=settings.access_log, timeout_graceful_shutdown=5)


def _check_free(host: str, port: int) -> None:
    """Refuse a port that is taken before anything starts: uvicorn finds out only after the
    app, and the worker with it, has started."""
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise CommandError(f"Cannot listen on {host}: the host name does not resolve.") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None


def cmd_serve(args) -> None:
    from app.main import create_app

    _check_free(args.host, args.port)
    settings = _settings()
    run_server(create_app(settings), settings, args.host, args.port)


def cmd_worker(args) -> None:
    from workers import tasks  # noqa: F401 (registers the tasks)
    from workers.queue import CONSUMER_OPTIONS, huey
    from workers.watcher import Watchers

    settings = _connect()
    watchers = Watchers(settings)
    watchers.start()
    consumer = huey.create_consumer(workers=args.workers or settings.worker_threads,
                                    **CONSUMER_OPTIONS)
    try:
        consumer.run()
    finally:
        watchers.stop()


def cmd_create_agent(args) -> None:
    from app.services import agents

    _connect()
    password = _read_password(args.password_stdin)
    try:
        agent = agents.create_agent(args.email, args.name, password,
                                    "admin" if args.admin else "agent")
    except agents.AgentError as exc:
        raise CommandError(str(exc)) from None
    print(f"Created {agent.role} {agent.name} <{agent.email}>.")


def cmd_demo(args) -> None:
    from app.services import demo

    settings = _connect()
    if args.if_empty and not demo.is_empty():
        print("The database has data already; no demo data loaded.")
        return
    try:
        logins = demo.load(settings.secret_key)
    except demo.DemoError as exc:
        raise CommandError(str(exc)) from None
    print("Demo data loaded: two brands, two agents, a dozen tickets.")
    for email, password, role in logins:
        print(f"  log in as {role}: {email} / {password}")


def _brand_values(args, existing=None) -> dict:
    from app.services.brands import FIELDS

    values = {name: getattr(existing, name) for name in FIELDS} if existing else {}
    for name in ("name", "address", "signature", "smtp_host", "smtp_port", "smtp_security",
                 "smtp_username"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return values


def cmd_brand_add(args) -> None:
    from app.services import brands

    _connect()
    password = _read_password(True) if args.smtp_password_stdin else ""
    try:
        brand = brands.create_brand(args.slug, _brand_values(args), password)
    except brands.BrandError as exc:
        raise CommandError(str(exc)) from None
    print(f"Created brand {brand.slug}: {brand.name} <{brand.address}>.")


def cmd_brand_edit(args) -> None:
    from app.services import brands

    _connect()
    try:
        brand = brands.get_brand(args.slug)
        password = _read_password(True) if args.smtp_password_stdin else None
        brands.update_brand(args.slug, _brand_values(args, brand), password)
    except brands.BrandError as exc:
        raise CommandError(str(exc)) from None
    print(f"Updated brand {args.slug}.")


def cmd_brand_list(args) -> None:
    from app.services import brands

    _connect()
    for brand in brands.list_brands():
        smtp = (f"{brand.smtp_host}:{brand.smtp_port} {brand.smtp_security}"
                if brand.smtp_host else "no SMTP")
        default = " (default)" if brand.is_default else ""
        print(f"{brand.slug}\t{brand.name}{default}\t{brand.address}\t{smtp}")


MAILBOX_OPTIONS = {"brand": "brand", "imap_host": "imap_host", "imap_port": "imap_port",
                   "security": "imap_security", "username": "username", "folder": "folder",
                   "addresses": "addresses"}



def _port(text: str) -> int:
    """argparse type: a TCP port."""
    port = whole_number(text)
    if port is None or not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a port: give a number from 1 to 65535")
    return port


def _at_least_one(text: str) -> int:
    """argparse type: a count of at least one."""
    count = whole_number(text)
    if not count:
        raise argparse.ArgumentTypeError(f"{text} is not a number of 1 or more")
    return count

def _mailbox_values(args, existing=None) -> dict:
    values = {"brand": existing.brand.slug, "imap_host": existing.imap_host,
              "imap_port": existing.imap_port, "imap_security": existing.imap_security,
              "username": existing.username, "folder": existing.folder,
              "addresses": existing.addresses, "mark_seen": existing.mark_seen,
              "paused": existing.paused} if existing else {}
    for option, name in MAILBOX_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            values[name] = value
    if args.leave_unseen is not None:
        values["mark_seen"] = not args.leave_unseen
    if args.paused is not None:
        values["paused"] = args.paused
    return values


def cmd_mailbox_add(args) -> None:
    from app.services import mailboxes

    _connect()
    password = _read_password(args.password_stdin)
    try:
        mailbox = mailboxes.create_mailbox(args.name, _mailbox_values(args), password)
    except mailboxes.MailboxError as exc:
        raise CommandError(str(exc)) from None
    print(f"Created mailbox {mailbox.name} for brand {mailbox.brand.slug}: "
          f"{mailbox.username} on {mailbox.imap_host}:{mailbox.imap_port} ({mailbox.imap_security}).")


def cmd_mailbox_edit(args) -> None:
    from app.services import mailboxes

    _connect()
    try:
        mailbox = mailboxes.get_mailbox(args.name)
        password = _read_password(True) if args.password_stdin else None
        mailboxes.update_mailbox(args.name, _mailbox_values(args, mailbox), password)
    except mailboxes.MailboxError as exc:
        raise CommandError(str(exc)) from None
    print(f"Updated mailbox {args.name}.")


def cmd_mailbox_list(args) -> None:
    from app.services import mailboxes

    _connect()
    for m in mailboxes.list_mailboxes():
        state = "paused" if m.paused else (f"error since {m.error_since:%Y-%m-%d %H:%M}: {m.last_error}"
                                           if m.last_error else "ok")
        print(f"{m.name}\t{m.brand.slug}\t{m.username}@{m.imap_host}:{m.imap_port} "
              f"{m.imap_security}\t{m.folder}\tfetched {m.fetched_count}\t{state}")


def cmd_mailbox_test(args) -> None:
    from app.mail.imap import ImapError
    from app.services import mailboxes

    settings = _connect()
    try:
        print(mailboxes.test_connection(mailboxes.get_mailbox(args.name), settings.imap_timeout))
    except (mailboxes.MailboxError, ImapError) as exc:
        raise CommandError(str(exc)) from None


def cmd_mailbox_fetch(args) -> None:
    from app.services import mailboxes

    settings = _connect()
    try:
        mailbox = mailboxes.get_mailbox(args.name)
    except mailboxes.MailboxError as exc:
        raise CommandError(str(exc)) from None
    report = mailboxes.fetch(mailbox.id, settings)
    if report.error:
        raise CommandError(report.error)
    print(f"Fetched {report.fetched} new mails from {args.name} ({report.duplicates} already "
          f"stored, {report.skipped} over the size limit, {len(report.failed)} failed).")
    for uid, reason in report.failed:
        print(f"  UID {uid}: {reason}")


def _mailbox_options(parser, required: bool) -> None:
    parser.add_argument("name")
    parser.add_argument("--brand", required=required, help="the brand's short name (slug)")
    parser.add_argument("--imap-host", dest="imap_host", required=required)
    parser.add_argument("--imap-port", dest="imap_port", type=_port)
    parser.add_argument("--security", choices=["ssl", "starttls", "none"])
    parser.add_argument("--username", required=required)
    parser.add_argument("--password-stdin", action="store_true", required=required,
                        help="read the password from the first line of standard input")
    parser.add_argument("--folder")
    parser.add_argument("--addresses", help="the addresses it receives for, comma-separated")
    parser.add_argument("--leave-unseen", action=argparse.BooleanOptionalAction, default=None,
                        help="do not mark fetched mail as seen on the server")
    parser.add_argument("--paused", action=argparse.BooleanOptionalAction, default=None)


def _brand_options(parser, required: bool) -> None:
    parser.add_argument("slug")
    parser.add_argument("--name", required=required)
    parser.add_argument("--address", required=required, help="the support address mail comes from")
    parser.add_argument("--signature")
    parser.add_argument("--smtp-host")
    parser.add_argument("--smtp-port", type=_port)
    parser.add_argument("--smtp-security", choices=["none", "starttls", "ssl"])
    parser.add_argument("--smtp-username")
    parser.add_argument("--smtp-password-stdin", action="store_true",
                        help="read the SMTP password from the first line of standard input")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="helpdesk", description="A self-hosted helpdesk.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web server with the worker inside")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run the background worker alone")
    worker.add_argument("--workers", type=_at_least_one, help="worker threads")
    worker.set_defaults(func=cmd_worker)

    create = commands.add_parser("create-agent", help="create an agent account")
    create.add_argument("email")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    create.set_defaults(func=cmd_create_agent)

    demo = commands.add_parser("demo", help="load demo data into an empty database")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when there is data")
    demo.set_defaults(func=cmd_demo)

    brand = commands.add_parser("brand", help="manage brands").add_subparsers(
        dest="brand_command", required=True, metavar="ACTION")
    add = brand.add_parser("add", help="add a brand")
    _brand_options(add, required=True)
    add.set_defaults(func=cmd_brand_add)
    edit = brand.add_parser("edit", help="change a brand")
    _brand_options(edit, required=False)
    edit.set_defaults(func=cmd_brand_edit)
    brand.add_parser("list", help="list the brands").set_defaults(func=cmd_brand_list)

    mailbox = commands.add_parser("mailbox", help="manage mailboxes (IMAP)").add_subparsers(
        dest="mailbox_command", required=True, metavar="ACTION")
    add = mailbox.add_parser("add", help="connect a mailbox")
    _mailbox_options(add, required=True)
    add.set_defaults(func=cmd_mailbox_add)
    edit = mailbox.add_parser("edit", help="change a mailbox")
    _mailbox_options(edit, required=False)
    edit.set_defaults(func=cmd_mailbox_edit)
    mailbox.add_parser("list", help="list the mailboxes and their state").set_defaults(
        func=cmd_mailbox_list)
    for action, func, text in (("test", cmd_mailbox_test, "log in and open the folder"),
                               ("fetch", cmd_mailbox_fetch, "check the mailbox now")):
        sub = mailbox.add_parser(action, help=text)
        sub.add_argument("name")
        sub.set_defaults(func=func)
    return root


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (CommandError, ConfigError) as exc:
        print(f"helpdesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an error we did not foresee: one line here, details in the log
        logging.getLogger("helpdesk").debug("command failed", exc_info=True)
        print(f"helpdesk: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
