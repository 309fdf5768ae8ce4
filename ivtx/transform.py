"""`ivtx transform`: paravirtualize every privileged site (design.md "Conventions", "Creating clobbers").

    transform(analysis, "pvops")                     each native site -> its pv_ops macro call
    transform(analysis, "pvops", render="call")      each site -> indirect call through a pv_ops table
    transform(analysis, "pal-static")                each site -> PAL static-registers-only call

Sites are edited where they are written (source-preserving text edits, emit_macro.py); a site
inside a macro body is edited once, in the body, with clobbers dead at every use of the macro.
When a site lacks registers, restructure.py tries the design's restructurings in order; a site
that still cannot be given what it needs is *unresolved*: the result then carries no text at
all. A pv call already written (or, with --expand-pv, expanded through a header's native
definition of the catalog macro, which is never edited) stays as written in the macro rendering,
except a written clobber provably live after it, which is re-chosen from the site's free
registers. Every output is re-analysed (the liveness of the output itself) and every register the
emitted code clobbers must be dead there, or transform fails loudly (IvtxInternal).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field

from .diag import IvtxError, Loc
from .emit_macro import (NATIVE_HEADER, Located, SourceFiles, Span, TextEdit, Unplaceable, apply_edits,
                         delete_span, include_edit, replace_span, includes_pv_header, locate, locate_pvcall, macro_call,
                         native_header)
from .ir import Instruction, Program, PvCall, Stop
from .printer import statement_text
from .pvcatalog import Catalog, PvOp
from .sites import Site, _patterns

CONVENTIONS = ("pvops", "pal-static")
RENDERS = ("macro", "call")
BACKENDS = ("native",)


class IvtxInternal(AssertionError):
    """The output failed transform's own re-analysis: a bug in ivtx, never a user error."""


# --------------------------------------------------------------------------- results


@dataclass
class EditRecord:
    """One site (or one macro-body site for all its uses) as edited."""

    site: str  # the use site(s) in the user's file
    where: str  # file:line of the edited text
    op: str
    old: str
    new: str
    reason: str
    # the registers the replacement may overwrite, as chosen (None: PAL-static, where the callee's
    # contract says which, docs/pal-static.md), and the calls it makes (PAL ITC_I_AND_D: two)
    clobbers: list[str] | None = None
    calls: int = 1


@dataclass
class Restructuring:
    kind: str  # rename | rematerialize | move | save-restore | out-of-line | stop
    site: str
    moved: str  # what moved where
    why: str
    region: str = ""  # the vector (or other code region) it changed


@dataclass
class UnresolvedSite:
    site: str
    instruction: str
    op: str | None
    reason: str


@dataclass
class VectorSize:
    name: str
    offset: int | None
    slot: int | None
    before: int  # bytes (exact from the object file when `exact`, else layout.estimate_bytes)
    after: int
    exact: bool = False

    @property
    def overflows(self) -> bool:
        """More bytes than the slot, where the input fitted (code after a table's last `.org`,
        like Linux's page_fault, is not bounded by the slot and was already longer)."""
        return bool(self.slot) and self.before <= self.slot < self.after


@dataclass
class TransformResult:
    convention: str
    render: str
    backend: str
    text: str | None  # the output source (None when a site is unresolved: nothing is emitted)
    program: Program | None  # its IR, parsed (pv ops kept as PvCall; stubs as real code)
    native_program: Program | None = None  # the same with the pv macros expanded natively
    support: dict[str, str] = field(default_factory=dict)  # support file name -> text
    headers: dict[str, str] = field(default_factory=dict)  # edited included files (relative name) -> text
    header_sources: dict[str, str] = field(default_factory=dict)  # relative name -> the file it edits
    edits: list[EditRecord] = field(default_factory=list)
    restructurings: list[Restructuring] = field(default_factory=list)
    unresolved: list[UnresolvedSite] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    vectors: list[VectorSize] = field(default_factory=list)
    call_table: dict[int, str] = field(default_factory=dict)  # call rendering: table entry -> stub label
    source_path: str = ""
    source_text: str = ""
    # the analysis the output was planned on when it is not the caller's: the input with sites
    # moved (ivtx.pal_move), whose lines are the input's except where a site landed
    analysis: object = None

    @property
    def ok(self) -> bool:
        return not self.unresolved


