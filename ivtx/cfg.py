"""The control-flow graph of a whole file (networkx), with handlers, basic blocks and every edge kind.

Nodes are block ids (ints) plus summary nodes (tuples):
  ("rfi",)              return to the interrupted context (primer section 2)
  ("ext", symbol)       a branch or call target outside the file, summarised by the convention
  ("call", i)           the callee of the br.call at instruction i (summary), returning
  ("nested", i)         the implicit nested-TLB-miss entry taken by the load at instruction i
  ("unknown", i)        an indirect branch at instruction i that could not be resolved
Edge attribute `kind`: fall, branch, cond, indirect, call, return, nested, nested-return,
external, exit, unknown.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import networkx as nx

from .diag import IvtxError, Loc
from .ir import Directive, Imm, Instruction, Label, Mem, Program, PvCall, Reg, Stop, Sym
from .layout import SECTION_DIRECTIVES, Region, regions

BRANCH_OPS = {"br", "brl"}
MOVES_AWAY = SECTION_DIRECTIVES | {".org"}


@dataclass
class Block:
    id: int
    items: list[int]  # indices into CFG.code (Instruction / PvCall statements)
    labels: list[str] = field(default_factory=list)
    region: Region | None = None

    @property
    def first(self) -> int:
        return self.items[0]

    @property
    def last(self) -> int:
        return self.items[-1]


@dataclass
class Unresolved:
    index: int  # into CFG.code
    loc: Loc
    reason: str


@dataclass
class CFG:
    program: Program
    code: list[Instruction | PvCall]  # the code statements in order
    stmt_index: list[int]  # code position -> statement index
    group: list[int]  # code position -> instruction-group number (stops and taken branches)
    graph: nx.DiGraph
    blocks: dict[int, Block]
    block_of: list[int]  # code position -> block id
    regions: list[Region]
    labels: dict[str, int]  # label name -> code position it precedes (len(code) at the end)
    entries: dict[str, int]  # region name -> block id of its first block
    region_idx: list[int] = field(default_factory=list)  # code position -> index in regions
    unresolved: list[Unresolved] = field(default_factory=list)
    continuations: dict[int, str] = field(default_factory=dict)  # load position -> label
    nested_returns: list[int] = field(default_factory=list)  # blocks ending in `br b0` (b0=r30)
    pending_returns: list = field(default_factory=list)  # (call node, pos) returning through rp
    infile_calls: list = field(default_factory=list)  # (callee label, call node, pos)

    def region_of(self, pos: int) -> Region | None:
        ri = self.region_idx[pos]
        return self.regions[ri] if ri >= 0 else None

    def same_flow(self, a: int, b: int) -> bool:
        """Falls through from code position a to b: same region (a `.org` between breaks it)."""
        return self.region_idx[a] == self.region_idx[b]

    def successors(self, node):
        return self.graph.successors(node)


def _is_branch(s) -> bool:
    return isinstance(s, Instruction) and (s.op in BRANCH_OPS or s.mnemonic == "rfi" or s.op == "chk")


def _is_rfi(s) -> bool:
    return (isinstance(s, Instruction) and s.mnemonic == "rfi") or (isinstance(s, PvCall) and s.name == "RFI")


LOOP_BRANCHES = {"cloop", "ctop", "cexit", "wtop", "wexit"}


def _unconditional(s: Instruction) -> bool:
    """An unpredicated branch that is not a loop-type branch (those test ar.lc / ar.ec)."""
    return s.qp in (None, "p0") and not (set(s.completers) & LOOP_BRANCHES)


def _target_symbol(s: Instruction) -> str | None:
    """The direct target of a branch: the last Imm operand that is a bare symbol."""
    for op in reversed(s.srcs):
        if isinstance(op, Imm) and isinstance(op.expr, Sym):
            return op.expr.name
    return None


def _branch_reg(s: Instruction) -> str | None:
    for op in s.srcs:
        if isinstance(op, Reg) and op.name.startswith("b"):
            return op.name
    return None


def build_cfg(program: Program) -> CFG:
    stmts = program.statements
    regs = regions(program)
    code: list = []
    stmt_index: list[int] = []
    pending_labels: list[tuple[str, bool, Loc]] = []
    label_pos: dict[str, int] = {}
    local_defs: dict[str, list[int]] = {}  # "1" -> positions where 1: is defined
    labels_at: dict[int, list[str]] = {}
    group: list[int] = []
    g = 0
    for i, s in enumerate(stmts):
        if isinstance(s, Label):
            pending_labels.append((s.name, s.local, s.loc))
            continue
        if isinstance(s, Stop):
            g += 1
            continue
        if isinstance(s, (Instruction, PvCall)):
            pos = len(code)
            for name, local, _loc in pending_labels:
                if local:
                    local_defs.setdefault(name, []).append(pos)
                else:
                    label_pos[name] = pos
                labels_at.setdefault(pos, []).append(name)
            pending_labels.clear()
            if isinstance(s, Instruction) and s.tag is not None:
                local_defs.setdefault(s.tag, []).append(pos)
            code.append(s)
            stmt_index.append(i)
            group.append(g)
            if _is_branch(s) and not (isinstance(s, Instruction) and s.qp not in (None, "p0")):
                g += 1
            continue
        if isinstance(s, Directive) and s.name in MOVES_AWAY:
            # a label written before `.org` or a section switch names a place where this file
            # has no code (`ia64_ivt:` before `.org ia64_ivt+0x2c00`): a branch there is to an
            # unknown place, not to the next instruction. Local labels keep their number.
            pending_labels[:] = [p for p in pending_labels if p[1]]
    end = len(code)
    for name, local, _loc in pending_labels:
        if local:
            local_defs.setdefault(name, []).append(end)
        else:
            label_pos[name] = end

    def resolve(sym: str, at: int) -> int | None:
        """Code position of a label reference seen at position `at` (numeric 1f/1b too)."""
        if sym in label_pos:
            return label_pos[sym]
        if len(sym) >= 2 and sym[-1] in "fb" and sym[:-1].isdigit():
            defs = local_defs.get(sym[:-1], [])  # ascending positions
            if sym[-1] == "f":
                k = bisect_right(defs, at)
                return defs[k] if k < len(defs) else None
            k = bisect_right(defs, at)
            return defs[k - 1] if k > 0 else None
        return None

    # --- leaders and blocks
    leaders = {0} if code else set()
    region_idx = _region_indices(regs, stmt_index)
    for pos, s in enumerate(code):
        if pos in labels_at:
            leaders.add(pos)
        if _is_branch(s) or _is_rfi(s):
            if pos + 1 < end:
                leaders.add(pos + 1)
            if isinstance(s, Instruction):
                t = _target_symbol(s)
                if t is not None:
                    tp = resolve(t, pos)
                    if tp is not None and tp < end:
                        leaders.add(tp)
        if pos > 0 and region_idx[pos - 1] != region_idx[pos]:
            leaders.add(pos)
    # continuation targets of `movl r30=L` start blocks too (the nested miss returns there)
    movl_targets: list[tuple[int, int]] = []
    for pos, s in enumerate(code):
        if isinstance(s, Instruction) and s.op in ("movl", "mov") and s.dests and s.dests[0] == Reg("r30"):
            src = s.srcs[0] if s.srcs else None
            if isinstance(src, Imm) and isinstance(src.expr, Sym):
                tp = resolve(src.expr.name, pos)
                if tp is not None and tp < end:
                    leaders.add(tp)
                    movl_targets.append((pos, tp))
    order = sorted(leaders)
    blocks: dict[int, Block] = {}
    block_of = [0] * end
    for bi, start in enumerate(order):
        stop = order[bi + 1] if bi + 1 < len(order) else end
        ri = region_idx[start]
        b = Block(bi, list(range(start, stop)), labels_at.get(start, []), regs[ri] if ri >= 0 else None)
        blocks[bi] = b
        for p in b.items:
            block_of[p] = bi

    graph = nx.DiGraph()
    for b in blocks.values():
        graph.add_node(b.id, kind="block")
    cfg = CFG(program, code, stmt_index, group, graph, blocks, block_of, regs, label_pos, {}, region_idx)

    for b in blocks.values():
        if b.region is not None and b.region.name not in cfg.entries:
            cfg.entries[b.region.name] = b.id

    def block_at(pos: int) -> int | None:
        return block_of[pos] if pos < end else None

    def add_edge(a, b, kind: str, **attrs) -> None:
        """The first kind of edge between two nodes wins (a conditional branch to the next
        block is both `cond` and `fall`); the others are kept in `also`."""
        if graph.has_edge(a, b):
            graph.edges[a, b].setdefault("also", []).append(kind)
            return
        graph.add_edge(a, b, kind=kind, **attrs)

    # --- edges: direct ones first, then indirect branches traced over the direct graph
    deferred: list[tuple[Block, Instruction]] = []
    for b in blocks.values():
        last = code[b.last]
        falls = True
        if _is_rfi(last):
            add_edge(b.id, ("rfi",), "exit")
            falls = False
        elif isinstance(last, Instruction) and (last.op in BRANCH_OPS or last.op == "chk"):
            falls = _branch_edges(cfg, b, last, resolve, add_edge, block_at, deferred)
        if falls:
            nxt = block_at(b.last + 1)
            if nxt is not None and cfg.same_flow(b.last, b.last + 1):
                add_edge(b.id, nxt, "fall")
            elif b.last + 1 >= end or nxt is not None:
                # falling off the end of a region or file: control goes somewhere we do not see
                node = ("unknown", b.last)
                add_edge(b.id, node, "unknown")
                cfg.unresolved.append(Unresolved(b.last, code[b.last].loc, "execution falls off the end of the code region"))

    for b, last in deferred:
        _indirect_edges(cfg, b, last, resolve, add_edge, block_at)
    _rp_returns(cfg, resolve, add_edge, block_at)
    _infile_returns(cfg, add_edge, block_at)

    # --- the implicit nested-TLB-miss edge: a load at a `movl r30=L` continuation target
    for movl_pos, tp in movl_targets:
        load = _first_load_from(code, tp, blocks[block_of[tp]].last + 1)
        if load is None:
            continue
        label = code[tp].loc
        cfg.continuations[load] = str(label)
        node = ("nested", load)
        # the nested handler runs *instead of* the load and returns to the continuation,
        # which re-executes the load: an edge from the point before the load, so we split
        # the block there when the load is not already first.
        bid = block_of[load]
        blk = blocks[bid]
        if blk.first != load:
            raise IvtxError("internal: continuation load is not at a block start", code[load].loc)
        for pred in list(graph.predecessors(bid)):
            data = graph.edges[pred, bid]
            add_edge(pred, node, "nested", via=data.get("kind"))
        add_edge(node, bid, "nested-return")
        graph.nodes[node]["kind"] = "nested"

    # A nested miss enters the nested vector of the table in force (cr.iva): a file with
    # several tables returns from each table's vector only to that table's continuations.
    # Continuations outside any table may run under any of them.
    by_table: dict = {}
    for load in cfg.continuations:
        reg = blocks[block_of[load]].region
        by_table.setdefault(reg.table if reg is not None else None, []).append(load)
    for rb in cfg.nested_returns:
        reg = blocks[rb].region
        table = reg.table if reg is not None else None
        loads = by_table.get(None, []) + (by_table.get(table, []) if table is not None
                                          else [x for t, ls in by_table.items() if t is not None for x in ls])
        if not loads:
            add_edge(rb, ("unknown", blocks[rb].last), "unknown")
            cfg.unresolved.append(Unresolved(blocks[rb].last, code[blocks[rb].last].loc,
                                             "nested-miss return through r30, but no continuation in this file"))
        for load in loads:
            add_edge(rb, block_of[load], "nested-return")

    for n in graph.nodes:
        if isinstance(n, tuple):
            graph.nodes[n].setdefault("kind", n[0])
    return cfg


def _region_indices(regs: list[Region], stmt_index: list[int]) -> list[int]:
    """Region number of every code position (-1 outside every region), in one pass."""
    out = []
    ri = 0
    for si in stmt_index:
        while ri < len(regs) and regs[ri].end <= si:
            ri += 1
        out.append(ri if ri < len(regs) and regs[ri].start <= si else -1)
    return out


def _first_load_from(code, start: int, stop: int) -> int | None:
    for p in range(start, stop):
        s = code[p]
        if isinstance(s, Instruction) and (s.op.startswith("ld") and s.op[2:3].isdigit()) and any(isinstance(o, Mem) for o in s.srcs):
            return p
    return None


def _branch_edges(cfg: CFG, b: Block, s: Instruction, resolve, add_edge, block_at, deferred) -> bool:
    """Add the edges of branch `s` ending block `b`; return whether it can fall through."""
    pos = b.last
    conditional = not _unconditional(s)
    call = s.mnemonic.startswith("br.call") or s.mnemonic.startswith("brl.call")
    ret = s.mnemonic.startswith("br.ret")
    kind = "cond" if conditional else "branch"
    breg = _branch_reg(s)
    target = _target_symbol(s)
    if s.op == "chk":
        # chk.s r, recovery: branches to recovery code when the NaT is set
        conditional = True
    if ret:
        deferred.append((b, s))  # a return, or a jump through a traced b-register
        return conditional
    if target is None and breg is not None:
        deferred.append((b, s))
        return conditional or call
    if call:
        node = ("call", pos)
        cfg.graph.add_node(node, kind="call", callee=target, link=(s.dests[0].name if s.dests else "b0"))
        add_edge(b.id, node, "call")
        _add_return(cfg, node, pos, add_edge, block_at)
        return conditional
    if target is not None:
        tp = resolve(target, pos)
        if tp is not None and tp < len(cfg.code):
            add_edge(b.id, block_at(tp), kind, target=target)
        else:
            add_edge(b.id, ("ext", target), "external", cond=conditional)
        return conditional
    add_edge(b.id, ("unknown", pos), "unknown")
    cfg.unresolved.append(Unresolved(pos, s.loc, "branch target not understood"))
    return conditional


def _add_return(cfg: CFG, node, pos: int, add_edge, block_at) -> None:
    """Where a call returns. Callees return through rp (b0): with `br.call b0=` that is the
    next instruction; with another link register (`br.call b6=f`, Linux's "ignore return
    address" idiom) it is wherever rp was set before the call, traced like any b-register."""
    callee = cfg.graph.nodes[node].get("callee")
    if callee is not None and callee in cfg.labels and cfg.labels[callee] < len(cfg.code):
        # in-file callee: its code is analysed; its br.ret blocks get return edges later
        add_edge(node, block_at(cfg.labels[callee]), "call-target", target=callee)
        cfg.infile_calls.append((callee, node, pos))
        return
    link = cfg.graph.nodes[node].get("link", "b0")
    if link == "b0":
        nxt = block_at(pos + 1)
        if nxt is not None and cfg.same_flow(pos, pos + 1):
            add_edge(node, nxt, "return")
        return
    cfg.pending_returns.append((node, pos))


INTRA = {"fall", "branch", "cond", "indirect"}


def _infile_returns(cfg: CFG, add_edge, block_at) -> None:
    """Connect the `br.ret` blocks of each in-file callee to the return point of every call
    to it (context-insensitive: a return may go to any caller, which over-approximates)."""
    g = cfg.graph
    by_callee: dict[str, list[int]] = {}
    for callee, node, pos in cfg.infile_calls:
        by_callee.setdefault(callee, []).append(pos)
    found = []
    for callee, call_positions in by_callee.items():
        entry = cfg.block_of[cfg.labels[callee]]
        seen = {entry}
        stack = [entry]
        rets: list = []
        while stack:
            n = stack.pop()
            for _, succ, d in g.out_edges(n, data=True):
                if isinstance(succ, tuple):
                    if succ[0] == "ext" and succ[1].startswith("return via") and (n, succ) not in rets:
                        rets.append((n, succ))
                    elif succ[0] == "call":  # the callee calls on: continue where that returns
                        nxt = block_at(succ[1] + 1)
                        afters = [a for _, a, d2 in g.out_edges(succ, data=True)
                                  if isinstance(a, int) and d2.get("kind") == "return"]
                        if nxt is not None and cfg.same_flow(succ[1], succ[1] + 1):
                            afters.append(nxt)
                        for after in afters:
                            if after not in seen:
                                seen.add(after)
                                stack.append(after)
                    continue
                if d.get("kind") in INTRA and succ not in seen:
                    seen.add(succ)
                    stack.append(succ)
        # entered other than by calls (a branch, a fall-through, a vector entry): its br.ret
        # may also return somewhere unknown, so the exit stays besides the return edges
        other_entry = any(not (isinstance(pr, tuple) and pr[0] == "call") for pr in g.predecessors(entry)) \
            or (cfg.blocks[entry].region is not None and cfg.blocks[entry].region.is_vector
                and cfg.entries.get(cfg.blocks[entry].region.name) == entry)
        found.append((rets, call_positions, callee, other_entry))
    # modify only after every callee's returns are known: a shared tail may return to the
    # callers of several callees
    for rets, call_positions, callee, _ in found:
        for n, ext in rets:
            for pos in call_positions:
                nxt = block_at(pos + 1)
                if nxt is not None and cfg.same_flow(pos, pos + 1):
                    add_edge(n, nxt, "return", target=callee)
                else:
                    add_edge(n, ("unknown", pos), "unknown")
    for rets, _, _, other_entry in found:
        if other_entry:
            continue
        for n, ext in rets:
            if g.has_edge(n, ext):
                g.remove_edge(n, ext)
    for n in list(g.nodes):
        if isinstance(n, tuple) and n[0] == "ext" and g.in_degree(n) == 0:
            g.remove_node(n)


def _rp_returns(cfg: CFG, resolve, add_edge, block_at) -> None:
    for node, pos in cfg.pending_returns:
        sym = _resolve_breg(cfg, pos, "b0")
        if sym is None or sym.startswith("@"):
            add_edge(node, ("unknown", pos), "unknown")
            cfg.unresolved.append(Unresolved(pos, cfg.code[pos].loc,
                                             "call with a link register other than rp: return address (rp) not traced"))
            continue
        cfg.graph.nodes[node]["returns_to"] = sym
        tp = resolve(sym, pos)
        if tp is not None and tp < len(cfg.code):
            add_edge(node, block_at(tp), "return", target=sym)
        else:
            add_edge(node, ("ext", sym), "return", target=sym)


def _indirect_edges(cfg: CFG, b: Block, s: Instruction, resolve, add_edge, block_at) -> None:
    """Edges of `br bN` / `br.call bM=bN`, tracing bN back to a label."""
    pos = b.last
    breg = _branch_reg(s)
    conditional = not _unconditional(s)
    sym = _resolve_breg(cfg, pos, breg)
    if s.mnemonic.startswith("br.ret"):
        # `movl r16=2f; mov b0=r16; br.ret b0` is a jump that also resets the frame (Linux's
        # RSE workaround); otherwise it returns to a caller: an exit, or in-file returns later.
        tp = resolve(sym, pos) if sym is not None and not sym.startswith("@") else None
        if tp is not None and tp < len(cfg.code):
            add_edge(b.id, block_at(tp), "indirect", target=sym, cond=conditional)
        else:
            add_edge(b.id, ("ext", f"return via {breg or 'b0'}"), "exit")
        return
    if s.mnemonic.startswith("br.call"):
        node = ("call", pos)
        callee = None if sym is None or sym.startswith("@") else sym
        cfg.graph.add_node(node, kind="call", callee=callee, link=(s.dests[0].name if s.dests else "b0"))
        add_edge(b.id, node, "call")
        _add_return(cfg, node, pos, add_edge, block_at)
        if callee is None:
            cfg.unresolved.append(Unresolved(pos, s.loc, f"br.call through {breg}: target not traced to a label"))
        return
    if sym is None:
        add_edge(b.id, ("unknown", pos), "unknown")
        cfg.unresolved.append(Unresolved(pos, s.loc, f"indirect branch through {breg}: value not traced to a label"))
    elif sym == "@continuation":
        # the nested-TLB-miss return: `mov b0=r30; br b0` goes back to the continuation the
        # faulting handler set in r30: edges to every continuation load, added once known.
        cfg.nested_returns.append(b.id)
    else:
        tp = resolve(sym, pos)
        if tp is not None and tp < len(cfg.code):
            add_edge(b.id, block_at(tp), "indirect", target=sym, cond=conditional)
        else:
            add_edge(b.id, ("ext", sym), "external", cond=conditional)


def _resolve_breg(cfg: CFG, pos: int, breg: str) -> str | None:
    """Trace `bN` at `pos` back through `mov bN=rX` to `movl rX=label` (or `mov bN=bM`).

    Walks backwards along the unique-predecessor chain of the direct CFG, so a value is
    resolved only when a single unpredicated definition reaches. Reaching the entry of the
    nested-TLB vector (IVT+0x1400) still looking for r30 means the continuation the faulting
    handler passed in r30 (primer section 6).
    """
    want = breg
    code = cfg.code
    bid = cfg.block_of[pos]
    p = pos - 1
    for _ in range(100000):
        blk = cfg.blocks[bid]
        while p >= blk.first:
            s = code[p]
            if isinstance(s, PvCall):
                if any(isinstance(a, Reg) and a.name == want for a in s.args):
                    return None  # a pv op may write its register operands
                p -= 1
                continue
            if s.dests and isinstance(s.dests[0], Reg) and s.dests[0].name == want:
                if s.qp not in (None, "p0") or s.op not in ("mov", "movl"):
                    return None
                src = s.srcs[0] if s.srcs else None
                if isinstance(src, Reg) and src.name[0] in "rb":
                    want = src.name
                elif isinstance(src, Imm) and isinstance(src.expr, Sym):
                    return src.expr.name
                else:
                    return None
            p -= 1
        preds = [n for n in cfg.graph.predecessors(bid) if not isinstance(n, tuple)]
        if len(preds) != 1 or any(isinstance(n, tuple) for n in cfg.graph.predecessors(bid)):
            region = blk.region
            if not preds and want == "r30" and region is not None and region.offset == 0x1400:
                return "@continuation"
            return None
        bid = preds[0]
        p = cfg.blocks[bid].last
    return None
