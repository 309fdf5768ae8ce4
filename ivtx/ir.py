"""The IR: statements of IA-64 GNU as source with coordinates, and operands in one canonical spelling.

Registers are strings in canonical form (primer section 1):
  r0..r127, f0..f127, p0..p63, b0..b7, ar.k0..ar.k7 / ar.rsc / ar.bsp / ... / ar.N (no name),
  cr.dcr / cr.ifa / ... / cr.N (no name), psr, psr.l, psr.um, pr, pr.rot, ip.
Aliases are resolved by the parser: sp->r12, gp->r1, rp->b0, in0/loc0/out0 through `alloc`.
Banked GRs (r16-r31) carry no bank here: which bank a name means depends on psr.bn along
a path, which is the analysis' business (see cfg/liveness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .diag import Loc

# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Num:
    value: int
    text: str | None = None  # as written ("0x400"), for printing

    def __str__(self) -> str:
        return self.text if self.text is not None else str(self.value)


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbol: `ia64_ivt`, `.` (here), `psr.ic` (gas predefined PSR bit masks), `1f` / `1b`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # '-', '~', '!', '+'
    arg: "Expr"

    def __str__(self) -> str:
        return f"{self.op}{_paren(self.arg)}"


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / % << >> & | ^ && || == != < > <= >=
    left: "Expr"
    right: "Expr"

    def __str__(self) -> str:
        return f"{_paren(self.left)}{self.op}{_paren(self.right)}"


@dataclass(frozen=True, slots=True)
class Reloc:
    """A relocation operator: `@gprel(sym)`, `@ltoff(sym)`, `@pcrel(x)`, `@secrel(x)` ..."""

    op: str  # without '@'
    arg: "Expr"

    def __str__(self) -> str:
        return f"@{self.op}({self.arg})"


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal, kept with its quotes' content unescaped in `value` and as written in `text`."""

    value: str
    text: str

    def __str__(self) -> str:
        return self.text


Expr = Union[Num, Sym, Unary, Binary, Reloc]


def _paren(e: "Expr") -> str:
    return f"({e})" if isinstance(e, Binary) else str(e)


# --------------------------------------------------------------------------- operands


@dataclass(frozen=True, slots=True)
class Reg:
    name: str  # canonical: "r16", "p6", "b0", "ar.k7", "cr.ifa", "psr.l", "pr"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class RegIndex:
    """An indirect register file access: `rr[r16]`, `itr[r20]`, `cpuid[r3]`, `pmd[r2]`."""

    file: str  # rr pkr dbr ibr pmc pmd cpuid itr dtr msr
    index: Reg

    def __str__(self) -> str:
        return f"{self.file}[{self.index}]"


@dataclass(frozen=True, slots=True)
class Mem:
    """A memory operand `[r17]`. A post-increment is the instruction's next source operand."""

    base: Reg

    def __str__(self) -> str:
        return f"[{self.base}]"


@dataclass(frozen=True, slots=True)
class Imm:
    """An immediate or address expression, with its value when it folds to a constant."""

    expr: Expr
    value: int | None = None

    def __str__(self) -> str:
        return str(self.expr)


Operand = Union[Reg, RegIndex, Mem, Imm]

# --------------------------------------------------------------------------- statements


@dataclass(slots=True)
class Label:
    """`name:` or a numeric local label `1:` (local=True). A tag `[1:]` lives on the Instruction."""

    name: str
    loc: Loc
    local: bool = False


@dataclass(slots=True)
class Instruction:
    """`[tag:] (qp) mnemonic.completers dests = srcs`.

    `mnemonic` is the whole lower-case mnemonic with completers ("cmp.eq.unc", "br.sptk.many",
    "ld8.s"); `qp` is None when no predicate was written. `dests` are the operands left of
    `=`; an instruction without `=` has only `srcs` (`itc.d r18`, `st8 [r2]=r3` puts [r2] in
    dests, matching gas' operand order).
    """

    mnemonic: str
    dests: tuple[Operand, ...]
    srcs: tuple[Operand, ...]
    loc: Loc
    qp: str | None = None
    tag: str | None = None

    @property
    def op(self) -> str:
        return self.mnemonic.split(".", 1)[0]

    @property
    def completers(self) -> tuple[str, ...]:
        return tuple(self.mnemonic.split(".")[1:])

    @property
    def pred(self) -> str:
        return self.qp or "p0"


@dataclass(slots=True)
class PvCall:
    """A Linux pv_ops assembler macro use with no definition in scope: `ITC_D(p7, r24, r25)`, `RFI`.

    `args` are the operands as written (registers canonicalised); `parens` says whether the
    call was written with parentheses (`RSM_PSR_DT` is not).
    """

    name: str
    args: tuple[Operand, ...]
    loc: Loc
    parens: bool = True


@dataclass(slots=True)
class Stop:
    """`;;`: the end of an instruction group."""

    loc: Loc


@dataclass(slots=True)
class BundleBegin:
    """`{ .mii` — an explicit bundle; `template` is e.g. "mii", "mlx", or None for a bare `{`."""

    template: str | None
    loc: Loc


@dataclass(slots=True)
class BundleEnd:
    loc: Loc


@dataclass(slots=True)
class Directive:
    """`.name args`: args are expressions, registers or strings, as written."""

    name: str  # with the leading dot: ".org", ".pred.rel"
    args: tuple[Union[Operand, Str, Expr], ...]
    loc: Loc


Statement = Union[Label, Instruction, PvCall, Stop, BundleBegin, BundleEnd, Directive]


@dataclass
class Program:
    """A parsed file: its statements in source order, plus what parsing learned on the way."""

    path: str
    statements: list[Statement] = field(default_factory=list)
    warnings: list = field(default_factory=list)  # list[Diagnostic]

    def instructions(self):
        return (s for s in self.statements if isinstance(s, Instruction))