# --------------------------------------------------------------------------- site groups


@dataclass
class SiteGroup:
    """A site as written: one source text, every expansion of it (`uses`) and what they share."""

    uses: list[Site]
    op: PvOp
    kind: str  # native | pvcall
    located: list[Located] = field(default_factory=list)  # per pattern instruction (native)
    pv_span: Span | None = None  # the call text (pvcall)
    in_macro: bool = False
    stops: list[Span] = field(default_factory=list)  # `;;` between the pattern's instructions
    role_text: dict[str, str] = field(default_factory=dict)  # non-clobber roles as written
    free_gr: list[str] = field(default_factory=list)  # dead after every use, not operands
    free_pr: list[str] = field(default_factory=list)
    free_br: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def first(self) -> Site:
        return self.uses[0]

    @property
    def span(self) -> Span:
        return self.pv_span if self.pv_span is not None else self.located[0].span


def site_name(a, site: Site) -> str:
    s = a.cfg.code[site.pos]
    region = a.cfg.region_of(site.pos)
    where = f" in {region.name}" if region is not None else ""
    return f"{s.loc.use_site}{where}"


def claim_text(g: "SiteGroup", regs) -> str:
    """`; r2 free because the untraced call at X follows the C conventions (your claim in FILE)` for
    the registers among `regs` that a convention-file claim made free at some use (ivtx.claims)."""
    from .claims import claim_notes

    claims = {}
    for u in g.uses:
        for r in regs:
            name = r.split("@")[0]
            if name in u.claims:
                claims.setdefault(name, u.claims[name])
    return "".join(f"; {n}" for n in claim_notes(claims)) if claims else ""


def unknown_note(g: "SiteGroup") -> str:
    """Where an unresolved site's live registers come from an everything-live exit, say which."""
    paths = list(dict.fromkeys(p for u in g.uses for p in (u.unknown_paths or [])))
    if not paths:
        return ""
    more = f"; and {len(paths) - 1} more" if len(paths) > 1 else ""
    return f" (everything is live where paths from the site lead: {paths[0]}{more})"


def region_name(a, site: Site) -> str:
    region = a.cfg.region_of(site.pos)
    return region.name if region is not None else ""


def _usable(regs: list[str]) -> list[str]:
    """Registers emitted code may use: stacked r32-r127 exist only inside the current frame
    (CFM.sof, which ivtx does not track), so they are never chosen."""
    return [r for r in regs if not (r[0] == "r" and r[1:].isdigit() and int(r[1:]) >= 32)]


def _loc_key(s) -> tuple:
    return (s.loc.file, s.loc.line, s.loc.col)


def pv_use(s, files: SourceFiles, names) -> Loc | None:
    """Where `s` comes from the native definition of a catalog macro (a header such as
    asm/native/inst.h defining `MOV_FROM_IFA(dst)`, read with --expand-pv): the use of that
    macro, `MOV_FROM_IFA(r16)`, which is already a pv call (the header is never edited)."""
    via = s.loc.via
    if via is None or s.loc.file.startswith("<"):
        return None
    try:
        name = files.defined_name(s.loc.file, s.loc.line)
    except (OSError, UnicodeDecodeError):
        return None
    return via if name in names else None


def _site_key(code, p: int, files: SourceFiles, names) -> tuple:
    s = code[p]
    use = pv_use(s, files, names)
    return _loc_key(s) if use is None else _loc_key(s) + ((use.file, use.line, use.col),)


def collect_groups(a, files: SourceFiles, kinds: tuple[str, ...], catalog: Catalog) -> tuple[list[SiteGroup], list[str]]:
    """Group the sites of `kinds` by the source text they come from; note the others. A native
    site expanded from a catalog macro's own definition is the pv call written at its use."""
    code = a.cfg.code
    names = frozenset(catalog.ops)
    by_loc: dict[tuple, list[int]] = {}
    for p, s in enumerate(code):
        by_loc.setdefault(_site_key(code, p, files, names), []).append(p)
    groups: dict[tuple, SiteGroup] = {}
    notes: list[str] = []
    for site in a.sites:
        s = code[site.pos]
        if site.op is None:
            notes.append(f"{site_name(a, site)}: '{statement_text(s)}' is sensitive but has no pv op in the catalog; "
                         "left as written")
            continue
        if site.switched:
            notes.append(f"{site_name(a, site)}: '{statement_text(s)}' left as written: {site.switched}")
            continue
        kind = site.kind
        if kind == "native" and pv_use(s, files, names) is not None:
            kind = "pvcall"
        if kind not in kinds:
            continue
        key = tuple(_site_key(code, site.pos + j, files, names) for j in range(site.length))
        g = groups.get(key)
        if g is None:
            g = groups[key] = SiteGroup([], site.op, kind)
        g.uses.append(site)
    out = []
    for key, g in groups.items():
        _describe(a, g, files, catalog, by_loc.get(key[0], []))
        out.append(g)
    out.sort(key=lambda g: g.first.pos)
    return out, notes


def _describe(a, g: SiteGroup, files: SourceFiles, catalog: Catalog, same_text: list[int]) -> None:
    code = a.cfg.code
    first = g.first
    tagged = next((code[first.pos + j] for j in range(first.length)
                   if getattr(code[first.pos + j], "tag", None) is not None), None)
    if tagged is not None:
        g.problem = f"the site carries the tag [{tagged.tag}:], which other code refers to"
        return
    if len(same_text) != len(g.uses) or any(u.op is not g.op or u.length != first.length for u in g.uses):
        g.problem = (f"its text ({code[first.pos].loc.file}:{code[first.pos].loc.line}) expands at "
                     f"{len(same_text)} places that are not all the same pv site; editing it would change the others")
        return
    try:
        if g.kind == "pvcall":
            s = code[first.pos]
            use = pv_use(s, files, frozenset(catalog.ops)) if not isinstance(s, PvCall) else None
            if use is not None:  # native text from the macro's definition: the call is at its use
                name = files.defined_name(s.loc.file, s.loc.line)
                if name != g.op.name or any(pv_use(code[first.pos + j], files, {name}) != use
                                            for j in range(first.length)):
                    raise Unplaceable(f"{name} at {use} expands to more than the pv op {g.op.name}")
                s = PvCall(name, (), use, g.op.parens)
            span, args, g.in_macro = locate_pvcall(s, files)
            g.pv_span = span
            g.role_text = {r: t for r, t in zip(g.op.args, args)}
        else:
            g.located = [locate(code[first.pos + j], files) for j in range(first.length)]
            g.in_macro = g.located[0].in_macro
            g.role_text = _role_texts(g, code[first.pos:first.pos + first.length], catalog)
            g.stops = _stops_between(a, first, files)
    except Unplaceable as exc:
        g.problem = str(exc)
        return
    gr = pr = br = None
    for u in g.uses:
        ugr, upr, ubr = _usable(u.free_gr), u.free_pr, u.free_br
        gr = ugr if gr is None else [r for r in gr if r in ugr]
        pr = upr if pr is None else [p for p in pr if p in upr]
        br = ubr if br is None else [b for b in br if b in ubr]
    g.free_gr, g.free_pr, g.free_br = gr or [], pr or [], br or []


def _role_texts(g: SiteGroup, insns: list, catalog: Catalog) -> dict[str, str]:
    """Role -> operand text as written, through the catalog pattern the site matched."""
    from .sites import SENTINEL

    site = g.first
    kr = int(site.args["kr"]) if "kr" in site.args else None
    pat = next(p for p in _patterns(catalog) if p.op is g.op and p.kr == kr)
    inv = {v: k for k, v in SENTINEL.items()}
    out: dict[str, str] = {}
    for pi, ins, loc in zip(pat.insns, insns, g.located):
        if pi.qp in inv:
            out.setdefault(inv[pi.qp], loc.qp or "p0")
        for po, text in zip(pi.dests + pi.srcs, loc.dests + loc.srcs):
            name = getattr(po, "name", None)
            if name in inv:
                out.setdefault(inv[name], text)
    if kr is not None:
        out["kr"] = str(kr)
    return out


def _stops_between(a, site: Site, files: SourceFiles) -> list[Span]:
    stmts = a.cfg.program.statements
    if site.length == 1:
        return []
    lo, hi = a.cfg.stmt_index[site.pos], a.cfg.stmt_index[site.pos + site.length - 1]
    out = []
    for s in stmts[lo + 1:hi]:
        if isinstance(s, Stop):
            if not files.editable(s.loc.file):
                raise Unplaceable(f"a stop inside the site is written in {s.loc.file}")
            line = files.line(s.loc.file, s.loc.line)
            i = s.loc.col - 1
            if line[i:i + 2] != ";;":
                raise Unplaceable(f"the stop inside the site is not spelled ';;' at {s.loc}")
            out.append(Span(s.loc.file, s.loc.line, i, i + 2))
    return out


# --------------------------------------------------------------------------- the entry point


def transform(analysis, convention: str, render: str = "macro", backend: str = "native", *,
              options=None, sizes: str = "auto", partial: bool = False, _files=None,
              _moves: bool = True) -> "TransformResult":
    """Paravirtualize `analysis` (an ivtx.pipeline.Analysis); see the module docstring.

    `options` (ivtx.pipeline.Options: include directories, defines, conventions) default to
    those the analysis was made with. `sizes` is the ivtx.sizes mode for the bytes per vector
    (auto, exact, estimate). With
    `partial=True` the output is produced even when sites are unresolved, those sites left as
    written, and a vector that overflows its slot is listed as unresolved with the bytes it
    needs: for measuring what the rest costs, never an output to use (the CLI does not offer
    it; `res.ok` stays False)."""
    from .pipeline import Options

    if convention not in CONVENTIONS:
        raise IvtxError(f"unknown convention '{convention}' (known: {', '.join(CONVENTIONS)})")
    if render not in RENDERS:
        raise IvtxError(f"unknown rendering '{render}' (known: {', '.join(RENDERS)})")
    if backend not in BACKENDS:
        raise IvtxError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    opts = options or getattr(analysis, "options", None) or Options()
    a = analysis
    catalog = opts.cat()
    from .preprocess import prelude_path

    files = _files or SourceFiles(not_editable=(prelude_path(),))
    main = a.path
    kinds = ("native", "pvcall")  # (the macro rendering keeps pv calls, re-choosing live clobbers)
    groups, notes = collect_groups(a, files, kinds, catalog)
    out_of_line: frozenset = frozenset()
    cache: dict = {}

    def _pass(final: bool = False) -> TransformResult:
        res = TransformResult(convention, render if convention == "pvops" else "call", backend, None, None,
                              source_path=main, source_text=files.text(main))
        res.warnings.extend(notes)
        _emit(a, res, groups, files, opts, convention, render, sizes, out_of_line, cache, partial, final)
        return res

    while True:
        res = _pass()
        over = {v.name: v for v in res.vectors if v.overflows}
        if (res.unresolved and not partial) or not over:
            break
        if (convention, render) == ("pvops", "macro"):
            more = set()  # a macro call is the site's own size: only restructurings grew the vector
        elif convention == "pal-static":  # any site: its code moves out, a branch stays
            more = {g.first.pos for g in groups if any(region_name(a, u) in over for u in g.uses)}
        else:  # table calls (a direct call is one branch already)
            more = {g.first.pos for g in groups if any(region_name(a, u) in over for u in g.uses)
                    and all(_dt(a, u.pos) == 1 for u in g.uses)}
        more -= out_of_line
        if not more:
            if partial and res.program is None:  # the last pass stopped before its self-check
                res = _pass(final=True)
            for v in over.values():
                res.unresolved.append(UnresolvedSite(v.name, f"vector at {v.offset:#06x}", None,
                                                     f"needs {v.after} bytes of its {v.slot:#x}-byte slot"
                                                     + ("" if not out_of_line else
                                                        " even with its calls out of line")))
            if not partial:
                res.text = res.program = res.native_program = None
                res.headers, res.header_sources = {}, {}
            break
        out_of_line |= more
    if convention == "pal-static" and res.unresolved and _moves:
        from .pal_move import move_sites

        res = move_sites(a, res, groups, files, opts, convention, render, backend, sizes, partial)
    return res


