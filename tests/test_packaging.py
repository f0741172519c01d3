"""The wheel is what runs in production: build it, install it into a fresh virtualenv, and run a
case from the installed copy (never the source tree), then render its pages.

The fresh virtualenv reuses this one's dependencies through a ``.pth`` line (no second download;
the editable install of the source tree is not among them: a ``.pth`` file in a directory added
that way is not read), and every process runs from a directory outside the checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from dsar.model import Channel, Regime, RequestType, Stage
from dsar.settings import Settings
from dsar.store import CaseStore
from intake.service import NewRequest, open_case
from tests.conftest import ROOT, TEST_CODEC_KEY
from tests.test_letters import KINDS, facts
from tests.test_workflow import MARGARET, DecisionKind, at_stage, decide, letters, wait_until

PACKAGES = ("dsar", "workflows", "activities", "connectors", "intake", "console", "demo")


#: The installed web app renders each path (paths on stdin) for a member of staff with every role.
PAGES = """
import json, sys
from fastapi.testclient import TestClient
from console.app import create_app
from console.auth import mint_token
from dsar.settings import Settings
settings = Settings()
roles = ["operator", "reviewer", "admin", "owner:cctv"]
staff = {"Authorization": "Bearer " + mint_token(settings, "alice", roles)}
out = {}
with TestClient(create_app(settings)) as web:
    for path in json.load(sys.stdin):
        signed_in = path.startswith("/console") and path != "/console/sign-in"
        r = web.get(path, headers=staff if signed_in else {})
        out[path] = [r.status_code, len(r.content), r.text if "html" in r.headers["content-type"] else ""]
print(json.dumps(out))
"""


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path  # the working directory of every process: outside the checkout

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, script: str, env: dict[str, str] | None = None, stdin: str = "") -> str:
        done = subprocess.run(
            [self.python, "-c", textwrap.dedent(script)],
            cwd=self.home,
            env={**_clean_env(), **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH or DSAR_* of the test run: the installed copy and its settings only."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("DSAR_", "PYTHON")) and k != "VIRTUAL_ENV"
    }


def _sources() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *PACKAGES, "worker.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [p for p in listed if (ROOT / p).is_file() and "__pycache__" not in p]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    # A clean copy of what git knows: a stale build/ of the checkout cannot slip a file in.
    src = base / "src"
    for path in [*_sources(), "pyproject.toml", "setup.py", "README.md"]:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, src / path)
    (src / "node_modules").symlink_to(ROOT / "node_modules")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # no build isolation: the build backend is a test dependency, nothing is downloaded
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)]
    subprocess.run(build, check=True, cwd=base)
    (wheel,) = (base / "dist").glob("dsar-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "_dsar_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        cwd=base,
    )
    home = base / "home"
    home.mkdir()
    yield Installed(wheel, venv, home)


def test_the_wheel_carries_every_file_of_the_packages(installed: Installed) -> None:
    """Every file beside the code (letters, pages, style sheets, training data, the demo map) and
    the front-end files copied from node_modules are in the wheel."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing = [p for p in _sources() if p not in names]
    assert not missing, f"the wheel leaves out {missing}: list them in pyproject's package-data"
    assert {"console/vendor/htmx/htmx.min.js", "console/vendor/swagger-ui/swagger-ui-bundle.js"} <= names


def test_the_installed_copy_renders_every_letter(installed: Installed) -> None:
    where = installed.run(
        "import dsar, worker, console; print(dsar.__file__, worker.__file__, console.__file__)"
    )
    assert all(Path(p).is_relative_to(installed.venv) for p in where.split()), where
    examples = {kind: facts(Regime.UK_GDPR, kind) for kind in KINDS}
    out = installed.run(
        """
        import json, sys
        from activities.notify import render_letter
        examples = json.load(sys.stdin)
        print(json.dumps({kind: render_letter(kind, f)[:2] for kind, f in examples.items()}))
        """,
        stdin=json.dumps(examples),
    )
    rendered = json.loads(out)
    golden = ROOT / "tests" / "data" / "letters" / "UK_GDPR"
    for kind in KINDS:
        subject, text = rendered[kind]
        assert f"Subject: {subject}\n\n{text}" == (golden / f"{kind}.txt").read_text(), kind


