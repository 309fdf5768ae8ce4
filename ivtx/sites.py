"""Privileged-instruction sites: which instruction is which pv op, what it needs, what is free.

A site is a PvCall (already paravirtualized source) or a native instruction that matches a
catalog op's native text (longest sequence first). Sensitive instructions that match no op
(fc, ttag, ptc.*, cpuid/pmd reads ...) are findings. Free registers are those the liveness
proves dead right after the site and that are not operands of the site; the choice among
them is deterministic: banked r16-r31 of the bank in force (ascending), then the other GRs
(ascending); predicates p6-p15 then p1-p5, p16-p63; branch registers b6, b7, b0-b5.

A name is offered only when it surely means a register the site may use (primer sections 1,
2): at a bank switch a banked name must be dead in both banks, and r32-r127 only inside a
frame the code made itself (`cover`, then `alloc`, on every path: `own_frame_size`).
"""

from __future__ import annotations

import re
import weakref
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

from .cfg import CFG
from .diag import default_sources
from .effects import effects_of
from .ir import Imm, Instruction, PvCall, Reg
from .liveness import Liveness, bank_names
from .pvcatalog import Catalog, PvOp, default_catalog

SENTINEL = {"dst": "r121", "src": "r122", "pred": "p61", "pred_i": "p62", "pred_d": "p63"}
SENSITIVE_FLAGS = {"privileged", "sensitive"}


@dataclass
class Pattern:
    op: PvOp
    insns: list[Instruction]  # parsed native text with sentinel registers
    kr: int | None = None


@lru_cache(maxsize=4)
def _patterns(catalog: Catalog) -> list[Pattern]:
    from .parse import parse_text
    from string import Template

    out = []
    for op in catalog.ops.values():
        krs = range(8) if "kr" in op.args else [None]
        for kr in krs:
            values = {a: SENTINEL.get(a, "r0") for a in op.args}
            if kr is not None:
                values["kr"] = str(kr)
            text = Template(op.native).substitute(values)
            prog = parse_text(text.replace(";;", "\n").replace(";", "\n"), path=f"<catalog {op.name}>")
            insns = [s for s in prog.statements if isinstance(s, Instruction)]
            out.append(Pattern(op, insns, kr))
    out.sort(key=lambda p: -len(p.insns))
    return out


def _match_insn(pat: Instruction, insn: Instruction, binds: dict) -> bool:
    if pat.mnemonic != insn.mnemonic or len(pat.dests) != len(insn.dests) or len(pat.srcs) != len(insn.srcs):
        return False
    pq = pat.qp or "p0"
    iq = insn.qp or "p0"
    if pq in SENTINEL.values():
        binds[pq] = iq
    elif pq != iq:
        return False
    for a, b in zip(pat.dests + pat.srcs, insn.dests + insn.srcs):
        if isinstance(a, Reg) and a.name in SENTINEL.values():
            if not isinstance(b, Reg) or b.name[0] != a.name[0]:
                return False
            if binds.setdefault(a.name, b.name) != b.name:
                return False
        elif isinstance(a, Imm):
            if not isinstance(b, Imm) or a.value is None or a.value != b.value:
                return False
        elif a != b:
            return False
    return True


@dataclass
class WhyLive:
    """The proof that a location is live after a site: where it is read next, or which exit reads it."""

    location: str
    reader: int | None  # code position of the read
    exit: str | None = None  # or the exit / summary that makes it live

    def describe(self, cfg: CFG) -> str:
        if self.reader is not None:
            s = cfg.code[self.reader]
            return f"read at {s.loc.use_site} ({_text(s)})"
        return f"live at {self.exit}"