def _dt(a, pos: int) -> int | None:
    state = a.liveness.states[pos]
    return state.dt if state is not None else None


def _emit(a, res: "TransformResult", groups, files: SourceFiles, opts, convention: str, render: str, sizes: str,
          out_of_line: frozenset, cache: dict, partial: bool = False, final: bool = False) -> None:
    """One rendering pass: plan, edit, write the result, re-analyse (the self-check)."""
    catalog = opts.cat()
    main = a.path
    res.support[NATIVE_HEADER] = native_header(catalog)  # (call renderings: for pv calls left as written)
    if convention == "pvops" and render == "macro":
        plan = _plan_macro(a, groups, files, res, opts)
    elif convention == "pvops":
        from .emit_call import plan_calls

        plan = plan_calls(a, groups, files, res, catalog, out_of_line)
    else:
        from .emit_pal import plan_pal

        plan = plan_pal(a, groups, files, res, catalog, out_of_line)
    if res.unresolved and not partial:
        return
    edits = plan.edits
    if plan.needs_pv_header and not includes_pv_header(_all_source_texts(main, opts)):
        edits = edits + [include_edit(main, files.text(main))]
        res.warnings.append(f"{main}: added '#include <{NATIVE_HEADER}>' (no pv_ops header was included)")
    texts, where = apply_edits(files, edits)
    if plan.append_main:
        texts[main] = texts.get(main, files.text(main)).rstrip("\n") + "\n" + plan.append_main
    res.support.update(plan.support)
    res.text = texts.get(main, files.text(main))
    for name, text in texts.items():
        if name != main:
            rel = _relative_name(name, main, opts)
            res.headers[rel] = text
            res.header_sources[rel] = name
    from .selfcheck import reanalyse

    reanalyse(a, res, opts, plan, where, sizes, cache, not final and (convention, render) != ("pvops", "macro"))


@dataclass
class Plan:
    """What a rendering decided: the text edits, support files, and what the self-check verifies."""

    edits: list[TextEdit] = field(default_factory=list)
    support: dict[str, str] = field(default_factory=dict)
    needs_pv_header: bool = False
    append_main: str = ""
    # tag -> what the self-check verifies at the places the tagged edit expands to
    checks: dict = field(default_factory=dict)
    rewrite: object = None  # program -> None: the self-check's model of the calls (emit_call)
    # tag -> tag whose output lines hold its code (a site whose calls run in another site's sequence)
    aliases: dict = field(default_factory=dict)


def _keep_pvcall(a, g: SiteGroup, files: SourceFiles, res: TransformResult, plan: "Plan", name: str,
                 text: str) -> None:
    """A pv call already in the source (macro rendering) stays as written, except a written
    clobber that is provably live after it (`ivtx check`): that argument is replaced by the first
    register of the site's free set (dead after every use), or the site is unresolved. A clobber
    whose liveness is unknown (no bank) is kept, with a note."""
    from .sites import clobber_locations, why_live

    used = set(g.role_text.values()) | {v for u in g.uses for v in u.args.values()}
    texts = dict(g.role_text)
    changes, chosen = [], []
    for role in g.op.args:
        kind = g.op.role_kind(role)
        if kind not in ("clob", "pclob"):
            continue
        val = g.uses[0].args.get(role) or texts.get(role, "")
        proof, unknown = None, False
        for u in g.uses:  # as ivtx check decides (a bank switch makes r16-r31 mean both banks)
            reg = u.args.get(role) or val
            locs = clobber_locations(a.cfg, a.liveness, u, reg) if re.fullmatch(r"[rp]\d+", reg) else None
            if locs is None:
                unknown = True
                continue
            for loc in locs:
                proof = proof or why_live(a.cfg, a.liveness, u.pos + u.length - 1, loc)
        if proof is None:
            if unknown:
                res.warnings.append(f"{name}: existing {text}: clobber {val} is not provably dead after it "
                                    "(its bank, frame or spelling is unknown; kept as written; see ivtx check)")
            chosen.append(val)
            continue
        why = f"written clobber {val} is live ({proof.describe(a.cfg)})"
        if g.problem:
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, f"{why}; {g.problem}"))
            return
        free = g.free_gr if kind == "clob" else g.free_pr
        new = next((r for r in free if r not in used), None)
        if new is None:
            what = "GR" if kind == "clob" else "predicate"
            res.unresolved.append(UnresolvedSite(name, text, g.op.name,
                                                 f"{why}; no {what} is free to replace it" + unknown_note(g)))
            return
        used.add(new)
        texts[role] = new
        chosen.append(new)
        changes.append(f"{why}; replaced by {new}, proved dead" + claim_text(g, [new]))
    if not changes:
        return
    call = macro_call(g.op, texts)
    tag = ("macro", len(plan.checks))
    sp = g.pv_span
    plan.edits.append(replace_span(files.line(sp.file, sp.line), sp, call, tag=tag))
    plan.checks[tag] = (g.op.name, chosen, g)
    old = files.line(sp.file, sp.line)[sp.start:sp.end]
    res.edits.append(EditRecord(name, f"{sp.file}:{sp.line}", g.op.name, old, call, "; ".join(changes), chosen))


def _all_source_texts(main: str, opts) -> list[str]:
    from .preprocess import preprocess

    keep = frozenset() if opts.expand_pv else frozenset(opts.cat().ops)
    pp = preprocess(main, include_dirs=opts.include_dirs, defines=opts.defines, undefines=opts.undefines,
                    prelude=opts.prelude, keep_undefined=keep)
    from .preprocess import prelude_path

    return ["\n".join(lines) for name, lines in pp.sources.texts.items() if name != prelude_path()]


def _relative_name(name: str, main: str, opts) -> str:
    """Where an edited header goes, relative to the output file's directory: its path relative to
    the main source's directory, else to the include directory it was found through."""
    for base in [os.path.dirname(os.path.abspath(main))] + [os.path.abspath(d) for d in opts.include_dirs]:
        rel = os.path.relpath(os.path.abspath(name), base)
        if not rel.startswith(".."):
            return rel
    raise IvtxError(f"an edited site is in {name}, which is neither under the source's directory nor under "
                    "an include directory: ivtx cannot place the edited copy", None)


# --------------------------------------------------------------------------- macro rendering


def _plan_macro(a, groups: list[SiteGroup], files: SourceFiles, res: TransformResult, opts) -> Plan:
    from .restructure import create_clobbers

    plan = Plan()
    for g in groups:
        name = ", ".join(site_name(a, u) for u in g.uses)
        text = statement_text(a.cfg.code[g.first.pos]) + ("; ..." if g.first.length > 1 else "")
        if g.kind == "pvcall":
            _keep_pvcall(a, g, files, res, plan, name, text)
            continue
        if g.problem:
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, g.problem))
            continue
        need_gr, need_pr = g.first.needs_gr, g.first.needs_pr
        extra: list[TextEdit] = []
        if len(g.free_gr) < need_gr or len(g.free_pr) < need_pr:
            fix = create_clobbers(a, g, files, need_gr, need_pr, opts.cat(), "macro")
            if fix.reason is not None:
                res.unresolved.append(UnresolvedSite(name, text, g.op.name, _shortage(g, need_gr, need_pr) + "; "
                                                     + fix.reason + unknown_note(g)))
                continue
            res.restructurings.extend(fix.records)
            extra = fix.edits
            plan.checks.update(fix.checks)
            gr, pr = fix.free_gr, fix.free_pr
            moved_to, moved_dir = fix.moved_to, fix.moved_dir
        else:
            gr, pr = g.free_gr, g.free_pr
            moved_to, moved_dir = None, 0
        chosen_gr, chosen_pr = gr[:need_gr], pr[:need_pr]
        texts = dict(g.role_text)
        it_gr, it_pr = iter(chosen_gr), iter(chosen_pr)
        for role in g.op.args:
            kind = g.op.role_kind(role)
            if kind == "clob":
                texts[role] = next(it_gr)
            elif kind == "pclob":
                texts[role] = next(it_pr)
        call = macro_call(g.op, texts)
        tag = ("macro", len(plan.checks))
        first = g.located[0].span
        if moved_to is None:
            plan.edits.append(replace_span(files.line(first.file, first.line), first, call, tag=tag))
        else:
            plan.edits.append(delete_span(first))
            plan.edits.append(_insert_at(a, files, moved_to, moved_dir, [";;", call, ";;"], tag))
        for loc in g.located[1:]:
            plan.edits.append(delete_span(loc.span))
        for sp in g.stops:
            plan.edits.append(delete_span(sp))
        plan.edits.extend(extra)
        plan.checks[tag] = (g.op.name, chosen_gr + chosen_pr, g)
        old = files.line(first.file, first.line)[first.start:first.end]
        clob = ", ".join(chosen_gr + chosen_pr)
        why = (f"clobber{'s' if len(chosen_gr + chosen_pr) > 1 else ''} {clob} dead after "
               f"{'every use' if len(g.uses) > 1 else 'the site'} (liveness)") if clob else "no clobber needed"
        why += claim_text(g, chosen_gr + chosen_pr)
        res.edits.append(EditRecord(name, f"{first.file}:{first.line}", g.op.name, old, call, why,
                                    [texts[r] for r in g.op.args if g.op.role_kind(r) in ("clob", "pclob")]))
        plan.needs_pv_header = True
        if g.op.native.rstrip().endswith(";;") and not _stop_follows(a, g.first):
            nxt = _next_code_text(a, g.first, files)
            res.restructurings.append(Restructuring(
                "stop", name, f"'{nxt}' moves to the next instruction group" if nxt else "a stop is added",
                f"the native form of {g.op.name} ends its instruction group (adding a stop changes no value read)",
                region_name(a, g.first)))
    return plan


def _insert_at(a, files: SourceFiles, pos: int, direction: int, items: list[str], tag,
               inline: bool = False) -> TextEdit:
    """Statements after (direction 1) or before (-1) the instruction at code position `pos`;
    `inline`: on its line (`;; MOV_FROM_IHA(r22) ;; MOV_FROM_ISR(r19)`), so no line moves."""
    from .emit_macro import insert_after_span, insert_before_span

    s = a.cfg.code[pos]
    if isinstance(s, PvCall):  # a pv call as written: its text, `MOV_FROM_ISR(r19)`
        span, _, in_macro = locate_pvcall(s, files)
    else:
        loc = locate(s, files)
        span, in_macro = loc.span, loc.in_macro
    if direction > 0:
        e = insert_after_span(files, span, in_macro or inline, items)
    else:
        e = insert_before_span(files, span, in_macro or inline, items)
    e.tag = tag
    return e


