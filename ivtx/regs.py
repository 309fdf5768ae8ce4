"""IA-64 register names: one canonical spelling per register (primer section 1), aliases, PSR bit masks.

Canonical forms (see ivtx.ir): r0..r127, f0..f127, p0..p63, b0..b7, ar.<name> or ar.N for an
unnamed AR, cr.<name> or cr.N, psr, psr.l, psr.um, pr, pr.rot, ip.  GNU as spells an unnamed
AR `arN` (it reads `ar.5` as a symbol), so `gas_name()` gives the spelling to print.

Numbered names (r16, f6, p6, b0, ar36, cr20) are lower-case only, as in GNU as, which reads
`R16` as a symbol; the named ones (sp, ar.pfs, cr.ifa, pr, psr.l) are case-insensitive.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------- files and sizes

GR_COUNT, FR_COUNT, PR_COUNT, BR_COUNT = 128, 128, 64, 8
AR_COUNT, CR_COUNT = 128, 128

# Application registers by number (SDM vol 1 section 3.1.8; names as GNU as spells them).
AR_NAMES: dict[int, str] = {
    0: "k0", 1: "k1", 2: "k2", 3: "k3", 4: "k4", 5: "k5", 6: "k6", 7: "k7",
    16: "rsc", 17: "bsp", 18: "bspstore", 19: "rnat",
    21: "fcr", 24: "eflag", 25: "csd", 26: "ssd", 27: "cflg", 28: "fsr", 29: "fir", 30: "fdr",
    32: "ccv", 36: "unat", 40: "fpsr", 44: "itc", 45: "ruc",
    64: "pfs", 65: "lc", 66: "ec",
}

# Control registers by number (SDM vol 2 section 3.3).
CR_NAMES: dict[int, str] = {
    0: "dcr", 1: "itm", 2: "iva", 8: "pta",
    16: "ipsr", 17: "isr", 19: "iip", 20: "ifa", 21: "itir", 22: "iipa", 23: "ifs",
    24: "iim", 25: "iha", 26: "iib0", 27: "iib1",
    64: "lid", 65: "ivr", 66: "tpr", 67: "eoi", 68: "irr0", 69: "irr1", 70: "irr2", 71: "irr3",
    72: "itv", 73: "pmv", 74: "cmcv", 80: "lrr0", 81: "lrr1",
}

AR_NUMBERS = {name: num for num, name in AR_NAMES.items()}
CR_NUMBERS = {name: num for num, name in CR_NAMES.items()}

# Indirect register files, written `file[rX]`.
INDIRECT_FILES = frozenset({"rr", "pkr", "dbr", "ibr", "pmc", "pmd", "cpuid", "itr", "dtr", "msr"})

# Whole-register names that are not in a numbered file.
SPECIAL = frozenset({"psr", "psr.l", "psr.um", "pr", "pr.rot", "ip"})

# Fixed aliases (GNU as, "IA-64 Registers"): the software conventions' names.
ALIASES: dict[str, str] = {"sp": "r12", "gp": "r1", "tp": "r13", "rp": "b0"}
ALIASES.update({f"ret{i}": f"r{8 + i}" for i in range(4)})
ALIASES.update({f"farg{i}": f"f{8 + i}" for i in range(8)})
ALIASES.update({f"fret{i}": f"f{8 + i}" for i in range(8)})

# PSR bit masks GNU as predefines (`rsm psr.dt|psr.i`): name -> bit (SDM vol 2 table 3-2).
# Multi-bit fields (cpl, ri) and vm/ia are not predefined by gas and stay plain symbols.
PSR_BITS: dict[str, int] = {
    "be": 1, "up": 2, "ac": 3, "mfl": 4, "mfh": 5, "ic": 13, "i": 14, "pk": 15,
    "dt": 17, "dfl": 18, "dfh": 19, "sp": 20, "pp": 21, "di": 22, "si": 23, "db": 24,
    "lp": 25, "tb": 26, "rt": 27, "is": 34, "mc": 35, "it": 36, "id": 37, "da": 38,
    "dd": 39, "ss": 40, "ed": 43, "bn": 44,
}

STACKED_KINDS = ("in", "loc", "out")
STACKED_MAX = 96  # in0..in95, loc0..loc95, out0..out95

_NUMBERED = re.compile(r"(r|f|p|b|ar|cr)(\d+)\Z")
_STACKED = re.compile(r"(in|loc|out)(\d+)\Z", re.IGNORECASE)
_LIMITS = {"r": GR_COUNT, "f": FR_COUNT, "p": PR_COUNT, "b": BR_COUNT, "ar": AR_COUNT, "cr": CR_COUNT}
_KIND = {"r": "general", "f": "floating-point", "p": "predicate", "b": "branch",
         "ar": "application", "cr": "control"}


class RegisterError(ValueError):
    """A name that looks like a register but is not one (r128, p64, ar.5, in3 beyond the frame)."""


def psr_mask(name: str) -> int | None:
    """`psr.ic` -> 1 << 13; None when gas does not predefine the name."""
    low = name.lower()
    if low.startswith("psr."):
        bit = PSR_BITS.get(low[4:])
        if bit is not None:
            return 1 << bit
    return None


def numbered(kind: str, n: int) -> str:
    """Canonical name of register `n` of file `kind` ("r", "f", "p", "b", "ar", "cr")."""
    if kind == "ar":
        return f"ar.{AR_NAMES[n]}" if n in AR_NAMES else f"ar.{n}"
    if kind == "cr":
        return f"cr.{CR_NAMES[n]}" if n in CR_NAMES else f"cr.{n}"
    return f"{kind}{n}"


def canonical(name: str) -> str | None:
    """The canonical name of register `name`, or None if `name` is not a register name.

    Raises RegisterError for names gas would take as symbols but that are surely meant as
    registers: `r128`, `p64`, `b8`, `ar.5` (gas spells it `ar5`), `cr.99`.
    Stacked names (in0/loc0/out0) are not resolved here: see `Frame`.

    >>> canonical("sp"), canonical("ar36"), canonical("AR.PFS"), canonical("cr20")
    ('r12', 'ar.unat', 'ar.pfs', 'cr.ifa')
    """
    m = _NUMBERED.match(name)
    if m:
        kind, digits = m.group(1), m.group(2)
        n = int(digits)
        if n >= _LIMITS[kind]:
            top = _LIMITS[kind] - 1
            raise RegisterError(f"register '{name}' out of range ({_KIND[kind]} registers are {kind}0-{kind}{top})")
        return numbered(kind, n)
    low = name.lower()
    if low in ALIASES:
        return ALIASES[low]
    if low in SPECIAL:
        return low
    head, dot, tail = low.partition(".")
    if dot and head in ("ar", "cr"):
        table = AR_NUMBERS if head == "ar" else CR_NUMBERS
        if tail in table:
            return f"{head}.{tail}"
        if tail.isdigit():
            raise RegisterError(f"'{name}' is not a register to GNU as (it reads it as a symbol): write {head}{int(tail)}")
    return None


def gas_name(reg: str) -> str:
    """How to write canonical register `reg` for GNU as: `ar.5` -> `ar5`, others unchanged."""
    if reg[:3] in ("ar.", "cr.") and reg[3:].isdigit():
        return reg[:2] + reg[3:]
    return reg


_FILE_KINDS = {"r": "gr", "f": "fr", "p": "pr", "b": "br"}


def kind_of(reg: str) -> str:
    """Register file of a canonical name: 'gr', 'fr', 'pr', 'br', 'ar', 'cr', or 'special'
    for psr, psr.l, psr.um, pr (all predicates), pr.rot and ip."""
    if reg in SPECIAL:
        return "special"
    if reg.startswith("ar."):
        return "ar"
    if reg.startswith("cr."):
        return "cr"
    return _FILE_KINDS.get(reg[0], "special") if reg[1:].isdigit() else "special"


def is_stacked_name(name: str) -> bool:
    return _STACKED.match(name) is not None


class Frame:
    """The register-stack frame that gives `in0`/`loc0`/`out0` their meaning.

    Set by `alloc rX=ar.pfs,i,l,o,r` or `.regstk i,l,o,r`; as in GNU as it stays in force
    until the next one (inputs start at r32, locals follow, outputs follow the locals).

    >>> f = Frame(2, 3, 4); f.resolve("loc1"), f.resolve("out0")
    ('r35', 'r37')
    """

    __slots__ = ("ins", "locs", "outs")

    def __init__(self, ins: int, locs: int, outs: int):
        self.ins, self.locs, self.outs = ins, locs, outs

    def resolve(self, name: str) -> str:
        m = _STACKED.match(name)
        assert m is not None
        kind, n = m.group(1).lower(), int(m.group(2))
        size = {"in": self.ins, "loc": self.locs, "out": self.outs}[kind]
        base = {"in": 32, "loc": 32 + self.ins, "out": 32 + self.ins + self.locs}[kind]
        if n >= size:
            what = {"in": "input", "loc": "local", "out": "output"}[kind]
            raise RegisterError(f"'{name}' is beyond the frame's {size} {what} register{'s' if size != 1 else ''}")
        if base + n >= GR_COUNT:
            raise RegisterError(f"'{name}' is beyond r127")
        return f"r{base + n}"


def stacked_out_of_range(name: str) -> bool:
    m = _STACKED.match(name)
    return m is not None and int(m.group(2)) >= STACKED_MAX
