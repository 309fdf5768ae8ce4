"""The vector layout: which statements belong to which IVT entry, with slot sizes (primer section 3).

An IVT is a label in a code section followed by `.org LABEL+OFFSET` directives. Entries 0-19
are 0x400 bytes at n*0x400; entries 20-67 are 0x100 bytes at 0x5000+(n-20)*0x100.
Every other stretch of code (helpers outside the table, other sections) is a region too,
without a vector number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .diag import IvtxError
from .ir import Binary, Directive, Instruction, Label, Num, Program, PvCall, Sym

BIG_SLOT = 0x400
SMALL_SLOT = 0x100
SMALL_BASE = 0x5000
IVT_SIZE = 0x8000


def vector_of_offset(offset: int) -> tuple[int, int] | None:
    """(entry number, slot size) of an IVT offset, or None when it is not an entry's start.

    >>> vector_of_offset(0x1400), vector_of_offset(0x5400)
    ((5, 1024), (21, 256))
    """
    if 0 <= offset < SMALL_BASE and offset % BIG_SLOT == 0:
        return offset // BIG_SLOT, BIG_SLOT
    if SMALL_BASE <= offset < IVT_SIZE and (offset - SMALL_BASE) % SMALL_SLOT == 0:
        return 20 + (offset - SMALL_BASE) // SMALL_SLOT, SMALL_SLOT
    return None


@dataclass
class Region:
    """A stretch of statements [start, end) of one section: an IVT entry or other code."""

    name: str  # the entry label (first global label), or the section for code outside a table
    section: str
    start: int  # statement indices
    end: int
    vector: int | None = None
    offset: int | None = None  # from the table label
    slot: int | None = None  # bytes available
    table: str | None = None
    labels: list[str] = field(default_factory=list)  # non-local labels defined inside

    @property
    def is_vector(self) -> bool:
        return self.vector is not None

    def describe(self) -> str:
        if self.vector is None:
            return f"{self.name} ({self.section})"
        return f"{self.name} (entry {self.vector}, {self.table}+{self.offset:#06x}, slot {self.slot:#x})"


def _org_target(d: Directive, labels: set[str]) -> tuple[str, int] | None:
    """`.org TABLE+OFF` -> (TABLE, OFF) when TABLE is a label of this file and OFF folds."""
    if not d.args:
        raise IvtxError(".org needs an expression", d.loc)
    e = d.args[0]
    e = getattr(e, "expr", e)
    if isinstance(e, Binary) and e.op == "+" and isinstance(e.left, Sym) and e.left.name in labels:
        off = _fold(e.right)
        if off is not None:
            return e.left.name, off
    if isinstance(e, Sym) and e.name in labels:
        return e.name, 0
    return None


def _fold(e) -> int | None:
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Binary):
        a, b = _fold(e.left), _fold(e.right)
        if a is None or b is None:
            return None
        ops = {"+": a + b, "-": a - b, "*": a * b, "|": a | b, "&": a & b, "<<": a << b if b < 64 else None}
        return ops.get(e.op)
    return getattr(e, "value", None) if not isinstance(e, Sym) else None


def regions(program: Program) -> list[Region]:
    """Split a program into regions: one per `.org` of a vector table, one per other code run."""
    stmts = program.statements
    labels = {s.name for s in stmts if isinstance(s, Label) and not s.local}
    # tables: labels that `.org LABEL+OFF` directives are relative to. Code between the
    # table label and the first `.org` is entry 0 (Linux writes no `.org ia64_ivt+0`).
    tables = set()
    for s in stmts:
        if isinstance(s, Directive) and s.name == ".org" and s.args:
            t = _org_target(s, labels)
            if t is not None:
                tables.add(t[0])
    out: list[Region] = []
    section = ".text"
    stack: list[str] = []
    previous = ".text"
    cur: Region | None = None

    def close(i: int) -> None:
        nonlocal cur
        if cur is not None:
            cur.end = i
            if cur.is_vector or _has_code(stmts, cur.start, cur.end):
                out.append(cur)
        cur = None

    for i, s in enumerate(stmts):
        if isinstance(s, Directive):
            name = s.name
            new_section = None
            if name in (".section", ".pushsection"):
                new_section = str(getattr(s.args[0], "expr", s.args[0])) if s.args else section
                if name == ".pushsection":
                    stack.append(section)
            elif name in (".text", ".data", ".bss"):
                new_section = name
            elif name == ".previous":
                new_section = previous
            elif name == ".popsection":
                new_section = stack.pop() if stack else section
            if new_section is not None:
                close(i)
                previous, section = section, new_section
                cur = Region(section, section, i + 1, i + 1)
                continue
            if name == ".org":
                target = _org_target(s, labels)
                close(i)
                if target is not None:
                    table, off = target
                    vec = vector_of_offset(off)
                    if vec is not None:
                        cur = Region(f"{table}+{off:#06x}", section, i + 1, i + 1, vector=vec[0],
                                     offset=off, slot=vec[1], table=table)
                        continue
                cur = Region(section, section, i + 1, i + 1)
                continue
        if cur is None:
            cur = Region(section, section, i, i)
        if isinstance(s, Label) and not s.local and s.name in tables:
            close(i)
            cur = Region(f"{s.name}+0x0000", section, i + 1, i + 1, vector=0, offset=0, slot=BIG_SLOT, table=s.name)
            continue
        if isinstance(s, Label) and not s.local:
            if not cur.labels:
                cur.name = s.name  # the entry label names the region
            cur.labels.append(s.name)
    close(len(stmts))
    return out


def _has_code(stmts, start: int, end: int) -> bool:
    return any(isinstance(s, (Instruction, PvCall)) for s in stmts[start:end])


def region_of_index(regs: list[Region], index: int) -> Region | None:
    for r in regs:
        if r.start <= index < r.end:
            return r
    return None


def estimate_bytes(stmts) -> int:
    """Bytes of code a run of statements needs, estimated without the assembler.

    Greedy bundling: three slots a bundle (movl/brl take two), a label starts a new bundle,
    an explicit `{ }` is one bundle, a stop may sit inside a bundle once (M;;MI / MI;;I),
    `.align N` pads. gas may add nops for unit constraints the estimate ignores; the exact
    size comes from the object file (verify)."""
    from .ir import BundleBegin, BundleEnd, Stop

    size = 0  # bytes of closed bundles
    used = 0  # slots used in the open bundle
    stops = 0
    explicit = False

    def close():
        nonlocal size, used, stops
        if used:
            size += 16
        used = 0
        stops = 0

    for s in stmts:
        if isinstance(s, BundleBegin):
            close()
            explicit = True
        elif isinstance(s, BundleEnd):
            used = max(used, 1)
            close()
            explicit = False
        elif explicit:
            continue
        elif isinstance(s, Label):
            close()
        elif isinstance(s, Stop):
            if used in (1, 2) and stops == 0:
                stops = 1
            elif used:
                close()
        elif isinstance(s, (Instruction, PvCall)):
            width = 2 if isinstance(s, Instruction) and s.op in ("movl", "brl") else 1
            if isinstance(s, PvCall):
                width = 1
            if used + width > 3:
                close()
            used += width
            if used == 3:
                close()
        elif isinstance(s, Directive) and s.name == ".align" and s.args:
            close()
            n = _fold(getattr(s.args[0], "expr", s.args[0]))
            if n and n > 0 and n & (n - 1) == 0:
                size = (size + n - 1) // n * n
    close()
    return size
