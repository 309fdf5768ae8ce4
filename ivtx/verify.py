"""Differential verification: run native and transformed handlers from the same random entry
states and compare everything the interrupted context can observe (design.md, Verification).

For each vector handler and trial, ivtx.entrystate builds a state obeying the vector-entry
convention; both programs run to their exits (ivtx.interp).  They agree when the exits have
the same kind and target and, at the exit, the same values in every location the exit's
summary in the convention file reads (`rfi`: the interrupted context plus cr.ipsr/iip/ifs;
`page_fault`: the context without the predicates, plus bank-0 r31 ...; a C call: the
software-convention live-ins, b0, and what is live where the callee returns, by that
symbol's summary or by the liveness analysis of the native program; an unknown target:
everything), the same PSR at a branch or call, the same memory (every word either run wrote), the same TLB log and system
events, the same final values in every control register either run wrote, and no dependency
violation or unserialized access that only the transformed run has.

On a mismatch the entry state is shrunk (registers reset to zero while the mismatch
persists) and both runs are traced to find the first diverging instruction.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

from . import regs
from .conventions import ExitPolicy, all_register_locations, load_policy
from .entrystate import EntryState, random_entry
from .interp import Exit, Interpreter, RunResult
from .interp_state import NotModelled
from .interp_trace import Divergence, first_divergence, fmt_value
from .ir import Program, PvCall, Reg

ALL_LOCATIONS = tuple(all_register_locations()) + tuple(f"ar.{n}" for n in regs.AR_NAMES.values()) + tuple(
    f"cr.{n}" for n in regs.CR_NAMES.values() if n not in ("ivr", "eoi")) + ("psr", "cfm", "rse", "alat")
_EVERYTHING = "@all"
_ALL_SET = frozenset(ALL_LOCATIONS)


# --------------------------------------------------------------------------- results


@dataclass
class Difference:
    location: str
    native: object
    transformed: object

    def describe(self) -> str:
        return f"{self.location}: native {fmt_value(self.native)}, transformed {fmt_value(self.transformed)}"


@dataclass
class Mismatch:
    trial: int
    native_exit: Exit | None
    transformed_exit: Exit | None
    differences: list[Difference]
    state: dict  # the shrunk entry state's non-zero locations
    divergence: Divergence | None = None
    entry: EntryState | None = None  # the shrunk entry state itself (check_state re-runs it)

    def describe(self) -> str:
        lines = [f"trial {self.trial}: native exit {_exit(self.native_exit)}, transformed exit {_exit(self.transformed_exit)}"]
        lines += ["  differs: " + d.describe() for d in self.differences[:8]]
        if len(self.differences) > 8:
            lines.append(f"  ... and {len(self.differences) - 8} more")
        if self.state is not None:
            shown = ", ".join(f"{k}={fmt_value(v)}" for k, v in list(self.state.items())[:24])
            more = f", ... ({len(self.state)} in all)" if len(self.state) > 24 else ""
            lines.append(f"  smallest differing state: {shown}{more}" if self.state else
                         "  smallest differing state: every register zero (memory from the trial's seed)")
        if self.divergence is not None:
            lines.append("  first diverging instruction: " + self.divergence.describe().replace("\n", "\n  "))
        return "\n".join(lines)


@dataclass
class HandlerResult:
    name: str
    offset: int
    trials: int = 0
    agreed: int = 0
    exits: Counter = field(default_factory=Counter)
    mismatch: Mismatch | None = None
    not_modelled: str | None = None
    seconds: float = 0.0
    covered: set | None = None  # native code positions executed (when asked for)

    @property
    def status(self) -> str:
        if self.mismatch is not None:
            return "disagree"
        return "not modelled" if self.not_modelled else "agree"


@dataclass
class VerifyResult:
    handlers: list[HandlerResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(h.status == "agree" for h in self.handlers)

    @property
    def mismatches(self) -> list[HandlerResult]:
        return [h for h in self.handlers if h.mismatch is not None]


def _exit(e: Exit | None) -> str:
    return "none" if e is None else e.describe()


# --------------------------------------------------------------------------- observing a run


def exit_locations(ex: Exit, policy: ExitPolicy, live_at=None, untraced=frozenset()) -> frozenset[str] | str:
    """Register locations the exit observes (ALL = everything); see the module docstring.

    At a call, the callee's live-ins, b0 (where it returns) and what is live where it returns:
    a symbol's summary (ia64_leave_kernel), or for a return into the file what the liveness
    analysis says is live there (`live_at(code position)`, None when unknown). A call the CFG
    could not trace (`untraced`: code positions, `br.call b6=b6` through a table) observes what
    the analysis assumed there, whatever target the run happened to load: everything, or the
    convention file's [unresolved_calls] claim."""
    if ex.kind == "call":
        s = policy.call(None if ex.pos in untraced else ex.target)
        link = ex.link if isinstance(ex.link, str) else ""
        if link.startswith("&"):
            after = policy.symbol(link[1:])
            after = _EVERYTHING if after.everything else after.live_in
        elif ex.return_pos is not None and live_at is not None:
            after = live_at(ex.return_pos)
        else:
            after = _EVERYTHING
        if s.everything or after == _EVERYTHING:
            return _EVERYTHING
        return s.live_in | after | {"psr", "b0"}
    if ex.kind == "rfi":
        s = policy.rfi
    elif ex.kind == "branch":
        s = policy.symbol(ex.target)
    elif ex.kind == "fault":
        return frozenset()  # fatal with psr.ic=0: the exit itself and memory/TLB are compared
    else:
        return _EVERYTHING
    if s.everything:
        return _EVERYTHING
    return s.live_in | ({"psr"} if ex.kind == "branch" else set())


