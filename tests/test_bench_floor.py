"""bench/floor.py, on a few cases: the engine's floor still runs with dsar's own dev server
command, data converter and worker settings, and says what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEW_CASES = ["--n", "6", "--workers", "1", "--shape", "minimal", "--shape", "dsar"]


def test_floor_runs_each_shape_and_counts_the_engines_cpu() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "floor.py"), *FEW_CASES],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["shape"] for line in lines] == ["minimal", "dsar"]
    for line in lines:
        assert line["n"] == 6 and line["per_min"] > 0
        cpu = line["cpu_s_per_case"]
        assert cpu["server"] > 0 and cpu["workers"] > 0
        assert cpu["total"] == round(cpu["server"] + cpu["workers"], 4)
        assert line["calibration_loop_cpu_s"] > 0
