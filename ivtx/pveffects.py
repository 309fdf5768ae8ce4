"""Effects of a pv-op call site (`ITC_D(p7, r24, r25)`): its native instructions' effects, plus
may-writes of the clobbers it names (a hypervisor's replacement may overwrite them)."""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from .diag import IvtxError
from .effects import effects_of
from .ir import Imm, Instruction, PvCall, Reg
from .pvcatalog import Catalog, default_catalog

KR_NUMBERS = {"IO_BASE": 0, "TSSD": 1, "PER_CPU_DATA": 3, "CURRENT_STACK": 4, "FPU_OWNER": 5,
              "CURRENT": 6, "PT_BASE": 7}


@dataclass(frozen=True)
class PvEffects:
    reads: frozenset[str]
    must_writes: frozenset[str]
    may_writes: frozenset[str]
    flags: frozenset[str]
    form: str


def arg_text(op) -> str:
    if isinstance(op, Reg):
        return op.name
    if isinstance(op, Imm):
        if op.value is not None:
            return str(op.value)
        name = str(op.expr)
        if name in KR_NUMBERS:
            return str(KR_NUMBERS[name])
        return name
    return str(op)


def native_text(call: PvCall, catalog: Catalog | None = None) -> str:
    """The native instruction text a pv call stands for, e.g. `(p7) itc.d r24`."""
    cat = catalog or default_catalog()
    op = cat.get(call.name)
    if op is None:
        raise IvtxError(f"unknown pv op '{call.name}'", call.loc)
    values = {role: arg_text(a) for role, a in zip(op.args, call.args)}
    text = Template(op.native).substitute(values)
    return text.replace("(p0) ", "")


def native_instructions(call: PvCall, catalog: Catalog | None = None) -> list[Instruction]:
    from .parse import parse_text

    prog = parse_text(native_text(call, catalog).replace(";", "\n"), path=str(call.loc))
    out = []
    for s in prog.statements:
        if isinstance(s, Instruction):
            s.loc = call.loc
            out.append(s)
    return out


_CACHE: dict = {}


def pv_effects(call: PvCall, catalog: Catalog | None = None) -> PvEffects:
    key = (call.name, tuple(arg_text(a) for a in call.args), id(catalog))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    cat = catalog or default_catalog()
    op = cat.get(call.name)
    if op is None:
        raise IvtxError(f"unknown pv op '{call.name}'", call.loc)
    reads: set[str] = set()
    must: set[str] = set()
    may: set[str] = set()
    flags: set[str] = {"pvcall"}
    for insn in native_instructions(call, cat):
        e = effects_of(insn)
        reads |= set(e.reads) - must
        must |= set(e.must_writes)
        may |= set(e.may_writes)
        flags |= set(e.flags)
    for role, a in zip(op.args, call.args):
        kind = op.role_kind(role)
        if kind in ("clob", "pclob") and isinstance(a, Reg) and a.name not in ("r0", "p0"):
            may.add(a.name)
    eff = PvEffects(frozenset(reads), frozenset(must), frozenset(may - must), frozenset(flags), f"pv:{call.name}")
    _CACHE[key] = eff
    return eff
