"""Predicated writes that act as kills (primer section 5, the SAVE_MIN idiom).

A predicated write `(pX) x = ...` is a may-def: when pX is false the old x flows on. But if
every read of x that the old value could reach runs only when pX is true (it is predicated by
pX, or a branch on the way has proved pX true) and pX is not rewritten in between, the old
value can never be read after the write: the write is then a kill. Example (Linux SAVE_MIN):

    cmp.eq pKStk,pUStk=r0,r17        // complementary pair
    (pUStk) addl r22=...             // W: may-def of r22
    [1:](pKStk) br.cond.sptk 1f      // falling through proves pKStk false, so pUStk true
    mov ar.bspstore=r22              // reads r22 only on the pUStk path

The proof is a bounded forward search from W; anything it cannot follow (a summary node that
reads x, the search bound) keeps the write a may-def. Nothing becomes free without the proof.
"""

from __future__ import annotations

from .cfg import CFG
from .effects import effects_of
from .ir import Instruction, PvCall

SEARCH_BOUND = 4000
PARALLEL = {"or", "and", "orcm", "andcm"}
COMPARES = {"cmp", "cmp4", "tbit", "tnat", "tf", "fcmp", "fclass"}


def _pred_writes(s) -> set[str]:
    if isinstance(s, PvCall):
        return {"*"}  # a pv op may write any predicate it names; be conservative
    e = effects_of(s)
    return {x for x in (e.must_writes | e.may_writes) if x[:1] == "p" and x[1:].isdigit()}


def _pair_of(s) -> tuple[str, str] | None:
    """(pA, pB) when `s` leaves pA == !pB: an unpredicated normal or unc compare."""
    if not isinstance(s, Instruction) or s.op not in COMPARES or s.qp not in (None, "p0"):
        return None
    if set(s.completers) & PARALLEL or len(s.dests) != 2:
        return None
    a, b = (getattr(d, "name", "") for d in s.dests)
    if a in ("p0", "") or b in ("p0", "") or a == b:
        return None
    return a, b


def _transfer_of(s) -> tuple[set[str], frozenset | None]:
    """What `s` does to complementary pairs: (predicates it may write, the pair it creates)."""
    pr = _pair_of(s)
    return _pred_writes(s), None if pr is None else frozenset(pr)


def _transfers(cfg: CFG) -> list[tuple[set[str], frozenset | None]]:
    """_transfer_of every code position, computed once per analysis (the searches revisit)."""
    return [_transfer_of(s) for s in cfg.code]


def _apply(pairs: frozenset, transfer: tuple[set[str], frozenset | None]) -> frozenset:
    writes, pair = transfer
    if writes:
        pairs = frozenset(p for p in pairs if "*" not in writes and not (p & writes))
    if pair is not None:
        pairs = pairs | {pair}
    return pairs


def complementary_pairs(cfg: CFG, transfers: list | None = None) -> dict[int, frozenset]:
    """Forward must-analysis: pairs {pA, pB} known complementary at each block's end."""
    g = cfg.graph
    transfers = transfers if transfers is not None else _transfers(cfg)
    out: dict[int, frozenset] = {}
    order = sorted(cfg.blocks)
    for _ in range(50):
        changed = False
        for bid in order:
            ins = None
            for pr in g.predecessors(bid):
                o = out.get(pr, frozenset()) if isinstance(pr, int) else frozenset()
                ins = o if ins is None else ins & o
            st = ins or frozenset()
            for p in cfg.blocks[bid].items:
                st = _apply(st, transfers[p])
            if out.get(bid) != st:
                out[bid] = st
                changed = True
        if not changed:
            return out
    return {}  # no fixpoint: claim no pairs (sound)


