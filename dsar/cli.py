"""``dsar``: the one command for running the stack and for working cases from a terminal.

``submit``, ``status``, ``decide`` and ``queue`` go through the HTTP API, the same path as the
console and intake systems, so the CLI never bypasses roles, validation or the audit trail.
Errors are one line on stderr and a non-zero exit, never a traceback: an operator reads the
line, a script reads the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000"

#: Exit codes: 0 ok, 1 the API or the check said no, 2 a usage or unexpected error.
EXIT_REFUSED = 1
EXIT_ERROR = 2


class CliError(Exception):
    """A failure to report as one line (the message says what to do), with its exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------
# Talking to the API


def _token() -> str:
    """The staff token the API calls carry: always given, never made up here (a CLI that signed
    its own admin token would let anyone with the machine's files act as anyone)."""
    token = os.environ.get("DSAR_TOKEN", "").strip()
    if token:
        return token
    raise CliError(
        "set DSAR_TOKEN to your staff token: `make run` prints one; on a development machine "
        "`dsar token --sub NAME --role operator` signs one; in production ask your identity provider"
    )


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return json.dumps(body)


def api_call(method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, files: dict[str, Any] | None = None,
             data: dict[str, str] | None = None) -> Any:  # fmt: skip
    """One API request; returns the JSON body or raises ``CliError`` with a one-line message."""
    import httpx

    base = os.environ.get("DSAR_API_URL", DEFAULT_API_URL).rstrip("/")
    all_headers = {"Authorization": f"Bearer {_token()}", **(headers or {})}
    try:
        with httpx.Client(base_url=base, timeout=httpx.Timeout(90.0, connect=5.0)) as client:
            response = client.request(
                method, path, json=json_body, params=params, headers=all_headers, files=files, data=data
            )
    except httpx.ConnectError:
        raise CliError(f"cannot reach the dsar API at {base} (connection refused?); start it with 'dsar dev' "
                       "or 'dsar web', or set DSAR_API_URL") from None  # fmt: skip
    except httpx.TimeoutException:
        raise CliError(f"the dsar API at {base} did not answer in time; retry") from None
    except httpx.HTTPError as e:
        raise CliError(f"request to {base} failed: {type(e).__name__}") from None
    if response.status_code >= 400:
        raise CliError(f"{response.status_code}: {_error_text(response)}")
    try:
        return response.json()
    except ValueError:
        raise CliError(f"{response.status_code}: the API answered with something that is not JSON") from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# Subcommands


def _gate(check: Callable[[], Any]) -> Any:
    """The input gate (``dsar.inputs``) before anything is sent: the same rules as the API's,
    refused here with the same words, exit 2."""
    from dsar.inputs import InputRefused

    try:
        return check()
    except InputRefused as e:
        raise CliError(str(e), EXIT_ERROR) from None


