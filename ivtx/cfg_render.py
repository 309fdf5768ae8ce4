"""Render a CFG as text (blocks, instructions, edges), Graphviz DOT, JSON or GraphML.

With `--handler NAME` the output holds that handler's blocks in full, the summary nodes they
reach (calls, externals, exits, nested misses) with those nodes' own edges, and, by name
only, the blocks of other handlers they branch to.
"""

from __future__ import annotations

import io
import json

import networkx as nx

from .cfg import CFG
from .diag import IvtxError
from .printer import statement_text


def node_name(cfg: CFG, n) -> str:
    if isinstance(n, int):
        b = cfg.blocks[n]
        lab = f" {b.labels[0]}" if b.labels else ""
        return f"B{n}{lab}"
    if n[0] == "rfi":
        return "exit:rfi"
    if n[0] == "ext":
        return f"external:{n[1]}"
    if n[0] == "call":
        callee = cfg.graph.nodes[n].get("callee")
        return f"call:{callee or '?'}@{cfg.code[n[1]].loc.use_site.line}"
    if n[0] == "nested":
        return f"nested-tlb-miss@{cfg.code[n[1]].loc.use_site.line}"
    return f"unknown@{cfg.code[n[1]].loc.use_site.line}"


def _selected(cfg: CFG, handler: str | None) -> tuple[set, set]:
    """(blocks shown in full, every node whose out-edges are shown)."""
    if handler is None:
        blocks = set(cfg.blocks)
        return blocks, set(cfg.graph.nodes)
    regs = [r for r in cfg.regions if r.name == handler or handler in r.labels]
    if not regs:
        known = ", ".join(r.name for r in cfg.regions)
        raise IvtxError(f"no handler named '{handler}' (known: {known})", None)
    blocks = {b.id for b in cfg.blocks.values() if any(b.region is r for r in regs)}
    sources = set(blocks)
    for b in blocks:
        sources |= {s for s in cfg.graph.successors(b) if isinstance(s, tuple)}
    return blocks, sources


def to_dict(cfg: CFG, handler: str | None = None) -> dict:
    blocks_shown, sources = _selected(cfg, handler)
    blocks = []
    for bid in sorted(blocks_shown):
        b = cfg.blocks[bid]
        blocks.append({
            "id": node_name(cfg, bid), "region": b.region.name if b.region else None, "labels": b.labels,
            "instructions": [{"line": cfg.code[p].loc.use_site.line, "text": statement_text(cfg.code[p]),
                              "group": cfg.group[p]} for p in b.items],
        })
    edges = [{"from": node_name(cfg, a), "to": node_name(cfg, b), "kind": d.get("kind")}
             for a, b, d in cfg.graph.edges(data=True) if a in sources]
    regions = [{"name": r.name, "vector": r.vector, "offset": r.offset, "slot": r.slot, "section": r.section}
               for r in cfg.regions if handler is None or r.name == handler or handler in r.labels]
    unresolved = [u for u in cfg.unresolved if handler is None or cfg.block_of[u.index] in blocks_shown]
    return {"regions": regions, "blocks": blocks, "edges": edges,
            "unresolved": [{"line": u.loc.use_site.line, "reason": u.reason} for u in unresolved]}


def render(cfg: CFG, fmt: str, handler: str | None = None) -> str:
    d = to_dict(cfg, handler)
    if fmt == "json":
        return json.dumps(d, indent=2) + "\n"
    if fmt == "text":
        return _text(d)
    g = _graph(cfg, handler)
    if fmt == "graphml":
        buf = io.BytesIO()
        nx.write_graphml(g, buf)
        return buf.getvalue().decode()
    if fmt == "dot":
        return _dot(g)
    raise IvtxError(f"unknown format {fmt}", None)


def _text(d: dict) -> str:
    out = []
    for r in d["regions"]:
        if r["vector"] is not None:
            out.append(f"region {r['name']}: entry {r['vector']} at {r['offset']:#06x}, slot {r['slot']:#x}")
        else:
            out.append(f"region {r['name']} ({r['section']})")
    shown = set()
    for b in d["blocks"]:
        shown.add(b["id"])
        out.append(f"{b['id']}:" + (f"  [{b['region']}]" if b["region"] else ""))
        for i in b["instructions"]:
            out.append(f"    {i['line']:5d}  {i['text']}")
        succ = [f"{e['to']} ({e['kind']})" for e in d["edges"] if e["from"] == b["id"]]
        out.append("    -> " + (", ".join(succ) if succ else "(none)"))
    for name in dict.fromkeys(e["from"] for e in d["edges"] if e["from"] not in shown):
        succ = [f"{e['to']} ({e['kind']})" for e in d["edges"] if e["from"] == name]
        out.append(f"{name} -> " + ", ".join(succ))
    for u in d["unresolved"]:
        out.append(f"unresolved: line {u['line']}: {u['reason']}")
    return "\n".join(out) + "\n"


def _graph(cfg: CFG, handler: str | None) -> nx.DiGraph:
    """The drawn graph: every node carries its label and shape (boxes for blocks, with their
    instructions when shown in full; ellipses for summary nodes)."""
    blocks_shown, sources = _selected(cfg, handler)
    g = nx.DiGraph()

    def add(n) -> str:
        name = node_name(cfg, n)
        if name in g:
            return name
        if isinstance(n, int) and n in blocks_shown:
            body = "".join(statement_text(cfg.code[p]).replace("\\", "\\\\") + "\\l" for p in cfg.blocks[n].items)
            g.add_node(name, label=f"{name}\\l{body}", shape="box")
        elif isinstance(n, int):
            g.add_node(name, label=name, shape="box", style="dashed")  # another handler's block
        else:
            g.add_node(name, label=name, shape="ellipse")
        return name

    for n in sorted(blocks_shown):
        add(n)
    for a, b, data in cfg.graph.edges(data=True):
        if a in sources:
            g.add_edge(add(a), add(b), label=data.get("kind", ""))
    return g


def _dot_id(text: str) -> str:
    """A DOT double-quoted string (backslash sequences such as \\l are kept for Graphviz)."""
    return '"' + text.replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(g: nx.DiGraph) -> str:
    lines = ["digraph ivtx {", '  node [fontname="monospace"];']
    for n, data in g.nodes(data=True):
        attrs = [f"shape={data.get('shape', 'box')}", f"label={_dot_id(data.get('label', n))}"]
        if data.get("style"):
            attrs.append(f"style={data['style']}")
        lines.append(f"  {_dot_id(n)} [{', '.join(attrs)}];")
    for a, b, data in g.edges(data=True):
        lines.append(f"  {_dot_id(a)} -> {_dot_id(b)} [label={_dot_id(data.get('label', ''))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