def location_value(m, loc: str):
    """The value of a location (physical naming of ivtx.interp_state) at the end of a run."""
    layout = m.interp.layout
    if loc == "rse":
        return m.bof, m.v["ar.bsp"]
    if loc[0] == "r":
        name, _, bank = loc.partition("@")
        n = int(name[1:])
        if n >= 32:
            if n - 32 >= m.sof:
                return "outside the frame"
            key = f"s{m.bof + n - 32}"
        else:
            key = loc
        return layout.canonical(m.v[key]), key in m.nat
    if loc[0] == "b" and loc[1:].isdigit():
        return layout.canonical(m.v[loc])
    if loc == "psr":
        return m.psr
    if loc.startswith("psr."):
        return (m.psr >> regs.PSR_BITS[loc[4:]]) & 1 if loc[4:] in regs.PSR_BITS else m.psr
    if loc == "cfm":
        return m.cfm, m.bof
    if loc == "alat":
        return m.alat
    if loc[0] in "pf":
        return m.v[loc]
    return _register(m, loc)


def _register(m, name: str):
    """A register's value (generated on first use like any read); None if the model has none."""
    try:
        return m.v[name]
    except NotModelled:
        return None


def compare(a: RunResult, b: RunResult, policy: ExitPolicy, live_at=None) -> list[Difference]:
    """Everything the interrupted context can observe, native run `a` vs transformed run `b`.
    `live_at(pos)`: the native program's live locations at a code position (ivtx.liveness)."""
    ea, eb = a.exit, b.exit
    if ea.key() != eb.key():
        return [Difference("exit", ea.describe(), eb.describe())]
    ma, mb = a.machine, b.machine
    diffs: list[Difference] = []
    locs = exit_locations(ea, policy, live_at, getattr(live_at, "untraced", frozenset()))
    names = _ALL_SET if locs == _EVERYTHING else locs
    dirty = ma.dirty | mb.dirty  # a location neither run wrote still holds the shared entry value
    for loc in sorted(_candidates(names, dirty, ma, mb)):
        if loc in ma.v and loc in mb.v and ma.v[loc] == mb.v[loc] and (loc in ma.nat) == (loc in mb.nat):
            continue  # the same raw value names the same point in both layouts
        va, vb = location_value(ma, loc), location_value(mb, loc)
        if va != vb:
            diffs.append(Difference(loc, va, vb))
        if loc == "rse":
            diffs += _stacked_differences(ma, mb, dirty)
    la, lb = ma.interp.layout, mb.interp.layout
    for a8 in sorted(set(ma.mem.written) | set(mb.mem.written)):
        wa, wb = ma.mem.word(a8), mb.mem.word(a8)
        if wa != wb and la.canonical(wa) != lb.canonical(wb):
            diffs.append(Difference(f"mem[{a8:#x}]", la.canonical(wa), lb.canonical(wb)))
    if ma.tlb != mb.tlb:
        diffs.append(Difference("tlb", ma.tlb, mb.tlb))
    if ma.sys != mb.sys:
        diffs.append(Difference("system events", ma.sys, mb.sys))
    for cr in sorted({c for c, _ in ma.crlog} | {c for c, _ in mb.crlog}):
        if cr not in names and _register(ma, cr) != _register(mb, cr):
            diffs.append(Difference(cr, _register(ma, cr), _register(mb, cr)))
    for what, la, lb in (("dependency violation", ma.violations, mb.violations),
                         ("unserialized access", ma.hazards, mb.hazards)):
        extra = sorted({e[:2] for e in lb} - {e[:2] for e in la})
        if extra:
            diffs.append(Difference(what, "none", ", ".join(" ".join(map(str, e)) for e in extra)))
    return diffs


