"""Aligning the traces of two interpreter runs to find where they part: the first diverging
instruction of a verify mismatch (ivtx.verify; design.md, Verification).

Steps are aligned by instruction text (a transformed program keeps the native instructions
and adds or moves some); values are compared with code addresses named the way
ivtx.interp_layout names them, so that equal points in two programs compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

from typing import TYPE_CHECKING

from .interp import RunResult

if TYPE_CHECKING:  # annotations only: verify imports this module
    from .verify import Difference


def fmt_value(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:#x}"
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], bool):
        return fmt_value(v[0]) + (" NaT" if v[1] else "")
    return str(v)


@dataclass
class Divergence:
    """Where the two runs part: a native step, a transformed step (either may be None)."""

    reason: str
    native: object = None  # interp.Step
    transformed: object = None
    preceded_by: list = field(default_factory=list)  # transformed-only steps just before

    def describe(self) -> str:
        lines = [self.reason]
        for label, step in (("native", self.native), ("transformed", self.transformed)):
            if step is not None:
                lines.append(f"  {label}: {step.loc.use_site}: {step.text}")
        if self.preceded_by:
            lines.append("  after transformed-only instructions: " + "; ".join(
                f"{s.text} ({s.loc.use_site})" for s in self.preceded_by[-3:]))
        return "\n".join(lines)


def _canon_values(layout, d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple) and v and isinstance(v[0], int):
            out[k] = (layout.canonical(v[0]),) + tuple(v[1:])
        elif isinstance(v, int):
            out[k] = layout.canonical(v)
        else:
            out[k] = v
    return out


def first_divergence(a: RunResult, b: RunResult, diffs: list[Difference]) -> Divergence | None:
    """Align the two traces by instruction text.  The first aligned pair that reads different
    values is where the runs visibly part; the instruction blamed is the last aligned one
    before it that wrote a different value to a location it reads (a hypervisor model's
    clobber, say), else that pair itself (after any transformed-only instructions just
    before it).  When no aligned pair reads differently: the first that writes differently,
    else the last instruction that wrote a differing location, preferring one only one run
    executed (an inserted or dropped instruction)."""
    sa, sb = a.trace or [], b.trace or []
    la, lb = a.machine.interp.layout, b.machine.interp.layout
    sm = SequenceMatcher(None, [s.text for s in sa], [s.text for s in sb], autojunk=False)
    pairs = [(blk.a + k, blk.b + k) for blk in sm.get_matching_blocks() for k in range(blk.size)]
    matched_a, matched_b = {i for i, _ in pairs}, {j for _, j in pairs}
    writers: list[tuple[int, int, set, str, list]] = []  # aligned pairs that wrote differently
    last_j = 0
    for i, j in pairs:
        before = [sb[q] for q in range(last_j, j) if q not in matched_b]
        ra, rb = _canon_values(la, sa[i].reads), _canon_values(lb, sb[j].reads)
        if ra != rb:
            what = _differing("reads", ra, rb)
            read = {n.split("@")[0] for n in set(ra) | set(rb) if ra.get(n) != rb.get(n)}
            for wi, wj, locs, wwhat, wbefore in reversed(writers):
                if locs & read:
                    return Divergence(f"{wwhat}; read at {sa[i].loc.use_site}: {sa[i].text} ({what})",
                                      sa[wi], sb[wj], wbefore)
            return Divergence(what + _last_writers((sa, la), i, matched_a, (sb, lb), j, matched_b, read),
                              sa[i], sb[j], before)
        wa, wb = _canon_values(la, sa[i].writes), _canon_values(lb, sb[j].writes)
        if wa != wb:
            locs = {n.split("@")[0] for n in set(wa) | set(wb) if wa.get(n) != wb.get(n)}
            writers.append((i, j, locs, _differing("writes", wa, wb), before))
        last_j = j + 1
    if writers:  # no differing read: blame the last write of a location that differs at the exit
        at_exit = {d.location.split("@")[0] for d in diffs}
        wi, wj, _, wwhat, wbefore = next((w for w in reversed(writers) if w[2] & at_exit), writers[0])
        return Divergence(wwhat, sa[wi], sb[wj], wbefore)
    for d in diffs:
        key = d.location
        for steps, matched, side in ((sa, matched_a, "native"), (sb, matched_b, "transformed")):
            for q in range(len(steps) - 1, -1, -1):
                w = steps[q].writes
                hit = key in w or (key.startswith("mem[") and any(k.startswith("mem[") for k in w)) or \
                    (key == "exit" and "exit" in w)
                if hit and q not in matched:
                    return Divergence(f"{d.describe()}; the last write is only in the {side} run",
                                      steps[q] if side == "native" else None, steps[q] if side == "transformed" else None)
    if diffs:
        return Divergence(f"aligned instructions read and write the same values; {diffs[0].describe()}")
    return None


def _last_writers(a, i, matched_a, b, j, matched_b, locs: set) -> str:
    """Where each run last wrote the locations read differently, when only one run has that
    instruction there (moved or inserted code)."""
    notes = []
    for (steps, layout), end, matched, side in ((a, i, matched_a, "native"), (b, j, matched_b, "transformed")):
        for q in range(end - 1, -1, -1):
            hit = sorted(n for n in steps[q].writes if n.split("@")[0] in locs)
            if hit:
                if q not in matched:
                    reads = ", ".join(f"{k}={fmt_value(v)}" for k, v in list(_canon_values(layout, steps[q].reads).items())[:4])
                    notes.append(f"{side} {hit[0]} last written by {steps[q].text} at {steps[q].loc.use_site}"
                                 + (f", which reads {reads}" if reads else ""))
                break
    return "; " + "; ".join(notes) if notes else ""


def _differing(what: str, x: dict, y: dict) -> str:
    locs = [n for n in sorted(set(x) | set(y), key=str) if x.get(n) != y.get(n)]
    shown = "; ".join(f"{n}: native {fmt_value(x[n]) if n in x else 'nothing'}, transformed "
                      f"{fmt_value(y[n]) if n in y else 'nothing'}" for n in locs[:3])
    return f"{what} differ: {shown}" + (f" (and {len(locs) - 3} more)" if len(locs) > 3 else "")
