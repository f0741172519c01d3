"""``dsar systems check``: validate the data map, then test each system's connection.

Run where the worker runs (the connection URLs are in its environment). One line per system,
then a summary; the exit status is 0 only when the map is valid and every system answered, so
it can gate a deployment. A data map error is printed as the loader words it (file, line, what
is wrong), never as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from connectors.base import ConnectorError, ConnectorMisconfigured, ConnectorUnavailable, connector_for
from dsar.datamap import DataMap, DataMapError, SystemConfig

if TYPE_CHECKING:
    from connectors.sql_schema import Finding

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def check(datamap_path: Path, out: TextIO) -> int:
    try:
        datamap = DataMap.load(datamap_path)
    except DataMapError as e:
        out.write(f"invalid data map: {e}\n")
        return EXIT_INVALID
    out.write(
        f"{datamap.source}: valid ({len(datamap.systems)} system(s), controller {datamap.controller.name})\n"
    )
    failed = 0
    for system in datamap.systems.values():
        status, detail = check_system(system)
        findings = schema_check(system) if status == "ok" and system.connector == "sql" else []
        errors = sum(f.severity == "error" for f in findings)
        if errors:
            status, detail = "mismatch", f"{errors} error(s) comparing the data map with the database"
        failed += status != "ok"
        out.write(f"{system.name:<16} {system.connector:<7} {status:<13} {detail}\n")
        for finding in findings:
            out.write(f"  {finding}\n")
    out.write("all systems answered\n" if not failed else f"{failed} system(s) need attention\n")
    return EXIT_OK if not failed else EXIT_FAILED


def schema_check(system: SystemConfig) -> list[Finding]:
    """The data map against the live schema (connectors/sql_schema.py); a failure to read it
    is one finding, never a traceback."""
    from connectors.sql_schema import Finding, schema_findings

    try:
        return schema_findings(system)
    except ConnectorError as e:
        return [Finding("error", system.origin, f"cannot read the schema: {e}")]


def check_system(system: SystemConfig) -> tuple[str, str]:
    """(status, detail) for one system: "ok", "unreachable", "misconfigured" or "error"."""
    entities = f"{len(system.entities)} entit{'y' if len(system.entities) == 1 else 'ies'}"
    if system.manual is not None:
        return "ok", f"searched by hand by {system.manual.owner}; {entities}"
    try:
        connector_for(system).check()
    except ConnectorUnavailable as e:
        return "unreachable", str(e)
    except ConnectorMisconfigured as e:
        return "misconfigured", str(e)
    except ConnectorError as e:
        return "error", str(e)
    return "ok", f"{entities} checked; at most {system.max_concurrent} searches at once per worker"


def indexes(datamap_path: Path, out: TextIO, *, apply: bool) -> int:
    """Print (or create) the indexes each SQL system needs for the connector's matching."""
    from connectors.sql import create_matching_indexes, matching_index_ddl

    try:
        datamap = DataMap.load(datamap_path)
    except DataMapError as e:
        out.write(f"invalid data map: {e}\n")
        return EXIT_INVALID
    failed = 0
    for system in datamap.systems.values():
        if system.connector != "sql":
            continue
        try:
            if apply:
                plan = create_matching_indexes(system)
                why = f" ({plan.skip_reason})" if plan.skipped else ""
                out.write(
                    f"-- {system.name}: {len(plan.create)} index(es) created, {len(plan.present)} "
                    f"already there, {len(plan.skipped)} skipped{why}\n"
                )
            else:
                out.write(matching_index_ddl(system))
        except ConnectorError as e:
            failed += 1
            out.write(f"-- {system.name}: {e}\n")
    return EXIT_OK if not failed else EXIT_FAILED


def discover(url: str, out: TextIO, *, system: str, url_env: str = "", out_path: Path | None = None) -> int:
    """Draft a data map for the database at ``url`` (connectors/sql_discover.py); the URL and
    any sampled value stay out of the draft and out of every message."""
    from sqlalchemy.exc import SQLAlchemyError

    from connectors.sql_discover import discover as draft_map

    try:
        draft = draft_map(url, system, url_env)
    except ValueError as e:  # nothing that looks like people: said in words, no value
        out.write(f"cannot draft a data map: {e}\n")
        return EXIT_FAILED
    except SQLAlchemyError as e:  # a driver's message can quote SQL and its parameters
        out.write(f"cannot draft a data map: the database could not be read ({type(e).__name__})\n")
        return EXIT_FAILED
    if out_path is None:
        out.write(draft.text)
    else:
        out_path.write_text(draft.text, encoding="utf-8")
        out.write(
            f"{out_path}: drafted {len(draft.entities)} entities (the people: '{draft.person}'); edit the "
            f"TODOs, then run 'dsar systems check --datamap {out_path}'\n"
        )
    return EXIT_OK