_ALWAYS = frozenset({"psr", "cfm", "rse", "alat"})
_STACKED_NAMES = frozenset(f"r{n}" for n in range(32, 128))


def _candidates(names, dirty: set, ma, mb) -> set:
    """The locations of `names` that can differ: written by a run, or always compared."""
    out = (dirty & names) | (_ALWAYS & names) | {n for n in names if n.startswith("psr.")}
    if names & _STACKED_NAMES:
        if (ma.bof, ma.cfm) != (mb.bof, mb.cfm):
            out |= names & _STACKED_NAMES
        else:
            for k in dirty:
                if k[0] == "s":
                    name = f"r{int(k[1:]) - ma.bof + 32}"
                    if name in names:
                        out.add(name)
    return out


def _stacked_differences(ma, mb, dirty: set) -> list[Difference]:
    """The physical stacked registers: the interrupted frame and the dirty partition included."""
    keys = sorted((k for k in dirty if k[0] == "s"), key=lambda k: int(k[1:]))
    out = []
    la, lb = ma.interp.layout, mb.interp.layout
    for k in keys:
        if ma.v[k] == mb.v[k] and (k in ma.nat) == (k in mb.nat):
            continue
        va = (la.canonical(ma.v[k]), k in ma.nat)
        vb = (lb.canonical(mb.v[k]), k in mb.nat)
        if va != vb:
            out.append(Difference(f"stacked {k}", va, vb))
    return out


# --------------------------------------------------------------------------- running


def scribbling_model(m, call: PvCall, run_native, catalog):
    """A hypervisor model of a pv op: the native effect, then a random value in every clobber
    the call names (a different value; NaT 1 time in 4) and the complement of every predicate
    clobber.  A live clobber then changes something observable.  The call ends its group (the
    replacement code has stops).  For BSW_0/BSW_1 a banked clobber is hit in both banks."""
    op = catalog.get(call.name)
    r = run_native(m)
    switch = call.name in ("BSW_0", "BSW_1")
    rng = m.rng
    for role, arg in zip(op.args, call.args):
        kind = op.role_kind(role)
        if not isinstance(arg, Reg) or arg.name in ("r0", "p0"):
            continue
        if kind == "clob":
            n = int(arg.name[1:])
            names = [f"r{n}@0", f"r{n}@1"] if switch and 16 <= n <= 31 else [m.gname(n)]
            for name in names:
                old = m.pend.get(name, (m.v[name], name in m.nat))
                value = rng.getrandbits(64)
                m.pend[name] = (value ^ 1 if value == old[0] else value, rng.random() < 0.25)
        elif kind == "pclob":
            old = m.pend.get(arg.name, (m.v[arg.name],))[0]
            m.pend[arg.name] = (1 - old, False)
    m.commit()
    return r


def run_one(interp: Interpreter, state: EntryState, pos: int, pv_model=None, trace: bool = False,
            coverage: set | None = None) -> RunResult:
    m = state.machine(interp)
    m.pv_model = pv_model
    m.coverage = coverage
    if trace:
        m.mem.log = []
    return interp.run(m, pos, trace=trace)