def _shortage(g: SiteGroup, need_gr: int, need_pr: int) -> str:
    parts = []
    if len(g.free_gr) < need_gr:
        parts.append(f"needs {need_gr} GR clobber(s), {len(g.free_gr)} free")
    if len(g.free_pr) < need_pr:
        parts.append(f"needs {need_pr} predicate clobber(s), {len(g.free_pr)} free")
    return "; ".join(parts)


def _stop_follows(a, site: Site) -> bool:
    stmts = a.cfg.program.statements
    i = a.cfg.stmt_index[site.pos + site.length - 1] + 1
    while i < len(stmts):
        s = stmts[i]
        if isinstance(s, Stop):
            return True
        if isinstance(s, (Instruction, PvCall)):
            return False
        i += 1
    return True


def _next_code_text(a, site: Site, files: SourceFiles) -> str | None:
    """The next instruction as written (for messages)."""
    p = site.pos + site.length
    if p >= len(a.cfg.code) or not a.cfg.same_flow(site.pos, p):
        return None
    s = a.cfg.code[p]
    try:
        if isinstance(s, Instruction):
            sp = locate(s, files).span
            return files.line(sp.file, sp.line)[sp.start:sp.end]
    except Unplaceable:
        pass
    return statement_text(s)


# --------------------------------------------------------------------------- patches


def unified_patch(original_path: str, original_text: str, new_text: str) -> str:
    """A unified diff that `patch -p1` and `git apply` accept (a/PATH, b/PATH headers)."""
    rel = original_path.lstrip("/")
    if rel.startswith("./"):
        rel = rel[2:]
    a_lines = original_text.splitlines(keepends=True)
    b_lines = new_text.splitlines(keepends=True)
    out = []
    for line in difflib.unified_diff(a_lines, b_lines, f"a/{rel}", f"b/{rel}", n=3):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


# --------------------------------------------------------------------------- the report


def render_report(res: TransformResult) -> str:
    """What transform did, for the terminal (stderr): counts, restructurings, unresolved sites."""
    mode = f"{res.convention} ({res.render})" if res.convention == "pvops" else res.convention
    lines = [f"ivtx transform {res.source_path}: {mode}, backend {res.backend}",
             f"  {len(res.edits)} site(s) edited, {len(res.restructurings)} restructuring(s), "
             f"{len(res.unresolved)} unresolved"]
    if res.restructurings:
        lines.append("  restructurings:")
        for r in res.restructurings:
            lines.append(f"    {r.kind}: {r.site}: {r.moved} ({r.why})")
    if res.unresolved:
        lines.append("  unresolved (nothing was written):")
        for u in res.unresolved:
            lines.append(f"    {u.site}: {u.instruction}" + (f" ({u.op})" if u.op else "") + f": {u.reason}")
    for w in res.warnings:
        lines.append(f"  note: {w}")
    changed = [v for v in res.vectors if v.before != v.after]
    if changed:
        how = "from the object files" if all(v.exact for v in res.vectors) else "estimated"
        lines.append(f"  code size changed (bytes before -> after, {how}):")
        for v in changed:
            slot = f" of {v.slot:#x}" if v.slot else ""
            lines.append(f"    {v.name}: {v.before} -> {v.after}{slot}")
    return "\n".join(lines) + "\n"


def report_data(res: TransformResult) -> dict:
    """The result as plain data (JSON): everything but the texts."""
    from dataclasses import asdict

    return {"file": res.source_path, "convention": res.convention, "render": res.render, "backend": res.backend,
            "ok": res.ok, "edits": [asdict(e) for e in res.edits],
            "restructurings": [asdict(r) for r in res.restructurings],
            "unresolved": [asdict(u) for u in res.unresolved], "warnings": list(res.warnings),
            "headers": dict(res.header_sources), "support": sorted(res.support),
            "vectors": [asdict(v) for v in res.vectors]}