def cmd_submit(args: argparse.Namespace) -> int:
    from dsar import inputs

    identifiers: dict[str, str] = {}
    for kind in ("email", "name", "phone", "postcode"):
        value = getattr(args, kind)
        if value:
            identifiers[kind] = value
    for item in args.identifier or []:
        kind, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--id needs KIND=VALUE (e.g. --id customer_id=C-1001), not {kind!r}", EXIT_ERROR)
        identifiers[kind.strip()] = value
    if not identifiers:
        raise CliError(
            "give at least one identifier: --email, --name, --phone, --postcode or --id", EXIT_ERROR
        )
    # What can travel at all is checked here; kinds, emails and phones by the API (its gate
    # knows the controller's country for a national phone number).
    for kind, value in identifiers.items():
        _gate(lambda: inputs.clean_text(value, f"identifiers.{kind}", lines="join"))  # noqa: B023
    if args.idempotency_key:
        _gate(lambda: inputs.clean_key(args.idempotency_key))
    body: dict[str, Any] = {
        "type": args.type,
        "regime": args.regime,
        "identifiers": identifiers,
        "channel": args.channel,
    }
    if args.agent_email or args.agent_name:
        body["agent"] = {
            "name": args.agent_name or "",
            "email": args.agent_email or "",
            "authority": "power_of_attorney" if args.power_of_attorney else "written_permission",
        }
    if args.idempotency_key:
        body["idempotency_key"] = args.idempotency_key
    corrections = {}
    for item in args.correct or []:
        kind, sep, value = item.partition("=")
        if not sep:
            raise CliError(
                f"--correct needs KIND=VALUE (e.g. --correct phone=07700900123), not {kind!r}", EXIT_ERROR
            )
        corrections[kind.strip()] = value
    for name, value in (
        *corrections.items(),
        ("transfer_to", args.transfer_to),
        ("objection", args.objection),
    ):
        _gate(lambda: inputs.clean_text(value, name, lines="join"))  # noqa: B023 - called at once
    if corrections:
        body["corrections"] = corrections
    if args.transfer_to:
        body["transfer_to"] = args.transfer_to
    if args.objection:
        body["objection"] = args.objection
    _print_json(api_call("POST", "/api/v1/requests", json_body=body))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _print_json(api_call("GET", f"/api/v1/requests/{args.ref}"))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from dsar import inputs

    _gate(lambda: inputs.clean_reason(args.reason))
    for name in ("ground", "system", "fee", "task"):
        value = getattr(args, name)
        _gate(lambda: inputs.clean_text(value, name))  # noqa: B023 - called at once
    body = {"kind": args.kind, "reason": args.reason, "ground": args.ground, "system": args.system}
    if args.fee:
        body["fee"] = args.fee
    if args.task:
        body["task"] = args.task
    _print_json(api_call("POST", f"/api/v1/requests/{args.ref}/decisions", json_body=body))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Show the review package, or amend and/or approve it."""
    if not (args.approve or args.withhold or args.redact or args.override):
        package = api_call("GET", f"/api/v1/requests/{args.ref}/review")
        print(package["text"], end="")
        return 0
    amendments: list[dict[str, str]] = []
    for system, key in (item.split("/", 1) for item in args.withhold):
        amendments.append({"action": "withhold", "system": system, "key": key, "reason": args.reason})
    for system, rest in (item.split("/", 1) for item in args.redact):
        key, _, field = rest.partition(".")
        amendments.append(
            {"action": "redact", "system": system, "key": key, "field": field, "reason": args.reason}
            | ({"text": args.words} if args.words else {})
        )
    for item in args.override:
        target, _, outcome = item.partition("=")
        system, rest = target.split("/", 1)
        key, _, field = rest.partition(".")
        amendments.append(
            {
                "action": "override",
                "system": system,
                "key": key,
                "field": field,
                "outcome": outcome,
                "reason": args.reason,
            }
        )
    body = {"approve": args.approve, "amendments": amendments, "note": args.note}
    _print_json(api_call("POST", f"/api/v1/requests/{args.ref}/review", json_body=body))
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in {"stage": args.stage, "due_before": args.due_before, "limit": args.limit}.items()
        if v
    }
    _print_json(api_call("GET", "/api/v1/requests", params=params))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from console.auth import AuthError, mint_token
    from dsar.settings import Settings

    try:
        token = mint_token(Settings(), args.sub, args.role or ["operator"], ttl=timedelta(hours=args.hours))
    except AuthError as e:
        raise CliError(str(e)) from None
    except ValueError as e:
        raise CliError(str(e), EXIT_ERROR) from None
    sys.stdout.write(token + "\n")
    return 0


def cmd_deadline(args: argparse.Namespace) -> int:
    from dsar.deadline_cli import run

    result = run(sys.stdin, sys.stdout)
    return result if isinstance(result, int) else 0


def cmd_redact(args: argparse.Namespace) -> int:
    from dsar.redact_cli import RedactInputError, run

    try:
        return run(args.subject, sys.stdin.buffer, sys.stdout, as_json=args.json)
    except RedactInputError as e:
        raise CliError(str(e), EXIT_ERROR) from None


def cmd_suppression_check(args: argparse.Namespace) -> int:
    from dsar.suppression import run_check

    try:
        return run_check(args)
    except ValueError as e:
        raise CliError(str(e), EXIT_ERROR) from None


def cmd_report(args: argparse.Namespace) -> int:
    """The regulator report for a period, read from the case register (no personal data in it)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dsar.reports import Period, ReportError, report_for
    from dsar.settings import Settings
    from dsar.store import CaseStore

    settings = Settings()
    try:
        period = Period.parse(args.start, args.end, settings.timezone)
    except ReportError as e:
        raise CliError(str(e), EXIT_ERROR) from None
    try:
        store = CaseStore(settings.resolved_database_url)
        try:
            report = report_for(store, period)
        finally:
            store.close()
    except SQLAlchemyError as e:
        raise CliError(
            f"cannot read the case register ({type(e).__name__}): check DSAR_DATABASE_URL and that its "
            "database server is running"
        ) from None
    if args.format == "csv":
        sys.stdout.write(report.to_csv())
    else:
        _print_json(report.to_json())
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    import asyncio

    from dsar.engine import connect
    from dsar.reconcile import print_findings, reconcile
    from dsar.settings import Settings
    from dsar.store import CaseStore

    settings = Settings()
    store = CaseStore(settings.resolved_database_url)

    async def run() -> int:
        try:
            client = await connect(settings)
        except Exception as e:
            where = settings.temporal_address
            raise CliError(f"cannot reach the workflow engine at {where} ({type(e).__name__})") from None
        return print_findings(await reconcile(client, store, apply=not args.dry_run), sys.stdout)

    try:
        found = asyncio.run(run())
    finally:
        store.close()
    return EXIT_REFUSED if found and args.dry_run else 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from dsar.audit_cli import verify
    from dsar.settings import Settings

    return verify(args.ref, Settings().resolved_database_url, sys.stdout)