@dataclass
class Site:
    pos: int  # code position of the (first) instruction
    length: int  # instructions covered (sequence ops)
    op: PvOp | None  # None: sensitive instruction outside the catalog
    kind: str  # "pvcall" | "native" | "uncatalogued"
    args: dict[str, str]  # role -> operand text (registers, predicate, kr)
    needs_gr: int
    needs_pr: int
    free_gr: list[str] = field(default_factory=list)  # ordered by preference
    free_pr: list[str] = field(default_factory=list)
    free_br: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    unresolved: str | None = None
    state: str = ""
    region: str = ""
    everything_live: str | None = None  # why the analysis could prove nothing free
    unknown_paths: list[str] = field(default_factory=list)  # everything-live exits reachable from here
    bank: int | None = None  # the register bank in force at the site (None: unknown)
    switched: str | None = None  # inside a macro replaced as a whole per hypervisor
    claims: dict[str, str] = field(default_factory=dict)  # free register -> the convention-file claim it owes that to

    @property
    def resolved(self) -> bool:
        return self.unresolved is None


@lru_cache(maxsize=4)
def _pattern_index(catalog: Catalog) -> dict[str, tuple[dict, list]]:
    """mnemonic -> (patterns by their first instruction's first fixed register operand, as
    (number of dests, operand index, name); patterns with no fixed register), each paired
    with its rank in _patterns. Only a filter: _match_insn still decides."""
    sentinels = set(SENTINEL.values())
    index: dict[str, tuple[dict, list]] = {}
    for rank, p in enumerate(_patterns(catalog)):
        first = p.insns[0]
        key = next(((len(first.dests), i, a.name) for i, a in enumerate(first.dests + first.srcs)
                    if isinstance(a, Reg) and a.name not in sentinels), None)
        fixed, free = index.setdefault(first.mnemonic, ({}, []))
        (free if key is None else fixed.setdefault(key, [])).append((rank, p))
    return index


def _candidates(index: dict, s: Instruction) -> list[Pattern]:
    """The patterns that can start at `s`, in _patterns order (longest first)."""
    entry = index.get(s.mnemonic)
    if entry is None:
        return []
    fixed, free = entry
    found = list(free)
    nd = len(s.dests)
    for i, a in enumerate(s.dests + s.srcs):
        if type(a) is Reg:
            hit = fixed.get((nd, i, a.name))
            if hit:
                found += hit
    if len(found) > 1:
        found.sort(key=lambda rp: rp[0])
    return [p for _, p in found]


def find_sites(cfg: CFG, catalog: Catalog | None = None) -> list[Site]:
    cat = catalog or default_catalog()
    index = _pattern_index(cat)
    code = cfg.code
    sites: list[Site] = []
    pos = 0
    n = len(code)
    while pos < n:
        s = code[pos]
        if isinstance(s, PvCall):
            op = cat.get(s.name)
            args = {role: _arg_text(a) for role, a in zip(op.args, s.args)}
            sites.append(_new_site(pos, 1, op, "pvcall", args))
            pos += 1
            continue
        matched = None
        for p in _candidates(index, s):
            binds: dict = {}
            k = len(p.insns)
            if pos + k > n:
                continue
            if all(isinstance(code[pos + j], Instruction) and cfg.block_of[pos + j] == cfg.block_of[pos]
                   and _match_insn(p.insns[j], code[pos + j], binds) for j in range(k)):
                matched = (p, binds)
                break
        if matched:
            p, binds = matched
            inv = {v: k for k, v in SENTINEL.items()}
            args = {inv[k]: v for k, v in binds.items()}
            if p.kr is not None:
                args["kr"] = str(p.kr)
            sites.append(_new_site(pos, len(p.insns), p.op, "native", args))
            pos += len(p.insns)
            continue
        flags = effects_of(s).flags
        if flags & SENSITIVE_FLAGS:
            sites.append(Site(pos, 1, None, "uncatalogued", {}, 0, 0))
        pos += 1
    return sites


def _new_site(pos: int, length: int, op: PvOp, kind: str, args: dict) -> Site:
    gr = sum(1 for a in op.args if op.role_kind(a) == "clob")
    pr = sum(1 for a in op.args if op.role_kind(a) == "pclob")
    return Site(pos, length, op, kind, args, gr, pr)


def _arg_text(a) -> str:
    if isinstance(a, Reg):
        return a.name
    return str(a)


def _text(s) -> str:
    from .printer import statement_text

    return statement_text(s)


