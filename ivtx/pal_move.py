"""Moving a PAL-static site (design.md "Creating clobbers", step 3) when its call cannot be planned
where it is written: too many values live across the call for the free preserved registers.

A move changes what is live around the call, and around the sites next to it; the PAL-static plan
(pal_saves.plan_site) reads far more than the free registers: reaching definitions for
recomputations, values a helper can lend, the bank. Rather than re-deriving all of that for a
hypothetical position, each candidate position (restructure.move_candidates: within the block,
past instructions the site has no dependence with, nearest first) is tried for real: the input
with the site moved there, between stops of its own, is analysed in memory under the input's own
name (preprocess.source_overrides) and the site planned there. Where that succeeds, transform
plans the whole moved input again (every site sees the new liveness: a move can take registers
from the site it passes); the first position that leaves fewer sites unresolved is kept. Its
self-check re-analyses the actual output as for any other input.

Why the moved site means the same: it reads what it read before (nothing it passes writes its
inputs), nothing it passes reads or writes its outputs, and it sits in an instruction group of
its own, so the group it lands in is only split (a split group reads no value differently in code
free of intra-group read-after-write, which `as -x` checks on the input)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .diag import IvtxError
from .emit_macro import SourceFiles, _code_follows, apply_edits, delete_span
from .printer import statement_text
from .restructure import move_candidates

if TYPE_CHECKING:
    from .transform import TransformResult

MAX_TRIES = 4  # candidate positions per direction (each costs one analysis of the input)


@dataclass
class Move:
    where: str  # "above 'insn' (file:line)"
    files: SourceFiles  # the input's files with the site moved (in memory)
    analysis: object  # that input analysed (pipeline.Analysis)


def movable(a, g) -> str | None:
    """Why site group `g` cannot be moved (None: it can be tried)."""
    if len(g.uses) != 1:
        return "the site is a macro body used more than once"
    if g.first.length != 1:
        return "the site is a sequence of instructions"
    if g.in_macro:
        return "the site is inside a macro"
    return None


def try_moves(a, g, files: SourceFiles, table: list, opts, why_not: list[str]):
    """The positions the site can move to where its own PAL-static call can be planned (the
    input with the site moved there, analysed), nearest first; `why_not` gets why the other
    positions were not taken. The site lands on the
    line of the instruction it passes (`;; MOV_FROM_IHA(r22) ;; MOV_FROM_ISR(r19)`), so every
    other line keeps its number and every other site its name."""
    from .pal_saves import plan_site
    from .pipeline import analyse
    from .preprocess import source_overrides
    from .transform import _insert_at, collect_groups

    why = movable(a, g)
    if why is not None:
        why_not.append(why)
        return
    sp = g.span
    text = files.line(sp.file, sp.line)[sp.start:sp.end]
    tried = 0
    for direction, word in ((-1, "above"), (1, "below")):
        for k, q in enumerate(move_candidates(a, g.first, direction)):
            if k >= MAX_TRIES:
                break
            tried += 1
            at = f"{word} '{statement_text(a.cfg.code[q])}' ({a.cfg.code[q].loc.use_site})"
            tag = ("ivtx-move",)
            ins = _insert_at(a, files, q, direction, [";;", text, ";;"], tag, inline=True)
            there = files.line(ins.file, ins.line)
            if (ins.file, ins.line) == (sp.file, sp.line) or (ins.file, ins.line) in files.moved:
                why_not.append(f"{at}: on the site's own line, or on a line another site moved to")
                continue
            if there[:ins.start].strip() if direction < 0 else _code_follows(there, ins.start):
                why_not.append(f"{at}: other code shares that line")
                continue
            texts, where = apply_edits(files, [delete_span(sp), ins])
            variant = SourceFiles(not_editable=tuple(files.not_editable))
            variant.texts.update(files.texts)
            variant.texts.update(texts)
            variant.moved = dict(files.moved)
            variant.moved[(ins.file, ins.line)] = (ins.start, ins.start + len(ins.new), direction,
                                                   f"ivtx: {text}, moved here from line {sp.line}")
            try:
                with source_overrides(variant.texts):
                    b = analyse(a.path, opts)
            except IvtxError as exc:  # a variant that does not analyse is a position not taken
                why_not.append(f"{at}: the moved input does not analyse ({exc})")
                continue
            groups, _ = collect_groups(b, variant, ("native", "pvcall"), opts.cat())
            file, lo, _ = where[tag]
            moved = [h for h in groups if h.op.name == g.op.name and len(h.uses) == 1
                     and b.cfg.code[h.first.pos].loc.use_site.line == lo]
            if len(moved) != 1:
                why_not.append(f"{at}: the moved site is not found again")
                continue
            got = plan_site(b, moved[0], table)
            if isinstance(got, str):
                why_not.append(f"{at}: {got.split(':')[0]}")
                continue
            yield Move(at, variant, b)
    if not tried:
        why_not.append("an operand, a CR, memory/TLB, a stop-sensitive instruction, a label or a directive "
                       "next to it blocks it")


def move_sites(a, res: "TransformResult", groups, files: SourceFiles, opts, convention: str, render: str,
                backend: str, sizes: str, partial: bool) -> "TransformResult":
    """PAL-static sites left unresolved are tried elsewhere in their block (ivtx.pal_move): the
    input with a site moved is transformed as a whole, and kept when fewer sites are unresolved.
    The result is the moved input's, with the move listed among the restructurings and the
    original text as the source the patch is made from."""
    from .emit_pal import contract
    from .transform import Restructuring, collect_groups, region_name, site_name, transform

    original = files.text(a.path)
    table = contract(opts.cat())
    moves: list[Restructuring] = []
    tried: set[str] = set()
    while True:
        by_name = {", ".join(site_name(a, u) for u in g.uses): g for g in groups}
        todo = [u for u in res.unresolved if u.site in by_name and u.site not in tried]
        if not todo:
            break
        u = todo[0]
        tried.add(u.site)
        g = by_name[u.site]
        why_not: list[str] = []
        for m in try_moves(a, g, files, table, opts, why_not):
            new = transform(m.analysis, convention, render, backend, options=opts, sizes=sizes, partial=partial,
                            _files=m.files, _moves=False)
            if len(new.unresolved) < len(res.unresolved):
                break
            why_not.append(f"{m.where}: {len(new.unresolved)} site(s) would stay unresolved")
        else:
            for x in res.unresolved:
                if x.site == u.site:
                    x.reason += "; moving the site: " + ("; ".join(why_not) or "no position to try")
            continue
        moves.append(Restructuring("move", u.site, f"the site moves {m.where}",
                                   "where it is written, too few preserved registers are free for the values live "
                                   "across its call; nothing between the two places depends on it",
                                   region_name(a, g.first)))
        a, res, files = m.analysis, new, m.files
        groups, _ = collect_groups(a, files, ("native", "pvcall"), opts.cat())
    res.restructurings[:0] = moves
    res.source_text = original
    if moves:
        res.analysis = a
    return res
