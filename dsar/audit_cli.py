"""``dsar audit verify REF``: check a case's audit chain and say plainly whether it is intact.

Prints one JSON line so that the result can be attached to a regulator's file or read by a
script; the exit code (0 intact, 1 not) lets a scheduled check alert without parsing.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from dsar.store import CaseNotFound, CaseStore, ChainReport


def verify(reference: str, database_url: str, out: TextIO) -> int:
    """Verify one case's chain, print the report as a JSON line, return the exit code."""
    store = CaseStore(database_url)
    try:
        report = store.verify_chain(reference)
    except CaseNotFound:
        report = ChainReport(reference, ok=False, events=0, first_bad_seq=None, problem="no such case")
    finally:
        store.close()
    line = {
        "reference": report.reference,
        "ok": report.ok,
        "events": report.events,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
    }
    out.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.flush()
    return 0 if report.ok else 1


if __name__ == "__main__":  # python -m dsar.audit_cli REF [DATABASE_URL]
    from dsar.settings import Settings

    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: python -m dsar.audit_cli REFERENCE [DATABASE_URL]\n")
        sys.exit(2)
    url = sys.argv[2] if len(sys.argv) == 3 else Settings().resolved_database_url
    sys.exit(verify(sys.argv[1], url, sys.stdout))
