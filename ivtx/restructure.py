"""Creating clobbers (design.md "Creating clobbers"): make registers free at a site that has too few.

In the design's order of preference:
1. rename a live value into a register free over its whole live range. At the site itself that
   moves a value from one register to another and frees none, so for a pv op's clobbers it never
   helps; it is what the PAL-static convention uses to get values out of the registers the
   callee may clobber (emit_pal.py);
2. rematerialize a live value that can be recomputed right after the site: a constant
   (`movl r23=PAGE_KERNEL`, untagged: a LOAD_PHYSICAL movl is patched at boot) or a copy of an
   interruption CR that is still valid there (`mov r16=cr.ifa`: psr.ic stayed 0, nothing wrote
   the CR, no nested miss or call in between; primer section 2). The value's only reaching
   definition must be that instruction, so the reload gives every later reader the same value;
3. move the site down or up its block past instructions it has no dependence with (registers,
   CRs, PSR bits, memory/TLB: an insert never moves past a memory access or a
   `dv_serialize_*`), to where enough registers are free;
4. save/restore: predicates through a free GR (`mov rN=pr` before, `mov pr=rN,-1` after);
5. out-of-line stub when a slot would overflow: emit_call.py (it makes room, not registers).
Each applied restructuring is a record (kind, site, what moved where, why); when none applies
the reason lists why each did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .effects import effects_of
from .ir import Directive, Imm, Instruction, Label, PvCall, Reg
from .liveness import bank_names
from .machine import step
from .printer import format_operand
from .pveffects import pv_effects

REMAT_CRS = ("cr.ifa", "cr.isr", "cr.itir", "cr.iha", "cr.iim", "cr.iip", "cr.ipsr", "cr.iipa", "cr.ifs")
BANKED = [f"r{n}" for n in range(16, 32)]
STATIC = [f"r{n}" for n in range(1, 16)]


@dataclass
class Fix:
    """The outcome of create_clobbers: registers now free (ordered), the edits that free them and
    the records for the report; or `reason` why nothing applied."""

    free_gr: list[str] = field(default_factory=list)
    free_pr: list[str] = field(default_factory=list)
    edits: list = field(default_factory=list)
    records: list = field(default_factory=list)
    reason: str | None = None
    checks: dict = field(default_factory=dict)  # self-check entries for the inserted code (transform.Plan)
    moved_to: int | None = None  # code position the site now follows (down) or precedes (up)
    moved_dir: int = 0


@dataclass(frozen=True)
class _Eff:
    reads: frozenset
    writes: frozenset
    flags: frozenset


def effects(s):
    """Reads, writes (must or may) and flags of an instruction or pv call."""
    e = pv_effects(s) if isinstance(s, PvCall) else effects_of(s)
    return _Eff(e.reads, e.must_writes | e.may_writes, e.flags)


def _names(reg: str, state) -> list[str]:
    return bank_names(reg, state.bank if state is not None else None)


def _writes(a, p: int, name: str) -> bool:
    """Whether code position p may write the bank-resolved location `name`."""
    st = a.liveness.states[p]
    return any(name in _names(w, st) for w in effects(a.cfg.code[p]).writes)


def reaching_defs(a, pos: int, name: str, limit: int = 20000):
    """Positions of the writes of `name` that reach code position `pos` (before it executes), and
    the positions passed on the way; None when a path leaves the code ivtx sees (an entry, a
    summary node: a nested miss or a call may write it)."""
    cfg = a.cfg
    defs: set[int] = set()
    passed: set[int] = set()
    work = [(cfg.block_of[pos], pos - 1)]
    seen: set[int] = set()
    while work:
        if len(passed) > limit:
            return None
        bid, p = work.pop()
        blk = cfg.blocks[bid]
        found = False
        while p >= blk.first:
            if _writes(a, p, name):
                defs.add(p)
                found = True
                break
            passed.add(p)
            p -= 1
        if found:
            continue
        if bid in seen and p < blk.first and bid != cfg.block_of[pos]:
            continue
        seen.add(bid)
        preds = list(cfg.graph.predecessors(bid))
        if not preds:
            return None
        for pr in preds:
            if isinstance(pr, tuple):
                return None
            if pr not in seen:
                work.append((pr, cfg.blocks[pr].last))
    return defs, passed


def _operands(a, site) -> set[str]:
    from .sites import site_operands

    return site_operands(a.cfg, site)


def _live_after(a, site) -> set[str]:
    live = a.liveness
    return set(live.names(live.live_after(site.pos + site.length - 1)))


# --------------------------------------------------------------------------- rematerialization


@dataclass
class Remat:
    reg: str
    source: int  # code position of the defining instruction
    reload: str  # the instruction that recomputes it
    what: str  # "cr.ifa" or "the constant ..."
    reads: frozenset = frozenset()  # the registers the recomputation reads


# Registers whose value changes by itself or through the RSE: never recomputed from.
VOLATILE = {"ar.itc", "ar.ruc", "ar.bsp", "ar.bspstore", "ar.rnat", "ip", "pr", "psr", "psr.l", "psr.um"}


def remat_candidate(a, site, reg: str, exclude=frozenset()) -> Remat | str:
    """Whether the value live in `reg` after `site` can be recomputed right after it; a reason if not.

    Recomputable: a constant; a pure instruction (no memory, no privileged or other side effect,
    no predicate) whose inputs still hold the same values after the site (`mov r26=r1`,
    `mov r24=ar.pfs`, `adds r24=8,r23`) and are not in `exclude` (what the site may clobber);
    a copy of an interruption CR that is still valid (read again with its pv op)."""
    code = a.cfg.code
    state = a.liveness.states[site.pos]
    names = _names(reg, state)
    if len(names) != 1:
        return "the register bank is unknown"
    name = names[0]
    if any(_writes(a, site.pos + j, name) for j in range(site.length)):
        return "the site writes it"
    found = reaching_defs(a, site.pos, name)
    if found is None:
        return "its value may come from outside the handler's code (entry, nested miss or call)"
    defs, passed = found
    if len(defs) != 1:
        return f"{len(defs)} different writes reach the site"
    d = next(iter(defs))
    s = code[d]
    if not isinstance(s, Instruction) or s.qp not in (None, "p0"):
        return f"written by a predicated or pv instruction at {s.loc.use_site}"
    if s.tag is not None:
        return f"written by a tagged (boot-patched) instruction at {s.loc.use_site}"
    src = s.srcs[0] if len(s.srcs) == 1 else None
    if s.op in ("mov", "movl") and isinstance(src, Imm):
        text = format_operand(src) if src.value is None else hex(src.value & (2 ** 64 - 1))
        return Remat(reg, d, f"movl {reg}={text}", f"the constant {format_operand(src)}")
    if s.op == "mov" and isinstance(src, Reg) and src.name in REMAT_CRS:
        cr = src.name
        after_site = a.liveness.states[site.pos]
        for j in range(site.length):
            after_site = step(after_site, code[site.pos + j]) if after_site is not None else None
        for p in passed | {d}:
            st = a.liveness.states[p]
            if st is None or st.ic != 0:
                return f"psr.ic may be 1 between its read of {cr} and the site"
            if cr in effects(code[p]).writes:
                return f"{cr} is written at {code[p].loc.use_site} before the site"
        for j in range(site.length):
            if cr in effects(code[site.pos + j]).writes:
                return f"the site writes {cr}"
        if after_site is None or after_site.ic != 0:
            return f"psr.ic is not 0 after the site, {cr} cannot be read there"
        return Remat(reg, d, f"mov {reg}={cr}", cr)
    from .printer import format_statement, statement_text

    e = effects_of(s)
    why = f"written by '{statement_text(s)}' at {s.loc.use_site}"
    if e.flags or e.may_writes or e.must_writes != {reg} or reg in e.reads:
        return why + ", not a constant, a recomputable value or a CR copy"
    st_d = a.liveness.states[d]
    after = a.liveness.states[site.pos]
    for j in range(site.length):
        after = step(after, code[site.pos + j]) if after is not None else None
    for loc in sorted(e.reads):
        if loc in VOLATILE or loc.startswith("cr.") or not (loc[0] in "rb" or loc.startswith("ar.")):
            return why + f": it reads {loc}, which may not hold the same value later"
        if loc in exclude:
            return why + f": it reads {loc}, which the site may clobber"
        locs = _names(loc, st_d)
        if len(locs) != 1 or after is None or locs != _names(loc, after):
            return why + f": {loc} may name another register after the site (bank)"
        for p in passed | {site.pos + j for j in range(site.length)}:
            if _writes(a, p, locs[0]):
                return why + f": {loc} is written again at {code[p].loc.use_site}"
    text = format_statement(s).strip()
    return Remat(reg, d, text, f"'{statement_text(s)}'", frozenset(e.reads))


# --------------------------------------------------------------------------- moving the site


def _dependent(e1, e2) -> bool:
    """Whether two instructions' effects forbid swapping them (registers, CRs, PSR bits, pseudo
    locations; a TLB write against any memory access)."""
    if e1.writes & (e2.reads | e2.writes) or e2.writes & e1.reads:
        return True
    mem = {"load", "store", "fill", "spill", "prefetch"}
    if ("tlb" in e1.writes and e2.flags & mem) or ("tlb" in e2.writes and e1.flags & mem):
        return True
    # control flow, serialization and bank switches order everything around them; a site that
    # must end or start its group gets stops around it where it lands
    ordered = {"branch", "call", "return", "exit", "serialize_data", "serialize_instr", "bank_switch", "fence"}
    return bool((e1.flags | e2.flags) & ordered)


def move_candidates(a, site, direction: int):
    """Code positions the site could follow (down) or precede (up) within its block, nearest first,
    each with the registers free there; stops at any dependence, label, directive or bundle."""
    cfg = a.cfg
    if site.length != 1:
        return
    code, stmts = cfg.code, cfg.program.statements
    s = code[site.pos]
    es = effects(s)
    blk = cfg.blocks[cfg.block_of[site.pos]]
    p = site.pos
    while True:
        q = p + direction
        if q < blk.first or q > blk.last:
            return
        lo, hi = sorted((cfg.stmt_index[p], cfg.stmt_index[q]))
        if any(isinstance(x, (Label, Directive)) or type(x).__name__.startswith("Bundle") for x in stmts[lo + 1:hi]):
            return
        other = code[q]
        if _dependent(es, effects(other)):
            return
        p = q
        yield p


# --------------------------------------------------------------------------- the driver


def pv_form(text: str, catalog) -> str | None:
    """The catalog macro call for one native instruction (`mov r16=cr.ifa` -> `MOV_FROM_IFA(r16)`),
    or None when it is not a catalog op or the op needs clobbers."""
    from .parse import parse_text
    from .sites import SENTINEL, _match_insn, _patterns

    insn = next(x for x in parse_text(text, "<reload>").statements if isinstance(x, Instruction))
    inv = {v: k for k, v in SENTINEL.items()}
    for pat in _patterns(catalog):
        binds: dict = {}
        if len(pat.insns) == 1 and _match_insn(pat.insns[0], insn, binds):
            op = pat.op
            if any(op.role_kind(r) in ("clob", "pclob") for r in op.args):
                return None
            texts = {inv[k]: v for k, v in binds.items()}
            if pat.kr is not None:
                texts["kr"] = str(pat.kr)
            return f"{op.name}(" + ", ".join(texts[r] for r in op.args) + ")" if op.parens else op.name
    return None


def create_clobbers(a, g, files, need_gr: int, need_pr: int, catalog=None, mode: str = "macro") -> Fix:
    """Free `need_gr` GRs and `need_pr` predicates at site group `g` (transform.SiteGroup).

    `mode` is the rendering: under "macro" a recomputed CR is read with its pv op
    (`MOV_FROM_IFA(r16)`); the call renderings recompute constants only (a CR read would be
    one more call needing registers of its own)."""
    from .pvcatalog import default_catalog

    catalog = catalog or default_catalog()
    from .emit_macro import insert_after, insert_before
    from .transform import Restructuring, region_name, site_name

    if len(g.uses) != 1:
        return Fix(reason="restructuring a site inside a macro used more than once is not attempted")
    site = g.first
    name, region = site_name(a, site), region_name(a, site)
    free_gr, free_pr = list(g.free_gr), list(g.free_pr)
    fix = Fix()
    why_not: list[str] = ["rename: frees no register at the site (the value only changes register)"]
    # 2. rematerialize
    if len(free_gr) < need_gr:
        state = a.liveness.states[site.pos]
        ops = _operands(a, site)
        live = _live_after(a, site)
        order = BANKED + STATIC if state is None or state.bank == 0 else STATIC + BANKED
        reloads: list[Remat] = []
        reasons = []
        for reg in order:
            if len(free_gr) + len(reloads) >= need_gr:
                break
            if reg in ops or reg in free_gr:
                continue
            names = _names(reg, state)
            if not names or names[0] not in live:
                continue
            # whatever the site's replacement may use (its clobbers, a call's registers) is excluded
            r = remat_candidate(a, site, reg, exclude=set(g.free_gr) | set(g.free_pr) | set(g.free_br))
            if isinstance(r, Remat) and r.what in REMAT_CRS:
                pv = pv_form(r.reload, catalog) if mode == "macro" else None
                if pv is None:
                    r = f"holds {r.what}: reading it again is a privileged site of its own"
                else:
                    r.reload = pv
            if isinstance(r, Remat):
                reloads.append(r)
            elif len(reasons) < 4:
                reasons.append(f"{reg} {r}")
        if len(free_gr) + len(reloads) >= need_gr:
            stmts = [f"{r.reload}" for r in reloads]
            fix.edits.extend(insert_after(a, files, g, [";;"] + stmts + [";;"],
                                          comment=f"ivtx: recomputed, {g.op.name} may clobber "
                                                  f"{', '.join(r.reg for r in reloads)}"))
            for r in reloads:
                src = a.cfg.code[r.source].loc.use_site
                fix.records.append(Restructuring(
                    "rematerialize", name, f"{r.reg} ({r.what}, read at {src}) is read again right after the site",
                    f"every bank-0 register is live at the site; {r.reg} is its clobber, then `{r.reload}` restores "
                    f"the value for its later readers", region))
            free_gr = free_gr + [r.reg for r in reloads]
        else:
            why_not.append("rematerialize: " + ("; ".join(reasons) if reasons else "no live value to recompute"))
    # 3. move the site (only when nothing was inserted yet)
    if (len(free_gr) < need_gr or len(free_pr) < need_pr) and not fix.edits:
        moved = _try_move(a, site, need_gr, need_pr)
        if moved is not None:
            to, direction, gr, pr, text = moved
            record = Restructuring("move", name, f"the site moves {text}",
                                   "enough registers are free there and nothing between depends on it", region)
            return Fix(gr, pr, records=[record], moved_to=to, moved_dir=direction)
        why_not.append("move: blocked by a dependence (an operand, a CR, memory/TLB, a stop-sensitive "
                       "instruction or a dv_serialize directive) before enough registers are free")
    # 4. save/restore: predicates through a GR
    if len(free_pr) < need_pr:
        spare = [r for r in free_gr[need_gr:]]
        if spare:
            n = spare[0]
            fix.edits.extend(insert_before(a, files, g, [f"mov {n}=pr"], leading_stop=True))
            restore = insert_after(a, files, g, [";;", f"mov pr={n},-1", ";;"], comment="ivtx: predicates restored")
            tag = ("after", id(restore[-1]))
            restore[-1].tag = tag
            fix.checks[tag] = ("after", lambda s, n=n: getattr(s, "mnemonic", "") == "mov" and
                               str(s.dests[0]) == "pr" and str(s.srcs[0]) == n, [n], f"the predicate restore from {n}")
            fix.edits.extend(restore)
            fix.records.append(Restructuring(
                "save-restore", name, f"the predicates are saved in {n} before the site and restored after it",
                f"{g.op.name} needs {need_pr} predicate clobber(s) and none is free; {n} is free on both sides",
                region))
            free_gr = [r for r in free_gr if r != n]
            free_pr = [f"p{k}" for k in range(6, 16)] + [f"p{k}" for k in range(1, 6)] + free_pr
        else:
            why_not.append("save/restore: no GR free on both sides to hold the predicates")
    elif len(free_gr) < need_gr:
        why_not.append("save/restore: a GR saved through another free GR frees none (that one would do)")
    if len(free_gr) < need_gr or len(free_pr) < need_pr:
        why_not.append("out-of-line stub: makes room in the slot, not registers")
        return Fix(reason="; ".join(why_not))
    fix.free_gr, fix.free_pr = free_gr, free_pr
    return fix


def _try_move(a, site, need_gr: int, need_pr: int):
    from .sites import GR_ORDER_OTHER, PR_ORDER

    live = a.liveness
    state = live.states[site.pos]
    ops = _operands(a, site)
    for direction, word in ((1, "below"), (-1, "above")):
        for p in move_candidates(a, site, direction):
            after = set(live.names(live.live_after(p) if direction == 1 else live.live_before(p)))
            gr = [r for r in BANKED + GR_ORDER_OTHER[:15] if r not in ops
                  and all(n not in after for n in _names(r, state)) and len(_names(r, state)) == 1]
            pr = [x for x in PR_ORDER if x not in ops and x not in after]
            if len(gr) >= need_gr and len(pr) >= need_pr:
                from .printer import statement_text

                return p, direction, gr, pr, f"{word} '{statement_text(a.cfg.code[p])}' ({a.cfg.code[p].loc.use_site})"
    return None