def guarded_kills(cfg: CFG, policy, states, use: list[int], kill: list[int], universe) -> None:
    from dataclasses import replace

    from .liveness import instruction_sets, node_summary

    code = cfg.code
    pairs_end = None
    cache: dict[int, int] = {}

    def writes_if(p: int) -> int:
        """Locations instruction p must-writes when its predicate holds (bank-resolved)."""
        hit = cache.get(p)
        if hit is None:
            _, k = instruction_sets(replace(code[p], qp=None), states[p])
            hit = cache[p] = universe.mask(k)
        return hit

    for w, s in enumerate(code):
        qp = getattr(s, "qp", None)
        if not isinstance(s, Instruction) or qp in (None, "p0"):
            continue
        _, kills = instruction_sets(replace(s, qp=None), states[w])
        for loc in kills:
            bit = 1 << universe.index(loc)
            if kill[w] & bit or use[w] & bit:
                continue
            if pairs_end is None:
                transfers = _transfers(cfg)
                pairs_end = complementary_pairs(cfg, transfers)
            if _proved(cfg, policy, w, qp, loc, bit, use, kill, pairs_end, node_summary, writes_if, transfers):
                kill[w] |= bit


def _entry_pairs(cfg, bid, pairs_end) -> frozenset:
    acc = None
    for pr in cfg.graph.predecessors(bid):
        o = pairs_end.get(pr, frozenset()) if isinstance(pr, int) else frozenset()
        acc = o if acc is None else acc & o
    return acc or frozenset()


def _proved(cfg, policy, w, px, loc, bit, use, kill, pairs_end, node_summary, writes_if, transfers) -> bool:
    code = cfg.code
    g = cfg.graph
    steps = 0
    # state: (block id, start index in block, W known to have executed on this path (a branch
    # on pX, or on its complement, taken before pX was rewritten), pX rewritten since W)
    start_block = cfg.block_of[w]
    items = cfg.blocks[start_block].items
    stack = [(start_block, items.index(w) + 1, False, False)]
    seen = set()
    while stack:
        bid, i, known, broken = stack.pop()
        key = (bid, i, known, broken)
        if key in seen:
            continue
        seen.add(key)
        blk = cfg.blocks[bid]
        done = False
        pairs = _entry_pairs(cfg, bid, pairs_end)
        for p in blk.items[:i]:
            pairs = _apply(pairs, transfers[p])
        for p in blk.items[i:]:
            steps += 1
            if steps > SEARCH_BOUND:
                return False
            s = code[p]
            q = getattr(s, "qp", None)
            if use[p] & bit:
                if not (known or (not broken and q == px)):
                    return False
            if (not broken and q not in (None, "p0", px) and isinstance(s, Instruction)
                    and frozenset((q, px)) in pairs and writes_if(p) & bit):
                # (pX) x=... then (pY) x=... with pY == !pX: x is written on this path
                done = True
                break
            pairs = _apply(pairs, transfers[p])
            writes = transfers[p][0]
            if "*" in writes or px in writes:
                # later tests of pX say nothing about W any more; what a branch already proved
                # (pX was true at W, so W wrote x) stays proved
                broken = True
            if kill[p] & bit:
                done = True
                break
        if done:
            continue
        last = code[blk.last]
        branch_qp = getattr(last, "qp", None) if isinstance(last, Instruction) and last.op in ("br", "brl") else None
        pairs = pairs_end.get(bid, frozenset())
        for _, succ, d in g.out_edges(bid, data=True):
            k = known
            if branch_qp not in (None, "p0") and not broken:
                if d.get("kind") == "fall":
                    if frozenset((branch_qp, px)) in pairs:
                        k = True  # the branch on the complement was not taken
                elif branch_qp == px:
                    k = True
            if not _follow(cfg, policy, succ, bit, loc, k, broken, stack, node_summary):
                return False
    return True


def _follow(cfg, policy, node, bit, loc, known, broken, stack, node_summary) -> bool:
    """Push the continuation at `node`; False when a summary node may read the old value."""
    g = cfg.graph
    if isinstance(node, int):
        stack.append((node, 0, known, broken))
        return True
    summ, returns = node_summary(cfg, policy, node)
    if summ is not None and (summ.everything or loc in summ.live_in):
        return False
    for succ in g.successors(node):
        if isinstance(succ, int):
            stack.append((succ, 0, known, broken or summ is not None))
        elif not _follow(cfg, policy, succ, bit, loc, known, True, stack, node_summary):
            return False
    return True