def _interp(p, policy: ExitPolicy) -> Interpreter:
    return p if isinstance(p, Interpreter) else Interpreter(p, nested_summary=policy.nested)


def live_locations(interp: Interpreter, policy: ExitPolicy):
    """`live_at(pos)`: the locations live right before code position `pos` of the program,
    by ivtx.liveness (solved on first use). Its `untraced` attribute: the positions of the
    program's calls whose target the CFG could not trace."""
    solved = []

    def live_at(pos: int) -> frozenset[str]:
        if not solved:
            from .liveness import solve

            solved.append(solve(interp.cfg, policy))
        live = solved[0]
        return frozenset(live.names(live.live_before(pos)))
    g = interp.cfg.graph
    live_at.untraced = frozenset(n[1] for n in g.nodes if isinstance(n, tuple) and n[0] == "call"
                                 and g.nodes[n].get("callee") is None)
    return live_at


def verify(native: Program, transformed: Program, trials: int = 200, seed: int = 0, handler: str | None = None,
           *, policy: ExitPolicy | None = None, pv_model=None, explain: bool = True, offsets=None,
           coverage: bool = False, native_pv_model=None) -> VerifyResult:
    """Compare `native` and `transformed` on every vector handler (or `handler`: a name or an
    offset like 0x1400; `offsets`: a set of offsets).  `pv_model` (e.g. scribbling_model)
    runs the transformed program's pv calls; the native program's run natively unless
    `native_pv_model` says otherwise."""
    t0 = time.perf_counter()
    policy = policy or load_policy()
    ni, ti = _interp(native, policy), _interp(transformed, policy)
    live_at = live_locations(ni, policy)
    tvec = {r.offset: pos for r, pos in ti.vectors()}  # matched by IVT offset
    out = VerifyResult([])
    for region, npos in ni.vectors():
        if handler is not None and handler not in (region.name, f"{region.offset:#x}", f"{region.offset:#06x}"):
            continue
        if offsets is not None and region.offset not in offsets:
            continue
        h = HandlerResult(region.name, region.offset, covered=set() if coverage else None)
        out.handlers.append(h)
        start = time.perf_counter()
        tpos = tvec.get(region.offset)
        if tpos is None:
            h.mismatch = Mismatch(0, None, None, [Difference("handler", region.name, "missing")], None)
            continue
        for t in range(trials):
            state = random_entry(random.Random(f"{seed}:{region.offset}:{t}"), region.offset)
            a = run_one(ni, state, npos, native_pv_model, coverage=h.covered)
            b = run_one(ti, state, tpos, pv_model)
            nm = a.not_modelled or b.not_modelled
            if nm is not None:
                h.not_modelled = f"{'native' if a.not_modelled else 'transformed'}: {nm}"
                break
            if a.exit.kind == b.exit.kind == "step-limit":  # where each stopped is arbitrary
                h.not_modelled = (f"both runs reach the step limit ({a.exit.target} steps) from trial {t}'s entry "
                                  "state: a loop that does not end there; nothing to compare")
                break
            h.trials += 1
            diffs = compare(a, b, policy, live_at)
            if diffs:
                h.mismatch = _explain(ni, ti, state, npos, tpos, (policy, live_at), pv_model, t, diffs,
                                      native_pv_model) if explain else \
                    Mismatch(t, a.exit, b.exit, diffs, state.nonzero(), entry=state)
                break
            h.agreed += 1
            h.exits[a.exit.describe()] += 1
        h.seconds = time.perf_counter() - start
    out.seconds = time.perf_counter() - t0
    return out


def check_state(native, transformed, state: EntryState, offset: int, policy: ExitPolicy | None = None,
                pv_model=None) -> list[Difference]:
    """Run both programs' handler at `offset` from one entry state; the differences (none: agree)."""
    policy = policy or load_policy()
    ni, ti = _interp(native, policy), _interp(transformed, policy)
    a = run_one(ni, state, ni.vector_entry(offset))
    b = run_one(ti, state, ti.vector_entry(offset), pv_model)
    return compare(a, b, policy, live_locations(ni, policy))


