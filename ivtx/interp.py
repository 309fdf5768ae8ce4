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
allowed inside a group).

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
from dataclasses import dataclass, field
from string import Template

from .cfg import CFG, build_cfg
from .diag import Loc
from .effects import effects_of
from .interp_state import CODE_BASE, DATA_BASE, EXT_BASE, MASK64, Fault, Machine, NotModelled, mix64
from .ir import Directive, Imm, Instruction, Label, Program, PvCall, Sym
from .parse import fold
from .pvcatalog import Catalog, default_catalog
from . import regs

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


# --------------------------------------------------------------------------- symbols and addresses


def external_address(name: str) -> int:
    """A stable address for a symbol outside the file: page_fault is the same in every program."""
    return EXT_BASE + ((zlib.crc32(name.encode()) & 0xFFFFFFF) << 4)


class Layout:
    """Addresses of code positions (CODE_BASE + 16*pos), labels, data directives and external
    symbols; expression evaluation with them."""

    def __init__(self, program: Program, cfg: CFG):
        self.cfg = cfg
        self.n = len(cfg.code)
        self.symbols: dict[str, int] = {}
        self.local_defs: dict[str, list[int]] = {}
        self.data: dict[int, int] = {}  # byte address -> value: the data directives' image
        self.externals: dict[int, str] = {}
        self._scan(program)

    def _scan(self, program: Program) -> None:
        pos = 0
        data_addr = DATA_BASE
        pending: list[Label] = []
        data: list[tuple[int, int, object]] = []  # (address, size, operand)
        for s in program.statements:
            if isinstance(s, Label):
                pending.append(s)
                continue
            if isinstance(s, (Instruction, PvCall)):
                for lab in pending:
                    self._define(lab, CODE_BASE + 16 * pos, pos)
                pending.clear()
                if isinstance(s, Instruction) and s.tag is not None:
                    self.local_defs.setdefault(s.tag, []).append(pos)
                pos += 1
            elif isinstance(s, Directive) and _data_size(s.name):
                for lab in pending:
                    self._define(lab, data_addr, None)
                pending.clear()
                size = _data_size(s.name)
                for a in s.args:
                    data.append((data_addr, size, a))
                    data_addr += size
        for lab in pending:
            self._define(lab, CODE_BASE + 16 * pos, pos)
        for addr, size, a in data:  # after every label has its address
            value = a.value if getattr(a, "value", None) is not None else self.value(getattr(a, "expr", a), None)
            for i in range(size):
                self.data[addr + i] = (value >> (8 * i)) & 0xFF

    def _define(self, lab: Label, addr: int, pos: int | None) -> None:
        if not lab.local:
            self.symbols.setdefault(lab.name, addr)
        elif pos is not None:
            self.local_defs.setdefault(lab.name, []).append(pos)

    def code_pos(self, addr: int) -> int | None:
        """The code position an address names (branch targets ignore the low 4 bits)."""
        off = (addr & MASK64) - CODE_BASE
        return off >> 4 if 0 <= off < 16 * self.n else None

    def _local(self, name: str, at: int) -> int | None:
        """`1f` / `1b` seen at code position `at` (primer section 6: numeric local labels)."""
        defs = self.local_defs.get(name[:-1], [])
        if name[-1] == "f":
            hit = next((d for d in defs if d > at), None)
        else:
            hit = next((d for d in reversed(defs) if d <= at), None)
        return None if hit is None else CODE_BASE + 16 * hit

    def value(self, expr, at: int | None) -> int:
        """The value of an expression at code position `at` (labels are addresses)."""
        env: dict[str, int] = {}
        for name in _symbols_in(expr):
            if regs.psr_mask(name) is not None and name not in self.symbols:
                continue
            if name == ".":
                env[name] = CODE_BASE + 16 * (at or 0)
            elif name in self.symbols:
                env[name] = self.symbols[name]
            elif at is not None and len(name) >= 2 and name[-1] in "fb" and name[:-1].isdigit():
                v = self._local(name, at)
                env[name] = v if v is not None else external_address(name)
            else:
                addr = external_address(name)
                self.externals[addr] = name
                env[name] = addr
        v = fold(_strip_relocs(expr), env)
        if v is None:
            raise NotModelled(f"expression '{expr}' does not evaluate", None)
        return v & MASK64

    def canonical(self, value: int):
        """A value as comparisons across programs see it: a code address becomes the point it
        names, which survives transformation ("@label", "@label+call2": right after the second
        br.call after the label); a symbol outside the file "&name"; other values unchanged."""
        p = self.code_pos(value)
        if p is None or (value - CODE_BASE) % 16:
            name = self.externals.get(value)
            return f"&{name}" if name else value
        return "@" + code_point(self.cfg, p)