GR_ORDER_OTHER = [f"r{n}" for n in range(1, 16)] + [f"r{n}" for n in range(32, 128)]
GR_ORDER = [f"r{n}" for n in range(16, 32)] + GR_ORDER_OTHER  # banked r16-r31 first
PR_ORDER = [f"p{n}" for n in range(6, 16)] + [f"p{n}" for n in range(1, 6)] + [f"p{n}" for n in range(16, 64)]
BR_ORDER = ["b6", "b7", "b0", "b1", "b2", "b3", "b4", "b5"]


def site_operands(cfg: CFG, site: Site) -> set[str]:
    """Registers the site itself names (they can never be its clobbers)."""
    out: set[str] = set()
    for j in range(site.length):
        s = cfg.code[site.pos + j]
        if isinstance(s, PvCall):
            ops = s.args
        else:
            ops = s.dests + s.srcs
            if s.qp:
                out.add(s.qp)
        for o in ops:
            if isinstance(o, Reg):
                out.add(o.name)
            elif hasattr(o, "base"):
                out.add(o.base.name)
            elif hasattr(o, "index"):
                out.add(o.index.name)
    if site.kind == "pvcall":
        # the human clobbers are what we check, not operands
        op = site.op
        for role, val in site.args.items():
            if op.role_kind(role) in ("clob", "pclob"):
                out.discard(val)
    return out


_IDENT = re.compile(r"[A-Za-z_]\w*")


def macros_used(loc, sources=None) -> list[str]:
    """Names of the macros whose expansion produced a statement: the identifier at each
    `via` location of its Loc chain (innermost first)."""
    cache = sources or default_sources()
    out = []
    via = loc.via
    while via is not None:
        line = cache.line(via.file, via.line)
        if line is not None:
            m = _IDENT.match(line, max(via.col - 1, 0))
            if m:
                out.append(m.group(0))
        via = via.via
    return out


def enclosing_calls(loc, names, sources=None) -> list[str]:
    """Macros among `names` whose call's argument list contains a location of the chain:
    `DO_SAVE_MIN(COVER, mov r30=cr.ifs, , ...)` encloses the `mov` written as its argument."""
    cache = sources or default_sources()
    found = []
    cur = loc
    while cur is not None:
        line = cache.line(cur.file, cur.line)
        if line is not None:
            upto = line[: max(cur.col - 1, 0)]
            for name in names:
                start = upto.rfind(name + "(")
                if start < 0:
                    continue
                depth = 0
                for ch in upto[start + len(name):]:
                    depth += ch == "("
                    depth -= ch == ")"
                if depth > 0:
                    found.append(name)
        cur = cur.via
    return found


# --------------------------------------------------------------------------- register frame and bank
#
# Two ways a register *name* at a site can mean something other than what the liveness
# tracked under that name (primer sections 1 and 2):
# - r32-r127 are renamed by the register stack. At vector entry they are the interrupted
#   frame (context state, preserved by `cover` and the RSE even if the name is written
#   later in a new frame); after `cover` the frame is empty and naming r32 faults. Only
#   after `cover` ... `alloc i,l,o,r` do r32..r32+sof-1 name registers the handler owns.
# - A bank switch (`bsw.0/1`, BSW_0/BSW_1) changes what r16-r31 name in the middle of the
#   replacement code, so a banked clobber must be dead in both banks.

LOOP_ROTATIONS = {"ctop", "cexit", "wtop", "wexit"}


def frame_event(s) -> tuple[str, int | None] | None:
    """How statement `s` changes the register frame: ("alloc", sof or None), ("cover", None),
    ("other", None) for any other renaming (br.call/br.ret/rfi/rotation/clrrrb), else None."""
    if isinstance(s, PvCall):
        if s.name == "COVER":
            return ("cover", None)
        return ("other", None) if s.name == "RFI" else None
    if not isinstance(s, Instruction):
        return None
    if s.op == "alloc":
        vals = [o.value if isinstance(o, Imm) else None for o in s.srcs[1:4]]
        return ("alloc", sum(vals) if len(vals) == 3 and None not in vals else None)
    if s.mnemonic == "cover":
        return ("cover", None)
    if s.op == "clrrrb" or s.mnemonic == "rfi":
        return ("other", None)
    if s.op in ("br", "brl") and ({"call", "ret"} | LOOP_ROTATIONS) & set(s.completers):
        return ("other", None)
    return None


