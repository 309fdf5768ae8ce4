"""Instruction effects: what each IA-64 instruction reads, must-writes and may-writes.

The ISA knowledge is data, ivtx/data/effects.txt (format in its header); this module loads
and validates it (unknown class, duplicate or orphan row = IvtxError at file:line) and
resolves a row against an `Instruction`'s operands.  Register names come from ivtx.regs.

Locations are strings: "r1".."r127" (NaT included; banks are the analysis' business),
"f2".."f127", "p1".."p63", "b0".."b7", "ar.<name>", "cr.<name>", "psr.<field>", and the
pseudo-locations the table declares ("cfm", "rse", "mem", "tlb", ...).  r0, f0, f1 and
p0 are never locations: reading them contributes nothing, writes to them are dropped.

Predication (primer section 5): under `(pN)`, pN != p0, the instruction reads pN and its
must-writes become may-writes, except the table's `always` column (unc compares write
both targets even when pN is false):

    (p7) cmp.eq p6,p8 = r16,r17      reads p7 r16 r17, may-writes p6 p8
    (p7) cmp.eq.unc p6,p8 = r16,r17  reads p7 r16 r17, must-writes p6 p8
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import product

from . import regs
from .diag import IvtxError, Loc
from .ir import Imm, Instruction, Mem, Reg, RegIndex

FLAGS = frozenset("""
    branch call return exit indirect loop trap check hint nop fence
    serialize_data serialize_instr starts_group ends_group unpredicated
    load store fill spill speculative advanced prefetch
    privileged sensitive needs_ic_off bank_switch bank:0 bank:1
