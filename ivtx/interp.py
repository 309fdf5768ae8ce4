"""An interpreter for the IA-64 instruction subset IVT code uses, over the IR (design.md, Verification).

It runs one handler from an entry state to its exit: `rfi`, a branch or call to a symbol
outside the file, a fault, or something it cannot follow.  The machine (ivtx.interp_state)
holds 64-bit GRs with NaT bits and both banks of r16-r31, the stacked registers under a
CFM / RSE model, predicates, branch, application and control registers, the PSR, a sparse
memory whose unwritten bytes come from a seeded page-table generator, and logs of TLB
inserts/purges, system events and CR writes.

Instruction groups (primer section 4): register writes are pending until the group ends (a
stop or a taken branch), so every read in a group sees the value from the group's start;
the allowed exceptions read the new value: a branch reading a predicate or branch register
written earlier in its group.  A register read or written twice in a group is also logged
as a dependency violation.  Memory and the TLB log change at once (memory dependences are
allowed inside a group). A fault is precise: the writes of the instructions before the
faulting one in its group happen, its own and the later ones do not.

Semantics are per effects-table form (ivtx.effects): `interp_alu`, `interp_mem` and
`interp_sys` register a compiler for each form they model.  An instruction whose form or
mnemonic has no semantics raises NotModelled when it executes (never a silent skip).

A pv-op call (`ITC_D(p7, r18, r19)`) runs its catalog `native` text; a hypervisor model
hook may replace that (verify's scribbling model also overwrites the named clobbers).
The load at a `movl r30=1f` continuation may take a nested TLB miss (primer section 6): the
run then enters the file's 0x1400 handler on the same bank-0 registers, which returns
through b0 = r30 (or, with no such handler in the file, a model of the convention's summary).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from string import Template

from .cfg import CFG, build_cfg
from .diag import Loc
from .effects import effects_of
from .interp_layout import Layout, region_label
from .interp_state import MASK64, Fault, Machine, NotModelled, mix64
from .ir import Instruction, Program, PvCall
from .pvcatalog import Catalog, default_catalog

NESTED_VECTOR = 0x1400
MAX_STEPS = 20000

# form name -> compiler(insn, ctx) -> op(m) returning None (fall through), an int (taken
# branch to that code position) or an Exit.  Filled by the interp_* modules below.
SEMANTICS: dict = {}


def semantics(*forms: str):
    """Register a compiler for the effects-table forms `forms`."""
    def deco(fn):
        for f in forms:
            SEMANTICS[f] = fn
        return fn
    return deco


@dataclass
class Exit:
    """How a run left the handler.  kind: rfi, branch (to a symbol outside the file), call
    (br.call outside the file), return (br.ret out of the file), fault, unknown (a branch to
    an address that is no code of the file), fall-off (off the end of a code region),
    step-limit.  `target`: the symbol, fault name or address; `link`: a call's return point."""

    kind: str
    target: str | None = None
    pos: int | None = None  # code position of the exiting instruction
    link: object = None
    return_pos: int | None = None  # a call's return point in this program, when it is code

    def key(self) -> tuple:
        return (self.kind, self.target, self.link)

    def describe(self) -> str:
        out = self.kind if self.target is None else f"{self.kind} {self.target}"
        return out + (f" (returns to {self.link})" if self.link is not None else "")


@dataclass
class Step:
    """One executed instruction in a traced run: what it read and wrote."""

    pos: int
    text: str
    loc: Loc
    reads: dict
    writes: dict


@dataclass
class RunResult:
    exit: Exit | None
    machine: Machine
    steps: int
    not_modelled: NotModelled | None = None
    trace: list[Step] | None = None


# --------------------------------------------------------------------------- compiling


@dataclass
class Context:
    """What a form compiler may need besides the instruction."""

    layout: Layout
    pos: int
    interp: "Interpreter"

    def imm(self, op) -> int:
        if op.value is not None:
            return op.value & MASK64
        return self.layout.value(op.expr, self.pos)


