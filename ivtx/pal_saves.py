"""Which values live across a PAL-static call are saved, recomputed or lent (design.md "Creating
clobbers", docs/pal-static.md, primer section 8).

The callee may clobber bank-0 r24-r31, r28-r30 of the bank in force and b0. A value live after the
site in one of those is, in order of preference:
- recomputed after the call when its one reaching definition is a constant or a pure instruction
  whose inputs the call preserves (restructure.remat_candidate): `mov r26=r1` again;
- moved to a free preserved register (r1-r15, r16-r23 of the bank in force) before the call and back
  after it;
and when the free preserved registers are too few:
- a recomputation whose input must hold a saved value recomputes that input first, from registers
  that are back by then (ivt_tlb.S with CONFIG_SMP: `dep r23=0,r26,0,14` once r26 is restored, then
  `adds r24=...,r23`), a *helper*;
- a preserved register read later whose value can itself be recomputed after the call from
  registers the call keeps (`mov r22=r12`) is *lent*: it holds a saved value during the call.
When nothing fits, the reason names each value and why each preserved register cannot take one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ir import Instruction
from .restructure import REMAT_CRS, Remat, remat_candidate

if TYPE_CHECKING:
    from .emit_pal import PalOp

SCRATCH = [f"r{n}" for n in range(24, 32)]  # bank 0: always the callee's
CALLER_BANK_SCRATCH = ["r28", "r29", "r30"]  # of the bank in force (index, argument/result, scratch)
NON_BANKED = [f"r{n}" for n in range(1, 16)]
PRESERVED = NON_BANKED + [f"r{n}" for n in range(16, 24)]


def index_of(table: list, op: str, kr: int | None = None) -> "PalOp":
    return next(p for p in table if p.op == op and p.kr == kr)


@dataclass
class PalCall:
    """One call of a site: its index entry, predicate, argument and result registers (as written)."""

    pal: "PalOp"  # emit_pal.PalOp: the index table entry
    pred: str
    arg: str | None
    result: str | None
    canonical: tuple = (None, None, None)  # (pred, arg, result) as registers, when every use agrees


@dataclass
class PalSite:
    calls: list[PalCall]
    saves: list[tuple[str, str]]  # (register or b0, temp)
    clobbered: list[str]  # locations the call may overwrite that are dead after it
    bank_before: int | None
    out_of_line: bool = False
    index: int = 0
    uses: list = field(default_factory=list)
    temps: list = field(default_factory=list)
    reloads: list = field(default_factory=list)  # (register, instruction recomputing it, what)
    arg_regs: list = field(default_factory=list)  # per call: the argument register (canonical)
    ret: str | None = None  # out of line at a macro body: the GR holding the return address
    tail: bool = False  # out of line as a tail call (the use restores after the callee returns)
    chain: list = field(default_factory=list)  # out of line: the consecutive sites whose calls follow in the same sequence
    result_regs: list = field(default_factory=list)  # per use: the result register (canonical)
    helpers: list = field(default_factory=list)  # (temporary, instruction, what): recomputed after the restores
    late: set = field(default_factory=set)  # recomputations that read a helper's register (emitted after it)
    freed: list = field(default_factory=list)  # live preserved registers lent as temporaries (recomputed after)


def plan_site(a, g, table: list, extra_temps: int = 0, shared: bool = False) -> PalSite | str:
    """Calls, saves and temporaries for one site group, or why it cannot be called."""
    from .machine import step

    op = g.op
    uses = g.uses
    roles = None
    agree = True
    for u in uses:
        r = {k: v for k, v in u.args.items() if op.role_kind(k) not in ("clob", "pclob")}
        agree = agree and (roles is None or r == roles)
        roles = roles or r
    texts = g.role_text
    kr = int(roles["kr"]) if "kr" in roles else None
    if op.name == "ITC_I_AND_D":
        calls = [PalCall(index_of(table, "ITC_I"), texts.get("pred_i", "p0"), texts.get("src"), None,
                         (roles.get("pred_i", "p0"), roles.get("src"), None)),
                 PalCall(index_of(table, "ITC_D"), texts.get("pred_d", "p0"), texts.get("src"), None,
                         (roles.get("pred_d", "p0"), roles.get("src"), None))]
    else:
        pal = index_of(table, op.name, kr)
        calls = [PalCall(pal, texts.get("pred", "p0"), texts.get(pal.arg) if pal.arg else None,
                         texts.get(pal.result) if pal.result else None,
                         (roles.get("pred", "p0"), roles.get(pal.arg) if pal.arg else None,
                          roles.get(pal.result) if pal.result else None))]
    rfi = op.name == "RFI"
    live = a.liveness
    dst_role = next((r for r in op.args if op.role_kind(r) == "dst"), None)
    # every use must need the same saves and reloads: a save where the value is dead would read it,
    # and make it look live to the sites before (the self-check would rightly refuse the output)
    saves: list[str] = []
    reloads: dict[str, tuple] = {}  # register -> (instruction, what)
    no_reload: set[str] = set()
    why_saved: dict[str, str] = {"b0": "interrupted state"}  # why a value cannot be recomputed instead
    per_use: list[tuple] = []
    dsts: set[str] = set()
    clobbered = None
    temps_pool = None
    for u in uses:
        st = live.states[u.pos]
        if st is None or st.bank is None:
            return "the register bank at the site is unknown: r24-r31 cannot be named"
        after = st
        for j in range(u.length):
            after = step(after, a.cfg.code[u.pos + j])
        bank = st.bank
        locs = {f"{r}@{bank}" for r in CALLER_BANK_SCRATCH} | {f"{r}@0" for r in SCRATCH} | {"b0"}
        live_after = set(live.names(live.live_after(u.pos + u.length - 1)))
        dst = u.args.get(dst_role) if dst_role else None
        dst_loc = f"{dst}@{after.bank}" if dst and dst[1:].isdigit() and 16 <= int(dst[1:]) <= 31 else dst
        if dst:
            dsts.add(dst)
        needed = sorted((locs & live_after) - {dst_loc})
        per_use.append(tuple(x.split("@")[0] for x in needed))
        # a recomputation must not read what the callee may overwrite; the temporaries are then
        # chosen among the registers no recomputation reads
        excl = set(CALLER_BANK_SCRATCH) | {"b0"} | (set(SCRATCH) if bank == 0 else set())
        for loc in needed:
            if loc == "b0":
                if not rfi and "b0" not in saves:
                    saves.append("b0")  # (RFI: the entry puts b0 back; the dispatcher kept it in r28)
                continue
            if int(loc.split("@")[1]) != bank or after.bank != bank:
                return (f"{loc.replace('@', ' of bank ')} is live across the call and cannot be saved "
                        "(the call switches banks, or it is in the bank not in force)")
            if rfi:
                return f"{loc.split('@')[0]} is live at rfi and the PAL-static callee may clobber it"
            reg = loc.split("@")[0]
            r = remat_candidate(a, u, reg, exclude=excl)
            if isinstance(r, Remat) and r.what not in REMAT_CRS and reloads.get(reg, (r.reload,))[0] == r.reload:
                reloads[reg] = (r.reload, r.what, r.reads)
            else:
                no_reload.add(reg)
                why_saved.setdefault(reg, _not_recomputable(r))
        clob = set(locs - set(needed) - ({dst_loc} if dst_loc else set()))
        clobbered = clob if clobbered is None else clobbered & clob
        ok = [r for r in g.free_gr if r in (NON_BANKED if after.bank != bank else PRESERVED)]
        temps_pool = ok if temps_pool is None else [r for r in temps_pool if r in ok]
    for reg in sorted(no_reload | set(reloads)):
        if reg in no_reload:
            reloads.pop(reg, None)
            saves.append(reg)
    keep, temps_pool, helpers = _choose(a, g, reloads, saves, temps_pool, extra_temps, dsts, bank, after, live_after)
    for reg in sorted(reloads):
        if reg not in keep:
            reloads.pop(reg)
            saves.append(reg)
    if len(set(per_use)) > 1:
        return "the macro body's uses have different registers live across the call"
    if (set(saves) | set(reloads)) & dsts:
        return "the op's result register is live across the call at another use of the macro body"
    clobbered = sorted(clobbered)  # dead after the call at every use (checked on the output)
    if shared and not agree:
        return "out of line, a macro body's uses would need one copy of the code: they use different registers"
    if len(temps_pool) < len(saves) + extra_temps:
        more = " (and one for the return address, out of line)" if extra_temps else ""
        return (f"{len(saves)} register(s) live across the call ({', '.join(saves)}) but only {len(temps_pool)} "
                f"preserved register(s) free to hold them{more}"
                + _shortage_detail(a, g, saves, why_saved, temps_pool, dsts, bank, after, live_after))
    pairs = list(zip(saves, temps_pool))
    ps = PalSite(calls, pairs, clobbered, live.states[uses[0].pos].bank,
                 temps=[t for _, t in pairs if t not in helpers or helpers[t][1] == "free"])
    if extra_temps:
        ps.ret = temps_pool[len(saves)]
        ps.temps.append(ps.ret)
    ps.reloads = [(reg, text, what) for reg, (text, what, _) in sorted(reloads.items())]
    ps.helpers = [(t, h.reload, h.what) for t, (h, _) in helpers.items()]
    ps.freed = [t for t, (_, kind) in helpers.items() if kind == "live"]
    ps.late = {reg for reg, (_, _, reads) in reloads.items() if reads & set(helpers)}
    ps.arg_regs = [roles.get("src") if c.arg is not None else None for c in calls]
    ps.result_regs = [u.args.get(dst_role) if dst_role else None for u in uses]
    return ps


def _choose(a, g, reloads: dict, saves: list, temps_pool: list, extra_temps: int, dsts: set, bank: int,
            after, live_after: set) -> tuple[list, list, dict]:
    """Which candidates to recompute (the others are saved) and the temporaries, in order:
    (recomputed registers, temporaries, helpers). A recomputation needs no temporary, but its
    inputs cannot be temporaries unless they are recomputed first themselves (a helper); a
    preserved register live after the site whose value can be recomputed after the call can also
    hold a saved value during it (a helper too). The choice that fits with the most recomputations
    and then the fewest helpers wins; helpers only at a site used once.
    helpers: temporary -> (Remat, "free" | "live")."""
    from .sites import site_operands

    cands = sorted(reloads)
    one = g.uses[0] if len(g.uses) == 1 and after.bank == bank else None
    scratch = set(CALLER_BANK_SCRATCH) | (set(SCRATCH) if bank == 0 else set())
    freeable: list[str] = []
    if one is not None:
        ops = site_operands(a.cfg, one)
        for r in PRESERVED:
            name = f"{r}@{bank}" if 16 <= int(r[1:]) <= 31 else r
            if r in temps_pool or r in ops or r in dsts or name not in live_after:
                continue
            rm = remat_candidate(a, one, r)
            if isinstance(rm, Remat) and rm.what not in REMAT_CRS:
                freeable.append(r)
    taken = set(temps_pool) | set(freeable)
    best = None
    for mask in range(1 << len(cands)):
        keep = [r for k, r in enumerate(cands) if mask >> k & 1]
        sources = set().union(*(reloads[r][2] for r in keep)) if keep else set()
        restored = set(saves) | (set(cands) - set(keep))
        need = len(restored) + extra_temps
        pool = [t for t in temps_pool if t not in sources]
        helpers: dict = {}
        if len(pool) < need and one is not None:
            for t, kind in [(t, "free") for t in temps_pool if t in sources] + [(t, "live") for t in freeable]:
                if len(pool) >= need:
                    break
                h = _helper(a, one, t, restored, set(keep) | dsts, taken, scratch)
                if h is not None:
                    pool.append(t)
                    helpers[t] = (h, kind)
        if len(pool) >= need and (best is None or (len(keep), -len(helpers)) > (len(best[0]), -len(best[2]))):
            best = (keep, pool, helpers)
    if best is not None:
        return best
    sources = set().union(*(x[2] for x in reloads.values())) if cands else set()
    return cands, [t for t in temps_pool if t not in sources], {}


def _not_recomputable(r) -> str:
    if isinstance(r, Remat):
        return (f"holds {r.what}: reading it again is a PAL call of its own" if r.what in REMAT_CRS
                else "recomputed differently at the uses of the macro body")
    return r


def _shortage_detail(a, g, saves, why_saved, temps_pool, dsts, bank, after, live_after) -> str:
    """Why each value must be saved, and why no more preserved register can hold one: the
    registers it would take are live after the site and cannot be recomputed after the call
    (grouped by reason)."""
    from .report import compact
    from .sites import site_operands

    out = [f"{reg} {why_saved[reg]}" if reg in why_saved else f"{reg} would need its inputs, which the "
           "temporaries take" for reg in saves]
    if len(g.uses) == 1 and after.bank == bank:
        u = g.uses[0]
        ops = site_operands(a.cfg, u)
        by_reason: dict[str, list[str]] = {}
        lent = []
        for r in PRESERVED:
            name = f"{r}@{bank}" if 16 <= int(r[1:]) <= 31 else r
            if r in temps_pool or name not in live_after:
                continue
            rm = remat_candidate(a, u, r)
            if r in ops or r in dsts:
                why = "operands of the site"
            elif isinstance(rm, Remat) and rm.what not in REMAT_CRS:
                lent.append(f"{r} ('{rm.reload}' after the call)")
                continue
            else:
                why = _not_recomputable(rm)
            by_reason.setdefault(why, []).append(r)
        held = [f"{compact(regs)}: {why}" for why, regs in by_reason.items()]
        if lent:
            held.append("recomputable after the call, so each can hold one value: " + ", ".join(lent))
        if held:
            out.append("the other preserved registers hold values read later (" + "; ".join(held) + ")")
    return ": " + "; ".join(out)


def reg_reads(text: str) -> set[str]:
    """The registers one instruction (as text) reads."""
    from .effects import effects_of
    from .parse import parse_text

    insn = next(x for x in parse_text(text + "\n", "<reload>").statements if isinstance(x, Instruction))
    return set(effects_of(insn).reads)


def _helper(a, use, reg: str, restored: set, forbidden: set, taken: set, scratch: set):
    """How to recompute `reg` after the call when it holds a saved value during it (it is a
    temporary): a pure instruction whose own inputs hold, once the saved registers are back, the
    values they had at the site: restored registers, or preserved ones no temporary can be (for
    example `dep r23=0,r26,0,14` with r26 restored, or `mov r22=r12`). remat_candidate proved that
    the instruction gives `reg` the very value it had at the site. None when there is none."""
    r = remat_candidate(a, use, reg)
    if not isinstance(r, Remat) or r.what in REMAT_CRS:
        return None
    for x in r.reads:
        if x in forbidden or (x not in restored and (x in scratch or x in taken or x == "b0")):
            return None
    return r