def cmd_systems_check(args: argparse.Namespace) -> int:
    from dsar.settings import Settings
    from dsar.systems_cli import check

    return check(args.datamap or Settings().datamap, sys.stdout)


def cmd_systems_indexes(args: argparse.Namespace) -> int:
    from dsar.settings import Settings
    from dsar.systems_cli import indexes

    return indexes(args.datamap or Settings().datamap, sys.stdout, apply=args.apply)


def cmd_systems_discover(args: argparse.Namespace) -> int:
    from dsar.systems_cli import discover

    return discover(args.url, sys.stdout, system=args.system, url_env=args.url_env, out_path=args.out)


def cmd_systems_found(args: argparse.Namespace) -> int:
    try:
        file = open(args.file, "rb")  # noqa: SIM115 - httpx streams it, closed below
    except OSError as e:
        raise CliError(f"cannot read {args.file}: {e.strerror or e}", EXIT_ERROR) from None
    with file:
        _print_json(
            api_call(
                "POST",
                f"/api/v1/requests/{args.ref}/systems/{args.system}/found",
                files={"file": (os.path.basename(args.file), file)},
                data={"reason": args.reason, "records": str(args.records)},
            )
        )
    return 0


def cmd_systems_nothing_held(args: argparse.Namespace) -> int:
    body = {"kind": "nothing_held", "system": args.system, "reason": args.reason}
    _print_json(api_call("POST", f"/api/v1/requests/{args.ref}/decisions", json_body=body))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import worker

    worker.main()
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from console.app import create_app
    from dsar.logs import configure_logging
    from dsar.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    if settings.auth_mode == "dev" and settings.http_host not in ("127.0.0.1", "localhost", "::1"):
        raise CliError(
            "DSAR_AUTH_MODE=dev (a sign-in page with a role picker) serves loopback only; "
            "configure DSAR_OIDC_ISSUER and DSAR_OIDC_CLIENT_ID to serve other hosts"
        )
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is read from DSAR_TRUSTED_PROXIES only
    )
    return 0


def cmd_intake_email(args: argparse.Namespace) -> int:
    from dsar.intake_cli import MailboxConfigError, dry_run, policy_from_settings, poll_mailbox
    from dsar.settings import Settings

    if args.poll:
        try:
            return poll_mailbox(Settings(), once=args.once, out=sys.stdout)
        except MailboxConfigError as e:
            raise CliError(str(e), EXIT_ERROR) from None
    if args.once:
        raise CliError("--once goes with --poll", EXIT_ERROR)
    return dry_run([Path(p) for p in args.dry_run], policy_from_settings(Settings()), sys.stdout)