async def test_a_case_runs_to_responded_from_the_installed_package(
    installed: Installed,
    ts_env: WorkflowEnvironment,
    demo_env: dict[str, str],
    settings: Settings,
    store: CaseStore,
) -> None:
    """The installed ``dsar worker`` runs a case from intake to responded (every stage's
    activities, letters from the installed templates); the installed web app then renders the
    staff console's pages and the public pages for it."""
    # the session's register: references are unique within one register, and the session's
    # Temporal server holds every test's cases
    var = settings.var_dir
    env = {
        **demo_env,
        "DSAR_VAR_DIR": str(var),
        "DSAR_DATABASE_URL": settings.resolved_database_url,
        "DSAR_TEMPORAL_ADDRESS": ts_env.client.service_client.config.target_host,
        "DSAR_TASK_QUEUE": settings.task_queue,
        "DSAR_CODEC_KEY": TEST_CODEC_KEY,
        "DSAR_JWT_SECRET": settings.jwt_secret_value,
        "DSAR_AUTH_MODE": "dev",
        "DSAR_DATAMAP": str(settings.datamap),
        "DSAR_WORKER_ACTIVITY_THREADS": "4",
    }
    worker = subprocess.Popen(
        [str(installed.venv / "bin" / "dsar"), "worker"],
        cwd=installed.home,
        env={**_clean_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        opened = await open_case(
            ts_env.client,
            store,
            settings,
            NewRequest(
                request_type=RequestType.ACCESS,
                regime=Regime.UK_GDPR,
                identifiers=MARGARET,
                channel=Channel.API,
                received_at=await ts_env.get_current_time(),
            ),
            controller="Northwind Post & Mobile",
        )
        handle = ts_env.client.get_workflow_handle(opened.reference)
        await at_stage(handle, Stage.VERIFYING)  # type: ignore[arg-type]
        await decide(handle, DecisionKind.VERIFY)  # type: ignore[arg-type]
        await wait_until(handle, lambda s: s.waiting_for == "reviewer: approve the review package")  # type: ignore[arg-type]
        await decide(handle, DecisionKind.APPROVE)  # type: ignore[arg-type]
        await at_stage(handle, Stage.RESPONDED)  # type: ignore[arg-type]
        sent = [str(m["Subject"]) for m in letters(settings) if opened.reference in str(m["Subject"])]
        assert any("Our response to your request" in s for s in sent), sent
        ref = opened.reference
        paths = [
            *(f"/console{p}" for p in ("", f"/cases/{ref}", f"/cases/{ref}/review", "/tasks", "/reports")),
            *("/request", "/console/sign-in", "/docs", "/static/console/console.css"),
            *("/static/vendor/htmx/htmx.min.js", "/static/vendor/swagger-ui/swagger-ui-bundle.js"),
        ]
        pages = await asyncio.to_thread(installed.run, PAGES, env, json.dumps(paths))
        served = json.loads(pages)
        assert {p: code for p, (code, _, _) in served.items() if code != 200} == {}
        assert all(size > 0 for _, size, _ in served.values())
        # the case's own pages, rendered from the installed templates, show what the case holds
        assert (
            ref in served[f"/console/cases/{ref}"][2] and "crm" in served[f"/console/cases/{ref}/review"][2]
        )
    finally:
        await handle_terminate(ts_env, locals().get("handle"))
        worker.terminate()  # a graceful stop: the worker drains and exits on SIGTERM
        try:
            _, err = worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
    assert b"Traceback" not in err, err.decode(errors="replace")[-3000:]


async def handle_terminate(env: WorkflowEnvironment, handle: object) -> None:
    """The case waits through its retention period; nobody runs it after this test."""
    if handle is None:
        return
    with contextlib.suppress(RPCError):
        await env.client.get_workflow_handle(handle.id).terminate("test finished")  # type: ignore[attr-defined]
