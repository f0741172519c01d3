"""``/console/reports``: the figures a regulator asks for, and CCPA 11 CCR §7102's, for a period.

A form for the period (calendar dates in the controller's time zone; this year so far unless
given), the figures as tables, and the same figures as a CSV (``/console/reports.csv``) for a
spreadsheet. Read from the case register and the audit trail (``dsar.reports``), which hold no
personal data; the extension reasons are the words the person was told.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from console.auth import OPERATOR, REVIEWER
from console.staff.pages import HEADERS, in_thread, render, require, services_of, today
from dsar.reports import CCPA_TYPES, Period, RegulatorReport, ReportError, report_for

router = APIRouter(include_in_schema=False)

#: §7102(a)(1)'s words for its request types.
CCPA_LABELS = {
    "know": "Requests to know",
    "delete": "Requests to delete",
    "correct": "Requests to correct",
    "opt_out": "Requests to opt out of sale/sharing",
    "limit": "Requests to limit use of sensitive personal information",
}


def _period(request: Request) -> tuple[Period | None, str, str, str]:
    """The period asked for (this year so far by default), or the reason it cannot be used."""
    on = today(request)
    start = request.query_params.get("from", "").strip()[:10] or date(on.year, 1, 1).isoformat()
    end = request.query_params.get("to", "").strip()[:10] or on.isoformat()
    try:
        return Period.parse(start, end, services_of(request).settings.timezone), start, end, ""
    except ReportError as e:
        return None, start, end, str(e)


@router.get("/console/reports")
async def reports_page(request: Request) -> Response:
    who = await require(request, OPERATOR, REVIEWER)
    period, start, end, problem = _period(request)
    report: RegulatorReport | None = None
    if period is not None:
        report = await in_thread(report_for, services_of(request).store, period)
    return render(
        request,
        "reports.html",
        who,
        status.HTTP_200_OK if problem == "" else status.HTTP_422_UNPROCESSABLE_CONTENT,
        title="Reports",
        start=start,
        end=end,
        problem=problem,
        report=report,
        csv_link="/console/reports.csv?" + urlencode({"from": start, "to": end}),
        ccpa_labels=CCPA_LABELS,
        ccpa_types={name: ", ".join(t.value for t in types) for name, types in CCPA_TYPES.items()},
        timezone=services_of(request).settings.timezone,
    )


@router.get("/console/reports.csv")
async def reports_csv(request: Request) -> Response:
    who = await require(request, OPERATOR, REVIEWER)
    period, _, _, problem = _period(request)
    if period is None:
        return render(
            request,
            "message.html",
            who,
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            title="This period cannot be used",
            paragraphs=[problem],
        )
    report = await in_thread(report_for, services_of(request).store, period)
    name = f"dsar-report-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return Response(
        report.to_csv(),
        media_type="text/csv; charset=utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )
