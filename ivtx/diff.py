"""`ivtx diff`: native and paravirtualized handlers side by side, aligned by instruction (design.md, job 3).

`build_diff(analysis, result)` pairs the statements of each handler (the native program on the
left, `ivtx.transform`'s output on the right) with difflib's SequenceMatcher over normalised
statement keys. A privileged site and its pv op share a key (`pv:ITC_D(pred=p7,src=r18)`), so
a site stands next to its replacement; what only the output has is inserted (`+`: call
sequences, saves and restores, recomputations, stubs), what only the input has is removed
(`-`), and a statement removed in one place and inserted in another is moved (`~`). Every site
row carries its op, the clobbers the replacement uses and why each is free (ivtx.explain, from
the native liveness), and the restructurings transform made for it. `render` draws the result
for a terminal or a pager; `patch_text` is the unified form (`patch -p1`, `git apply`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import zip_longest
from pathlib import Path

from .explain import explain_clobbers, written
from .ir import BundleBegin, BundleEnd, Directive, Instruction, Label, PvCall, Stop
from .printer import statement_text

# Layout and unwind directives say nothing about what the code does; the patch shows them all.
HIDDEN_DIRECTIVES = frozenset({
    ".align", ".proc", ".endp", ".org", ".global", ".globl", ".type", ".size", ".section", ".pushsection",
    ".popsection", ".previous", ".text", ".data", ".prologue", ".body", ".save", ".savesp", ".savepsp",
    ".spill", ".spillsp", ".spillpsp", ".spillreg", ".restore", ".unwabi", ".unwentry", ".fframe", ".vframe",
    ".vframesp", ".label_state", ".copy_state", ".altrp", ".mem.offset", ".regstk", ".rotr", ".rotp", ".rotf"})

LEGEND = [("!", "site replaced by its pv op"), ("=", "privileged site kept as written"),
          ("?", "unresolved site (left as written)"), ("+", "inserted by ivtx"), ("-", "removed"),
          ("~", "moved"), ("*", "stop (;;) added or removed")]

# ANSI SGR per mark (colour only when asked: render(color=True))
_STYLE = {"!": "1;33", "=": "34", "?": "1;31", "+": "32", "-": "31", "~": "36", "*": "35"}
_RESET = "\x1b[0m"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Cell:
    line: int | None  # line of the statement in its file (the macro use for expansions)
    lines: list[str]  # what is shown (a multi-instruction site has one line per instruction)
    mark: str = " "


@dataclass
class Note:
    text: str
    alert: bool = False  # something a reviewer must look at (unresolved, not proved dead)


@dataclass
class Row:
    left: Cell | None
    right: Cell | None
    notes: list[Note] = field(default_factory=list)


@dataclass
class HandlerDiff:
    name: str
    where: str  # "entry 0 at ia64_ivt+0x0000", or the section for other code
    size: object | None  # transform.VectorSize
    rows: list[Row] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # replaced, kept, unresolved, restructurings


@dataclass
class Diff:
    path: str
    mode: str  # "pvops, macro rendering"
    handlers: list[HandlerDiff]
    unresolved: int
    notes: list[Note] = field(default_factory=list)


@dataclass
class _Unit:
    """One aligned thing: a statement, or a whole (multi-instruction) site."""

    key: str
    lines: list[str]
    line: int | None
    site: object | None = None  # ivtx.sites.Site (left side only)
    stmt: object | None = None  # the (first) statement


# --------------------------------------------------------------------------- building


def build_diff(a, res, handler: str | None = None, catalog=None) -> Diff:
    """The side-by-side view of `a` (pipeline.Analysis) against `res` (transform.TransformResult,
    with text: run transform with partial=True to see the resolved sites of a file that has
    unresolved ones). `handler` keeps one region: its name or its offset (`0x400`)."""
    from .diag import IvtxError
    from .emit_macro import SourceFiles
    from .layout import regions
    from .pipeline import Options
    from .preprocess import prelude_path

    catalog = catalog or Options().cat()
    if res.program is None:
        raise IvtxError(f"{a.path}: the transform produced no output to compare"
                        + (f" ({len(res.unresolved)} unresolved site(s))" if res.unresolved else ""), None)
    mode = f"{res.convention}, {res.render} rendering" if res.convention == "pvops" else res.convention
    files = SourceFiles(not_editable=(prelude_path(),))
    out_files = SourceFiles(not_editable=(prelude_path(),))
    out_files.texts[res.program.path] = res.text  # the output is parsed from a file that is gone
    ctx = _Context(a, res, catalog, files)
    right_regions: dict[str, list] = {}
    for r in regions(res.program):
        right_regions.setdefault(r.name, []).append(r)
    sizes = {v.name: v for v in res.vectors}
    shown = []
    for region in a.cfg.regions:
        if handler is not None and not _selected(region, handler):
            continue
        rr = right_regions.get(region.name, [])
        right = rr.pop(0) if rr else None
        left_units = ctx.left_units(region)
        right_units = _units(res.program.statements, right, catalog, out_files) if right is not None else []
        if not left_units and not right_units:
            continue
        shown.append(ctx.handler(region, left_units, right_units, sizes.get(region.name)))
    for name, rest in right_regions.items():  # code only the output has (stubs, out-of-line calls)
        for region in rest:
            if handler is not None and not _selected(region, handler):
                continue
            units = _units(res.program.statements, region, catalog, out_files)
            if units:
                h = HandlerDiff(name, f"{region.section}, generated by ivtx (not in the source)", None)
                h.rows = [Row(None, Cell(u.line, u.lines, "+")) for u in units]
                shown.append(h)
    if handler is not None and not shown:
        raise IvtxError(f"no handler named '{handler}' in {a.path} (give a handler's label or its offset, "
                        "e.g. 0x400)", None)
    d = Diff(a.path, mode, shown, len(res.unresolved))
    names = {ctx.name_of(s) for s in a.sites}
    for w in res.warnings:
        if not any(w.startswith(n + ":") for n in names):
            d.notes.append(Note(w))
    return d


def _selected(region, handler: str) -> bool:
    if region.name == handler:
        return True
    try:
        return region.offset is not None and region.offset == int(handler, 0)
    except ValueError:
        return False


def _key(s, catalog) -> str:
    """What must be equal for two statements to be aligned as the same."""
    if isinstance(s, PvCall):
        op = catalog.get(s.name)
        if op is not None:
            from .pveffects import arg_text

            return _op_key(op, {role: arg_text(x) for role, x in zip(op.args, s.args)})
    return statement_text(s)


def _op_key(op, args: dict[str, str]) -> str:
    """A pv op by the operands that are not clobbers: a native site and its macro call agree."""
    kept = ",".join(f"{r}={args.get(r, '')}" for r in op.args if op.role_kind(r) not in ("clob", "pclob"))
    return f"pv:{op.name}({kept})"


def _shown(s) -> bool:
    if isinstance(s, (Instruction, PvCall, Label, BundleBegin, BundleEnd)):
        return True
    return isinstance(s, Directive) and s.name not in HIDDEN_DIRECTIVES


def _text(s, files) -> str:
    if isinstance(s, (Instruction, PvCall)):
        return written(s, files)
    return statement_text(s)


def _add_stop(units: list[_Unit]) -> None:
    if units:
        units[-1].lines[-1] += " ;;"


def _units(stmts, region, catalog, files) -> list[_Unit]:
    """The shown statements of a region, each stop appended to the line before it."""
    out: list[_Unit] = []
    for s in stmts[region.start:region.end]:
        if isinstance(s, Stop):
            _add_stop(out)
        elif _shown(s):
            out.append(_Unit(_key(s, catalog), [_text(s, files)], s.loc.use_site.line, stmt=s))
    return out


class _Context:
    """What building one handler's rows needs from the analysis and the transform result."""

    def __init__(self, a, res, catalog, files):
        from .transform import site_name

        self.a, self.res, self.catalog, self.files = a, res, catalog, files
        self.site_name = site_name
        self.pos_of = {si: p for p, si in enumerate(a.cfg.stmt_index)}
        self.sites_at = {s.pos: s for s in a.sites}
        self.edits = _by_site(res.edits)
        self.restructurings = _by_site(res.restructurings)
        self.unresolved = _by_site(res.unresolved)

    def name_of(self, site) -> str:
        return self.site_name(self.a, site)

    def left_units(self, region) -> list[_Unit]:
        stmts = self.a.program.statements
        out: list[_Unit] = []
        i = region.start
        while i < region.end:
            s = stmts[i]
            site = self.sites_at.get(self.pos_of.get(i, -1))
            if isinstance(s, Stop):
                _add_stop(out)
            elif site is not None and site.kind == "native" and self.name_of(site) not in self.edits:
                # left as written (unresolved, uncatalogued, in a switched macro): the output has the
                # same statements, so they align as themselves; the first carries the site's notes
                out.append(_Unit(_key(s, self.catalog), [_text(s, self.files)], s.loc.use_site.line, site, s))
            elif site is not None:
                last = self.a.cfg.stmt_index[site.pos + site.length - 1]
                unit = _Unit(_key(s, self.catalog), [], s.loc.use_site.line, site, s)
                if site.op is not None:
                    unit.key = _op_key(site.op, site.args)
                for t in stmts[i:last + 1]:
                    if isinstance(t, Stop) and unit.lines:
                        unit.lines[-1] += " ;;"
                    elif isinstance(t, (Instruction, PvCall)):
                        unit.lines.append(_text(t, self.files))
                out.append(unit)
                i = last
            elif _shown(s):
                out.append(_Unit(_key(s, self.catalog), [_text(s, self.files)], s.loc.use_site.line, stmt=s))
            i += 1
        return out

    def handler(self, region, left: list[_Unit], right: list[_Unit], size) -> HandlerDiff:
        where = (f"entry {region.vector} at {region.table}+{region.offset:#06x}" if region.is_vector
                 else f"section {region.section}")
        h = HandlerDiff(region.name, where, size)
        h.counts = {"replaced": 0, "kept": 0, "unresolved": 0, "restructurings": 0}
        paired: list[tuple[Row, _Unit | None, _Unit | None, bool]] = []
        sm = SequenceMatcher(None, [u.key for u in left], [u.key for u in right], autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            pairs = zip(left[i1:i2], right[j1:j2]) if tag == "equal" else self.replaced(left[i1:i2], right[j1:j2])
            for lu, ru in pairs:
                paired.append((self.row(lu, ru, tag == "equal", h), lu, ru, tag == "equal"))
        _mark_moves(paired)
        h.rows = [p[0] for p in paired]
        placed = {self.name_of(u.site) for u in left if u.site is not None}
        h.counts["restructurings"] = len({id(r) for n in placed for r in self.restructurings.get(n, [])})
        for r in self.res.restructurings:
            if r.region == region.name and not any(n in placed for n in r.site.split(", ")):
                h.notes.append(Note(f"{r.kind}: {r.site}: {r.moved} ({r.why})"))
                h.counts["restructurings"] += 1
        for u in self.res.unresolved:
            if u.site == region.name:
                h.notes.append(Note(f"UNRESOLVED: {u.instruction}: {u.reason}", alert=True))
        return h

    def replaced(self, left: list[_Unit], right: list[_Unit]) -> list[tuple]:
        """Rows of a changed stretch: each site next to the statement that performs its op (its
        macro call, or the branch of its call sequence), the rest of the new code around it."""
        out: list[tuple] = []
        todo = list(left)
        skip = 0  # further calls of the site just placed (a PAL-static ITC_I_AND_D makes two)
        for ru in right:
            site_i = next((i for i, u in enumerate(todo) if u.site is not None and self.performs(ru, u.site)), None)
            if skip and self.performs(ru, None):
                skip -= 1
            elif site_i is not None:  # what comes before it in the input (removed, or moved away) first
                out += [(u, None) for u in todo[:site_i]]
                out.append((todo[site_i], ru))
                skip = self.calls_made(todo[site_i].site) - 1
                del todo[:site_i + 1]
                continue
            out.append((None, ru))
        # the rest of the input stretch after the last input line placed: the input order is kept
        at = max((i + 1 for i, (lu, _ru) in enumerate(out) if lu is not None), default=0)
        out[at:at] = [(u, None) for u in todo]
        return out

    def performs(self, ru: _Unit, site) -> bool:
        """Whether the output statement `ru` is the one that performs `site`'s op (None: any site)."""
        s = ru.stmt
        if isinstance(s, PvCall):
            return site is None or (site.op is not None and s.name == site.op.name)
        return (isinstance(s, Instruction) and s.op in ("br", "brl") and "call" not in s.completers
                and not (self.res.convention == "pvops" and self.res.render == "macro"))

    def calls_made(self, site) -> int:
        """How many calls transform emitted for a site (a PAL-static ITC_I_AND_D makes two)."""
        edit = self.edits.get(self.name_of(site), [None])[0]
        if edit is None or self.res.convention != "pal-static":
            return 1
        return max(1, edit.calls)

    def row(self, lu: _Unit | None, ru: _Unit | None, equal: bool, h: HandlerDiff) -> Row:
        left = Cell(lu.line, list(lu.lines)) if lu is not None else None
        right = Cell(ru.line, list(ru.lines)) if ru is not None else None
        row = Row(left, right)
        if left is not None:
            if lu.site is not None:
                left.mark, row.notes = self.site_notes(lu.site, h)
            else:
                left.mark = " " if equal else "-"
        if right is not None:
            if not equal:  # new code; the statement performing a site's op shares the site's mark
                right.mark = "!" if left is not None and left.mark == "!" else "+"
            elif left.mark in "!=?":
                right.mark = left.mark
            elif lu.lines[-1].endswith(";;") != ru.lines[-1].endswith(";;"):
                left.mark = right.mark = "*"
        return row

    def site_notes(self, site, h: HandlerDiff) -> tuple[str, list[Note]]:
        """(mark, notes) of a privileged site: its op, clobbers and why they are free."""
        name = self.name_of(site)
        edit = self.edits.get(name, [None])[0]
        restr = self.restructurings.get(name, [])
        notes = [Note(f"{r.kind}: {r.moved} ({r.why})") for r in restr]
        if site.op is None:
            h.counts["kept"] += 1
            return "=", [Note("sensitive, but the catalog has no pv op for it: left as written", alert=True)]
        if site.switched:
            h.counts["kept"] += 1
            return "=", [Note(f"left as written: {site.switched}")]
        if name in self.unresolved:
            h.counts["unresolved"] += 1
            u = self.unresolved[name][0]
            return "?", [Note(f"UNRESOLVED {site.op.name}, left as written: {u.reason}", alert=True)]
        if edit is None:  # a pv call already in the source (macro rendering keeps it)
            h.counts["kept"] += 1
            head = f"{site.op.name} kept as written"
            clobs = list(site.chosen)
        else:
            h.counts["replaced"] += 1
            how = "" if self.res.render == "macro" and self.res.convention == "pvops" else f" ({edit.new})"
            head = site.op.name + how
            clobs = self.clobbers(site, edit)
        if not clobs:
            return ("!" if edit else "="), [Note(f"{head}: no clobber needed")] + notes
        why = explain_clobbers(self.a.cfg, self.a.liveness, site, clobs, self.files)
        pal = self.res.convention == "pal-static" and (edit is None or edit.clobbers is None)
        verb = "the callee may clobber" if pal else "clobbers"
        if len(why) == 1 and why[0].dead:  # one reason for all: one line
            return ("!" if edit else "="), [Note(f"{head}: {verb} {_compact(clobs)}, free: {why[0].reason}")] + notes
        out = [Note(f"{head}: {verb} {_compact(clobs)}")]
        for c in why:
            regs = _compact(c.regs)
            if c.dead:
                out.append(Note(f"{regs} free: {c.reason}"))
            elif restr:
                out.append(Note(f"{regs}: live in the native code ({c.reason}); handled by the "
                                f"{' and '.join(sorted({r.kind for r in restr}))} below"))
            else:
                out.append(Note(f"{regs}: NOT PROVED DEAD: {c.reason}", alert=True))
        return ("!" if edit else "="), out + notes

    def clobbers(self, site, edit) -> list[str]:
        """The registers the replacement of `site` may overwrite, as transform chose them."""
        if edit.clobbers is not None:  # as transform chose them (macro and call renderings)
            return list(edit.clobbers)
        if self.res.convention == "pal-static":  # docs/pal-static.md: what the callee may clobber
            from .pal_saves import CALLER_BANK_SCRATCH, SCRATCH

            state = self.a.liveness.states[site.pos]
            bank = state.bank if state is not None else None
            out = [f"{r}@0" for r in SCRATCH]
            if bank is not None:
                out += [f"{r}@{bank}" for r in CALLER_BANK_SCRATCH if f"{r}@{bank}" not in out]
            return [r.removesuffix("@0") if bank == 0 else r for r in out] + ["b0"]
        return []


def _by_site(records) -> dict[str, list]:
    """Records by each use site they name (`file:line:col in handler`, several joined by ', ')."""
    out: dict[str, list] = {}
    for r in records:
        for name in r.site.split(", "):
            out.setdefault(name, []).append(r)
    return out


def _mark_moves(paired) -> None:
    """A statement removed in one place and inserted in another is moved: mark both `~`."""
    inserted: dict[str, list[Row]] = {}
    for row, _lu, ru, equal in paired:
        if ru is not None and not equal:
            inserted.setdefault(ru.key, []).append(row)
    for row, lu, _ru, equal in paired:
        if lu is None or equal or row.left.mark not in "-!" or row.right is not None:
            continue  # (a site next to the call that performs it has not moved)
        hits = inserted.get(lu.key)
        if hits:
            other = hits.pop(0)
            row.left.mark = "~"
            other.right.mark = "~"


def _compact(regs: list[str]) -> str:
    """`r24, r25, r26, r27` -> `r24-r27` (runs of three or more), other names as they are."""
    out: list[str] = []
    run: list[int] = []
    prefix = ""

    def flush():
        if len(run) >= 3:
            out.append(f"{prefix}{run[0]}-{prefix}{run[-1]}")
        else:
            out.extend(f"{prefix}{n}" for n in run)
        run.clear()

    for r in regs:
        m = re.fullmatch(r"([rpbf])(\d+)", r)
        if m and run and m.group(1) == prefix and int(m.group(2)) == run[-1] + 1:
            run.append(int(m.group(2)))
            continue
        flush()
        if m:
            prefix, run[:] = m.group(1), [int(m.group(2))]
        else:
            out.append(r)
    flush()
    return ", ".join(out)


# --------------------------------------------------------------------------- rendering


def render(d: Diff, width: int = 120, color: bool = False, plain: bool = False) -> str:
    """The side-by-side view as text `width` columns wide: ANSI colours when `color`, ASCII
    rules when `plain` (for pagers and logs). Every physical line fits the width; long code
    wraps inside its column and notes wrap under their row."""
    width = max(width, 20)
    out = _Out(width, color, plain)
    out.para(f"ivtx diff {d.path}: native (left) against {d.mode} (right)", bold=True)
    out.legend()
    if d.unresolved:
        out.para(f"{d.unresolved} site(s) unresolved: ivtx transform writes nothing for this file; they are "
                 "left as written on the right", alert=True)
    for n in d.notes:
        out.para(f"note: {n.text}", alert=n.alert)
    nd = max([2] + [len(str(c.line)) for h in d.handlers for r in h.rows for c in (r.left, r.right)
                    if c is not None and c.line is not None])
    for h in d.handlers:
        out.blank()
        _handler(out, h, nd, d.mode)
    return out.text()


class _Out:
    def __init__(self, width: int, color: bool, plain: bool):
        self.width, self.color, self.plain = width, color, plain
        self.lines: list[str] = []

    def style(self, text: str, sgr: str | None) -> str:
        return f"\x1b[{sgr}m{text}{_RESET}" if self.color and sgr and text else text

    def para(self, text: str, indent: int = 0, prefix: str = "", alert: bool = False, bold: bool = False,
             dim: bool = False) -> None:
        first = " " * indent + prefix
        rest = " " * (indent + len(prefix))
        sgr = "31" if alert else "1" if bold else "2" if dim else None
        for line in textwrap.wrap(text, self.width, initial_indent=first, subsequent_indent=rest,
                                  break_on_hyphens=False) or [first]:
            self.lines.append(self.style(line.rstrip(), sgr))

    def legend(self) -> None:
        """`legend: ! site ...   = ...`, wrapped between items, each mark in its colour."""
        rows: list[list[tuple[str, str]]] = [[]]
        used = len("legend:")
        for mark, what in LEGEND:
            item = f"{mark} {what}"
            if rows[-1] and used + 3 + len(item) > self.width:
                rows.append([])
                used = 2
            used += (3 if rows[-1] else 1) + len(item)
            rows[-1].append((mark, what))
        for i, row in enumerate(rows):
            items = "   ".join(f"{self.style(m, _STYLE.get(m))} {w}" for m, w in row)
            line = ("legend: " if i == 0 else "  ") + items
            if len(ANSI_ESCAPE.sub("", line)) > self.width:  # one item wider than the terminal
                self.para(ANSI_ESCAPE.sub("", line))
            else:
                self.lines.append(line)

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "".join(line.rstrip() + "\n" for line in self.lines)


def _size_text(v, plain: bool) -> str:
    """`bytes 336 → 464 of 0x400 (+128, exact)`; estimates (no assembler, or it refused) get `~`."""
    t = "" if v.exact else "~"
    slot = f" of {v.slot:#x}" if v.slot else ""
    grow = v.after - v.before
    text = (f"bytes {t}{v.before} {'->' if plain else '→'} {t}{v.after}{slot} ("
            + (f"{grow:+d}, " if grow else "") + ("exact)" if v.exact else "estimated)"))
    if v.slot and v.before <= v.slot < v.after:
        text += ": OVERFLOWS THE SLOT"
    return text


def _handler(out: _Out, h: HandlerDiff, nd: int, mode: str) -> None:
    w, plain = out.width, out.plain
    dot = " - " if plain else " · "
    title = f"{h.name}{dot}{h.where}"
    rule = "=" if plain else "═"
    head = f"{rule * 2} {title} "
    if len(head) + 2 <= w:
        out.lines.append(out.style(head + rule * (w - len(head)), "1"))
    else:
        out.para(title, bold=True)
    c = h.counts
    facts = [_size_text(h.size, plain)] if h.size is not None else []
    if c:
        facts.append(f"{c['replaced'] + c['kept'] + c['unresolved']} privileged site(s): {c['replaced']} replaced, "
                     f"{c['kept']} kept, {c['unresolved']} unresolved; {c['restructurings']} restructuring(s)")
    if facts:
        out.para(dot.strip().join(f" {x} " for x in facts).strip(), indent=3)
    for n in h.notes:
        out.para(n.text, indent=3, alert=n.alert)
    sep = " | " if plain else " │ "
    side = (w - len(sep)) // 2
    tw = side - nd - 3
    if tw < 12:
        _stacked(out, h, nd)
        return
    left_title = "native"[:side]
    out.lines.append(f"{left_title:<{side}}{sep}{mode[:side]}".rstrip())
    bar = "-" if plain else "─"
    out.lines.append(bar * side + ("-+-" if plain else "─┼─") + bar * (w - side - 3))
    for row in h.rows:
        lcol = _cell_lines(row.left, nd, tw)
        rcol = _cell_lines(row.right, nd, tw)
        for (lt, lm), (rt, rm) in zip_longest(lcol, rcol, fillvalue=(" " * side, None)):
            left = out.style(lt.rstrip(), _STYLE.get(lm)) + " " * (len(lt) - len(lt.rstrip())) if lm else lt
            right = out.style(rt.rstrip(), _STYLE.get(rm)) if rm else rt.rstrip()
            out.lines.append(f"{left}{sep}{right}")
        for n in row.notes:
            out.para(n.text, indent=nd + 3, prefix="`- " if plain else "└ ", alert=n.alert, dim=not n.alert)


def _cell_lines(cell: Cell | None, nd: int, tw: int) -> list[tuple[str, str | None]]:
    """A cell as physical lines exactly nd + 3 + tw wide, each with the mark that colours it."""
    if cell is None:
        return []
    out = []
    for i, line in enumerate(cell.lines):
        parts = _wrap_code(line, tw)
        for j, part in enumerate(parts):
            first = i == 0 and j == 0
            num = str(cell.line) if first and cell.line is not None else ""
            out.append((f"{cell.mark if first else ' '} {num:>{nd}} {part:<{tw}}",
                        cell.mark if cell.mark != " " else None))
    return out


def _wrap_code(text: str, width: int, indent: str = "  ") -> list[str]:
    """Code in lines of at most `width`: broken after the last space, comma, `=`, `|` or `+` that
    fits (`tbit.nz p10,p11=r19,` / `IA64_ISR_X_BIT`), else cut; continuations indented."""
    out: list[str] = []
    if width <= len(indent) + 1:
        indent = ""
    while len(text) > width:
        cut = max((i for i in range(1, width + 1) if text[i - 1] in " ,=|+"), default=width)
        if cut <= len(indent) and out:
            cut = width
        out.append(text[:cut].rstrip())
        text = indent + text[cut:].lstrip()
    out.append(text)
    return out


def _stacked(out: _Out, h: HandlerDiff, nd: int) -> None:
    """Too narrow for two columns: the native line, then (when it differs) the output's, marked."""
    for row in h.rows:
        cells = [row.left] if (row.left is not None and row.right is not None and row.left.mark == " "
                               and row.right.mark == " ") else [c for c in (row.left, row.right) if c is not None]
        for c in cells:
            side = "<" if c is row.left else ">"
            for i, line in enumerate(c.lines):
                num = str(c.line) if i == 0 and c.line is not None else ""
                prefix = f"{c.mark}{side}{num:>{nd}} "
                for k, part in enumerate(textwrap.wrap(line, max(out.width - len(prefix), 8),
                                                       break_on_hyphens=False) or [""]):
                    text = (prefix if k == 0 else " " * len(prefix)) + part
                    out.lines.append(out.style(text, _STYLE.get(c.mark)))
        for n in row.notes:
            out.para(n.text, indent=2, prefix="`- " if out.plain else "└ ", alert=n.alert, dim=not n.alert)


# --------------------------------------------------------------------------- unified


def patch_text(res, path: str) -> str:
    """The unified patch of the transform against the original source, the edited included
    headers too (transform.unified_patch: `patch -p1` / `git apply` from the directory the paths
    were given from)."""
    from .transform import unified_patch

    text = unified_patch(path, res.source_text, res.text)
    for rel, header in sorted(res.header_sources.items()):
        text += unified_patch(header, Path(header).read_text(encoding="utf-8"), res.headers[rel])
    return text


def color_patch(text: str) -> str:
    """A unified patch with ANSI colours (for a terminal only: colour codes do not apply)."""
    out = []
    for line in text.splitlines(keepends=True):
        body, nl = line.rstrip("\n"), "\n" if line.endswith("\n") else ""
        sgr = ("1" if line.startswith(("---", "+++")) else "36" if line.startswith("@@")
               else "32" if line.startswith("+") else "31" if line.startswith("-") else None)
        out.append(f"\x1b[{sgr}m{body}{_RESET}{nl}" if sgr and body else line)
    return "".join(out)