def cmd_setup(args: argparse.Namespace) -> int:
    from dsar.logs import configure_logging
    from dsar.settings import Settings
    from dsar.setup_cli import setup

    settings = Settings()
    configure_logging(settings.log_level)
    return setup(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    from dsar import devstack

    result = devstack.main(["--no-demo-cases"] if args.no_demo_cases else [])
    return result if isinstance(result, int) else 0


# --------------------------------------------------------------------------------------------
# The parser


def build_parser() -> argparse.ArgumentParser:
    from dsar.model import Channel, DecisionKind, Regime, RequestType, Stage

    parser = argparse.ArgumentParser(
        prog="dsar",
        description="Data-subject requests as durable workflows.",
        epilog="submit/status/decide/queue use the API at $DSAR_API_URL (default "
        f"{DEFAULT_API_URL}) with the token in $DSAR_TOKEN (default: a local dev token).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add(
        "dev",
        cmd_dev,
        "run the local stack: Temporal dev server, worker and HTTP app (what 'make run' starts)",
    )
    p.add_argument("--no-demo-cases", action="store_true", help="do not open demo cases on first start")
    add("worker", cmd_worker, "run a worker against $DSAR_TEMPORAL_ADDRESS")
    add("web", cmd_web, "serve the HTTP API on $DSAR_HTTP_HOST:$DSAR_HTTP_PORT")
    add("setup", cmd_setup, "create the register's database and tables, register the search attributes")

    p = add("submit", cmd_submit, "open a request through the API")
    p.add_argument("--type", required=True, choices=[t.value for t in RequestType])
    p.add_argument("--regime", required=True, choices=[r.value for r in Regime])
    p.add_argument("--email")
    p.add_argument("--name")
    p.add_argument("--phone")
    p.add_argument("--postcode")
    p.add_argument(
        "--id", dest="identifier", action="append", metavar="KIND=VALUE", help="any other identifier"
    )
    p.add_argument("--channel", default=Channel.API.value, choices=[c.value for c in Channel])
    p.add_argument("--agent-name", help="made by an authorised agent: the agent's name")
    p.add_argument("--agent-email", help="the agent's own email address (letters go there)")
    p.add_argument(
        "--power-of-attorney",
        action="store_true",
        help="the agent holds a power of attorney (read by an operator)",
    )
    p.add_argument("--idempotency-key", help="the same key reaches the same case")
    p.add_argument(
        "--correct", action="append", metavar="KIND=VALUE", help="rectification: what a detail should say"
    )
    p.add_argument(
        "--transfer-to", default="", metavar="URL", help="portability: the other company's https address"
    )
    p.add_argument("--objection", default="", help="objection: the use of the data objected to")

    p = add("status", cmd_status, "show a case (its snapshot)")
    p.add_argument("ref", metavar="REF")

    p = add("decide", cmd_decide, "take a decision on a case")
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "kind", metavar="KIND", choices=[k.value for k in DecisionKind], help="e.g. verify, approve"
    )
    p.add_argument("--reason", default="")
    p.add_argument("--ground", default="")
    p.add_argument("--system", default="", help="for skip_system and nothing_held: which system")
    p.add_argument("--fee", default="", help="for request_fee: the amount, e.g. 'GBP 10.00'")
    p.add_argument(
        "--task", default="", help="for retry_step, skip_step, done_by_hand: the operator task's id"
    )

    p = add("review", cmd_review, "show a case's review package, or amend and/or approve it")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--approve", action="store_true", help="approve (after any amendments)")
    p.add_argument(
        "--withhold",
        action="append",
        default=[],
        metavar="SYSTEM/KEY",
        help="leave a record out of the copy, e.g. crm/support_tickets:7",
    )
    p.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="SYSTEM/KEY.FIELD",
        help="redact a field, e.g. crm/support_tickets:7.body (with --words: only those)",
    )
    p.add_argument("--words", default="", help="with --redact: the words to remove")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="SYSTEM/KEY[.FIELD]=OUTCOME",
        help="set an outcome, e.g. crm/fraud_markers:1=disclose",
    )
    p.add_argument("--reason", default="", help="why (required with an amendment)")
    p.add_argument("--note", default="", help="a note with the approval")

    p = add("systems", lambda a: EXIT_ERROR, "the connected systems of the data map")
    systems = p.add_subparsers(dest="systems_command", required=True, metavar="ACTION")

    def system_action(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        q = systems.add_parser(name, help=help, description=help)
        q.set_defaults(func=func)
        return q

    q = system_action("check", cmd_systems_check, "validate the data map and test every connection")
    q.add_argument("--datamap", type=Path, help="default: $DSAR_DATAMAP")
    q = system_action(
        "indexes", cmd_systems_indexes, "print the indexes the SQL connector's matching needs (or --apply)"
    )
    q.add_argument("--datamap", type=Path, help="default: $DSAR_DATAMAP")
    q.add_argument("--apply", action="store_true", help="create the missing indexes")
    q = system_action(
        "discover", cmd_systems_discover, "draft a data map for an existing SQL database, to edit"
    )
    q.add_argument("url", metavar="URL", help="the database's SQLAlchemy URL (it never goes in the draft)")
    q.add_argument("--system", default="main", help="the system's name in the draft (default: main)")
    q.add_argument("--url-env", default="", help="the variable to hold the URL (default: DSAR_<SYSTEM>_URL)")
    q.add_argument("--out", type=Path, help="write the draft here (default: print it)")
    q = system_action("found", cmd_systems_found, "upload what a search by hand found")
    q.add_argument("ref", metavar="REF")
    q.add_argument("system", metavar="SYSTEM")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--reason", default="")
    q.add_argument("--records", type=int, default=1, help="how many records the file holds")
    q = system_action("nothing-held", cmd_systems_nothing_held, "answer a search by hand: nothing held")
    q.add_argument("ref", metavar="REF")
    q.add_argument("system", metavar="SYSTEM")
    q.add_argument("--reason", default="")

    p = add("queue", cmd_queue, "list cases by due date")
    p.add_argument("--stage", choices=[s.value for s in Stage])
    p.add_argument("--due-before", metavar="YYYY-MM-DD")
    p.add_argument("--limit", type=int)

    p = add("token", cmd_token, "print a staff token signed with the local secret (development)")
    p.add_argument("--sub", required=True, help="who the token is for")
    p.add_argument("--role", action="append", choices=["operator", "reviewer", "admin"], help="repeatable")
    p.add_argument("--hours", type=float, default=8.0, help="lifetime (default 8)")

    add("deadline", cmd_deadline, "compute deadlines: JSON lines on stdin, one JSON line out per input")

    p = add(
        "intake-email",
        cmd_intake_email,
        "read the privacy@ mailbox (--poll), or parse raw RFC 822 files as intake would (--dry-run)",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--dry-run",
        nargs="+",
        metavar="FILE",
        help="the files to parse, one JSON line each (kinds, never values); nothing is opened or stored",
    )
    what.add_argument(
        "--poll",
        action="store_true",
        help="read the mailbox set by DSAR_IMAP_* and open or update cases, every DSAR_IMAP_POLL_SECONDS",
    )
    p.add_argument("--once", action="store_true", help="with --poll: one pass over the inbox, then exit")

    from dsar.redact_cli import SUBJECT_FILE_HELP

    p = sub.add_parser(
        "redact",
        help="redact other people's personal data from text on stdin",
        description="Redact other people's personal data from the text on stdin for one data subject; "
        "print the redacted text.",
        epilog=SUBJECT_FILE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_redact)
    p.add_argument("--subject", required=True, type=Path, metavar="SUBJECT.JSON", help="whose copy it is")
    p.add_argument("--json", action="store_true", help="print JSON: the text and the redacted spans")

    p = add("suppression", lambda a: EXIT_ERROR, "the suppression list (erased, objecting, opted out)")
    suppression = p.add_subparsers(dest="suppression_command", required=True, metavar="ACTION")
    c = suppression.add_parser(
        "check",
        help="which candidate records (JSON lines) an import must not add, or must add with limits",
        description="One JSON line per candidate record: add yes/no, the reasons and the identifier "
        "kinds that matched (never values). Exit 1 when a record must not be added.",
    )
    c.set_defaults(func=cmd_suppression_check)
    from dsar.suppression import add_check_arguments

    add_check_arguments(c)

    p = add(
        "report",
        cmd_report,
        "figures for a regulator and CCPA 11 CCR 7102 for a period: received, closed, on time, "
        "days to respond, extensions, refusals, clock pauses (from the case register)",
    )
    p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="first day (included)")
    p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="last day (included)")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="default: json")

    p = add(
        "reconcile",
        cmd_reconcile,
        "compare the case register with the workflow engine and repair the register "
        "(a case terminated in Temporal, a row with no workflow, a row behind its workflow)",
    )
    p.add_argument("--dry-run", action="store_true", help="report only (exit 1 if anything differs)")

    p = add("audit", lambda a: EXIT_ERROR, "audit log tools")
    audit = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = audit.add_parser("verify", help="check a case's hash chain", description="check a case's hash chain")
    v.add_argument("ref", metavar="REF")
    v.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``dsar`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CliError as e:
        sys.stderr.write(f"dsar {args.command}: {e}\n")
        code = e.code
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # the promise: one line, never a traceback
        sys.stderr.write(f"dsar {args.command}: {type(e).__name__}: {_first_line(e)}\n")
        code = EXIT_ERROR
    # As the console script: a command that talked to Temporal ends without the interpreter's
    # teardown (dsar/engine.py). A caller running main([...]) in its own process keeps it.
    engine = sys.modules.get("dsar.engine") if argv is None else None
    if engine is not None:
        engine.end_process(code)
    sys.stdout.flush()
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "unexpected error"


if __name__ == "__main__":
    main()