TOP = "top"  # not reached yet (the forward analysis starts optimistic)
_FRAMES: dict[int, tuple] = {}  # id(cfg) -> (weak reference to it, table); a CFG is not hashable


def _frame_step(state, s):
    """Frame ownership after statement `s`: an int n (r32..r32+n-1 belong to a frame this code
    made with `cover` then `alloc`), None (the interrupted frame, or unknown), or TOP."""
    if state == TOP:
        return TOP
    ev = frame_event(s)
    if ev is None:
        return state
    kind, n = ev
    if kind == "cover":
        return 0
    if kind == "alloc":
        return n if isinstance(state, int) and n is not None else None
    return None


def _meet(a, b):
    if a == TOP:
        return b
    if b == TOP:
        return a
    if a is None or b is None:
        return None
    return min(a, b)


def _frame_table(cfg: CFG) -> list:
    """Frame ownership after every code position: a forward must-analysis over the CFG
    (vector entries and code nothing reaches start with the interrupted frame, a merge keeps
    the smaller own frame, summary nodes other than the nested miss forget it)."""
    hit = _FRAMES.get(id(cfg))
    if hit is not None and hit[0]() is cfg:
        return hit[1]
    g = cfg.graph
    starts = {b for b in cfg.blocks if g.in_degree(b) == 0}
    starts |= {cfg.entries[r.name] for r in cfg.regions if r.is_vector and r.name in cfg.entries}

    def state_in(n):
        st = None if n in starts else TOP
        for pred in g.predecessors(n):
            st = _meet(st, out.get(pred, TOP))
        return st

    out: dict = {}
    work = deque(g.nodes)
    queued = set(work)
    while work:
        n = work.popleft()
        queued.discard(n)
        st = state_in(n)
        if isinstance(n, int):
            for p in cfg.blocks[n].items:
                st = _frame_step(st, cfg.code[p])
        elif n[0] != "nested" and st != TOP:
            st = None  # calls, unknown code: the frame may have changed
        if out.get(n, TOP) != st:
            out[n] = st
            for succ in g.successors(n):
                if succ not in queued:
                    work.append(succ)
                    queued.add(succ)
    table: list = [None] * len(cfg.code)
    for bid, blk in cfg.blocks.items():
        st = state_in(bid)
        for p in blk.items:
            st = _frame_step(st, cfg.code[p])
            table[p] = None if st == TOP else st
    key = id(cfg)
    _FRAMES[key] = (weakref.ref(cfg, lambda _ref, key=key: _FRAMES.pop(key, None)), table)
    return table


def own_frame_size(cfg: CFG, pos: int) -> int:
    """How many stacked registers (r32 upwards) name a frame the code itself allocated, right
    after code position `pos`: the sof of the `alloc` that follows a `cover` on every path to
    it, with no other frame change between. 0 otherwise (the interrupted frame, or unknown).

        cover ;; ... alloc r14=ar.pfs,0,0,2,0 ;; mov out0=cr.iim    -> 2 (r32, r33)
        (vector entry) mov r16=cr.ifa                                -> 0 (context frame)
    """
    st = _frame_table(cfg)[pos]
    return st if isinstance(st, int) else 0


def switches_bank(s) -> bool:
    if isinstance(s, PvCall):
        return s.name in ("BSW_0", "BSW_1")
    return isinstance(s, Instruction) and "bank_switch" in effects_of(s).flags


