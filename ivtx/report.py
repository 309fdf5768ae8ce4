"""Clobber-register reports: rich tables for the terminal, markdown, JSON (schema ivtx-report/1)
and SARIF 2.1.0 for CI code scanning. Only this module and the CLI print."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys

from . import __version__
from .layout import estimate_bytes
from .printer import statement_text

SCHEMA = "ivtx-report/1"


def _console(color: bool | None, width: int | None = None):
    from rich.console import Console

    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
    return Console(file=io.StringIO(), force_terminal=color, no_color=not color, color_system="standard" if color else None,
                   width=width, highlight=False, soft_wrap=False)


def _text(console) -> str:
    return console.file.getvalue()


# --------------------------------------------------------------------------- parse


def render_parse(results: list[dict], color: bool | None = None) -> str:
    from rich.table import Table

    con = _console(color)
    for res in results:
        con.print(f"[bold]{res['file']}[/]: {res['statements']} statements, {res['instructions']} instructions, "
                  f"{res['pv_calls']} pv-op calls, {res['vectors']} vectors, {res['sensitive']} sensitive")
        t = Table(show_header=True, header_style="bold")
        for col in ("handler", "vector", "offset", "slot", "insns", "pv calls", "sensitive"):
            t.add_column(col, justify="right" if col not in ("handler",) else "left")
        for h in res["handlers"]:
            t.add_row(h["name"], "" if h["vector"] is None else str(h["vector"]),
                      "" if h["offset"] is None else f"{h['offset']:#06x}", "" if h["slot"] is None else f"{h['slot']:#x}",
                      str(h["instructions"]), str(h["pv_calls"]), str(len(h["sensitive"])))
        con.print(t)
    return _text(con)


# --------------------------------------------------------------------------- analysis report


def site_record(a, site) -> dict:
    cfg = a.cfg
    s = cfg.code[site.pos]
    loc = s.loc.use_site
    text = "; ".join(statement_text(cfg.code[site.pos + j]) for j in range(site.length))
    if site.switched:
        status = "switched"
    else:
        status = "uncatalogued" if site.op is None else ("ok" if site.resolved else "unresolved")
    rec = {
        "handler": site.region,
        "file": loc.file,
        "line": loc.line,
        "col": loc.col,
        "instruction": text,
        "kind": site.kind,
        "op": site.op.name if site.op else None,
        "args": site.args,
        "needs": {"gr": site.needs_gr, "pr": site.needs_pr},
        "free": {"gr": site.free_gr, "pr": site.free_pr, "br": site.free_br},
        "chosen": site.chosen if site.kind != "pvcall" else [],
        "written": site.chosen if site.kind == "pvcall" else [],
        "status": status,
        "reason": site.unresolved,
        "state": site.state,
        "everything_live": site.everything_live,
        "switched": site.switched,
    }
    if s.loc.via is not None or s.loc.file != loc.file:
        rec["origin"] = str(s.loc)
    return rec


def report_data(a, handler: str | None = None) -> dict:
    regions = a.cfg.regions
    stmts = a.program.statements
    sites = [site_record(a, s) for s in a.sites]
    if handler is not None:
        names = {r.name for r in regions} | {lab for r in regions for lab in r.labels}
        if handler not in names:
            from .diag import IvtxError

            raise IvtxError(f"no handler named '{handler}' (known: {', '.join(sorted(r.name for r in regions))})", None)
        keep = {r.name for r in regions if r.name == handler or handler in r.labels}
        sites = [s for s in sites if s["handler"] in keep]
        regions = [r for r in regions if r.name in keep]
    handlers = []
    for r in regions:
        est = estimate_bytes(stmts[r.start:r.end])
        handlers.append({
            "name": r.name, "section": r.section, "vector": r.vector, "offset": r.offset, "slot": r.slot,
            "labels": r.labels, "bytes_estimate": est,
            "sites": sum(1 for s in sites if s["handler"] == r.name),
        })
    unres = [{"file": u.loc.use_site.file, "line": u.loc.use_site.line, "reason": u.reason} for u in a.cfg.unresolved]
    return {
        "schema": SCHEMA,
        "tool": {"name": "ivtx", "version": __version__},
        "file": a.path,
        "handlers": handlers,
        "sites": sites,
        "unresolved_control_flow": unres,
        "summary": {
            "sites": sum(1 for s in sites if s["status"] in ("ok", "unresolved")),
            "resolved": sum(1 for s in sites if s["status"] == "ok"),
            "unresolved": sum(1 for s in sites if s["status"] == "unresolved"),
            "uncatalogued": sum(1 for s in sites if s["status"] == "uncatalogued"),
            "switched": sum(1 for s in sites if s["status"] == "switched"),
            "pv_calls": sum(1 for s in sites if s["kind"] == "pvcall"),
        },
        "conventions": a.policy.source,
    }


def render(a, fmt: str, handler: str | None = None, color: bool | None = None, output: str | None = None) -> str:
    data = report_data(a, handler)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif(data), indent=2) + "\n"
    if fmt == "markdown":
        return markdown(data)
    return table(data, color)


def _regs(xs: list[str], limit: int = 8) -> str:
    if not xs:
        return "-"
    return ", ".join(xs[:limit]) + (f" (+{len(xs) - limit})" if len(xs) > limit else "")


def table(data: dict, color: bool | None = None) -> str:
    from rich.table import Table

    con = _console(color)
    con.print(f"[bold]ivtx report[/] {data['file']}")
    by_handler: dict[str, list[dict]] = {}
    for s in data["sites"]:
        by_handler.setdefault(s["handler"], []).append(s)
    for h in data["handlers"]:
        sites = by_handler.get(h["name"], [])
        if not sites:
            continue
        head = f"[bold]{h['name']}[/]"
        if h["vector"] is not None:
            head += f"  entry {h['vector']} at {h['offset']:#06x}, slot use ~{h['bytes_estimate']}/{h['slot']} bytes"
        t = Table(title=head, title_justify="left", show_header=True, header_style="bold", expand=False)
        for col in ("line", "instruction", "op", "needs", "free GRs", "free PRs", "chosen"):
            t.add_column(col, overflow="fold")
        for s in sites:
            needs = "" if s["op"] is None else f"{s['needs']['gr']} gr" + (f", {s['needs']['pr']} pr" if s["needs"]["pr"] else "")
            if s["status"] == "unresolved":
                chosen = f"[red]UNRESOLVED[/]: {s['reason']}"
            elif s["status"] == "uncatalogued":
                chosen = "[yellow]no pv op in the catalog[/]"
            elif s["status"] == "switched":
                chosen = "inside a pv-switched macro"
            elif s["kind"] == "pvcall":
                chosen = "written: " + (", ".join(s["written"]) or "-")
            else:
                chosen = ", ".join(s["chosen"]) or "(none needed)"
            t.add_row(str(s["line"]), s["instruction"], s["op"] or "-", needs, _regs(s["free"]["gr"]),
                      _regs(s["free"]["pr"], 5), chosen)
        con.print(t)
    sm = data["summary"]
    con.print(f"[bold]summary[/]: {sm['sites']} sites, {sm['resolved']} resolved, "
              f"{'[red]' if sm['unresolved'] else ''}{sm['unresolved']} unresolved{'[/]' if sm['unresolved'] else ''}, "
              f"{sm['uncatalogued']} sensitive instructions outside the catalog")
    for u in data["unresolved_control_flow"]:
        con.print(f"  [yellow]unresolved control flow[/] {u['file']}:{u['line']}: {u['reason']} (treated as: everything live)")
    return _text(con)


def markdown(data: dict) -> str:
    out = [f"# ivtx report: `{os.path.basename(data['file'])}`", ""]
    sm = data["summary"]
    out.append(f"{sm['sites']} sites, {sm['resolved']} resolved, {sm['unresolved']} unresolved, "
               f"{sm['uncatalogued']} sensitive instructions outside the catalog.")
    out.append("")
    by_handler: dict[str, list[dict]] = {}
    for s in data["sites"]:
        by_handler.setdefault(s["handler"], []).append(s)
    for h in data["handlers"]:
        sites = by_handler.get(h["name"], [])
        if not sites:
            continue
        title = f"## {h['name']}"
        if h["vector"] is not None:
            title += f" (entry {h['vector']}, {h['offset']:#06x}, ~{h['bytes_estimate']}/{h['slot']} bytes)"
        out += [title, "", "| line | instruction | op | needs | free GRs | free PRs | chosen |", "|---|---|---|---|---|---|---|"]
        for s in sites:
            needs = "" if s["op"] is None else f"{s['needs']['gr']} gr, {s['needs']['pr']} pr"
            if s["status"] == "unresolved":
                chosen = f"**UNRESOLVED**: {s['reason']}"
            elif s["status"] == "uncatalogued":
                chosen = "no pv op"
            elif s["status"] == "switched":
                chosen = "inside a pv-switched macro"
            elif s["kind"] == "pvcall":
                chosen = "written: " + (", ".join(s["written"]) or "-")
            else:
                chosen = ", ".join(s["chosen"]) or "-"
            instr = s["instruction"].replace("|", "\\|")
            out.append(f"| {s['line']} | `{instr}` | {s['op'] or '-'} | {needs} | {_regs(s['free']['gr'], 16)} | "
                       f"{_regs(s['free']['pr'], 8)} | {chosen} |")
        out.append("")
    if data["unresolved_control_flow"]:
        out += ["## Unresolved control flow (everything live)", ""]
        for u in data["unresolved_control_flow"]:
            out.append(f"- line {u['line']}: {u['reason']}")
        out.append("")
    return "\n".join(out)


def sarif(data: dict) -> dict:
    rules = [
        {"id": "IVTX001", "name": "UnresolvedSite", "shortDescription": {"text": "A privileged site has too few provably dead registers"}},
        {"id": "IVTX002", "name": "UncataloguedSensitive", "shortDescription": {"text": "A sensitive instruction has no pv op in the catalog"}},
        {"id": "IVTX003", "name": "UnresolvedControlFlow", "shortDescription": {"text": "Control flow ivtx cannot follow; everything is treated as live"}},
        {"id": "IVTX004", "name": "Site", "shortDescription": {"text": "A privileged site and its clobber registers"}},
    ]
    results = []

    def loc(file, line, col=1):
        return [{"physicalLocation": {"artifactLocation": {"uri": file}, "region": {"startLine": line, "startColumn": col}}}]

    for s in data["sites"]:
        if s["status"] == "unresolved":
            results.append({"ruleId": "IVTX001", "level": "error", "message": {"text": f"{s['instruction']}: {s['reason']}"},
                            "locations": loc(s["file"], s["line"], s["col"])})
        elif s["status"] == "uncatalogued":
            results.append({"ruleId": "IVTX002", "level": "warning", "message": {"text": f"{s['instruction']}: sensitive, no pv op"},
                            "locations": loc(s["file"], s["line"], s["col"])})
        else:
            chosen = s["chosen"] or s["written"]
            results.append({"ruleId": "IVTX004", "level": "note",
                            "message": {"text": f"{s['instruction']} -> {s['op']}; clobbers {', '.join(chosen) or 'none needed'}"},
                            "locations": loc(s["file"], s["line"], s["col"])})
    for u in data["unresolved_control_flow"]:
        results.append({"ruleId": "IVTX003", "level": "warning", "message": {"text": u["reason"]}, "locations": loc(u["file"], u["line"])})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "ivtx", "version": __version__, "informationUri": "https://example.invalid/ivtx",
                                      "rules": rules}},
                  "results": results}],
    }


def render_matrix(result, fmt: str, handler: str | None = None, color: bool | None = None) -> str:
    data = result.to_dict(handler)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "sarif":
        merged = {"sites": [], "unresolved_control_flow": []}
        for cfgname, rep in result.reports.items():
            for s in rep["sites"]:
                s = dict(s)
                s["instruction"] = f"[{cfgname}] {s['instruction']}"
                merged["sites"].append(s)
        return json.dumps(sarif(merged), indent=2) + "\n"
    from rich.table import Table

    con = _console(color)
    con.print(f"[bold]ivtx config matrix[/] {data['file']}: {', '.join(data['configs'])}")
    t = Table(show_header=True, header_style="bold")
    t.add_column("handler")
    t.add_column("line")
    t.add_column("instruction")
    for c in data["configs"]:
        t.add_column(c, overflow="fold")
    for row in data["sites"]:
        cells = []
        for c in data["configs"]:
            v = row["configs"].get(c)
            cells.append("-" if v is None else v)
        t.add_row(row["handler"], str(row["line"]), row["instruction"], *cells)
    con.print(t)
    return _text(con) if fmt == "table" else _matrix_markdown(data)


def _matrix_markdown(data: dict) -> str:
    out = [f"# ivtx config matrix: `{os.path.basename(data['file'])}`", "",
           "| handler | line | instruction | " + " | ".join(data["configs"]) + " |",
           "|---|---|---|" + "---|" * len(data["configs"])]
    for row in data["sites"]:
        cells = [row["configs"].get(c) or "-" for c in data["configs"]]
        out.append(f"| {row['handler']} | {row['line']} | `{row['instruction']}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