# --------------------------------------------------------------------------- explaining a mismatch


def _explain(ni, ti, state, npos, tpos, observer, pv_model, trial, diffs, native_pv_model=None) -> Mismatch:
    """`observer`: (policy, live_at), what compare needs."""
    small = shrink(ni, ti, state, npos, tpos, observer, pv_model, native_pv_model=native_pv_model)
    ta = run_one(ni, small, npos, native_pv_model, trace=True)
    tb = run_one(ti, small, tpos, pv_model, trace=True)
    if ta.not_modelled or tb.not_modelled or not compare(ta, tb, *observer):
        small = state
        ta, tb = run_one(ni, state, npos, native_pv_model, trace=True), run_one(ti, state, tpos, pv_model, trace=True)
    sdiffs = compare(ta, tb, *observer) or diffs
    div = first_divergence(ta, tb, sdiffs)
    return Mismatch(trial, ta.exit, tb.exit, sdiffs, small.nonzero(), div, small)


def shrink(ni, ti, state: EntryState, npos: int, tpos: int, observer, pv_model, budget: int = 4000,
           native_pv_model=None) -> EntryState:
    """Reset entry locations to zero, in halving chunks, while the runs still disagree
    (`observer`: compare's (policy, live_at))."""
    runs = [0]

    def fails(s: EntryState) -> bool:
        runs[0] += 1
        a, b = run_one(ni, s, npos, native_pv_model), run_one(ti, s, tpos, pv_model)
        if a.not_modelled or b.not_modelled:
            return False
        return bool(compare(a, b, *observer))

    keys = sorted(state.nonzero())
    cur = state
    chunk = max(len(keys) // 2, 1)
    while keys and runs[0] < budget:
        i = 0
        while i < len(keys) and runs[0] < budget:
            part = keys[i:i + chunk]
            cand = cur.zeroed(part)
            if fails(cand):
                cur = cand
                del keys[i:i + chunk]
            else:
                i += chunk
        if chunk == 1:
            break
        chunk = max(chunk // 2, 1)
    return cur


# --------------------------------------------------------------------------- fault injection


@dataclass
class Injection:
    """One site with a live register forced in as a clobber, and whether verify caught it."""

    loc: object  # the call's Loc
    call: str  # the original call, as written
    role: str | None = None  # the clobber argument replaced
    original: str | None = None
    live: str | None = None  # the live register substituted (None: nothing live to use)
    why_live: str | None = None  # the liveness proof (its next read, or the exit reading it)
    caught: bool | None = None
    handler: str | None = None  # the handler whose run disagreed
    explanation: str | None = None  # why a miss was missed, or why there was nothing to inject
    where: str = ""  # the call's place as shown to the user (ivtx.inject)


@dataclass
class InjectionReport:
    baseline: VerifyResult  # the program against itself under the scribbling model
    injections: list[Injection]

    @property
    def attempted(self) -> list[Injection]:
        return [i for i in self.injections if i.live is not None]

    @property
    def caught(self) -> int:
        return sum(1 for i in self.attempted if i.caught)

    @property
    def catch_rate(self) -> float:
        return self.caught / len(self.attempted) if self.attempted else 1.0

    @property
    def misses(self) -> list[Injection]:
        return [i for i in self.attempted if not i.caught]


def _live_pick(names: set[str], kind: str, bank: int | None, exclude: set[str]) -> str | None:
    """A live register to force in as a clobber, deterministically: for a GR, bank r16-r31 of
    the bank in force, then r1-r15; for a predicate, p6-p15, p1-p5, p16-p63."""
    if kind == "pclob":
        order = [f"p{n}" for n in (*range(6, 16), *range(1, 6), *range(16, 64))]
        return next((p for p in order if p in names and p not in exclude), None)
    if bank is not None:
        for n in range(16, 32):
            if f"r{n}@{bank}" in names and f"r{n}" not in exclude:
                return f"r{n}"
    return next((f"r{n}" for n in range(1, 16) if f"r{n}" in names and f"r{n}" not in exclude), None)


def _reaching(cfg, pos: int) -> set[int]:
    """IVT offsets whose handler can reach code position `pos`."""
    import networkx as nx

    target = cfg.block_of[pos]
    out = set()
    for r in cfg.regions:
        if r.is_vector and r.name in cfg.entries:
            entry = cfg.entries[r.name]
            if entry == target or target in nx.descendants(cfg.graph, entry):
                out.add(r.offset)
    return out


def inject_clobber_faults(analysis, trials: int = 200, seed: int = 0, policy: ExitPolicy | None = None) -> InjectionReport:
    """Issue 6 must-show 2: at every pv-call site, replace a clobber argument by a register the
    liveness says is live after the site, run both programs with the scribbling hypervisor
    model on the handlers that reach the site, and record whether the mismatch was caught.
    The unmodified program run natively against itself under the model is the baseline (it
    proves the clobbers written in the source dead on the states tried)."""
    from dataclasses import replace as dc_replace

    from .printer import statement_text
    from .sites import site_operands, why_live

    policy = policy or analysis.policy
    program, cfg, live = analysis.program, analysis.cfg, analysis.liveness
    native = Interpreter(program, cfg, nested_summary=policy.nested)
    baseline = verify(native, native, trials, seed, policy=policy, pv_model=scribbling_model, coverage=True)
    covered: dict[int, set] = {h.offset: h.covered for h in baseline.handlers}
    out = InjectionReport(baseline, [])
    for site in analysis.sites:
        if site.kind != "pvcall":
            continue
        call = cfg.code[site.pos]
        op = site.op
        inj = Injection(call.loc, statement_text(call))
        out.injections.append(inj)
        roles = [r for r in op.args if op.role_kind(r) == "clob"] or [r for r in op.args if op.role_kind(r) == "pclob"]
        if not roles:
            inj.explanation = "the op has no clobber argument"
            continue
        role = roles[0]
        index = op.args.index(role)
        state = live.states[site.pos]
        names = set(live.names(live.live_after(site.pos)))
        exclude = site_operands(cfg, site) | {a.name for a in call.args if isinstance(a, Reg)}
        pick = _live_pick(names, op.role_kind(role), state.bank if state is not None else None, exclude)
        inj.role, inj.original = role, str(call.args[index])
        if pick is None:
            inj.explanation = "no register of that kind is live after the site"
            continue
        inj.live = pick
        loc_name = f"{pick}@{state.bank}" if pick[0] == "r" and 16 <= int(pick[1:]) <= 31 and state and state.bank is not None else pick
        proof = why_live(cfg, live, site.pos, loc_name)
        inj.why_live = proof.describe(cfg) if proof is not None else None
        args = list(call.args)
        args[index] = Reg(pick)
        stmts = list(program.statements)
        stmts[cfg.stmt_index[site.pos]] = dc_replace(call, args=tuple(args))
        mutated = Program(program.path, stmts)
        offsets = _reaching(cfg, site.pos)
        # both sides under the scribbling model: the same scribbles, but for the one register
        # swapped in, so a difference is that register's doing (even where the baseline differs)
        result = verify(native, mutated, trials, seed, policy=policy, pv_model=scribbling_model, explain=False,
                        offsets=offsets, native_pv_model=scribbling_model)
        bad = result.mismatches
        inj.caught = bool(bad)
        if bad:
            inj.handler = bad[0].name
            continue
        inj.explanation = _explain_miss(cfg, proof, offsets, covered, trials, result)
    return out


def _explain_miss(cfg, proof, offsets, covered, trials, result) -> str:
    runs = sum(h.trials for h in result.handlers)
    if any(h.not_modelled for h in result.handlers):
        return "not modelled: " + next(h.not_modelled for h in result.handlers if h.not_modelled)
    if proof is None:
        return "no liveness proof found"
    if proof.reader is not None:
        seen = any(proof.reader in covered.get(o, ()) for o in offsets)
        where = f"{cfg.code[proof.reader].loc.use_site}"
        if not seen:
            return (f"the read that makes it live ({where}) was never executed in {runs} runs of "
                    f"{len(offsets)} handler(s): the random states never took that path")
        return f"the read at {where} executed, but the scribbled value never reached anything compared"
    return f"live only at {proof.exit}, which no run of {len(offsets)} handler(s) made observable"
