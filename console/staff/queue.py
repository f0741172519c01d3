"""``/console``: the queue. Every open case, soonest deadline first, with days left and a risk
colour (overdue, due within a week, clock paused), filters, counts per stage, and assignment.

Scripts and monitoring read the same page with a staff bearer token: each row of the table
carries ``data-reference`` and ``data-due`` (an ISO date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from console.auth import OPERATOR, REVIEWER
from console.services import REFERENCE_RE
from console.staff.pages import (
    HEADERS,
    PageRefused,
    caller,
    in_thread,
    posted,
    render,
    require,
    services_of,
    today,
)
from dsar.model import FINAL_STAGES, Channel, Regime, RequestType, Stage
from dsar.regimes import REQUEST_LABELS
from dsar.store import CaseRow
from dsar.worklist import WAITING_FOR, QueueFilter, Worklist

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: A case due within this many days is shown amber.
SOON_DAYS = 7
MAX_OFFSET = 10_000_000
FILTERS = ("stage", "regime", "type", "channel", "waiting", "assignee", "overdue", "closed", "q")


@dataclass(frozen=True)
class Risk:
    css: str  # risk-overdue, risk-soon, risk-paused, risk-ok, risk-none
    words: str  # the same in words (colour is never the only signal)
    days_left: int | None


def risk(case: CaseRow, on: date) -> Risk:
    if Stage(case.stage) in FINAL_STAGES or case.stage == Stage.RESPONDED:
        return Risk("risk-none", case.stage.replace("_", " "), None)
    if case.due is None:
        return Risk("risk-none", "no deadline yet", None)
    left = (case.due - on).days
    if case.paused:
        return Risk("risk-paused", f"clock paused ({_days(left)} left when it restarts)", left)
    if left < 0:
        return Risk("risk-overdue", f"overdue by {_days(-left)}", left)
    if left <= SOON_DAYS:
        return Risk("risk-soon", "due today" if left == 0 else f"due in {_days(left)}", left)
    return Risk("risk-ok", f"due in {_days(left)}", left)


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def worklist(request: Request) -> Worklist:
    wl: Worklist | None = getattr(request.app.state, "worklist", None)
    if wl is None:
        wl = request.app.state.worklist = Worklist(services_of(request).store)
    return wl


def _choice(value: str, allowed: set[str]) -> str:
    return value if value in allowed else ""


def _filter(params: dict[str, str], me: str) -> QueueFilter:
    assignee = params.get("assignee", "")
    if assignee == "me":
        assignee = me
    return QueueFilter(
        stage=_choice(params.get("stage", ""), {s.value for s in Stage}),
        regime=_choice(params.get("regime", ""), {r.value for r in Regime}),
        request_type=_choice(params.get("type", ""), {t.value for t in RequestType}),
        channel=_choice(params.get("channel", ""), {c.value for c in Channel}),
        waiting=_choice(params.get("waiting", ""), set(WAITING_FOR)),
        assignee=assignee[:120],
        overdue=params.get("overdue", "") == "yes",
        open_only=params.get("closed", "") != "yes",
        reference=params.get("q", "").strip()[:40],
    )


@router.get("/console")
async def queue_page(request: Request) -> Response:
    who = await caller(request)
    if who is not None and not who.staff.works_cases and who.staff.owned_systems:
        return RedirectResponse("/console/tasks", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
    who = await require(request, OPERATOR, REVIEWER)
    params = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "offset")}
    f = _filter(params, who.staff.sub)
    raw_offset = params.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() and len(raw_offset) < 9 else 0
    offset = min(offset, MAX_OFFSET)
    on = today(request)
    page = await in_thread(worklist(request).page, f, on, PAGE_SIZE, offset)
    kept = {k: v for k, v in params.items() if k != "offset" and v}
    rows = [(r, risk(r.case, on)) for r in page.rows]
    return render(
        request,
        "queue.html",
        who,
        title="Queue",
        rows=rows,
        total=page.total,
        counts=page.counts,
        stages=[s.value for s in Stage],
        regimes=[r.value for r in Regime],
        types=[(t.value, REQUEST_LABELS[t]) for t in RequestType],
        channels=[c.value for c in Channel],
        waiting=WAITING_FOR,
        params=params,
        filter=f,
        offset=offset,
        page_size=PAGE_SIZE,
        previous=_link(kept, offset - PAGE_SIZE) if offset > 0 else None,
        next=_link(kept, offset + PAGE_SIZE) if offset + PAGE_SIZE < page.total else None,
        stage_link=lambda stage: _link(
            {**{k: v for k, v in kept.items() if k != "stage"}, "stage": stage}, 0
        ),
        back=urlencode(kept),
        labels=REQUEST_LABELS,
        today=on,
    )


def _link(params: dict[str, str], offset: int) -> str:
    query = {k: v for k, v in params.items() if v}
    if offset > 0:
        query["offset"] = str(offset)
    return "/console" + (f"?{urlencode(query)}" if query else "")


@router.post("/console/assign")
async def assign(request: Request) -> Response:
    """Assign the ticked cases (or one row's case) to me or to a named member of staff."""
    who = await require(request, OPERATOR, REVIEWER)
    form = await posted(request, who)
    only = str(form.get("only", "") or "")
    refs = [only] if only else [str(r) for r in form.getlist("ref")]
    refs = [r for r in dict.fromkeys(refs) if REFERENCE_RE.match(r)]
    action = str(form.get("action", "me") or "me")
    if action == "to":
        assignee: str | None = str(form.get("assignee", "") or "").strip()
        if not assignee:
            raise PageRefused(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "Whom to?", "Type the name to assign to."
            )
    elif action == "none":
        assignee = None
    else:
        assignee = who.staff.sub
    if not refs:
        raise PageRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, "No case chosen", "Tick at least one case.")
    wl = worklist(request)
    known = [r for r in refs if await in_thread(wl.store.get, r) is not None]
    await in_thread(wl.assign, known, assignee, who.staff.actor(OPERATOR, REVIEWER), datetime.now(UTC))
    back = str(form.get("back", "") or "")
    target = str(form.get("return_to", "") or "")
    if not target.startswith("/console/cases/"):
        target = "/console" + (f"?{back}" if back and "\n" not in back else "")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS)