def clobber_locations(cfg: CFG, live: Liveness, site: Site, reg: str, facts: tuple | None = None) -> list[str] | None:
    """The locations a clobber named `reg` at `site` may overwrite, bank-resolved; None when
    the name cannot be proved to mean a register the site may use (unknown bank, a stacked
    register outside the code's own frame). `facts` is site_facts(cfg, live, site), for
    callers that ask about many registers at one site."""
    if reg[0] == "r" and reg[1:].isdigit():
        frame, switches, bank = facts or site_facts(cfg, live, site)
        n = int(reg[1:])
        if n >= 32 and n - 32 >= frame:
            return None
        if 16 <= n <= 31:
            if switches:
                return [f"{reg}@0", f"{reg}@1"]
            names = bank_names(reg, bank)
            return names if len(names) == 1 else None
    return [reg]


def site_facts(cfg: CFG, live: Liveness, site: Site) -> tuple[int, bool, int | None]:
    """What clobber_locations needs to know about a site: (own frame size after it, whether
    it switches the bank, the bank in force before it)."""
    state = live.states[site.pos]
    return (own_frame_size(cfg, site.pos + site.length - 1),
            any(switches_bank(cfg.code[site.pos + j]) for j in range(site.length)),
            state.bank if state is not None else None)


def analyse_sites(cfg: CFG, live: Liveness, sites: list[Site], catalog: Catalog | None = None, sources=None) -> None:
    """Fill free sets and the deterministic choice of every site."""
    u = live.universe
    switched = (catalog or default_catalog()).switched or {}
    masks: dict = {}  # site_facts -> [(GR, mask of what it overwrites or None)]
    pr_masks = [(p, _mask(u, [p])) for p in PR_ORDER]
    br_masks = [(b, _mask(u, [b])) for b in BR_ORDER]
    for site in sites:
        if switched and site.kind != "pvcall":
            loc = cfg.code[site.pos].loc
            names = macros_used(loc, sources)
            hit = next((n for n in names if n in switched), None)
            if hit is None:
                hit = next(iter(enclosing_calls(loc, switched, sources)), None)
            if hit is not None:
                site.switched = f"inside {hit}: {switched[hit]}"
        last = site.pos + site.length - 1
        after = live.live_after(last)
        state = live.states[site.pos]
        site.state = state.describe() if state is not None else "unreachable from a vector entry"
        region = cfg.region_of(site.pos)
        site.region = region.name if region else ""
        site.unknown_paths = unknown_exits(cfg, live, last)
        if after == u.all:
            site.everything_live = site.unknown_paths[0] if site.unknown_paths else _why_all(cfg, live, last)
        site.bank = state.bank if state is not None else None
        operands = site_operands(cfg, site)
        facts = site_facts(cfg, live, site)
        gr_masks = masks.get(facts)
        if gr_masks is None:  # what each GR name overwrites depends on the facts alone
            gr_masks = masks[facts] = [(r, _mask(u, clobber_locations(cfg, live, site, r, facts)))
                                       for r in GR_ORDER]
        # a clobber is free when none of its locations is live; None: unknown bank, or a
        # stacked register of someone else's frame
        gr = [r for r, m in gr_masks if m is not None and r not in operands and not after & m]
        site.free_gr = gr
        site.free_pr = [p for p, m in pr_masks if p not in operands and not after & m]
        site.free_br = [b for b, m in br_masks if b not in operands and not after & m]
        if site.op is None or site.switched:
            continue
        if site.kind == "pvcall":
            site.chosen = [v for r, v in site.args.items() if site.op.role_kind(r) in ("clob", "pclob")]
            continue
        if len(gr) < site.needs_gr or len(site.free_pr) < site.needs_pr:
            need = []
            if len(gr) < site.needs_gr:
                need.append(f"{site.needs_gr} GR clobber(s), {len(gr)} free")
            if len(site.free_pr) < site.needs_pr:
                need.append(f"{site.needs_pr} predicate clobber(s), {len(site.free_pr)} free")
            why = "; ".join(need)
            if site.everything_live:
                why += f" ({site.everything_live})"
            elif site.unknown_paths:
                why += f" (paths reach {'; '.join(site.unknown_paths)})"
            site.unresolved = why
        else:
            site.chosen = gr[: site.needs_gr] + site.free_pr[: site.needs_pr]


