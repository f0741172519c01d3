"""Settings: the development secrets that ``make run`` creates under var/ on a fresh clone."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from dsar.settings import Settings

_real_fdopen = os.fdopen


def _slow_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
    """os.fdopen whose writes take 50 ms: whoever writes the secret is caught in the middle."""
    f = _real_fdopen(fd, *args, **kwargs)
    write = f.write

    def slow_write(data: Any) -> int:
        time.sleep(0.05)
        return int(write(data))

    f.write = slow_write
    return f


def _start(args: tuple[Path, float]) -> tuple[bytes, str] | str:
    """One process starting up: read (or create) the secrets at the agreed instant."""
    var, at = args
    os.fdopen = _slow_fdopen  # this process is a fresh interpreter: slow only its own writes
    time.sleep(max(0.0, at - time.time()))
    settings = Settings(var_dir=var, codec_key=None, jwt_secret=None)
    try:
        return settings.codec_key_bytes, settings.jwt_secret_value
    except ValueError as e:
        return f"{type(e).__name__}: {e}"


def test_processes_starting_together_share_one_codec_key_and_jwt_secret(tmp_path: Path) -> None:
    """The web app and every worker start at once on a fresh var/: each must read the one full
    secret, never a file another process has created but not yet written."""
    var = tmp_path / "var"
    at = time.time() + 3  # after every process has started
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        seen = set(pool.map(_start, [(var, at)] * 6))
    assert len(seen) == 1, seen
    (result,) = seen
    assert isinstance(result, tuple), result  # not an error message
    key, secret = result
    assert len(key) == 32 and len(secret) >= 40
    assert (var / "codec.key").stat().st_mode & 0o777 == 0o600
    assert not [p for p in var.iterdir() if p.name.startswith(".")]  # no temporary files left
