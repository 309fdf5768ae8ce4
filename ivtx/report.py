"""Clobber-register reports: rich tables for the terminal, markdown, JSON (schema ivtx-report/1)
and SARIF 2.1.0 for CI code scanning. Only this module and the CLI print."""

from __future__ import annotations

import io
from collections import Counter
import json
import os
import shutil
import sys
from pathlib import Path

from . import __version__
from .layout import estimate_bytes
from .printer import statement_text

SCHEMA = "ivtx-report/1"
MATRIX_SCHEMA = "ivtx-matrix/1"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _console(color: bool | None, width: int | None = None):
    from rich.console import Console

    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if width is None:  # COLUMNS wins (also for pipes and -o), then the terminal, else 120
        cols = os.environ.get("COLUMNS", "")
        width = int(cols) if cols.isdigit() and int(cols) > 0 else (
            shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120)
    return Console(file=io.StringIO(), force_terminal=color, no_color=not color, color_system="standard" if color else None,
                   width=width, highlight=False, soft_wrap=False)


def _text(console) -> str:
    """What the console printed, without the padding rich leaves at the ends of lines."""
    return "".join(line.rstrip() + "\n" for line in console.file.getvalue().splitlines())


# --------------------------------------------------------------------------- parse


def render_parse(results: list[dict], color: bool | None = None) -> str:
    from rich.table import Table

    con = _console(color)
    for res in results:
        con.print(f"[bold]{res['file']}[/]: {res['statements']} statements, {res['instructions']} instructions, "
                  f"{res['pv_calls']} pv-op calls, {res['vectors']} vectors, {res['sensitive']} sensitive")
        sizes = res.get("sizes", {})
        con.print("bytes: exact, from the object file" if sizes.get("source") == "exact"
                  else f"bytes: estimates ({sizes.get('reason') or 'no assembler run'})", markup=False)
        t = Table(show_header=True, header_style="bold")
        for col in ("handler", "vector", "offset", "slot", "bytes", "insns", "pv calls", "sensitive"):
            t.add_column(col, justify="right" if col not in ("handler",) else "left")
        for h in res["handlers"]:
            t.add_row(h["name"], "" if h["vector"] is None else str(h["vector"]),
                      "" if h["offset"] is None else f"{h['offset']:#06x}", "" if h["slot"] is None else f"{h['slot']:#x}",
                      _bytes_cell(h), str(h["instructions"]), str(h["pv_calls"]), str(len(h["sensitive"])))
        con.print(t)
    return _text(con)


def _bytes_cell(h: dict) -> str:
    """`336` (exact) or `~336` (estimate), marked `!` past the slot."""
    b = h.get("bytes", h.get("bytes_estimate"))
    text = f"{'' if h.get('bytes_source') == 'exact' else '~'}{b}"
    return text + (" !" if h.get("slot") is not None and b > h["slot"] else "")


# --------------------------------------------------------------------------- analysis report


def display_path(path: str) -> str:
    """A file name as reports show it: as given on the command line (relative stays relative),
    except files inside the ivtx package (the prelude), shown as `<ivtx>/prelude/...` so that
    reports do not depend on where ivtx is installed."""
    p = Path(path)
    if p.is_absolute():
        try:
            return "<ivtx>/" + p.resolve().relative_to(_PACKAGE_DIR).as_posix()
        except ValueError:
            return path
    return path


def _loc_text(loc) -> str:
    return f"{display_path(loc.file)}:{loc.line}:{loc.col}"


def site_record(a, site) -> dict:
    """One site as the JSON report (schema ivtx-report/1, docs/report-schema.md) shows it."""
    cfg = a.cfg
    s = cfg.code[site.pos]
    loc = s.loc.use_site
    text = "; ".join(statement_text(cfg.code[site.pos + j]) for j in range(site.length))
    if site.switched:
        status = "switched"
    else:
        status = "uncatalogued" if site.op is None else ("ok" if site.resolved else "unresolved")
    banked = [r for r in site.free_gr if _is_banked(r)]
    rec = {
        "handler": site.region,
        "file": display_path(loc.file),
        "line": loc.line,
        "col": loc.col,
        "instruction": text,
        "kind": site.kind,
        "op": site.op.name if site.op else None,
        "args": site.args,
        "needs": {"gr": site.needs_gr, "pr": site.needs_pr},
        "bank": site.bank,
        "state": site.state,
        "free": {"banked": banked, "other": [r for r in site.free_gr if not _is_banked(r)],
                 "pr": site.free_pr, "br": site.free_br},
        "chosen": site.chosen if site.kind != "pvcall" else [],
        "written": site.chosen if site.kind == "pvcall" else [],
        "status": status,
        "reason": site.unresolved,
        "everything_live": site.everything_live,
        "unknown_paths": site.unknown_paths,
        "switched": site.switched,
    }
    if site.claims:  # only with a convention-file claim ([unresolved_calls])
        from .claims import claim_notes

        rec["claims"] = claim_notes(site.claims)
    if s.loc.via is not None or s.loc.file != loc.file:
        rec["origin"] = _loc_text(s.loc)
    return rec


