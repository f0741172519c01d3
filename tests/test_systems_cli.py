"""``dsar systems check``: the data map validated, every connection tested, no traceback ever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, sql_demo_map

MAPS = Path(__file__).resolve().parent / "data" / "datamaps"


def dsar(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dsar.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port  # closed again when the socket goes: nothing listens there


def test_every_system_answers(demo_env: dict[str, str]) -> None:
    result = dsar("systems", "check", "--datamap", str(sql_demo_map()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid (2 system(s), controller Northwind Post & Mobile Ltd)" in result.stdout
    assert "crm              sql     ok" in result.stdout
    assert "all systems answered" in result.stdout


def test_unreachable_and_misconfigured_systems_are_named(demo_env: dict[str, str], tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "demo" / "dsar.yaml").read_text())
    systems = document["systems"]
    systems["crm"]["url_env"] = "DSAR_TEST_DOWN_URL"
    systems["marketing"]["entities"]["preferences"]["table"] = "no_such_table"
    del systems["recordings"]
    path = tmp_path / "dsar.yaml"
    path.write_text(yaml.safe_dump(document))
    secret = "s3cr3t-pw"
    down = f"postgresql://dsar:{secret}@127.0.0.1:{closed_port()}/crm"
    result = dsar("systems", "check", "--datamap", str(path), env={"DSAR_TEST_DOWN_URL": down})
    assert result.returncode == 1
    assert "crm              sql     unreachable" in result.stdout
    assert "marketing        sql     misconfigured" in result.stdout and "no_such_table" in result.stdout
    assert "cctv             manual  ok            searched by hand by facilities@" in result.stdout
    assert "2 system(s) need attention" in result.stdout
    assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "name, expected",
    [
        ("unknown_key.yaml", "unknown key 'relaton'"),
        ("bad_relation_column.yaml", "no column"),
        ("cycle.yaml", "relation cycle"),
        ("nowhere.yaml", "cannot read the data map"),
    ],
)
def test_a_bad_data_map_is_one_clear_line_and_exit_2(name: str, expected: str) -> None:
    result = dsar("systems", "check", "--datamap", str(MAPS / name))
    assert result.returncode == 2
    assert result.stdout.startswith(f"invalid data map: {MAPS / name}")
    assert expected in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_indexes_are_printed_then_created_once(tmp_path: Path) -> None:
    """``dsar systems indexes`` prints the DDL for review; ``--apply`` creates what is missing,
    and a second run finds everything there."""
    from demo.seed import seed_demo

    crm, marketing = f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'marketing.db'}"
    seed_demo(crm, marketing, people=20)
    env = {"DSAR_DEMO_CRM_URL": crm, "DSAR_DEMO_MARKETING_URL": marketing}
    printed = dsar("systems", "indexes", "--datamap", str(sql_demo_map()), env=env)
    assert printed.returncode == 0, printed.stderr
    assert "CREATE INDEX" in printed.stdout and "lower(trim(" in printed.stdout.lower()
    applied = dsar("systems", "indexes", "--apply", "--datamap", str(sql_demo_map()), env=env)
    assert applied.returncode == 0 and "index(es) created" in applied.stdout
    again = dsar("systems", "indexes", "--apply", "--datamap", str(sql_demo_map()), env=env)
    assert "-- crm: 0 index(es) created" in again.stdout
