"""GNU as for IA-64 in tests: find it, skip (or fail under IVTX_REQUIRE_GAS=1) without it, assemble text.

The judge is `ia64-linux-gnu-as` from Debian's binutils-ia64-linux-gnu (design.md, Verification).
Every assembly runs with `-x` (explicit stops: gas keeps our `;;` and reports dependency
violations as warnings), so "no stderr" means no error and no DV warning (primer section 4).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile

import pytest

GAS = "ia64-linux-gnu-as"
OBJDUMP = "ia64-linux-gnu-objdump"
PACKAGE = "binutils-ia64-linux-gnu"

_workdir: tempfile.TemporaryDirectory | None = None


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    reason = f"{tool} not found on PATH (Debian package {PACKAGE})"
    if os.environ.get("IVTX_REQUIRE_GAS") == "1":
        pytest.fail(f"{reason}, and IVTX_REQUIRE_GAS=1 makes that a failure")
    pytest.skip(reason)


def require_gas() -> str:
    """Path of ia64-linux-gnu-as; pytest.skip without it, pytest.fail if IVTX_REQUIRE_GAS=1."""
    return _require(GAS)


def require_objdump() -> str:
    """Path of ia64-linux-gnu-objdump (same package, same skip/fail rule)."""
    return _require(OBJDUMP)


def _scratch_dir() -> str:
    global _workdir
    if _workdir is None:
        _workdir = tempfile.TemporaryDirectory(prefix="ivtx-gas-")
        atexit.register(_workdir.cleanup)
    return _workdir.name


def assemble(text: str, extra_args=()) -> tuple[str, str]:
    """Assemble `text` with `as -x [extra_args]`; return (object path, stderr).

    The object lives in a per-session scratch directory (removed at exit).  A failing run
    always has non-empty stderr, so `assert not stderr` is the whole check.
    """
    gas = require_gas()
    fd, obj = tempfile.mkstemp(suffix=".o", dir=_scratch_dir())
    os.close(fd)
    proc = subprocess.run([gas, "-x", *extra_args, "-o", obj, "-"],
                          input=text, capture_output=True, text=True)
    stderr = proc.stderr
    if proc.returncode != 0 and not stderr.strip():
        stderr = f"{GAS} exited with status {proc.returncode} and no message\n"
    return obj, stderr
