"""``/console/cases/{reference}/review``: the review workbench. Every record the search found,
by system and entity, as the person will receive it beside the original, each redacted span
highlighted with its reason; what is withheld or kept with its legal basis, and whether the
person is told; for an erasure or another change, the plan per system. A reviewer amends in
place (removes some words, withholds a record, overrides a decision, each with a reason: the
``review`` Update, audited by the workflow) and approves.

Records are read a page at a time, streamed from the blob store (the decisions file and the
system's records, one line at a time), so a person holding 10,000 records costs one pass over
each file per page, never all of them in memory.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from connectors.base import json_lines
from console.auth import OPERATOR, REVIEWER
from console.services import MAX_REASON, REFERENCE_RE, run_update, snapshot
from console.staff.case import related_cases
from console.staff.pages import (
    HEADERS,
    Caller,
    PageRefused,
    case_path,
    http_to_page,
    in_thread,
    posted,
    render,
    require,
    services_of,
    today,
)
from dsar.blobs import BlobStore
from dsar.datamap import DataMap, DataMapError, EntityConfig, SystemConfig
from dsar.exemptions import Basis, ExemptionCatalogue, RecordDecision, record_key
from dsar.model import ReviewAction, ReviewActionKind, ReviewAmendment, Snapshot
from dsar.package import as_disclosed
from workflows.request import DataSubjectRequest

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
#: How the erasure plan's warnings begin (connectors.base.ErasureForecast.warnings).
PLAN_WARNINGS = ("shared row:", "constraint would refuse:")
MAX_OFFSET = 10_000_000
#: A redaction marker in redacted free text: "[REDACTED: third party]".
_MARKER = re.compile(r"\[REDACTED: ([^\]]*)\]")
#: What a reviewer may set, by the kind of request (the workflow's validator has the last word).
OUTCOMES = {
    "disclosing": ("disclose", "redact", "withhold"),
    "erasure": ("erase", "retain"),
    "other": ("comply", "refuse"),
}


def plan_warnings(plan_text: str) -> list[str]:
    """The warnings of the plan worked out on the live database (activities/change.py): rows
    others use too, and what a database constraint would refuse. The workbench shows them above
    the plan, so that nobody approves past them."""
    return [line.strip() for line in plan_text.splitlines() if line.strip().startswith(PLAN_WARNINGS)]


@dataclass(frozen=True)
class Span:
    text: str
    removed: bool  # in the original: what the person will not see
    reason: str = ""


@dataclass
class FieldView:
    name: str
    outcome: str
    original: str
    shown: str | None  # as the person receives it (None: left out without a word)
    spans: list[Span] = field(default_factory=list)  # the original, with what is removed marked
    bases: list[Basis] = field(default_factory=list)
    told: bool = True
    text: bool = False  # free text: the reviewer can remove some words


@dataclass
class RecordView:
    key: str
    anchor: str
    outcome: str
    whole: bool
    left_out: bool
    bases: list[Basis]
    told: bool
    fields: list[FieldView]


@dataclass(frozen=True)
class EntityCount:
    system: str
    entity: str
    label: str
    records: int
    outcomes: dict[str, int]


def _family(snap: Snapshot) -> str:
    from activities.review import outcome_family

    return outcome_family(snap.request_type)


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def spans(original: str, redacted: str) -> list[Span]:
    """The original text with what the redacted text replaced by markers picked out. The
    redacted text is the original with some stretches replaced by ``[REDACTED: reason]``: the
    text between markers is found in the original in order, and what lies between is what
    was removed, with the marker's reason."""
    parts = _MARKER.split(redacted)
    literals, reasons = parts[0::2], parts[1::2]
    out: list[Span] = []
    position = 0
    last = len(literals) - 1
    for i, literal in enumerate(literals):
        if i == 0:
            if not original.startswith(literal):
                return _diffed(original, redacted)
        elif (
            i == last and literal and original.endswith(literal) and len(original) - len(literal) >= position
        ):
            start = len(original) - len(literal)
            out.append(Span(original[position:start], True, reasons[i - 1]))
            position = start
        else:
            start = original.find(literal, position)
            if start < 0:
                return _diffed(original, redacted)
            out.append(Span(original[position:start], True, reasons[i - 1]))
            position = start
        if literal:
            out.append(Span(literal, False))
        position += len(literal)
    if position < len(original):  # a marker at the very end
        out.append(Span(original[position:], True, reasons[-1] if reasons else "removed"))
    return [span for span in out if span.text]


