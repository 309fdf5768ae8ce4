"""Render a CFG as text (blocks, instructions, edges), Graphviz DOT, JSON or GraphML."""

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


def _selected(cfg: CFG, handler: str | None) -> set:
    if handler is None:
        return set(cfg.graph.nodes)
    regs = [r for r in cfg.regions if r.name == handler or handler in r.labels]
    if not regs:
        raise IvtxError(f"no handler named '{handler}' (known: {', '.join(r.name for r in cfg.regions)})", None)
    blocks = {b.id for b in cfg.blocks.values() if b.region in regs}
    nodes = set(blocks)
    for b in blocks:
        nodes |= {s for s in cfg.graph.successors(b) if isinstance(s, tuple)}
        nodes |= {s for s in cfg.graph.successors(b)}
    return nodes


def to_dict(cfg: CFG, handler: str | None = None) -> dict:
    keep = _selected(cfg, handler)
    blocks = []
    for bid in sorted(n for n in keep if isinstance(n, int)):
        b = cfg.blocks[bid]
        blocks.append({
            "id": node_name(cfg, bid), "region": b.region.name if b.region else None, "labels": b.labels,
            "instructions": [{"line": cfg.code[p].loc.use_site.line, "text": statement_text(cfg.code[p]),
                              "group": cfg.group[p]} for p in b.items],
        })
    edges = [{"from": node_name(cfg, a), "to": node_name(cfg, b), "kind": d.get("kind")}
             for a, b, d in cfg.graph.edges(data=True) if a in keep]
    regions = [{"name": r.name, "vector": r.vector, "offset": r.offset, "slot": r.slot, "section": r.section}
               for r in cfg.regions if handler is None or r.name == handler or handler in r.labels]
    return {"regions": regions, "blocks": blocks, "edges": edges,
            "unresolved": [{"line": u.loc.use_site.line, "reason": u.reason} for u in cfg.unresolved]}


def render(cfg: CFG, fmt: str, handler: str | None = None) -> str:
    d = to_dict(cfg, handler)
    if fmt == "json":
        return json.dumps(d, indent=2) + "\n"
    if fmt == "text":
        out = []
        for r in d["regions"]:
            if r["vector"] is not None:
                out.append(f"region {r['name']}: entry {r['vector']} at {r['offset']:#06x}, slot {r['slot']:#x}")
            else:
                out.append(f"region {r['name']} ({r['section']})")
        for b in d["blocks"]:
            out.append(f"{b['id']}:" + (f"  [{b['region']}]" if b["region"] else ""))
            for i in b["instructions"]:
                out.append(f"    {i['line']:5d}  {i['text']}")
            succ = [f"{e['to']} ({e['kind']})" for e in d["edges"] if e["from"] == b["id"]]
            out.append("    -> " + (", ".join(succ) if succ else "(none)"))
        for u in d["unresolved"]:
            out.append(f"unresolved: line {u['line']}: {u['reason']}")
        return "\n".join(out) + "\n"
    g = nx.DiGraph()
    keep = _selected(cfg, handler)
    for n in keep:
        label = node_name(cfg, n)
        if isinstance(n, int):
            body = "\\l".join(statement_text(cfg.code[p]).replace('"', "'") for p in cfg.blocks[n].items)
            g.add_node(label, label=f"{label}\\l{body}\\l", shape="box")
        else:
            g.add_node(label, label=label, shape="ellipse")
    for a, b, data in cfg.graph.edges(data=True):
        if a in keep:
            g.add_edge(node_name(cfg, a), node_name(cfg, b), label=data.get("kind", ""))
    if fmt == "graphml":
        buf = io.BytesIO()
        nx.write_graphml(g, buf)
        return buf.getvalue().decode()
    if fmt == "dot":
        lines = ["digraph ivtx {", '  node [fontname="monospace"];']
        for n, data in g.nodes(data=True):
            lines.append(f'  "{n}" [shape={data["shape"]}, label="{data["label"]}"];')
        for a, b, data in g.edges(data=True):
            lines.append(f'  "{a}" -> "{b}" [label="{data["label"]}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise IvtxError(f"unknown format {fmt}", None)
