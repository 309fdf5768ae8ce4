"""Backward liveness over the whole-file CFG, per location, with bitsets (Python ints).

Locations: r1-r15 / r32-r127, banked r16-r31 as `r16@0` / `r16@1`, p1-p63, b0-b7, f2-f127,
and the ARs, CRs and PSR bits the effects tables name. Rules (primer section 5):
- a must-write kills, a may-write (predicated, parallel compare, unknown bank) does not;
- r16-r31 are mapped to the bank in force (machine.track); where the bank is unknown a read
  reads both banks and a write kills neither;
- exits take their live set from the ExitPolicy: `rfi`, external symbols, `br.call`
  summaries, the nested-TLB miss; an unknown target makes everything live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from heapq import heappop, heappush

import networkx as nx

from .cfg import CFG
from .conventions import ExitPolicy, Summary, all_register_locations
from .effects import effects_of
from .ir import PvCall
from .machine import MState, track
from .pveffects import pv_effects


class Universe:
    """Location name <-> bit number."""

    def __init__(self, names: list[str]):
        self.bit: dict[str, int] = {}
        self.names: list[str] = []
        for n in names:
            self.index(n)

    def index(self, name: str) -> int:
        b = self.bit.get(name)
        if b is None:
            b = self.bit[name] = len(self.names)
            self.names.append(name)
        return b

    def mask(self, names) -> int:
        m = 0
        for n in names:
            m |= 1 << self.index(n)
        return m

    def decode(self, mask: int) -> list[str]:
        out = []
        i = 0
        while mask:
            if mask & 1:
                out.append(self.names[i])
            mask >>= 1
            i += 1
        return out

    @property
    def all(self) -> int:
        return (1 << len(self.names)) - 1


def bank_names(loc: str, bank: int | None) -> list[str]:
    """`r17` in bank 0 -> [`r17@0`]; in an unknown bank -> both."""
    if loc[0] == "r" and loc[1:].isdigit() and 16 <= int(loc[1:]) <= 31:
        return [f"{loc}@{bank}"] if bank is not None else [f"{loc}@0", f"{loc}@1"]
    return [loc]


@dataclass
class Liveness:
    cfg: CFG
    policy: ExitPolicy
    universe: Universe
    states: list[MState | None]
    use: list[int]
    kill: list[int]
    live_in: dict  # node -> mask
    live_out: dict  # node -> mask
    why_all: dict = field(default_factory=dict)  # node -> reason it makes everything live
    # nested-TLB handler in the file -> what its code reads beyond the [nested] summary (used)
    nested_beyond: dict = field(default_factory=dict)
    nested_extra: dict = field(default_factory=dict)  # nested-miss node -> those reads (mask)

    def live_after(self, pos: int) -> int:
        """Locations live right after code position `pos`."""
        b = self.cfg.blocks[self.cfg.block_of[pos]]
        live = self.live_out[b.id]
        for p in reversed(b.items):
            if p == pos:
                return live
            live = (live & ~self.kill[p]) | self.use[p]
        raise AssertionError("position not in its block")

    def live_before(self, pos: int) -> int:
        return (self.live_after(pos) & ~self.kill[pos]) | self.use[pos]

    def names(self, mask: int) -> list[str]:
        return self.universe.decode(mask)


def instruction_sets(s, state: MState | None) -> tuple[set[str], set[str]]:
    """(uses, kills) of one statement, bank-resolved."""
    eff = pv_effects(s) if isinstance(s, PvCall) else effects_of(s)
    bank = state.bank if state is not None else None
    uses: set[str] = set()
    for loc in eff.reads:
        uses.update(bank_names(loc, bank))
    kills: set[str] = set()
    for loc in eff.must_writes:
        names = bank_names(loc, bank)
        if len(names) == 1:
            kills.add(names[0])
    return uses, kills


def node_summary(cfg: CFG, policy: ExitPolicy, node) -> tuple[Summary | None, bool]:
    """(summary, returns) for a summary node of the CFG."""
    kind = node[0]
    if kind == "rfi":
        return policy.rfi, False
    if kind == "ext":
        return policy.symbol(node[1]), False
    if kind == "call":
        callee = cfg.graph.nodes[node].get("callee")
        if callee is not None and callee in cfg.labels:
            return None, True  # in-file callee: its own blocks are successors via return
        return policy.call(callee), True
    if kind == "nested":
        return policy.nested, True
    if kind == "unknown":
        return Summary("unknown", frozenset({"@all"}), origin="control goes where ivtx cannot follow: everything is live"), False
    raise ValueError(node)


def solve(cfg: CFG, policy: ExitPolicy, nested_code: bool = True) -> Liveness:
    """Liveness of every location at every point. `nested_code`: check the [nested] summary
    against the nested-TLB handler the file holds (_nested_code_reads); off for transform
    outputs, where that handler's own PAL-static saves read what it passes through."""
    universe = Universe(all_register_locations())
    for loc in sorted(policy.context):
        universe.index(loc)
    states = track(cfg)
    code = cfg.code
    use = [0] * len(code)
    kill = [0] * len(code)
    for p, s in enumerate(code):
        uses, kills = instruction_sets(s, states[p])
        use[p] = universe.mask(uses)
        kill[p] = universe.mask(kills)
    from .predkill import guarded_kills

    guarded_kills(cfg, policy, states, use, kill, universe)
    g = cfg.graph
    # node transfer: live_in = gen | (live_out & ~kill)
    gen: dict = {}
    kil: dict = {}
    why_all: dict = {}
    for n in g.nodes:
        if isinstance(n, int):
            gm, km = 0, 0
            for p in reversed(cfg.blocks[n].items):
                gm = (gm & ~kill[p]) | use[p]
                km |= kill[p]
            gen[n], kil[n] = gm, km
        else:
            summ, returns = node_summary(cfg, policy, n)
            if summ is None:
                gen[n], kil[n] = 0, 0
                continue
            if summ.everything:
                gen[n] = -1  # filled with universe.all after all locations are known
                why_all[n] = summ.origin
            else:
                gen[n] = universe.mask(summ.live_in)
            # a summary's clobbers are only may-writes (the callee need not write them): they
            # never kill, so what is live after a returning summary stays live before it
            kil[n] = 0
    full = universe.all
    for n, v in gen.items():
        if v == -1:
            gen[n] = full
    beyond = _nested_code_reads(cfg, policy, universe, gen, kil) if nested_code else {}
    nested_extra: dict = {}
    for n in g.nodes:
        if isinstance(n, tuple) and n[0] == "nested":
            blk = cfg.blocks[cfg.block_of[n[1]]]
            table = blk.region.table if blk.region is not None else None
            for (tab, _), extra in beyond.items():
                if table is None or tab is None or tab == table:
                    gen[n] |= extra
                    nested_extra[n] = nested_extra.get(n, 0) | extra
    # a node's own "kill" for exits that do not return: everything not in gen is dead
    live_in: dict = {n: 0 for n in g.nodes}
    live_out: dict = {n: 0 for n in g.nodes}
    # The least fixpoint does not depend on the order; visiting successors before their
    # predecessors (DFS postorder, lowest rank first) visits most nodes once. A stack order
    # revisits a node with many successors (the nested-miss return) at every change below it.
    order = list(nx.dfs_postorder_nodes(g))
    rank = {n: i for i, n in enumerate(order)}
    work = list(range(len(order)))  # sorted: already a heap
    queued = [True] * len(order)
    while work:
        i = heappop(work)
        queued[i] = False
        n = order[i]
        out = 0
        for s in g.successors(n):
            out |= live_in[s]
        live_out[n] = out
        new_in = gen[n] | (out & ~kil[n])
        if new_in != live_in[n]:
            live_in[n] = new_in
            for pr in g.predecessors(n):
                j = rank[pr]
                if not queued[j]:
                    queued[j] = True
                    heappush(work, j)
    nested_beyond = {name: sorted(universe.decode(m)) for (_, name), m in beyond.items()}
    return Liveness(cfg, policy, universe, states, use, kill, live_in, live_out, why_all, nested_beyond,
                    nested_extra)


