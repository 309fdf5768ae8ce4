"""Privileged-instruction sites: which instruction is which pv op, what it needs, what is free.

A site is a PvCall (already paravirtualized source) or a native instruction that matches a
catalog op's native text (longest sequence first). Sensitive instructions that match no op
(fc, ttag, ptc.*, cpuid/pmd reads ...) are findings. Free registers are those the liveness
proves dead right after the site and that are not operands of the site; the choice among
them is deterministic: banked r16-r31 of the bank in force (ascending), then the other GRs
(ascending); predicates p6-p15 then p1-p5, p16-p63; branch registers b6, b7, b0-b5.
"""

from __future__ import annotations

import re
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
    switched: str | None = None  # inside a macro replaced as a whole per hypervisor

    @property
    def resolved(self) -> bool:
        return self.unresolved is None


def find_sites(cfg: CFG, catalog: Catalog | None = None) -> list[Site]:
    cat = catalog or default_catalog()
    pats = _patterns(cat)
    by_first: dict[str, list[Pattern]] = {}
    for p in pats:
        by_first.setdefault(p.insns[0].mnemonic, []).append(p)
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
        for p in by_first.get(s.mnemonic, ()):
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


def analyse_sites(cfg: CFG, live: Liveness, sites: list[Site], catalog: Catalog | None = None, sources=None) -> None:
    """Fill free sets and the deterministic choice of every site."""
    u = live.universe
    switched = (catalog or default_catalog()).switched or {}
    for site in sites:
        if switched and site.kind != "pvcall":
            names = macros_used(cfg.code[site.pos].loc, sources)
            hit = next((n for n in names if n in switched), None)
            if hit is not None:
                site.switched = f"inside {hit}: {switched[hit]}"
        last = site.pos + site.length - 1
        after = live.live_after(last)
        state = live.states[site.pos]
        site.state = state.describe() if state is not None else "unreachable from a vector entry"
        region = cfg.region_of(site.pos)
        site.region = region.name if region else ""
        if after == u.all:
            site.everything_live = _why_all(cfg, live, last)
        bank = state.bank if state is not None else None
        operands = site_operands(cfg, site)
        dead = lambda names: all(not (after >> u.bit[n]) & 1 for n in names if n in u.bit)  # noqa: E731
        banked = [f"r{n}" for n in range(16, 32)]
        gr = []
        for r in banked + GR_ORDER_OTHER:
            if r in operands:
                continue
            names = bank_names(r, bank)
            if len(names) != 1:  # unknown bank: the name means two registers, never free
                continue
            if dead(names):
                gr.append(r)
        site.free_gr = gr
        site.free_pr = [p for p in PR_ORDER if p not in operands and dead([p])]
        site.free_br = [b for b in BR_ORDER if b not in operands and dead([b])]
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
            site.unresolved = why
        else:
            site.chosen = gr[: site.needs_gr] + site.free_pr[: site.needs_pr]


def _why_all(cfg: CFG, live: Liveness, pos: int) -> str:
    """Why everything is live after `pos`: the nearest 'everything live' node reachable."""
    start = cfg.block_of[pos]
    seen = {start}
    q = deque([start])
    while q:
        n = q.popleft()
        if n in live.why_all:
            return live.why_all[n]
        for s in cfg.graph.successors(n):
            if s not in seen:
                seen.add(s)
                q.append(s)
    return "every location is read before it is written on some path"


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