def _diffed(original: str, redacted: str) -> list[Span]:
    """When the texts do not line up (the original changed since): difflib's best effort."""
    out: list[Span] = []
    matcher = difflib.SequenceMatcher(a=original, b=redacted, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            out.append(Span(original[a1:a2], False))
        elif a2 > a1:
            found = _MARKER.search(redacted[b1:b2])
            out.append(Span(original[a1:a2], True, found.group(1) if found else "removed"))
    return out


def _lines(blobs: BlobStore, ref: str) -> Iterator[bytes]:
    yield from json_lines(blobs.open_reader(ref))


def survey(blobs: BlobStore, decisions_ref: str) -> dict[tuple[str, str], Counter[str]]:
    """(system, entity) -> outcomes counted, in one pass over the decisions file."""
    import json

    counts: dict[tuple[str, str], Counter[str]] = {}
    for line in _lines(blobs, decisions_ref):
        item = json.loads(line)
        counts.setdefault((item["system"], item["entity"]), Counter())[item["outcome"]] += 1
    return counts


def _page_of_records(
    blobs: BlobStore, ref: str, entity: EntityConfig, offset: int, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """(key, record) for one page of an entity, keyed as the review stage keyed them."""
    import json

    out: list[tuple[str, dict[str, Any]]] = []
    position = 0
    for line in _lines(blobs, ref):
        item = json.loads(line)
        if item["entity"] != entity.name:
            continue
        position += 1
        if position <= offset:
            continue
        out.append((record_key(entity, item["record"], position), item["record"]))
        if len(out) >= limit:
            break
    return out


def _decisions_for(blobs: BlobStore, ref: str, system: str, keys: set[str]) -> dict[str, RecordDecision]:
    found: dict[str, RecordDecision] = {}
    for line in _lines(blobs, ref):
        if not keys:
            break
        decision = RecordDecision.load(line)
        if decision.system == system and decision.key in keys:
            found[decision.key] = decision
            keys.discard(decision.key)
    return found


def _view(
    key: str,
    record: dict[str, Any],
    decision: RecordDecision | None,
    entity: EntityConfig,
    catalogue: ExemptionCatalogue,
    family: str,
) -> RecordView:
    # the declared fields, then what the copy shows beside them (reference data joined to an
    # id, e.g. a rental's films.title), as the package does
    columns = [*entity.fields, *(c for c in record if c not in entity.fields)] or list(record)
    outcome = decision.outcome.value if decision else ("disclose" if family == "disclosing" else "comply")
    bases = decision.basis if decision else []
    if family == "disclosing":
        shown, _ = as_disclosed(record, decision, columns, catalogue)
    else:
        shown = dict(record)
    fields = []
    for column in columns:
        original = _text(record.get(column))
        column_outcome = decision.field_outcome(column).value if decision else outcome
        column_bases = next((f.basis for f in decision.fields if f.field == column), []) if decision else []
        view = FieldView(
            name=column,
            outcome=column_outcome,
            original=original,
            shown=None if shown is None or shown.get(column) is None else _text(shown.get(column)),
            bases=list(column_bases),
            told=not catalogue.untold(column_bases) if column_bases else True,
            text=isinstance(record.get(column), str) and len(original) > 20,
        )
        if decision is not None and column in decision.redacted:
            view.spans = spans(original, decision.redacted[column])
        elif column_outcome in ("redact", "withhold") and original:
            view.spans = [Span(original, True, "the whole field")]
        fields.append(view)
    left_out = family == "disclosing" and shown is None
    return RecordView(
        key=key,
        anchor="rec-" + re.sub(r"[^A-Za-z0-9_-]", "-", key),
        outcome=outcome,
        whole=decision.whole_record if decision else True,
        left_out=left_out,
        bases=list(bases),
        told=not catalogue.untold(decision.bases()) if decision else True,
        fields=fields,
    )


def _load_page(
    blobs: BlobStore, snap: Snapshot, datamap: DataMap, system: str, entity_name: str, offset: int
) -> tuple[list[RecordView], SystemConfig, EntityConfig]:
    assert snap.review is not None
    config = datamap.system(system)
    entity = config.entities[entity_name]
    result = next((s for s in snap.systems if s.system == system), None)
    if result is None or not result.blob_ref:
        return [], config, entity
    page = _page_of_records(blobs, result.blob_ref, entity, offset, PAGE_SIZE)
    decided = _decisions_for(blobs, snap.review.decisions_ref, system, {k for k, _ in page})
    catalogue = ExemptionCatalogue.load()
    family = _family(snap)
    return [_view(k, r, decided.get(k), entity, catalogue, family) for k, r in page], config, entity


def _label(config: SystemConfig, entity: EntityConfig) -> str:
    return f"{entity.label or entity.name.replace('_', ' ')} ({config.label or config.name})"


async def render_workbench(
    request: Request, who: Caller, ref: str, params: dict[str, str], error: str = "", status_code: int = 200
) -> Response:
    if not REFERENCE_RE.match(ref):
        raise PageRefused(
            status.HTTP_404_NOT_FOUND, "No such case", "A reference looks like DSR-2026-000123."
        )
    svc = services_of(request)
    try:
        snap = await snapshot(svc, ref)
    except HTTPException as e:
        raise http_to_page(e) from None
    if snap.review is None:
        raise PageRefused(
            status.HTTP_409_CONFLICT,
            "No review yet",
            f"Case {ref} is {snap.stage.value}: it has no review package.",
        )
    try:
        datamap = DataMap.load(svc.settings.datamap)
    except DataMapError as e:
        raise PageRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE, "The data map cannot be read", str(e)
        ) from None
    counts = await in_thread(survey, svc.blobs, snap.review.decisions_ref)
    entities = []
    for (system, entity), outcomes in counts.items():
        config = datamap.systems.get(system)
        known = config is not None and entity in config.entities
        label = _label(config, config.entities[entity]) if config and known else f"{entity} ({system})"
        entities.append(EntityCount(system, entity, label, sum(outcomes.values()), dict(outcomes)))
    chosen = next(
        (e for e in entities if e.system == params.get("system") and e.entity == params.get("entity")),
        entities[0] if entities else None,
    )
    raw = params.get("offset", "0")
    offset = min(int(raw), MAX_OFFSET) if raw.isdigit() and len(raw) < 9 else 0
    records: list[RecordView] = []
    if chosen is not None and chosen.system in datamap.systems:
        records, _, _ = await in_thread(
            _load_page, svc.blobs, snap, datamap, chosen.system, chosen.entity, offset
        )
    plan_text = ""
    if snap.review.plan_ref:
        plan_text = (await in_thread(svc.blobs.get, snap.review.plan_ref)).decode()
    plan_warning_lines = plan_warnings(plan_text)
    family = _family(snap)
    # the same person's other requests: a change carried out since this case searched
    events = await in_thread(svc.store.audit_trail, ref)
    _, warnings = await in_thread(
        related_cases,
        svc.store,
        svc.settings.suppression_key_bytes,
        ref,
        events,
        svc.settings.timezone,
        today(request),
    )

    def link(**changes: object) -> str:
        query = {"system": chosen.system if chosen else "", "entity": chosen.entity if chosen else ""}
        query.update({k: str(v) for k, v in changes.items()})
        return f"{case_path(ref)}/review?{urlencode({k: v for k, v in query.items() if v not in ('', '0')})}"

    total = sum(e.records for e in entities)
    return render(
        request,
        "review.html",
        who,
        status_code,
        title=f"Review {ref}",
        ref=ref,
        snap=snap,
        review=snap.review,
        entities=entities,
        chosen=chosen,
        records=records,
        offset=offset,
        page_size=PAGE_SIZE,
        total=total,
        link=link,
        family=family,
        outcomes=OUTCOMES[family],
        plan_text=plan_text,
        plan_warnings=plan_warning_lines,
        warnings=warnings,
        error=error,
        can_review=who.staff.has(REVIEWER),
        open=snap.stage.value == "reviewing" and not snap.review.approved_by,
        max_reason=MAX_REASON,
    )


@router.get("/console/cases/{ref}/review")
async def workbench(request: Request, ref: str) -> Response:
    who = await require(request, OPERATOR, REVIEWER)
    params = {k: v for k, v in request.query_params.items() if k in ("system", "entity", "offset")}
    return await render_workbench(request, who, ref, params)


@router.post("/console/cases/{ref}/review/amend")
async def amend(request: Request, ref: str) -> Response:
    """One amendment from the workbench (the workflow re-decides and re-renders the package)."""
    who = await require(request, OPERATOR, REVIEWER)
    form = await posted(request, who)
    if not who.staff.has(REVIEWER):
        raise PageRefused(
            status.HTTP_403_FORBIDDEN,
            "You cannot amend this",
            f"Amending the review needs the reviewer or admin role. You are signed in as {who.staff.sub} "
            f"({', '.join(who.staff.roles)}).",
        )

    def value(name: str, limit: int = MAX_REASON) -> str:
        return str(form.get(name, "") or "").strip()[:limit]

    back = {k: value(k, 200) for k in ("system", "entity", "offset")}
    try:
        action = ReviewActionKind(value("action", 20))
    except ValueError:
        return await render_workbench(request, who, ref, back, "Choose what to do with the record.", 422)
    amendment = ReviewAmendment(
        action=action,
        system=value("system", 64),
        key=value("key", 300),
        reason=value("reason"),
        field=value("field", 64),
        outcome=value("outcome", 20),
        text=value("text"),
    )
    if not amendment.reason:
        return await render_workbench(
            request, who, ref, back, "Give a reason: the person and a regulator see it.", 422
        )
    if action == ReviewActionKind.REDACT and amendment.field and not amendment.text:
        return await render_workbench(request, who, ref, back, "Type or select the words to remove.", 422)
    review = ReviewAction(actor=who.staff.actor(REVIEWER), amendments=[amendment])
    try:
        await run_update(services_of(request), ref, DataSubjectRequest.review, review, "review")
    except HTTPException as e:
        if e.status_code == status.HTTP_409_CONFLICT:
            return await render_workbench(request, who, ref, back, str(e.detail), e.status_code)
        raise http_to_page(e) from None
    query = urlencode({k: v for k, v in back.items() if v and v != "0"})
    anchor = "#rec-" + re.sub(r"[^A-Za-z0-9_-]", "-", amendment.key)
    return RedirectResponse(
        f"{case_path(ref)}/review?{query}{anchor}", status_code=status.HTTP_303_SEE_OTHER, headers=HEADERS
    )