def compile_instruction(insn: Instruction, ctx: Context):
    """An op for one instruction: the form's semantics, or one that raises NotModelled."""
    try:
        form = effects_of(insn).form
    except Exception as exc:  # unknown to the effects table: the parser normally rejects it
        return _not_modelled(insn, f"no effects-table row ({exc})")
    comp = SEMANTICS.get(form)
    if comp is None:
        return _not_modelled(insn, f"form '{form}' has no semantics in the interpreter")
    op = comp(insn, ctx)
    if op is None:
        return _not_modelled(insn, f"'{insn.mnemonic}' (form '{form}') has no semantics in the interpreter")
    return op


def _not_modelled(insn: Instruction, why: str):
    from .printer import statement_text

    text = statement_text(insn)

    def op(m):
        raise NotModelled(f"{text}: {why}", insn.loc)
    op.not_modelled = True
    return op


def native_groups(call: PvCall, catalog: Catalog) -> list[list[Instruction]]:
    """The catalog's native text of a pv call, as instruction groups (`;;` separates them):
    SSM_PSR_IC_AND_SRLZ_D -> [[ssm psr.ic], [srlz.d]]; a trailing `;;` ends the last one."""
    from .parse import parse_text
    from .pveffects import arg_text

    op = catalog.get(call.name)
    if op is None:
        raise NotModelled(f"{call.name}: not in the pv-op catalog", call.loc)
    values = {role: arg_text(a) for role, a in zip(op.args, call.args)}
    text = Template(op.native).substitute(values).replace("(p0) ", "")
    groups = []
    for chunk in text.split(";;"):
        prog = parse_text(chunk.replace(";", "\n"), path=str(call.loc))
        insns = [s for s in prog.statements if isinstance(s, Instruction)]
        for s in insns:
            s.loc = call.loc
        groups.append(insns)
    return groups


