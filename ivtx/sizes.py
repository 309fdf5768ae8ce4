"""Bytes each region (IVT entry or other code) takes: exact from the object file, else estimated.

A vector must fit its slot (0x400 or 0x100 bytes, primer section 3); gas only says "attempt
to move .org backwards" when it does not.  With `ia64-linux-gnu-as` on PATH, the printed
program is assembled (`-x`) twice: as it is, and with a marker label before the first and
after the last statement of every region.  A label before `.org` or a section switch lands
after the region's last bundle, and one after `.org` lands at the entry's start (labels
start a new bundle, which those directives do anyway; primer section 4), so the distance
between a region's markers is its size.  The two objects must have the same section
contents, or the markers moved code and the sizes are not used.  Without the assembler, or
when it rejects the program (a pv-op call without its native header, an overflowing slot),
the sizes are `layout.estimate_bytes` and `Sizes.reason` says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from .ir import Program
from .layout import Region, estimate_bytes, regions
from .printer import format_statement

GAS = "ia64-linux-gnu-as"
NM = "ia64-linux-gnu-nm"
OBJDUMP = "ia64-linux-gnu-objdump"
MODES = ("auto", "exact", "estimate")
_MARK = "__ivtx_size_{}_{}"  # region index, "start" | "end"


@dataclass(frozen=True, slots=True)
class RegionSize:
    region: Region
    estimate: int  # layout.estimate_bytes
    exact: int | None  # from the object file, or None

    @property
    def bytes(self) -> int:
        return self.exact if self.exact is not None else self.estimate

    @property
    def source(self) -> str:
        return "exact" if self.exact is not None else "estimate"


@dataclass
class Sizes:
    """Sizes of `regions(program)`, in that order; `reason` says why they are estimates."""

    regions: list[RegionSize] = field(default_factory=list)
    exact: bool = False
    reason: str | None = None

    def of(self, region: Region) -> RegionSize | None:
        """The size of `region` (matched by its statement range), in constant time."""
        index = self.__dict__.get("_index")
        if index is None or len(index) != len(self.regions):
            index = self.__dict__["_index"] = {(rs.region.start, rs.region.end): rs for rs in self.regions}
        return index.get((region.start, region.end))


def tools() -> tuple[str, str, str] | None:
    """Paths of gas, nm and objdump for IA-64 (Debian package binutils-ia64-linux-gnu), or None."""
    found = tuple(shutil.which(t) for t in (GAS, NM, OBJDUMP))
    return found if all(found) else None  # type: ignore[return-value]


def estimated(program: Program, regs: list[Region] | None = None, reason: str | None = None) -> Sizes:
    regs = regions(program) if regs is None else regs
    stmts = program.statements
    return Sizes([RegionSize(r, estimate_bytes(stmts[r.start:r.end]), None) for r in regs], False, reason)


def region_sizes(program: Program, regs: list[Region] | None = None, mode: str = "auto") -> Sizes:
    """Sizes of every region. `mode`: auto (exact when the assembler is there and accepts the
    program, else estimates with a reason), exact (the same, but `reason` is set whenever it
    fell back; the CLI turns that into an error), estimate (never run the assembler)."""
    if mode not in MODES:
        raise ValueError(f"sizes mode {mode!r} not in {MODES}")
    regs = regions(program) if regs is None else regs
    if mode == "estimate":
        return estimated(program, regs, "estimates asked for (--sizes estimate)")
    found = tools()
    if found is None:
        return estimated(program, regs, f"{GAS} (or its nm/objdump) not on PATH")
    try:
        exact = _measure(program, regs, *found)
    except _Fallback as exc:
        return estimated(program, regs, str(exc))
    stmts = program.statements
    out = [RegionSize(r, estimate_bytes(stmts[r.start:r.end]), exact[i]) for i, r in enumerate(regs)]
    return Sizes(out, True, None)


class _Fallback(Exception):
    """Why exact sizes could not be had (a sentence for the user)."""


def _printed(program: Program, regs: list[Region], marks: bool) -> tuple[str, list[int]]:
    """The program as gas text, optionally with region markers; and, per output line, the
    statement index it came from (-1 for a marker)."""
    before: dict[int, list[str]] = {}
    if marks:
        for i, r in enumerate(regs):
            before.setdefault(r.end, []).append(_MARK.format(i, "end"))
        for i, r in enumerate(regs):  # at one index, the previous region ends first
            before.setdefault(r.start, []).append(_MARK.format(i, "start"))
    lines: list[str] = []
    origin: list[int] = []
    for k, s in enumerate(program.statements):
        for m in before.get(k, ()):
            lines.append(f"{m}:")
            origin.append(-1)
        lines.append(format_statement(s))
        origin.append(k)
    for m in before.get(len(program.statements), ()):
        lines.append(f"{m}:")
        origin.append(-1)
    return "".join(line + "\n" for line in lines), origin


_GAS_ERROR = re.compile(r"^[^:]*:(?:(\d+):)? Error: (.*)$", re.M)


def _assemble(gas: str, text: str, obj: str, program: Program, origin: list[int]) -> None:
    try:
        run = subprocess.run([gas, "-x", "-o", obj, "-"], input=text, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Fallback(f"{GAS} could not be run ({exc})") from None
    if run.returncode == 0:
        return
    m = _GAS_ERROR.search(run.stderr)
    if m is None:
        first = run.stderr.strip().splitlines()[:1]
        raise _Fallback(f"{GAS} failed ({first[0] if first else f'status {run.returncode}'})")
    where = ""
    line = int(m.group(1) or 0)
    if 1 <= line <= len(origin) and origin[line - 1] >= 0:
        where = f" at {program.statements[origin[line - 1]].loc.use_site}"
    raise _Fallback(f"{GAS} rejected the program{where}: {m.group(2)}")


def _contents(objdump: str, obj: str) -> str:
    run = subprocess.run([objdump, "-s", obj], capture_output=True, text=True)
    if run.returncode != 0:
        raise _Fallback(f"{OBJDUMP} failed on the object file")
    return run.stdout.split("\n", 2)[-1]  # without the file-name header


def _symbols(nm: str, obj: str) -> dict[str, int]:
    run = subprocess.run([nm, obj], capture_output=True, text=True)
    if run.returncode != 0:
        raise _Fallback(f"{NM} failed on the object file")
    out = {}
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("__ivtx_size_"):
            out[parts[2]] = int(parts[0], 16)
    return out


def _measure(program: Program, regs: list[Region], gas: str, nm: str, objdump: str) -> list[int]:
    plain, plain_origin = _printed(program, regs, marks=False)
    marked, marked_origin = _printed(program, regs, marks=True)
    with tempfile.TemporaryDirectory(prefix="ivtx-sizes-") as tmp:
        a, b = os.path.join(tmp, "plain.o"), os.path.join(tmp, "marked.o")
        _assemble(gas, plain, a, program, plain_origin)
        _assemble(gas, marked, b, program, marked_origin)
        if _contents(objdump, a) != _contents(objdump, b):
            raise _Fallback("region markers changed the object code")
        syms = _symbols(nm, b)
    out = []
    for i, r in enumerate(regs):
        start, end = syms.get(_MARK.format(i, "start")), syms.get(_MARK.format(i, "end"))
        if start is None or end is None or end < start:
            raise _Fallback(f"no size for region {r.name} in the object file")
        out.append(end - start)
    return out