def code_point(cfg: CFG, p: int) -> str:
    """`label`, `label+call2` (right after the second br.call after label) or `label+N`."""
    label, lpos = "<start>", 0
    for name, q in cfg.labels.items():
        if q <= p and q >= lpos and not name[0].isdigit():
            label, lpos = name, q
    if lpos == p and label != "<start>":
        return label
    calls = [q for q in range(lpos, p) if isinstance(cfg.code[q], Instruction) and cfg.code[q].mnemonic.startswith(("br.call", "brl.call"))]
    if calls and calls[-1] == p - 1:
        return f"{label}+call{len(calls)}"
    return f"{label}+{p - lpos}"


def _data_size(name: str) -> int:
    base = name.lstrip(".").split(".")[0]
    return {"data1": 1, "data2": 2, "data4": 4, "data8": 8, "byte": 1, "quad": 8, "long": 4}.get(base, 0)


def _symbols_in(expr):
    if isinstance(expr, Sym):
        yield expr.name
    for attr in ("left", "right", "arg"):
        sub = getattr(expr, attr, None)
        if sub is not None:
            yield from _symbols_in(sub)


def _strip_relocs(expr):
    from .ir import Binary, Reloc, Unary

    if isinstance(expr, Reloc):
        return _strip_relocs(expr.arg)
    if isinstance(expr, Binary):
        return Binary(expr.op, _strip_relocs(expr.left), _strip_relocs(expr.right))
    if isinstance(expr, Unary):
        return Unary(expr.op, _strip_relocs(expr.arg))
    return expr


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
        from . import interp_alu, interp_mem, interp_sys  # noqa: F401  (they fill SEMANTICS)

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
        self.stop_after = [p + 1 >= n or group[p + 1] != group[p] for p in range(n)]
        self.falls_off = [p + 1 >= n or not self.cfg.same_flow(p, p + 1) for p in range(n)]
        self.continuations = frozenset(self.cfg.continuations)
        self.nested_entry = self.vector_entry(NESTED_VECTOR)
        self.continuation_points = sorted(self.cfg.continuations)  # load positions, in order

    # ------------------------------------------------------------------ handlers

    def vectors(self) -> list:
        """(region, entry position) of every vector entry with code, in table order."""
        out = []
        for r in self.cfg.regions:
            if r.is_vector and r.name in self.cfg.entries:
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
            return failing
        except Exception as exc:
            def failing(m, exc=exc):
                raise NotModelled(f"{call.name}: native text does not parse ({exc})", call.loc)
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
        m.steps = 0
        while True:
            if m.steps >= max_steps:
                m.commit()
                return Exit("step-limit", str(max_steps), pos)
            m.steps += 1
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
            try:
                r = ops[pos](m) if tr is None else self._traced(m, pos, tr)
            except Fault as f:
                m.discard()
                return Exit("fault", f.kind, pos)
            if r is None:
                if stop_after[pos]:
                    m.commit()
                if falls_off[pos]:
                    m.commit()
                    return Exit("fall-off", code_point(self.cfg, pos), pos)
                pos += 1
                continue
            m.commit()
            if type(r) is int:
                pos = r
                continue
            if r.pos is None:
                r.pos = pos
            return r

    def _traced(self, m: Machine, pos: int, tr: list[Step]):
        from .printer import statement_text

        s = self.cfg.code[pos]
        reads = m.peek_reads(s)
        before_pend = dict(m.pend)
        before_mem = len(m.mem.log)
        before_tlb = len(m.tlb)
        m.trace_writes = {}
        try:
            r = self.ops[pos](m)
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