def _mask(u, names: list[str] | None) -> int | None:
    """The bits of `names` in the universe (a name outside it is never live)."""
    if names is None:
        return None
    m = 0
    for n in names:
        if n in u.bit:
            m |= 1 << u.bit[n]
    return m


def unknown_exits(cfg: CFG, live: Liveness, pos: int) -> list[str]:
    """The 'everything live' exits (unknown targets, unresolved calls and branches) that paths
    from code position `pos` reach, nearest first, each saying where and why."""
    start = cfg.block_of[pos]
    seen = {start}
    q = deque([start])
    out: list[str] = []
    while q:
        n = q.popleft()
        if n in live.why_all:
            text = _describe_exit(cfg, n, live.why_all[n])
            if text not in out:
                out.append(text)
            continue  # nothing flows back from beyond an everything-live exit
        for s in cfg.graph.successors(n):
            if s not in seen:
                seen.add(s)
                q.append(s)
    return out


def _describe_exit(cfg: CFG, node, origin: str) -> str:
    kind = node[0]
    if kind in ("call", "unknown") and isinstance(node[1], int):
        return f"{cfg.code[node[1]].loc.use_site}: {origin}"
    if kind == "ext" and str(node[1]).startswith("return via"):
        froms = sorted(p for p in cfg.graph.predecessors(node) if isinstance(p, int))
        if froms:
            return f"{cfg.code[cfg.blocks[froms[0]].last].loc.use_site}: {origin}"
    return origin


def _why_all(cfg: CFG, live: Liveness, pos: int) -> str:
    """Why everything is live after `pos`: the nearest 'everything live' node reachable."""
    found = unknown_exits(cfg, live, pos)
    return found[0] if found else "every location is read before it is written on some path"


def why_live(cfg: CFG, live: Liveness, pos: int, reg: str) -> WhyLive | None:
    """The first read of `reg` (bank-resolved name) on some path after `pos`, or the exit that
    makes it live; None when it is dead (then no proof is needed)."""
    u = live.universe
    if reg not in u.bit:
        return None
    bit = 1 << u.bit[reg]
    if not live.live_after(pos) & bit:
        return None
    code = cfg.code
    # scan the rest of the block, then BFS over nodes whose live_in has the bit
    blk = cfg.blocks[cfg.block_of[pos]]
    for p in blk.items[blk.items.index(pos) + 1:]:
        if live.use[p] & bit:
            return WhyLive(reg, p)
        if live.kill[p] & bit:
            return None
    seen = set()
    q = deque(s for s in cfg.graph.successors(blk.id))
    while q:
        n = q.popleft()
        if n in seen or not live.live_in[n] & bit:
            continue
        seen.add(n)
        if isinstance(n, tuple):
            summ_origin = live.why_all.get(n)
            from .liveness import node_summary

            summ, _ = node_summary(cfg, live.policy, n)
            if live.nested_extra.get(n, 0) & bit:
                return WhyLive(reg, None, f"nested TLB miss at the load at {code[n[1]].loc.use_site} (the nested "
                                          "handler in this file reads it, beyond the [nested] summary)")
            if summ is not None and (summ.everything or reg in summ.live_in):
                label = {"rfi": "rfi (the interrupted context)"}.get(n[0], f"{n[0]} {n[1] if len(n) > 1 else ''}".strip())
                if n[0] == "ext":
                    label = f"branch to '{n[1]}' ({summ.origin})"
                elif n[0] == "call":
                    label = f"call at {code[n[1]].loc.use_site} ({summ.origin})"
                elif n[0] == "nested":
                    label = f"nested TLB miss at the load at {code[n[1]].loc.use_site} ({summ.origin})"
                elif n[0] == "unknown":
                    label = f"unknown control flow after {code[n[1]].loc.use_site}"
                return WhyLive(reg, None, summ_origin and label or label)
            q.extend(cfg.graph.successors(n))
            continue
        for p in cfg.blocks[n].items:
            if live.use[p] & bit:
                return WhyLive(reg, p)
            if live.kill[p] & bit:
                break
        else:
            q.extend(cfg.graph.successors(n))
    return WhyLive(reg, None, "some path (not found by the search)")