""".split())

_FILE_CLASSES = frozenset({"r", "f", "p", "b", "imm", "[r]"})
_INDIRECT_CLASSES = frozenset(f"{f}[r]" for f in regs.INDIRECT_FILES)
_NOT_LOCATIONS = frozenset({"r0", "f0", "f1", "p0"})
_FILE_LIMITS = {"r": (1, 127), "f": (2, 127), "p": (1, 63), "b": (0, 7)}
_COLUMNS = ("reads", "writes", "always", "may")
_KEYS = ("match", *_COLUMNS, "flags")
_MNEMONIC = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]+)*$")
_REG_TOKEN = re.compile(r"([rfpb])(\d+)$")
_OP_REF = re.compile(r"([ds])([1-9])$")
_FUNC = re.compile(r"(psrbits|psrmask|prmask|file)\((.*)\)$")
_ALL_AR = frozenset(regs.numbered("ar", n) for n in range(regs.AR_COUNT))
_ALL_CR = frozenset(regs.numbered("cr", n) for n in range(regs.CR_COUNT))
_ALL_PREDICATES = frozenset(f"p{n}" for n in range(1, 64))
_ROTATING_PREDICATES = frozenset(f"p{n}" for n in range(16, 64))
_MEMO_LIMIT = 1 << 18


@dataclass(frozen=True, slots=True)
class Effects:
    """What one instruction does to the machine state, as sets of location strings."""

    reads: frozenset[str]
    must_writes: frozenset[str]
    may_writes: frozenset[str]
    flags: frozenset[str]
    form: str  # the table row's name

    @property
    def writes(self) -> frozenset[str]:
        return self.must_writes | self.may_writes

    @property
    def bank(self) -> int | None:
        """The bank a `bank_switch` instruction selects (bsw.0 -> 0), else None."""
        return 0 if "bank:0" in self.flags else 1 if "bank:1" in self.flags else None


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Shape:
    """Operand classes of one match line: `r = [r], imm`."""

    dests: tuple[str, ...]
    srcs: tuple[str, ...]

    def __str__(self) -> str:
        src = ", ".join(self.srcs)
        return f"{', '.join(self.dests)} = {src}" if self.dests else (src or "(no operands)")


@dataclass(slots=True)
class Match:
    pattern: str
    shape: Shape
    mnemonics: frozenset[str]
    line: int
    example: str | None  # operands to try with gas; None = make them up from the shape


@dataclass(slots=True)
class Column:
    """One effects column compiled: fixed locations plus operand-dependent parts."""

    fixed: frozenset[str] = frozenset()
    dynamic: tuple[tuple[str, str, int], ...] = ()  # (kind, side 'd'/'s', operand number)


@dataclass(slots=True)
class Form:
    name: str
    line: int
    matches: list[Match] = field(default_factory=list)
    reads: Column = field(default_factory=Column)
    writes: Column = field(default_factory=Column)
    always: Column = field(default_factory=Column)
    may: Column = field(default_factory=Column)
    flags: frozenset[str] = frozenset()


class Table:
    """A validated effects table (build it with `load_table`) and its lookup caches."""

    def __init__(self, name: str):
        self.name = name
        self.forms: list[Form] = []
        self.by_mnemonic: dict[str, list[tuple[Match, Form]]] = {}
        # PSR field -> (first bit, width, gas predefines psr.<name>)
        self.psr_fields = {n: (bit, 1, True) for n, bit in regs.PSR_BITS.items()}
        self.pseudo: dict[str, int] = {}  # name -> line
        self.completers: dict[str, tuple[list[str], int]] = {}
        self.regs: dict[str, tuple[frozenset[str], int]] = {}
        self._used: set[str] = set()
        self._rows: dict[tuple, tuple[Match, Form] | None] = {}
        self._memo: dict[tuple, Effects] = {}

    def known_mnemonic(self, mnemonic: str) -> bool:
        return mnemonic in self.by_mnemonic

    def psr_locs(self, lo: int, hi: int) -> frozenset[str]:
        """Every PSR field overlapping bits lo..hi: psr_locs(0, 23) = what rsm/ssm reach."""
        return frozenset(f"psr.{n}" for n, (bit, width, _) in self.psr_fields.items() if bit <= hi and bit + width > lo)

    def class_kinds(self, token: str) -> frozenset[str] | None:
        """Operand kinds (see `operand_kind`) a shape class accepts; None if unknown."""
        if token in _FILE_CLASSES or token in regs.SPECIAL or token in _INDIRECT_CLASSES:
            return frozenset({token})
        if token in ("ar", "cr"):
            return _ALL_AR if token == "ar" else _ALL_CR
        if token in self.regs:
            self._used.add(token)
            return self.regs[token][0]
        return frozenset({token}) if token in _ALL_AR or token in _ALL_CR else None

    def row_for(self, mnemonic: str, kinds: tuple[tuple[str, ...], tuple[str, ...]]):
        """The first (match, form) taking this mnemonic and these operand kinds, or None."""
        key = (mnemonic, kinds)
        if key not in self._rows:
            self._rows[key] = next(
                ((m, f) for m, f in self.by_mnemonic.get(mnemonic, ()) if self._fits(m.shape, kinds)), None
            )
        return self._rows[key]

    def _fits(self, shape: Shape, kinds: tuple[tuple[str, ...], tuple[str, ...]]) -> bool:
        dests, srcs = kinds
        if len(shape.dests) != len(dests) or len(shape.srcs) != len(srcs):
            return False
        return all(k in self.class_kinds(c) for c, k in zip(shape.dests + shape.srcs, dests + srcs))


def operand_kind(op) -> str:
    """The shape class of an operand: r f p b imm [r] rr[r] ..., or a register's own name."""
    t = type(op)
    if t is Reg:
        name = op.name
        return name[0] if name[0] in "rfpb" and name[1:].isdigit() else name
    if t is Imm:
        return "imm"
    if t is Mem:
        return "[r]"
    if t is RegIndex:
        return f"{op.file}[r]"
    raise TypeError(f"not an operand: {op!r}")


# --------------------------------------------------------------------------- API


def effects_of(insn: Instruction, table: Table | None = None) -> Effects:
    """The effects of one instruction; IvtxError at insn.loc when no row matches."""
    table = table or default_table()
    key = (insn.mnemonic, insn.dests, insn.srcs, insn.qp)
    hit = table._memo.get(key)
    if hit is not None:
        return hit
    kinds = (tuple(map(operand_kind, insn.dests)), tuple(map(operand_kind, insn.srcs)))
    row = table.row_for(insn.mnemonic, kinds)
    if row is None:
        raise IvtxError(_unknown_message(table, insn), insn.loc)
    effects = _resolve(table, row[1], insn)
    if len(table._memo) >= _MEMO_LIMIT:
        table._memo.clear()
    table._memo[key] = effects
    return effects


def known_mnemonic(mnemonic: str, table: Table | None = None) -> bool:
    """Whether any row accepts this mnemonic (completers included): for early parser errors."""
    return (table or default_table()).known_mnemonic(mnemonic)


@cache
def default_table() -> Table:
    text = resources.files("ivtx.data").joinpath("effects.txt").read_text(encoding="utf-8")
    return load_table(text, "ivtx/data/effects.txt")


def load_table(text: str, name: str) -> Table:
    """Parse and validate an effects table; every error carries Loc(name, line)."""
    table = Table(name)
    blocks: list[tuple[Form, dict[str, tuple[list[str], int]]]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        here, words = Loc(name, lineno), line.split()
        if not line[0].isspace():
            if words[0] == "form":
                blocks.append((_new_form(table, words, here), {}))
            else:
                _declaration(table, words, here)
            continue
        if not blocks or words[0] not in _KEYS:
            raise IvtxError(f"unexpected indented line (expected one of {', '.join(_KEYS)} in a form)", here)
        form, columns = blocks[-1]
        if words[0] == "match":
            form.matches.append(_match(table, form, line.strip()[len("match"):], here))
        elif words[0] in columns:
            raise IvtxError(f"form '{form.name}': '{words[0]}' given twice", here)
        else:
            columns[words[0]] = (words[1:], lineno)
    for form, columns in blocks:
        _finish_form(table, form, columns)
    _check_shadowing(table)
    _check_declarations(table)
    return table


# --------------------------------------------------------------------------- loading


def _new_form(table: Table, words: list[str], here: Loc) -> Form:
    if len(words) != 2:
        raise IvtxError("expected 'form NAME'", here)
    first = next((f for f in table.forms if f.name == words[1]), None)
    if first is not None:
        raise IvtxError(f"duplicate form '{words[1]}' (first at {table.name}:{first.line})", here)
    table.forms.append(Form(words[1], here.line))
    return table.forms[-1]


def _declaration(table: Table, words: list[str], here: Loc) -> None:
    head, args = words[0], words[1:]
    try:
        if head == "psrfield":
            width = int(args[2]) if len(args) > 2 else 1
            bit = int(args[1])
            if args[0] in table.psr_fields or not 0 <= bit < bit + width <= 64:
                raise IvtxError(f"duplicate or bad psr field '{args[0]}'", here)
            table.psr_fields[args[0]] = (bit, width, False)
        elif head == "pseudo" and len(args) == 1:
            if args[0] in table.pseudo:
                raise IvtxError(f"duplicate pseudo-location '{args[0]}'", here)
            table.pseudo[args[0]] = here.line
        elif head in ("completers", "regs") and len(args) >= 3 and args[1] == "=":
            store = table.completers if head == "completers" else table.regs
            if args[0] in store:
                raise IvtxError(f"duplicate {head} class '{args[0]}'", here)
            store[args[0]] = (args[2:] if head == "completers" else frozenset(args[2:]), here.line)
        else:
            raise IvtxError(f"unknown declaration '{' '.join(words)}'", here)
    except (IndexError, ValueError):
        raise IvtxError(f"malformed declaration '{' '.join(words)}'", here) from None


def _match(table: Table, form: Form, text: str, here: Loc) -> Match:
    """`match ld{1|2|4|8}[@ldhint]  r = [r], imm  e.g. r2 = [r3], 8`"""
    text, _, example = text.partition(" e.g. ")
    pattern, _, shape_text = text.strip().partition(" ")
    if not pattern:
        raise IvtxError(f"form '{form.name}': 'match' needs a pattern", here)
    mnemonics = _expand(table, pattern, here)
    for m in sorted(mnemonics):
        if not _MNEMONIC.match(m):
            raise IvtxError(f"form '{form.name}': pattern '{pattern}' spells a bad mnemonic '{m}'", here)
    dests, eq, srcs = shape_text.partition("=")
    if not eq:
        dests, srcs = "", shape_text
    split = lambda s: tuple(t.strip() for t in s.split(",") if t.strip())  # noqa: E731
    shape = Shape(split(dests), split(srcs))
    for cls in shape.dests + shape.srcs:
        if table.class_kinds(cls) is None:
            raise IvtxError(f"form '{form.name}': unknown operand class '{cls}'", here)
    match = Match(pattern, shape, mnemonics, here.line, example.strip() or None)
    for m in mnemonics:
        table.by_mnemonic.setdefault(m, []).append((match, form))
    return match


def _expand(table: Table, pattern: str, here: Loc) -> frozenset[str]:
    """`ld{1|2|4|8}[.s|.a][@ldhint]` -> every mnemonic it spells."""
    segments: list[list[str]] = []
    for part in re.finditer(r"\{([^{}\[\]]*)\}|\[([^{}\[\]]*)\]|@(\w+)|([^{}\[\]@]+)|(.)", pattern):
        one_of, optional, named, literal, stray = part.groups()
        if stray:
            raise IvtxError(f"unbalanced '{stray}' in pattern '{pattern}'", here)
        if literal:
            segments.append([literal])
        elif named:
            segments.append(_completer_set(table, named, here))
        else:
            alts = [a for alt in (optional if one_of is None else one_of).split("|")
                    for a in (_completer_set(table, alt[1:], here) if alt.startswith("@") else [alt])]
            segments.append(alts if optional is None else ["", *alts])
    return frozenset("".join(p) for p in product(*segments))


def _completer_set(table: Table, name: str, here: Loc) -> list[str]:
    if name not in table.completers:
        raise IvtxError(f"unknown completer class '@{name}'", here)
    table._used.add(name)
    return table.completers[name][0]


def _finish_form(table: Table, form: Form, columns: dict[str, tuple[list[str], int]]) -> None:
    if not form.matches:
        raise IvtxError(f"form '{form.name}' has no 'match' line", Loc(table.name, form.line))
    words, line = columns.get("flags", ((), form.line))
    here = Loc(table.name, line)
    flags = frozenset(words)
    unknown = sorted(flags - FLAGS)
    if unknown:
        raise IvtxError(f"form '{form.name}': unknown flag '{unknown[0]}'", here)
    banks = flags & {"bank:0", "bank:1"}
    if ("bank_switch" in flags) != (len(banks) == 1) or len(banks) > 1:
        raise IvtxError(f"form '{form.name}': 'bank_switch' needs exactly one of bank:0 / bank:1", here)
    form.flags = flags | {"sensitive"} if "privileged" in flags else flags  # privileged => sensitive
    for key in _COLUMNS:
        words, line = columns.get(key, ((), form.line))
        setattr(form, key, _column(table, form, key, words, Loc(table.name, line)))


def _column(table: Table, form: Form, key: str, tokens: list[str], here: Loc) -> Column:
    fixed: set[str] = set()
    dynamic: list[tuple[str, str, int]] = []
    for tok in tokens:
        func = _FUNC.match(tok)
        if func and func.group(1) == "psrbits":
            lo, _, hi = func.group(2).partition("-")
            if not (lo.isdigit() and hi.isdigit() and int(lo) <= int(hi) <= 63):
                raise IvtxError(f"form '{form.name}': bad bit range in '{tok}'", here)
            fixed |= table.psr_locs(int(lo), int(hi))
        elif func:
            kind, ref = func.groups()
            if key == "reads" and kind != "file":
                raise IvtxError(f"form '{form.name}': '{tok}' names written locations, not read ones", here)
            dynamic.append((kind, *_operand_ref(table, form, ref, here, kind)))
        elif tok in ("dests", "srcs"):
            dynamic.append(("ops", tok[0], 0))
        elif _OP_REF.match(tok):
            dynamic.append(("op", *_operand_ref(table, form, tok, here, "op")))
        else:
            locs = _fixed_locations(table, tok)
            if locs is None:
                raise IvtxError(f"form '{form.name}': unknown location class '{tok}' in '{key}'", here)
            fixed |= locs
    return Column(frozenset(fixed), tuple(dynamic))


def _operand_ref(table: Table, form: Form, ref: str, here: Loc, use: str) -> tuple[str, int]:
    """Check `d1` / `s2` against every match line of the form; return (side, index).

    use: "op" (a register location), "psrmask" / "prmask" (an immediate), "file" (an
    indirect register file whose name is a pseudo-location)."""
    m = _OP_REF.match(ref)
    if not m:
        raise IvtxError(f"form '{form.name}': bad operand reference '{ref}'", here)
    side, index = m.group(1), int(m.group(2))
    for match in form.matches:
        ops = match.shape.dests if side == "d" else match.shape.srcs
        where = f"in shape '{match.shape}' ({table.name}:{match.line})"
        if index > len(ops):
            raise IvtxError(f"form '{form.name}': '{ref}' does not exist {where}", here)
        cls = ops[index - 1]
        if use == "op" and (cls == "imm" or cls in regs.SPECIAL):
            raise IvtxError(f"form '{form.name}': '{ref}' is '{cls}', which is not a location, {where}", here)
        if use in ("psrmask", "prmask") and cls != "imm":
            raise IvtxError(f"form '{form.name}': '{ref}' must be an immediate, not '{cls}', {where}", here)
        if use == "file":
            if cls[:-3] not in table.pseudo or not cls.endswith("[r]"):
                raise IvtxError(f"form '{form.name}': '{ref}' is '{cls}', not a register file location, {where}", here)
            table._used.add(cls[:-3])
    return side, index


def _fixed_locations(table: Table, tok: str) -> frozenset[str] | None:
    """A location token: r5, p16-p63, ar.ccv, cr.ifa, psr.ic, cfm ...; None if unknown."""
    lo_tok, dash, hi_tok = tok.partition("-")
    lo = _REG_TOKEN.match(lo_tok)
    if lo:
        hi = _REG_TOKEN.match(hi_tok) if dash else lo
        if not hi or hi.group(1) != lo.group(1):
            return None
        first, last = int(lo.group(2)), int(hi.group(2))
        low, high = _FILE_LIMITS[lo.group(1)]
        return frozenset(f"{lo.group(1)}{n}" for n in range(first, last + 1)) if low <= first <= last <= high else None
    if tok in table.pseudo:
        table._used.add(tok)
        return frozenset({tok})
    if (tok.startswith("psr.") and tok[4:] in table.psr_fields) or tok in _ALL_AR or tok in _ALL_CR:
        return frozenset({tok})
    return None


def _check_shadowing(table: Table) -> None:
    """A match whose every (mnemonic, shape) earlier matches already take is an error."""

    def covers(wide: Shape, narrow: Shape) -> bool:
        if len(wide.dests) != len(narrow.dests) or len(wide.srcs) != len(narrow.srcs):
            return False
        return all(table.class_kinds(a) >= table.class_kinds(b)
                   for a, b in zip(wide.dests + wide.srcs, narrow.dests + narrow.srcs))

    earlier: dict[str, list[Match]] = {}
    for form in table.forms:
        for match in form.matches:
            takers = [next((e for e in earlier.get(m, ()) if covers(e.shape, match.shape)), None)
                      for m in sorted(match.mnemonics)]
            if None not in takers:
                here = Loc(table.name, match.line)
                where = ", ".join(sorted({f"{table.name}:{t.line}" for t in takers}))
                if takers[0].shape == match.shape and takers[0].mnemonics == match.mnemonics:
                    raise IvtxError(f"form '{form.name}': duplicate row (same as {where})", here)
                raise IvtxError(f"form '{form.name}': orphan row, it can never match (taken by {where})", here)
            for m in match.mnemonics:
                earlier.setdefault(m, []).append(match)


def _check_declarations(table: Table) -> None:
    """Register classes name real registers, and every declared class is used by a row."""
    for cname, (members, line) in table.regs.items():
        for reg in sorted(members - _ALL_AR - _ALL_CR):
            raise IvtxError(f"register class '{cname}': unknown register '{reg}'", Loc(table.name, line))
    for kind, store in (("completer class", table.completers), ("register class", table.regs)):
        for cname, (_, line) in store.items():
            if cname not in table._used:
                raise IvtxError(f"{kind} '{cname}' is declared but used by no row", Loc(table.name, line))
    for pname, line in table.pseudo.items():
        if pname not in table._used:
            raise IvtxError(f"pseudo-location '{pname}' is declared but used by no row", Loc(table.name, line))


# --------------------------------------------------------------------------- resolving


def _unknown_message(table: Table, insn: Instruction) -> str:
    ops = ", ".join(map(str, insn.srcs))
    if insn.dests:
        ops = f"{', '.join(map(str, insn.dests))} = {ops}"
    msg = f"unknown instruction '{insn.mnemonic}' with operands '{ops}'"
    rows = table.by_mnemonic.get(insn.mnemonic)
    if rows:
        msg += f" ({insn.mnemonic} takes: {' | '.join(dict.fromkeys(str(m.shape) for m, _ in rows))})"
    return msg


def _resolve(table: Table, form: Form, insn: Instruction) -> Effects:
    reads, must = set(form.reads.fixed), set(form.writes.fixed)
    may, always = set(form.may.fixed), set(form.always.fixed)
    for column, sure in ((form.reads, reads), (form.writes, must), (form.may, may), (form.always, always)):
        if column.dynamic:
            _add_dynamic(table, column.dynamic, insn, sure, may)
    if insn.qp is not None and insn.qp != "p0":
        if "unpredicated" in form.flags:
            raise IvtxError(f"'{insn.mnemonic}' cannot be predicated", insn.loc)
        reads.add(insn.qp)
        may |= must
        must = always
    else:
        must |= always
    reads -= _NOT_LOCATIONS
    must -= _NOT_LOCATIONS
    may -= _NOT_LOCATIONS
    may -= must
    return Effects(frozenset(reads), frozenset(must), frozenset(may), form.flags, form.name)


def _add_dynamic(table: Table, dynamic: tuple, insn: Instruction, sure: set, unsure: set) -> None:
    """Add operand-dependent locations; masks that do not fold become may-writes (`unsure`)."""
    for kind, side, index in dynamic:
        ops = insn.dests if side == "d" else insn.srcs
        if kind == "ops":
            sure.update(filter(None, map(_operand_location, ops)))
        elif kind == "op":
            loc = _operand_location(ops[index - 1])
            if loc is not None:
                sure.add(loc)
        elif kind == "file":
            sure.add(ops[index - 1].file)
        elif kind == "psrmask":
            bits = psr_mask_locations(table, ops[index - 1], insn)
            if bits is None:
                unsure.update(table.psr_locs(0, 23))
            else:
                sure.update(bits)
        else:  # prmask
            preds = pr_mask_locations(ops[index - 1], insn)
            if preds is None:
                unsure.update(_ALL_PREDICATES)
            else:
                sure.update(preds)


def _operand_location(op) -> str | None:
    """The register an operand names: Reg itself, [r3] -> r3, rr[r3] -> r3; None for Imm."""
    t = type(op)
    if t is Reg:
        return op.name
    if t is Mem:
        return op.base.name
    if t is RegIndex:
        return op.index.name
    return None


def _value(op: Imm) -> int | None:
    """The immediate's value; the parser folds constants (psr.<bit> included) into Imm.value,
    hand-built IR may leave it to us.  Imported here: the parser may ask known_mnemonic()."""
    if op.value is not None:
        return op.value
    from .parse import fold

    return fold(op.expr)


def psr_mask_locations(table: Table, op: Imm, insn: Instruction) -> frozenset[str] | None:
    """PSR fields an rsm/ssm/rum/sum mask names (primer section 1); None if it does not fold.

    `rsm psr.dt|psr.i` -> {psr.dt, psr.i}.  The mask reaches bits 0-23 only.
    """
    value = _value(op)
    if value is None:
        return None
    if value < 0 or value >> 24:
        raise IvtxError(f"'{insn.mnemonic}' mask {op} = {value:#x} is outside psr bits 0-23", insn.loc)
    fields = table.psr_fields.items()
    return frozenset(f"psr.{n}" for n, (bit, width, _) in fields if (value >> bit) & ((1 << width) - 1))


def pr_mask_locations(op: Imm, insn: Instruction) -> frozenset[str] | None:
    """Predicates `mov pr = r, mask17` writes (primer section 1); None if it does not fold.

    Bit i selects pi for i = 1..15, bit 16 (the sign bit) all of p16-p63, bit 0 nothing:
    0x1003e -> p1-p5 and p16-p63; -1 -> p1-p63.
    """
    value = _value(op)
    if value is None:
        return None
    if not (-(1 << 16) <= value < (1 << 17) or (1 << 64) - (1 << 16) <= value < (1 << 64)):
        raise IvtxError(f"'mov pr' mask {op} = {value:#x} does not fit 17 bits", insn.loc)
    preds = frozenset(f"p{i}" for i in range(1, 16) if (value >> i) & 1)
    return preds | _ROTATING_PREDICATES if (value >> 16) & 1 else preds