def _is_banked(reg: str) -> bool:
    return reg[0] == "r" and 16 <= int(reg[1:]) <= 31


def compact(regs: list[str]) -> str:
    """Registers in numeric order with runs folded: `r17-r19, r21, p1-p63`; `-` when empty."""
    if not regs:
        return "-"
    by_kind: dict[str, list[int]] = {}
    for r in regs:
        kind = r.rstrip("0123456789")
        by_kind.setdefault(kind, []).append(int(r[len(kind):]))
    parts = []
    for kind, nums in by_kind.items():
        nums = sorted(set(nums))
        start = prev = nums[0]
        for n in nums[1:] + [None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            parts.append(f"{kind}{start}" if start == prev else
                         f"{kind}{start}, {kind}{prev}" if prev == start + 1 else f"{kind}{start}-{kind}{prev}")
            if n is not None:
                start = prev = n
    return ", ".join(parts)


def free_classes(s: dict) -> list[tuple[str, str]]:
    """(label, compact registers) for each free class of a site record, in display order."""
    bank = s.get("bank")
    label = f"r16-r31 bank {bank}" if bank is not None else "r16-r31 (bank ?)"
    f = s["free"]
    return [(label, compact(f["banked"])), ("other GRs", compact(f["other"])),
            ("PRs", compact(f["pr"])), ("BRs", compact(f["br"]))]


def needs_text(s: dict) -> str:
    if s["op"] is None:
        return ""
    n = s["needs"]
    parts = [f"{n['gr']} GR"] + ([f"{n['pr']} PR"] if n["pr"] else [])
    return ", ".join(parts)


def outcome_text(s: dict, markup: bool = False) -> str:
    """The `chosen` column: the clobbers, or why there are none."""
    def em(text, style):
        return f"[{style}]{text}[/]" if markup else text
    if s["status"] == "unresolved":
        return f"{em('UNRESOLVED', 'bold red')}: {s['reason']}"
    if s["status"] == "uncatalogued":
        return em("sensitive, no pv op in the catalog", "yellow")
    if s["status"] == "switched":
        return f"not a site: {s['switched']}"
    if s["kind"] == "pvcall":
        free = set(s["free"]["banked"]) | set(s["free"]["other"]) | set(s["free"]["pr"])
        marked = [r if r in free else f"{r} ({em('NOT FREE', 'bold red')})" for r in s["written"]]
        return "written: " + (", ".join(marked) or "-")
    return ", ".join(s["chosen"]) or "none needed"


def site_notes(s: dict, keys: dict[str, str] | None = None) -> list[str]:
    """Why the free sets are smaller than they look: the everything-live exits paths from the
    site reach; with `keys` (exit text -> footnote key) as short references."""
    claims = list(s.get("claims", []))
    if keys is not None:
        refs = " ".join(keys[u] for u in s.get("unknown_paths", []))
        if not refs:
            return claims
        return [f"everything live after the site, see {refs}" if s.get("everything_live") else f"paths reach {refs}"] \
            + claims
    if s.get("everything_live"):
        return [f"everything live after this site: {s['everything_live']}"] + claims
    return [f"paths reach {u}" for u in s.get("unknown_paths", [])] + claims


def exit_keys(sites: list[dict]) -> dict[str, str]:
    """Footnote keys `[u1]`, `[u2]` ... for the everything-live exits of a handler's sites."""
    keys: dict[str, str] = {}
    for s in sites:
        for u in s.get("unknown_paths", []):
            keys.setdefault(u, f"[u{len(keys) + 1}]")
    return keys


def report_data(a, handler: str | None = None, sizes=None) -> dict:
    """`sizes` (ivtx.sizes.Sizes) gives exact bytes per handler; without it they are estimates."""
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
    per_handler = Counter(s["handler"] for s in sites)
    for r in regions:
        rs = sizes.of(r) if sizes is not None else None
        est = rs.estimate if rs is not None else estimate_bytes(stmts[r.start:r.end])
        handlers.append({
            "name": r.name, "section": r.section, "vector": r.vector, "offset": r.offset, "slot": r.slot,
            "labels": r.labels, "bytes_estimate": est,
            "bytes": rs.bytes if rs is not None else est, "bytes_source": rs.source if rs is not None else "estimate",
            "sites": per_handler[r.name],
        })
    unres = [{"file": display_path(u.loc.use_site.file), "line": u.loc.use_site.line, "col": u.loc.use_site.col,
              "reason": u.reason} for u in a.cfg.unresolved]
    claimed = a.policy.unresolved_calls
    for u in unres:  # with [unresolved_calls], an untraced br.call is what the claim says
        if claimed is not None and u["reason"].startswith("br.call"):
            u["treated_as"] = f"the call {claimed.claim}"
    return {
        "schema": SCHEMA,
        "tool": {"name": "ivtx", "version": __version__},
        "file": display_path(a.path),
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
        "conventions": display_path(a.policy.source),
    }


def render(a, fmt: str, handler: str | None = None, color: bool | None = None, output: str | None = None,
           sizes=None) -> str:
    data = report_data(a, handler, sizes)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif(data), indent=2) + "\n"
    if fmt == "markdown":
        return markdown(data)
    return table(data, color)