class Interpreter:
    """A compiled program: one op per code position of its CFG."""

    def __init__(self, program: Program, cfg: CFG | None = None, catalog: Catalog | None = None,
                 nested_summary=None):
        self.program = program
        self.cfg = cfg or build_cfg(program)
        self.catalog = catalog or default_catalog()
        self.layout = Layout(program, self.cfg)
        self.nested_summary = nested_summary  # conventions' [nested], for files without 0x1400
        code = self.cfg.code
        n = len(code)
        self.ops = []
        for pos, s in enumerate(code):
            ctx = Context(self.layout, pos, self)
            self.ops.append(self._compile_pv(s, ctx) if isinstance(s, PvCall) else compile_instruction(s, ctx))
        group = self.cfg.group
        self.falls_off = [p + 1 >= n or not self.cfg.same_flow(p, p + 1) for p in range(n)]
        # the group ends after p (a stop, or the end of the code region: leaving it is an exit)
        self.stop_after = [p + 1 >= n or group[p + 1] != group[p] or self.falls_off[p] for p in range(n)]
        self.continuations = frozenset(self.cfg.continuations)
        self.nested_entry = self.vector_entry(NESTED_VECTOR)
        self.continuation_points = sorted(self.cfg.continuations)  # load positions, in order

    # ------------------------------------------------------------------ handlers

    def vectors(self) -> list:
        """(region, entry position) of every vector entry with code, in table order.  Only the
        interruption vector table counts (a `.org`-spaced stub table, like the PAL-static
        entries a transform emits, looks like one too): `ia64_ivt`, else a table at a 32 KB
        boundary (IVA ignores the low 15 bits, primer section 3), else the largest."""
        tables: dict[str, int] = {}
        for r in self.cfg.regions:
            if r.is_vector:
                tables[r.table] = tables.get(r.table, 0) + 1
        aligned = lambda t: self.layout.symbols.get(t, 1) % 0x8000 == 0  # noqa: E731
        ivt = max(tables, key=lambda t: (t == "ia64_ivt", aligned(t), tables[t]), default=None)
        out = []
        for r in self.cfg.regions:
            if r.is_vector and r.table == ivt and r.name in self.cfg.entries:
                out.append((r, self.cfg.blocks[self.cfg.entries[r.name]].first))
        return sorted(out, key=lambda x: x[0].offset)

    def vector_entry(self, offset: int) -> int | None:
        for r, pos in self.vectors():
            if r.offset == offset:
                return pos
        return None

    # ------------------------------------------------------------------ pv calls

    def _compile_pv(self, call: PvCall, ctx: Context):
        try:
            groups = native_groups(call, self.catalog)
        except NotModelled as exc:
            def failing(m, exc=exc):
                raise exc
            failing.not_modelled = True
            return failing
        except Exception as exc:
            def failing(m, exc=exc):
                raise NotModelled(f"{call.name}: native text does not parse ({exc})", call.loc)
            failing.not_modelled = True
            return failing
        compiled = [[compile_instruction(i, ctx) for i in g] for g in groups]
        closes = [True] * (len(compiled) - 1) + [False]

        def run_native(m):
            for ops, close in zip(compiled, closes):
                for op in ops:
                    r = op(m)
                    if r is not None:
                        return r
                if close:
                    m.commit()
            return None

        def op(m):
            model = m.pv_model
            if model is None:
                return run_native(m)
            return model(m, call, run_native, self.catalog)
        op.pvcall = call
        return op

    # ------------------------------------------------------------------ running

    def run(self, m: Machine, pos: int, max_steps: int = MAX_STEPS, trace: bool = False) -> RunResult:
        """Run from code position `pos` until an exit; NotModelled is a result, not an error."""
        m.interp = self
        steps = 0
        tr: list[Step] | None = [] if trace else None
        if trace and m.mem.log is None:
            m.mem.log = []
        try:
            ex = self._loop(m, pos, max_steps, tr)
            steps = m.steps
        except NotModelled as nm:
            return RunResult(None, m, m.steps, not_modelled=nm, trace=tr)
        return RunResult(ex, m, steps, trace=tr)

    def _loop(self, m: Machine, pos: int, max_steps: int, tr) -> Exit:
        ops, stop_after, falls_off = self.ops, self.stop_after, self.falls_off
        conts = self.continuations
        cov = m.coverage
        steps = 0
        try:
            while True:
                steps += 1
                if steps > max_steps:
                    m.commit()
                    return Exit("step-limit", str(max_steps), pos)
                m.pos = pos
                if cov is not None:
                    cov.add(pos)
                if pos in conts and self._nested_miss(m, pos):
                    m.commit()
                    nxt = self._take_nested(m, pos)
                    if isinstance(nxt, Exit):
                        return nxt
                    pos = nxt
                    continue
                r = ops[pos](m) if tr is None else self._traced(m, pos, tr)
                if r is None:
                    if stop_after[pos]:
                        m.commit()
                        if falls_off[pos]:
                            return Exit("fall-off", _region_end(self.cfg, pos), pos)
                    pos += 1
                    continue
                m.commit()
                if type(r) is int:
                    pos = r
                    continue
                if r.pos is None:
                    r.pos = pos
                return r
        except Fault as f:
            # faults are precise: the instructions before the faulting one, its own group's
            # included, have completed (their pending writes happen); it and what follows have not
            m.commit()
            return Exit("fault", f.kind, pos)
        finally:
            m.steps = steps

    def _traced(self, m: Machine, pos: int, tr: list[Step]):
        from .printer import statement_text

        s = self.cfg.code[pos]
        qp = getattr(s, "qp", None)
        if qp not in (None, "p0") and not m.for_branch(qp):
            reads = {qp: 0}  # predicated off: it reads its predicate and nothing else
        else:
            reads = m.peek_reads(s)
        before_pend = dict(m.pend)
        before_mem = len(m.mem.log)
        before_tlb = len(m.tlb)
        m.trace_writes = {}
        try:
            r = self.ops[pos](m)
        except Fault as f:  # the faulting step is part of the trace: it read something
            tr.append(Step(pos, statement_text(s), s.loc, reads, {"exit": f"fault {f.kind}"}))
            raise
        finally:
            committed, m.trace_writes = m.trace_writes, None
        writes = {k: v for k, v in committed.items() if before_pend.get(k) != v}
        writes.update((k, v) for k, v in m.pend.items() if before_pend.get(k) != v)
        for addr, size, val in m.mem.log[before_mem:]:
            writes[f"mem[{addr:#x}]/{size}"] = val
        for ev in m.tlb[before_tlb:]:
            writes[f"tlb:{ev[0]}"] = ev[1:]
        if isinstance(r, Exit):
            writes["exit"] = r.describe()
        tr.append(Step(pos, statement_text(s), s.loc, reads, writes))
        return r

    # ------------------------------------------------------------------ nested TLB miss

    def _nested_miss(self, m: Machine, pos: int) -> bool:
        """Whether the continuation load at `pos` takes a nested miss now: only with psr.dt=1
        (the nested handler leaves dt=0, so the re-executed load hits), only when its
        predicate holds, and as the harness chose for the k-th such load of the run."""
        if not m.nested_choice or not (m.psr >> 17) & 1:
            return False
        s = self.cfg.code[pos]
        if isinstance(s, Instruction) and s.qp not in (None, "p0") and not m.v[s.qp]:
            return False
        k = m.nested_count
        m.nested_count += 1
        return m.nested_choice(k)

    def _take_nested(self, m: Machine, pos: int):
        """Enter the nested-TLB vector with the handler's bank-0 registers: the file's own
        0x1400 code (it returns with `br b0`, b0 = r30), or the convention's summary model."""
        s = self.cfg.code[pos]
        base = next(o.base.name for o in s.srcs if hasattr(o, "base"))
        m.sys.append(("nested-miss", m.v[m.gname(int(base[1:]))]))
        m.psr &= ~(1 << 14)  # psr.i = 0 (it was already); ic and bn stay 0
        if self.nested_entry is not None:
            return self.nested_entry
        if self.nested_summary is None:
            raise NotModelled("nested TLB miss: no 0x1400 handler in the file and no [nested] summary", s.loc)
        return self._nested_model(m)

    def _nested_model(self, m: Machine):
        """The nested-miss handler as the convention summarises it: it overwrites its clobbers
        (deterministic per trial and miss), leaves the PTE's physical address (a function of r16)
        in r17, psr.dt off, and returns through b0 = r30."""
        k = m.nested_count
        for loc in sorted(self.nested_summary.clobbers):
            h = mix64(m.seed ^ mix64(zlib.crc32(loc.encode())) ^ k)
            if loc == "psr.dt":
                m.psr &= ~(1 << 17)
            elif loc[0] == "p":
                m.poke(loc, h & 1)
            elif loc[0] in "rb":
                m.poke(loc, h)
        m.poke("r17@0", mix64(m.seed ^ m.v["r16@0"]) & ~7)
        m.poke("b0", m.v["r30@0"])
        p = self.layout.code_pos(m.v["b0"])
        return p if p is not None else Exit("unknown", f"{m.v['b0']:#x}")


# the semantics modules register their forms in SEMANTICS (they import `semantics` from here)
from . import interp_alu, interp_mem, interp_sys  # noqa: E402,F401


def _region_end(cfg, pos: int) -> str:
    """Where a run that falls off the end of its code region leaves: named by the region (its
    last instruction's position moves when a transform adds code to it)."""
    region = cfg.region_of(pos)
    return "the end of the code" if region is None else f"the end of {region_label(region)}"
