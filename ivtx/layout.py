"""The vector layout: which statements belong to which IVT entry, with slot sizes (primer section 3).

An IVT is a label in a code section followed by `.org LABEL+OFFSET` directives. Entries 0-19
are 0x400 bytes at n*0x400; entries 20-67 are 0x100 bytes at 0x5000+(n-20)*0x100.
Every other stretch of code (helpers outside the table, other sections) is a region too,
without a vector number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .diag import IvtxError
from .ir import Binary, Directive, Imm, Instruction, Label, Num, Program, PvCall, Reg, Sym, Unary
from .regs import kind_of

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


SECTION_DIRECTIVES = {".section", ".pushsection", ".popsection", ".previous", ".text", ".data", ".bss"}


class SectionTracker:
    """The section in force through `.section`/`.pushsection`/`.popsection`/`.previous`/
    `.text`/`.data`/`.bss`, as gas keeps it (a current, a previous and a push stack)."""

    def __init__(self, start: str = ".text"):
        self.section = start
        self.previous = start
        self.stack: list[str] = []

    def switch(self, d: Directive) -> str | None:
        """Apply `d`; the new section when it switches sections, else None."""
        name = d.name
        if name not in SECTION_DIRECTIVES:
            return None
        if name in (".section", ".pushsection"):
            new = str(getattr(d.args[0], "expr", d.args[0])) if d.args else self.section
            if name == ".pushsection":
                self.stack.append(self.section)
        elif name == ".previous":
            new = self.previous
        elif name == ".popsection":
            new = self.stack.pop() if self.stack else self.section
        else:
            new = name
        self.previous, self.section = self.section, new
        return new


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


def _org_target(d: Directive, labels: set[str], known: frozenset[str] | set[str] = frozenset()) -> tuple[str, int] | None:
    """`.org TABLE+OFF` -> (TABLE, OFF) when TABLE is a label of this file and OFF folds."""
    if not d.args:
        raise IvtxError(".org needs an expression", d.loc)
    e = d.args[0]
    e = getattr(e, "expr", e)
    for name in _symbols(e):
        if name not in labels and name not in known and name != "." and not _is_local_ref(name):
            raise IvtxError(f"'.org' expression uses '{name}', which is not a label of this file "
                            "(gas would place the code at an unknown address)", d.loc)
    value = _fold(e)
    if value is not None and value < 0:
        raise IvtxError(f"'.org' to a negative offset ({value})", d.loc)
    if isinstance(e, Binary) and e.op == "+" and isinstance(e.left, Sym) and e.left.name in labels:
        off = _fold(e.right)
        if off is not None:
            return e.left.name, off
    if isinstance(e, Sym) and e.name in labels:
        return e.name, 0
    return None


def _assigned(d: Directive) -> str | None:
    """The symbol `.set NAME, value` / `NAME = value` defines."""
    e = getattr(d.args[0], "expr", d.args[0])
    return e.name if isinstance(e, Sym) else None


def _symbols(e):
    if isinstance(e, Sym):
        yield e.name
    elif isinstance(e, Binary):
        yield from _symbols(e.left)
        yield from _symbols(e.right)
    elif hasattr(e, "arg"):
        yield from _symbols(e.arg)


def _is_local_ref(name: str) -> bool:
    return name[:-1].isdigit() and name[-1:] in ("f", "b")


def _fold(e) -> int | None:
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Binary):
        a, b = _fold(e.left), _fold(e.right)
        if a is None or b is None:
            return None
        ops = {"+": a + b, "-": a - b, "*": a * b, "|": a | b, "&": a & b, "<<": a << b if 0 <= b < 64 else None}
        return ops.get(e.op)
    if isinstance(e, Unary):
        a = _fold(e.arg)
        return None if a is None else {"-": -a, "+": a, "~": ~a}.get(e.op)
    return getattr(e, "value", None) if not isinstance(e, Sym) else None


def regions(program: Program) -> list[Region]:
    """Split a program into regions: one per `.org` of a vector table, one per other code run."""
    stmts = program.statements
    labels = {s.name for s in stmts if isinstance(s, Label) and not s.local}
    known = labels | {_assigned(s) for s in stmts if isinstance(s, Directive) and s.name in (".set", ".equ", "=") and s.args}
    # tables: labels that `.org LABEL+OFF` directives are relative to. Code between the
    # table label and the first `.org` is entry 0 (Linux writes no `.org ia64_ivt+0`).
    tables = set()
    for s in stmts:
        if isinstance(s, Directive) and s.name == ".org" and s.args:
            t = _org_target(s, labels, known)
            if t is not None:
                tables.add(t[0])
    out: list[Region] = []
    sections = SectionTracker()
    section = sections.section
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
            new_section = sections.switch(s)
            if new_section is not None:
                close(i)
                section = new_section
                cur = Region(section, section, i + 1, i + 1)
                continue
            if name == ".org":
                target = _org_target(s, labels, known)
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


# --------------------------------------------------------------------------- bundling model

# Bundle templates (primer section 4): the unit of each slot and the stop inside the bundle
# (after slot k), if any.  Every template also exists with a stop at its end.
_TEMPLATES = (("mii", None), ("mii", 1), ("mlx", None), ("mmi", None), ("mmi", 0), ("mfi", None),
              ("mmf", None), ("mib", None), ("mbb", None), ("bbb", None), ("mmb", None), ("mfb", None))
_SLOT_FITS = {"A": "mi", "M": "m", "I": "i", "B": "b", "F": "f", "L": "l"}
_B_OPS = {"br", "brp", "cover", "clrrrb", "rfi", "bsw", "epc", "vmsw"}
_I_OPS = {"dep", "extr", "shl", "shr", "shrp", "tbit", "tnat", "tf", "czx1", "czx2", "mix1", "mix2", "mix4",
          "unpack1", "unpack2", "unpack4", "pack2", "pack4", "pmax1", "pmin1", "pmax2", "pmin2", "pmpy2",
          "pmpyshr2", "pshl2", "pshl4", "pshr2", "pshr4", "psad1", "popcnt", "mux1", "mux2", "mpy4",
          "mpyshl4", "clz", "sxt1", "sxt2", "sxt4", "zxt1", "zxt2", "zxt4"}
_A_OPS = {"add", "sub", "and", "andcm", "or", "xor", "adds", "addl", "addp4", "shladd", "shladdp4", "cmp",
          "cmp4", "padd1", "padd2", "padd4", "psub1", "psub2", "psub4", "pavg1", "pavg2", "pavgsub1",
          "pavgsub2", "pcmp1", "pcmp2", "pcmp4", "pshladd2", "pshradd2"}
_M_NOT_F = {"fc", "fetchadd4", "fetchadd8", "fwb", "flushrs"}
_I_ARS = {"ar.pfs", "ar.lc", "ar.ec"}
# gas ends the instruction group right after these (the stop directly follows their slot) ...
_ENDS_GROUP = {"bsw", "cover", "rfi", "clrrrb", "itc"}
_ENDS_GROUP_MNEMONICS = {"ptc.g", "ptc.ga"}
# ... and starts one right before these
_STARTS_GROUP = {"alloc", "flushrs", "loadrs"}


def slot_unit(s: Instruction) -> str:
    """The execution unit an instruction needs: A (an M or I slot), M, I, B, F, or L (the L+X
    slots of an MLX bundle), from the SDM's instruction formats.

    >>> slot_unit(Instruction("mov", (Reg("r16"),), (Reg("pr"),), None))
    'I'
    """
    op, comp = s.op, s.completers
    if op in ("nop", "break", "hint"):
        return {"m": "M", "i": "I", "b": "B", "f": "F", "x": "L"}.get(comp[0] if comp else "", "A")
    if op in ("movl", "brl"):
        return "L"
    if op in _B_OPS:
        return "B"
    if op in _I_OPS:
        return "I"
    if op in _A_OPS:
        return "A"
    if op == "chk":
        return "M" if "a" in comp or "m" in comp else "I" if "i" in comp else "A"
    if op in ("xma", "xmpy") or (op[0] == "f" and op not in _M_NOT_F):
        return "F"
    if op == "mov":
        if "m" in comp or "i" in comp:
            return "M" if "m" in comp else "I"
        names = [x.name for x in s.dests + s.srcs if isinstance(x, Reg)]
        if any(n in _I_ARS for n in names):
            return "I"
        kinds = {kind_of(n) for n in names}
        indexed = any(not isinstance(x, (Reg, Imm)) for x in s.dests + s.srcs)  # rr[r3], cpuid[r3] ...
        if kinds & {"ar", "cr"} or any(n.startswith("psr") for n in names) or indexed:
            return "M"
        if "br" in kinds or any(n in ("pr", "pr.rot", "ip") for n in names):
            return "I"
        if "fr" in kinds:
            return "F"
        return "A"
    return "M"  # loads, stores, semaphores, system instructions (rsm, itc, srlz, alloc ...)


def _fits(items: list[tuple[str, bool, bool]]) -> bool:
    """Whether instructions (unit, stop before it, must end its group) go into one bundle in
    order, with stops exactly where asked: a stop before the first one goes at the end of
    the previous bundle, and one after a group-ending instruction directly follows its slot."""
    return any(_place(items, slots, mid, 0, 0) for slots, mid in _TEMPLATES)


def _place(items, slots: str, mid, i: int, free: int) -> bool:
    """Put items[i:] into slots[free:] of a template whose mid-bundle stop follows slot `mid`."""
    if i == len(items):
        last_end = free
        return mid is None or mid < last_end - 1 or (mid == last_end - 1 and items[-1][2])
    unit, stop, ends_group = items[i]
    for k in range(free, 3):
        if unit == "L":
            if slots[k] != "l":
                continue
            end = k + 2
        elif slots[k] in _SLOT_FITS[unit]:
            end = k + 1
        else:
            continue
        stop_here = mid is not None and (free - 1 if i else -1) <= mid < k
        if stop_here != (stop and i > 0):
            continue  # a stop only where asked, and none in front of the bundle's first one
        if ends_group and not (end == 3 or mid == end - 1):
            continue
        if _place(items, slots, mid, i + 1, end):
            return True
    return False


def estimate_bytes(stmts) -> int:
    """Bytes of code a run of statements needs, estimated without the assembler.

    A model of how gas bundles (primer section 4): instructions stay in order, each in a slot
    of its unit (ivtx.layout.slot_unit) in one of the twelve templates, a `;;` either ends the
    bundle or is a template's mid-bundle stop (M;;MI, MI;;I), a label starts a new bundle,
    `bsw`, `cover`, `rfi`, `itc`, `ptc.g` end their group (the stop right after their slot)
    and `alloc`, `flushrs`, `loadrs` start one, an explicit `{ }` is one bundle, and a pv-op
    call gets a bundle for each instruction of its native text.  `.align N` pads (regions
    start aligned); data among the code counts with its alignment.  tests/test_layout.py
    checks it against the object file for every sample region (it is exact on all of them);
    the exact size comes from ivtx.sizes."""
    from .ir import BundleBegin, BundleEnd, Stop

    size = 0  # bytes before the open bundle
    items: list[tuple[str, bool, bool]] = []  # the open bundle
    stop_next = False
    explicit = False

    def close():
        nonlocal size, items
        if items:
            size += 16
        items = []

    for s in stmts:
        if isinstance(s, BundleBegin):
            close()
            explicit = True
        elif isinstance(s, BundleEnd):
            size += 16
            explicit = False
            stop_next = False
        elif explicit:
            continue
        elif isinstance(s, Label):
            close()
        elif isinstance(s, Stop):
            stop_next = True
        elif isinstance(s, PvCall):
            close()
            size += 16 * _native_count(s.name)
            stop_next = False
        elif isinstance(s, Instruction):
            unit = slot_unit(s)
            stop = stop_next or s.op in _STARTS_GROUP
            ends = s.op in _ENDS_GROUP or s.mnemonic in _ENDS_GROUP_MNEMONICS
            stop_next = ends
            if items and _fits(items + [(unit, stop, ends)]):
                items.append((unit, stop, ends))
            else:
                close()
                items = [(unit, False, ends)]
        elif isinstance(s, Directive) and s.name in (".align", ".balign") and s.args:
            close()
            n = _fold(getattr(s.args[0], "expr", s.args[0]))
            if n and n > 0 and n & (n - 1) == 0:
                size = (size + n - 1) // n * n
        elif isinstance(s, Directive) and _data_bytes(s):
            close()  # data among the code: its bytes, then the next bundle starts 16-aligned
            size = (size + _data_bytes(s) + 15) // 16 * 16
    close()
    return size


_DATA_WIDTH = {".byte": 1, ".short": 2, ".word": 2, ".long": 4, ".int": 4, ".quad": 8}
_DATA_WIDTH.update({f"data{n}{ua}": n for n in (1, 2, 4, 8, 16) for ua in ("", ".ua")})


def _data_bytes(d: Directive) -> int:
    """An upper bound of the bytes a data directive puts here (alignment padding included)."""
    width = _DATA_WIDTH.get(d.name)
    if width is not None:
        return len(d.args) * width + width - 1
    if d.name in (".skip", ".space") and d.args:
        n = _fold(getattr(d.args[0], "expr", d.args[0]))
        return max(n or 0, 0)
    if d.name in (".ascii", ".asciz", ".string", "string", "stringz"):
        return sum(len(getattr(a, "value", "")) + 1 for a in d.args)
    return 0


def _native_count(name: str) -> int:
    """Instructions in a pv op's native text (each gets a bundle: an upper bound)."""
    from .pvcatalog import default_catalog

    op = default_catalog().get(name)
    if op is None:
        return 1
    return max(1, sum(1 for part in op.native.split(";") if part.strip()))