def _slot_use(h: dict) -> str:
    """`336/1024 bytes` when exact (ivtx.sizes), `~336/1024 bytes (estimate)` otherwise."""
    if h.get("bytes_source") == "exact":
        return f"{h['bytes']}/{h['slot']} bytes"
    return f"~{h.get('bytes', h['bytes_estimate'])}/{h['slot']} bytes (estimate)"


def table(data: dict, color: bool | None = None, width: int | None = None) -> str:
    """The terminal report: per handler a header (vector, offset, slot use) and a table with one
    row per site. Narrower than 120 columns, instruction/op/needs share one column and every
    cell wraps, so the report stays readable at 80 (COLUMNS=80)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    con = _console(color, width)
    narrow = con.width < 120
    con.print(Text.assemble(("ivtx report ", "bold"), display_path(data["file"])))
    by_handler: dict[str, list[dict]] = {}
    for s in data["sites"]:
        by_handler.setdefault(s["handler"], []).append(s)
    for h in data["handlers"]:
        sites = by_handler.get(h["name"], [])
        if not sites:
            continue
        head = Text(h["name"], style="bold")
        if h["vector"] is not None:
            head.append(f"  entry {h['vector']} at {h['offset']:#06x}, slot use {_slot_use(h)}")
        t = Table(title=head, title_justify="left", show_header=True, header_style="bold", expand=False,
                  box=box.SQUARE if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
        cols = ["line", "site", "free after the site", "chosen"] if narrow else \
            ["line", "instruction", "op", "needs", "free after the site", "chosen"]
        for col in cols:
            t.add_column(col, overflow="fold", justify="right" if col == "line" else "left")
        keys = exit_keys(sites)
        for s in sites:
            free = "\n".join(f"{label}: {regs}" for label, regs in free_classes(s))
            chosen = Text.from_markup(outcome_text(s, markup=True))
            for note in site_notes(s, keys):
                chosen.append("\n" + note, style="italic")
            instr = Text(s["instruction"])
            if narrow:
                site = instr
                if s["op"]:
                    site.append(f"\n{s['op']}, needs {needs_text(s)}", style="dim")
                t.add_row(str(s["line"]), site, free, chosen)
            else:
                t.add_row(str(s["line"]), instr, s["op"] or "-", needs_text(s), free, chosen)
        con.print(t)
        for text, key in keys.items():
            con.print(Text.assemble(f"  {key} ", (text, "italic")))
    sm = data["summary"]
    line = Text.assemble(("summary", "bold"), f": {sm['sites']} sites, {sm['resolved']} resolved, ",
                         (f"{sm['unresolved']} unresolved", "red" if sm["unresolved"] else ""),
                         f", {sm['uncatalogued']} sensitive instructions outside the catalog")
    if sm.get("pv_calls"):
        line.append(f", {sm['pv_calls']} pv-op calls")
    con.print(line)
    for u in data["unresolved_control_flow"]:
        con.print(Text.assemble("  ", ("unresolved control flow", "yellow"),
                                f" {u['file']}:{u['line']}: {u['reason']} (treated as: "
                                f"{u.get('treated_as', 'everything live')})"))
    return _text(con)


def markdown(data: dict) -> str:
    """The markdown report (reports/*.md): the same rows as the terminal table."""
    out = [f"# ivtx report: `{display_path(data['file'])}`", ""]
    sm = data["summary"]
    out.append(f"{sm['sites']} sites, {sm['resolved']} resolved, {sm['unresolved']} unresolved, "
               f"{sm['uncatalogued']} sensitive instructions outside the catalog, {sm['pv_calls']} pv-op calls. "
               f"Free registers are those proved dead right after the site; conventions: "
               f"`{data['conventions']}`.")
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
            title += f" (entry {h['vector']}, {h['offset']:#06x}, {_slot_use(h)})"
        out += [title, "",
                "| line | instruction | op | needs | free r16-r31 (bank) | free other GRs | free PRs | free BRs | chosen |",
                "|---|---|---|---|---|---|---|---|---|"]
        keys = exit_keys(sites)
        for s in sites:
            classes = dict(free_classes(s))
            banked = next(v for k, v in classes.items() if k.startswith("r16-r31"))
            bank = "?" if s.get("bank") is None else s["bank"]
            chosen = outcome_text(s).replace("UNRESOLVED", "**UNRESOLVED**", 1)
            chosen = "<br>".join([chosen] + [f"*{n}*" for n in site_notes(s, keys)])
            cells = [str(s["line"]), f"`{s['instruction']}`", s["op"] or "-", needs_text(s) or "-",
                     f"{banked} (bank {bank})" if banked != "-" else "-", classes["other GRs"], classes["PRs"],
                     classes["BRs"], chosen]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
        if keys:
            out += [f"- {key} {text}" for text, key in keys.items()] + [""]
    if data["unresolved_control_flow"]:
        out += ["## Unresolved control flow (everything live)", ""]
        for u in data["unresolved_control_flow"]:
            out.append(f"- `{u['file']}:{u['line']}`: {u['reason']}"
                       + (f" (treated as: {u['treated_as']})" if "treated_as" in u else ""))
        out.append("")
    return "\n".join(out)



SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_LEVELS = ("none", "note", "warning", "error")

# rule id -> (description, default level) for `ivtx report --format sarif`
REPORT_RULES = {
    "unresolved-site": ("A privileged site has fewer provably dead registers than its pv op needs", "error"),
    "uncatalogued": ("A sensitive instruction with no pv op in the catalog", "warning"),
    "unresolved-flow": ("Control flow ivtx cannot follow: everything is treated as live there", "warning"),
    "site": ("A privileged site and the clobber registers chosen for it", "note"),
}


def sarif_uri(path: str) -> dict:
    """An artifactLocation: relative paths stay relative to the source root (%SRCROOT%)."""
    from urllib.parse import quote

    shown = display_path(path)
    if Path(shown).is_absolute():
        return {"uri": Path(shown).as_uri()}
    return {"uri": quote(Path(shown).as_posix()), "uriBaseId": "%SRCROOT%"}


def sarif_result(rule: str, level: str, text: str, loc, related=()) -> dict:
    """One SARIF result at a Loc-like (file, line, col); `related` is [(loc, message)]."""
    def physical(l):
        region = {"startLine": l.line}
        if getattr(l, "col", None):
            region["startColumn"] = l.col
        return {"physicalLocation": {"artifactLocation": sarif_uri(l.file), "region": region}}
    res = {"ruleId": rule, "level": level, "message": {"text": text}, "locations": [physical(loc)]}
    if related:
        res["relatedLocations"] = [dict(physical(l), id=i, message={"text": m}) for i, (l, m) in enumerate(related)]
    return res


def sarif_log(results: list[dict], rules: dict[str, tuple[str, str]]) -> dict:
    """A SARIF 2.1.0 log with one run of ivtx; `rules` maps id -> (description, default level)."""
    ids = list(rules)
    for r in results:
        r["ruleIndex"] = ids.index(r["ruleId"])
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ivtx", "version": __version__, "informationUri": "https://example.invalid/ivtx",
                "rules": [{"id": rid, "name": "".join(w.capitalize() for w in rid.split("-")),
                           "shortDescription": {"text": desc}, "defaultConfiguration": {"level": level}}
                          for rid, (desc, level) in rules.items()]}},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory ivtx ran in"}}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


class _At:
    """A (file, line, col) for sarif_result from report dicts."""

    def __init__(self, file, line, col=None):
        self.file, self.line, self.col = file, line, col


def sarif(data: dict) -> dict:
    results = []
    for s in data["sites"]:
        at = _At(s["file"], s["line"], s["col"])
        if s["status"] == "unresolved":
            results.append(sarif_result("unresolved-site", "error", f"{s['instruction']}: {s['reason']}", at))
        elif s["status"] == "uncatalogued":
            results.append(sarif_result("uncatalogued", "warning",
                                        f"{s['instruction']}: sensitive, no pv op in the catalog", at))
        elif s["status"] != "switched":
            chosen = s["chosen"] or s["written"]
            results.append(sarif_result("site", "note", f"{s['instruction']} -> {s['op']}; clobbers "
                                        f"{', '.join(chosen) or 'none needed'}"
                                        + "".join(f"; {c}" for c in s.get("claims", [])), at))
    for u in data["unresolved_control_flow"]:
        results.append(sarif_result("unresolved-flow", "warning", u["reason"] + (
            f" (treated as: {u['treated_as']})" if "treated_as" in u else ""), _At(u["file"], u["line"])))
    return sarif_log(results, REPORT_RULES)


def matrix_cell_text(cell: dict | None) -> str:
    """What one configuration gets at one site, as the matrix table and markdown show it."""
    if cell is None:
        return "-"
    if cell["status"] == "unresolved":
        return f"UNRESOLVED: {cell['reason']}"
    if cell["status"] == "uncatalogued":
        return "sensitive, no pv op"
    if cell["status"] == "switched":
        return "inside a switched macro"
    if cell["written"]:
        return "written " + ", ".join(cell["written"])
    return ", ".join(cell["chosen"]) or "none needed"


def render_matrix(result, fmt: str, handler: str | None = None, color: bool | None = None,
                  width: int | None = None) -> str:
    data = result.to_dict(handler)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "sarif":
        merged = {"sites": [], "unresolved_control_flow": []}
        for cfgname, rep in result.reports.items():
            for s in rep["sites"]:
                if handler is not None and s["handler"] != handler:
                    continue
                s = dict(s)
                s["instruction"] = f"[{cfgname}] {s['instruction']}"
                merged["sites"].append(s)
            for u in rep["unresolved_control_flow"]:
                merged["unresolved_control_flow"].append(dict(u, reason=f"[{cfgname}] {u['reason']}"))
        return json.dumps(sarif(merged), indent=2) + "\n"
    if fmt == "markdown":
        return _matrix_markdown(data)
    from rich.table import Table
    from rich.text import Text

    con = _console(color, width)
    con.print(Text.assemble(("ivtx config matrix ", "bold"), f"{data['file']}: ",
                            "; ".join(f"{c} = {' '.join(data['defines'][c]) or '(no -D)'}" for c in data["configs"])))
    t = Table(show_header=True, header_style="bold")
    t.add_column("handler", overflow="fold")
    t.add_column("line", justify="right")
    t.add_column("instruction", overflow="fold")
    for c in data["configs"]:
        t.add_column(c, overflow="fold")
    for row in data["sites"]:
        t.add_row(row["handler"], str(row["line"]), row["instruction"],
                  *(matrix_cell_text(row["configs"].get(c)) for c in data["configs"]))
    con.print(t)
    for c in data["configs"]:
        sm = data["summaries"][c]
        con.print(f"{c}: {sm['sites']} sites, {sm['resolved']} resolved, {sm['unresolved']} unresolved, "
                  f"{sm['uncatalogued']} outside the catalog", markup=False)
    return _text(con)


def _matrix_markdown(data: dict) -> str:
    out = [f"# ivtx config matrix: `{data['file']}`", "",
           "Each column is one configuration (its `-D` set); `-` means the site does not exist there.", "",
           "| configuration | defines | sites | resolved | unresolved | outside the catalog |",
           "|---|---|---|---|---|---|"]
    for c in data["configs"]:
        sm = data["summaries"][c]
        defs = " ".join(f"`{d}`" for d in data["defines"][c]) or "(none)"
        out.append(f"| {c} | {defs} | {sm['sites']} | {sm['resolved']} | {sm['unresolved']} | {sm['uncatalogued']} |")
    out += ["", "| handler | line | instruction | " + " | ".join(data["configs"]) + " |",
            "|---|---|---|" + "---|" * len(data["configs"])]
    for row in data["sites"]:
        cells = [matrix_cell_text(row["configs"].get(c)).replace("|", "\\|") for c in data["configs"]]
        instr = row["instruction"].replace("|", "\\|")
        out.append(f"| {row['handler']} | {row['line']} | `{instr}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"