def _nested_code_reads(cfg: CFG, policy: ExitPolicy, universe, gen: dict, kil: dict) -> dict:
    """The [nested] summary is a claim about the nested-TLB-miss handler. When the file holds that
    handler (IVT+0x1400), what its code reads before writing it, from its entry to where it leaves
    (a return to a continuation reads nothing more; a branch elsewhere reads what that target's
    summary says), must be within the summary's live_in. Reads beyond it are returned per
    (table, handler name) and added to every nested-miss node: the code wins over the claim."""
    g = cfg.graph
    out: dict = {}
    if policy.nested.everything:
        return out
    # (bits of names already known: a name no code mentions cannot be read; adding names here
    # would grow the universe past the `all` mask the caller has taken)
    claimed = 0
    for n in policy.nested.live_in:
        if n in universe.bit:
            claimed |= 1 << universe.bit[n]
    for region in cfg.regions:
        if region.vector is None or region.offset != 0x1400 or region.name not in cfg.entries:
            continue
        entry = cfg.entries[region.name]
        nodes, stack = set(), [entry]
        while stack:  # what the handler's code reaches, not following its returns
            n = stack.pop()
            if n in nodes:
                continue
            nodes.add(n)
            stack.extend(s for _, s, d in g.out_edges(n, data=True) if d.get("kind") != "nested-return")
        live = {n: 0 for n in nodes}
        changed = True
        while changed:
            changed = False
            for n in nodes:
                o = 0
                for _, s, d in g.out_edges(n, data=True):
                    if d.get("kind") != "nested-return":
                        o |= live[s]
                new = gen[n] | (o & ~kil[n])
                if new != live[n]:
                    live[n], changed = new, True
        # registers only (general, predicate, branch: what clobbers, saves and temporaries are
        # made of); memory, CR and PSR reads do not decide any of them
        extra = 0
        for n in universe.decode(live[entry] & ~claimed):
            if n[0] in "rpb" and n[1:2].isdigit():
                extra |= 1 << universe.bit[n]
        if extra:
            out[(region.table, region.name)] = extra
    return out
