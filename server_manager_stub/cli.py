"""The `server-manager` command: init, admins, run, tick, mail-worker, keys and peers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import func, select

from . import config as config_module
from .config import ConfigError


@contextlib.contextmanager
def _app(**overrides) -> Iterator[Flask]:
    """The app for one command; its database connections are closed when the command ends."""
    from . import create_app, db

    try:
        app = create_app(overrides)
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    try:
        yield app
    finally:
        db.get_db(app).engine.dispose()


def _require_schema(app) -> None:
    problem = app.extensions["sm_schema_problem"]
    if problem:
        raise click.ClickException(problem)


@click.group()
def main() -> None:
    """Server manager with the Client Deployment blade."""


@main.command()
@click.option(
    "--admin",
    "admin_name",
    default="admin",
    show_default=True,
    help="User name of the first (primary) administrator, created if none exists.",
)
def init(admin_name: str) -> None:
    """Create or upgrade the database; create the primary administrator on first run."""
    from . import auth, db, migrate

    with _app(SM_SKIP_SCHEMA_CHECK=True) as app:
        migrate.upgrade(app)
        database = db.get_db(app)
        with app.app_context(), database.transaction() as s:
            for blade in app.extensions["sm_blades"]:
                for line in blade.initialize(s, app):
                    click.echo(line)
            if s.scalar(select(func.count()).select_from(auth.Admin)):
                click.echo("Database is up to date; administrators exist (data kept).")
                return
            password = auth.generate_password()
            auth.create_admin(s, admin_name, password, primary=True)
        click.echo("Database created.")
        click.echo("")
        click.echo("  Primary administrator (shown once, write it down):")
        click.echo(f"    user name: {admin_name}")
        click.echo(f"    password:  {password}")
        click.echo("")


@main.command()
@click.argument("message")
@click.option(
    "--branch",
    type=click.Choice(["shell", "blade"]),
    required=True,
    help="Which branch the revision belongs to.",
)
def revision(message: str, branch: str) -> None:
    """For developers: write a new Alembic revision from the models (autogenerate)."""
    from alembic import command

    from . import migrate

    with _app(SM_SKIP_SCHEMA_CHECK=True) as app:
        migrate.upgrade(app)
        script = command.revision(
            migrate.alembic_config(app),
            message=message,
            autogenerate=True,
            head=f"{branch}@head",
            version_path=str(migrate.HERE / "versions" / branch),
        )
    click.echo(f"Wrote {script.path}; read it, adjust it, and add a test that migrates data.")


@main.command("create-admin")
@click.argument("username")
@click.option("--primary", is_flag=True, help="Make the account a primary administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin_cmd(username: str, primary: bool, password_stdin: bool) -> None:
    """Create an administrator (a random password is printed unless one is given)."""
    from . import auth, db

    with _app() as app:
        _require_schema(app)
        password = sys.stdin.readline().rstrip("\n") if password_stdin else auth.generate_password()
        with app.app_context(), db.get_db(app).transaction() as s:
            try:
                admin = auth.create_admin(s, username, password, primary=primary)
            except auth.AccountError as exc:
                raise click.ClickException(str(exc)) from None
        kind = "primary administrator" if admin.is_primary else "administrator"
        click.echo(f"Created {kind} {admin.username}.")
        if not password_stdin:
            click.echo(f"Password (shown once): {password}")


@main.command("reset-password")
@click.argument("username")
def reset_password(username: str) -> None:
    """Give an administrator a new random password, unlock it and end its sessions."""
    from . import auth, db

    with _app() as app:
        _require_schema(app)
        password = auth.generate_password()
        with app.app_context(), db.get_db(app).transaction() as s:
            admin = auth.find_admin(s, username)
            if admin is None:
                raise click.ClickException(f"No administrator is named {username!r}.")
            auth.set_password(s, admin, password)
        click.echo(f"New password for {admin.username} (shown once): {password}")


@main.command()
def tick() -> None:
    """Run every scheduled check once (safe to run on several nodes at the same time)."""
    from .scheduler import run_checks

    with _app() as app:
        _require_schema(app)
        for name, outcome in run_checks(app).items():
            click.echo(f"{name}: {outcome}")


@main.command("mail-worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--with-tick", is_flag=True, help="Also run the scheduled checks periodically.")
def mail_worker(once: bool, with_tick: bool) -> None:
    """Deliver the outbox through MAIL_URL (or keep it in the outbox when unset)."""
    from .outbox import deliver_batch, run_worker

    with _app() as app:
        _require_schema(app)
        if once:
            total = 0
            while (result := deliver_batch(app)).handled:
                total += result.handled
            click.echo(f"{total} message(s) handled.")
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        run_worker(app, stop, tick=with_tick)


@main.command("rotate-keys")
@click.option(
    "--new-key",
    is_flag=True,
    help="First add a new key to instance/secret_keys (embedded default only).",
)
@click.option("--print-new-key", is_flag=True, help="Print a fresh key and do nothing else.")
def rotate_keys(new_key: bool, print_new_key: bool) -> None:
    """Re-encrypt every stored secret under the newest key of SM_SECRET_KEYS."""
    from cryptography.fernet import Fernet

    from . import db, secrets
    from .db import Base

    if print_new_key:
        click.echo(Fernet.generate_key().decode())
        return
    with _app() as app:
        _require_schema(app)
        if new_key:
            if os.environ.get("SM_SECRET_KEYS"):
                raise click.ClickException(
                    "SM_SECRET_KEYS is set in the environment: put a new key first in it yourself "
                    "(server-manager rotate-keys --print-new-key), keep the old ones after it, "
                    "then run rotate-keys."
                )
            path = Path(app.instance_path) / "secret_keys"
            keys = [Fernet.generate_key().decode(), *app.config["SM_SECRET_KEYS"]]
            tmp = path.with_suffix(".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(",".join(keys) + "\n")
            os.replace(tmp, path)
            app.config["SM_SECRET_KEYS"] = keys
            secrets.configure(keys)
            click.echo(f"Added a new key to {path}.")
        with app.app_context(), db.get_db(app).transaction() as s:
            count = secrets.rotate_all(s, Base.metadata)
        click.echo(
            f"Re-encrypted {count} stored secret(s) under the newest key. Older keys can be "
            "removed from the key list once every node runs with the new one."
        )


@main.command()
@click.option("--host", default=None, help="Address to listen on (default HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default PORT or 5000).")
@click.option("--workers", default=None, type=int, help="gunicorn workers (default WEB_WORKERS).")
@click.option("--no-background", is_flag=True, help="Do not start the mail worker and tick.")
@click.option(
    "--local-mbg",
    is_flag=True,
    help="Also start the MBG stand-in at LOCAL_MBG (data in instance/peers/mbg).",
)
def run(
    host: str | None, port: int | None, workers: int | None, no_background: bool, local_mbg: bool
) -> None:
    """Serve the server manager with gunicorn, plus the mail worker and scheduled checks."""
    with _app() as app:
        _require_schema(app)
        host = host or app.config["HOST"]
        port = port or app.config["PORT"]
        workers = workers or app.config["WEB_WORKERS"]
        mail = "sent via MAIL_URL" if app.config["MAIL_URL"] else "kept in the Outbox page"
        local = app.config.get("LOCAL_MBG", "") if local_mbg else ""
        peers_dir = Path(app.instance_path) / "peers"
    # The engine is disposed now: gunicorn forks its workers, each builds its own app.
    children = []
    if not no_background:
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "server_manager_stub.cli", "mail-worker", "--with-tick"]
            )
        )
    if local:
        mbg_host, _, mbg_port = local.rpartition(":")
        children.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments from settings
                [
                    sys.executable,
                    "-m",
                    "server_manager_stub.cli",
                    "peer",
                    "mbg",
                    "--host",
                    mbg_host,
                    "--port",
                    mbg_port,
                    "--ui-port",
                    str(int(mbg_port) + 1),
                    "--data-dir",
                    str(peers_dir / "mbg"),
                ]
            )
        )
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
    click.echo(f"\n  Server manager: http://{shown}:{port}/\n  Mail: {mail}\n")
    try:
        _serve(host, port, workers)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(10)


# Deployment links carry their token in the path: it never reaches the access log.
_TOKEN_IN_PATH = re.compile(r"(/client-deployment/d/)[^/\s?]+")


def _masking_logger() -> type:
    from gunicorn.glogging import Logger

    class MaskingLogger(Logger):
        def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
            atoms = super().atoms(resp, req, environ, request_time)
            for key in ("U", "r"):
                if key in atoms:
                    atoms[key] = _TOKEN_IN_PATH.sub(r"\1…", atoms[key])
            return atoms

    return MaskingLogger


def _serve(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            # Never log query strings: links carry tokens (FACTS.md).
            self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms')
            self.cfg.set("logger_class", _masking_logger())

        def load(self):
            from . import create_app

            return create_app()

    _Gunicorn().run()


@main.group()
def peer() -> None:
    """Stand-in servers for the outside world (for trying things out and for tests)."""


@peer.command("mbg")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5443, show_default=True, type=int, help="HTTPS web service.")
@click.option(
    "--ui-port",
    default=None,
    type=int,
    help="Also serve the approval page over plain HTTP on this port.",
)
@click.option("--users", default=50, show_default=True, type=int, help="User records to make.")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Keep the store, password and certificate here (default: a temporary folder).",
)
@click.option("--admin-password", default=None, help="Password of the approval page.")
def peer_mbg(
    host: str,
    port: int,
    ui_port: int | None,
    users: int,
    data_dir: str | None,
    admin_password: str | None,
) -> None:
    """An MBG web-service stand-in on loopback (docs/mbg-protocol.md)."""
    from .peers.mbg import MbgStandIn

    standin = MbgStandIn(
        users=users,
        admin_password=admin_password,
        host=host,
        port=port,
        ui_port=ui_port,
        data_dir=Path(data_dir) if data_dir else None,
    ).start()
    click.echo(
        f"MBG stand-in: {standin.url} ({len(standin.store.users)} user records)\n"
        f"  approval page password: {standin.admin_password}\n"
        f"  its CA (MBG_CA_BUNDLE): {standin.certificate.ca_file}",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


@peer.command("client")
@click.option("--link", help="The deployment link from the e-mail.")
@click.option("--authtoken", help="The auth token from the e-mail (needs --server).")
@click.option("--server", help="Base URL of the server, for --authtoken (https://host[:port]).")
@click.option("--pin", help="The Deployment PIN (asked for when needed and not given).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="micollab-configuration.json",
    show_default=True,
    help="Where to keep the configuration.",
)
@click.option(
    "--poll",
    "poll_only",
    is_flag=True,
    help="Do not redeem: poll with the configuration in --out for a forced one.",
)
@click.option("--cafile", help="CA file to trust for the server's certificate.")
@click.option("--insecure", is_flag=True, help="Do not verify the server's certificate (lab).")
def peer_client(
    link: str | None,
    authtoken: str | None,
    server: str | None,
    pin: str | None,
    out: str,
    poll_only: bool,
    cafile: str | None,
    insecure: bool,
) -> None:
    """A stand-in mobile client: redeem a link or auth token, or poll for forced configuration."""
    import json

    from .peers.client import ClientError, MobileClient

    client = MobileClient(cafile=cafile, insecure=insecure)
    path = Path(out)

    def ask(message: str) -> str | None:
        return click.prompt(message + " PIN", hide_input=True, default="", show_default=False)

    try:
        if poll_only:
            client.config = json.loads(path.read_text())
            if client.poll():
                client.save(path)
                click.echo(f"A forced configuration was waiting; saved it to {path}.")
            else:
                click.echo("No forced configuration is waiting.")
            return
        if link:
            config = client.open_link(link, pin, ask)
        elif authtoken and server:
            config = client.enter_auth_token(server, authtoken, pin, ask)
        else:
            raise click.UsageError("Give --link, or --authtoken with --server (or --poll).")
    except ClientError as exc:
        raise click.ClickException(f"The server refused: {exc.message}") from None
    except OSError as exc:
        raise click.ClickException(f"Could not reach the server: {exc}") from None
    client.save(path)
    user = config["user"]
    click.echo(
        f"Configuration of {user['first_name']} {user['last_name']} "
        f"({user['directory_number']}) saved to {path}; "
        f"{config['deployment']['downloads_left']} download(s) left."
    )


@peer.command("smtp")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
def peer_smtp(host: str, port: int) -> None:
    """A mail server on loopback that prints what it receives (MAIL_URL=smtp://127.0.0.1:8025)."""
    from .peers.smtp import SmtpSink

    sink = SmtpSink(host, port, echo=True)
    sink.start()
    click.echo(f"SMTP sink on {host}:{sink.port}; set MAIL_URL=smtp://{host}:{sink.port}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


@main.command("settings")
def settings_cmd() -> None:
    """List every setting (the shell's and each blade's), where its value comes from, its use."""
    with _app(SM_SKIP_SCHEMA_CHECK=True) as app:
        settings = list(config_module.SETTINGS)
        for blade in app.extensions["sm_blades"]:
            settings.extend(blade.settings())
    for s in settings:
        source = "environment" if os.environ.get(s.name) else "default"
        click.echo(f"{s.name} ({source}): {s.doc}")


if __name__ == "__main__":
    main()
