"""Why a clobber is free: the proof behind "dead after the site", in words, from the CFG and liveness.

A location is dead after a code position when no path from there reads it before writing it
(primer section 5: only a must-write ends a path; a predicated write does not). `why_dead`
follows every path from the position to the first event that settles it, and says what it is:

    overwritten at ivt.S:273 (ld8 r18=[r17]) before any read       a must-write (liveness kill)
    not read again: not part of the interrupted context at rfi      the rfi exit (primer section 2)
    not read by page_fault (conventions.toml [symbol.page_fault])   an exit summary that omits it

A summary that returns (a `br.call`, the nested-TLB miss) and does not read the location is
walked through.  When paths end differently, every distinct ending is listed.  Nothing is said
that the liveness did not prove: a location that is live raises NotDead.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

from .cfg import CFG
from .liveness import Liveness, bank_names, node_summary
from .printer import statement_text


class NotDead(ValueError):
    """The location is live after the position: there is no reason why it would be free."""


def written(s, files=None) -> str:
    """A statement as the user wrote it (whitespace collapsed) when it is written directly on its
    line of a readable file (`shr.u r18=r22,PGDIR_SHIFT`), else as ivtx prints it (a macro
    expansion: `shr.u r18=r22,(14 + (14 - 3)) + (14 - 3)` would show the parameter names)."""
    from .emit_macro import SourceFiles, Unplaceable, locate, locate_pvcall
    from .ir import Instruction, PvCall

    if getattr(s, "loc", None) is not None and s.loc.via is None and isinstance(s, (Instruction, PvCall)):
        files = files if files is not None else SourceFiles()
        try:
            span = locate(s, files).span if isinstance(s, Instruction) else locate_pvcall(s, files)[0]
            text = " ".join(files.line(span.file, span.line)[span.start:span.end].split())
            if text:
                return text
        except (Unplaceable, OSError, UnicodeDecodeError):
            pass
    return statement_text(s)


def short_loc(loc) -> str:
    """`ivt.S:273`: the line the user reads (the outermost macro use), file by its base name, and
    where a macro expansion's text is written: `ivt.S:1524 [minstate.h:72]`."""
    use = loc.use_site
    text = f"{os.path.basename(use.file)}:{use.line}"
    if loc.via is not None and not loc.file.startswith("<"):
        from .preprocess import prelude_path

        if loc.file != prelude_path():
            text += f" [{os.path.basename(loc.file)}:{loc.line}]"
    return text


def _location(live: Liveness, pos: int, reg: str) -> str:
    """A register name as the liveness tracks it: `r16` -> `r16@0` in bank 0."""
    if "@" in reg:
        return reg
    state = live.states[pos]
    names = bank_names(reg, state.bank if state is not None else None)
    if len(names) != 1:
        raise NotDead(f"{reg}: the register bank after the site is unknown, so the name means two registers")
    return names[0]


def _ending(cfg: CFG, live: Liveness, node, loc: str) -> str | None:
    """What a summary node does with `loc`: None when control comes back (walk on), else the
    reason the path ends without reading it."""
    summ, returns = node_summary(cfg, live.policy, node)
    if summ is not None and (summ.everything or loc in summ.live_in):
        raise NotDead(f"{loc} is read at {node!r} ({summ.origin})")
    if summ is None or returns:
        return None  # an in-file callee, a call or the nested miss: they return, and do not read it
    kind = node[0]
    if kind == "rfi":
        if loc not in live.policy.context:
            return "not read again: not part of the interrupted context at rfi"
        return f"not read again: rfi does not read it ({summ.origin})"
    if kind == "ext":
        return f"not read by {node[1]} ({summ.origin})"
    return f"not read at {kind} ({summ.origin})"


@dataclass(frozen=True)
class _Kill:
    pos: int


def path_endings(cfg: CFG, live: Liveness, pos: int, loc: str, files=None) -> list[str]:
    """Every distinct way the paths from right after code position `pos` settle `loc` (a
    location name, `r16@0`), nearest first. Raises NotDead when some path reads it first.
    `files` (an emit_macro.SourceFiles) caches the source lines the reasons quote."""
    u = live.universe
    if loc not in u.bit:
        return [f"never read: {loc} is not a location any instruction or summary reads"]
    bit = 1 << u.bit[loc]
    if live.live_after(pos) & bit:
        raise NotDead(f"{loc} is live after {short_loc(cfg.code[pos].loc)}")
    found: list = []

    def scan(items) -> bool:
        """Walk positions; True when the path ends in this run."""
        for p in items:
            if live.use[p] & bit:
                raise NotDead(f"{loc} is read at {short_loc(cfg.code[p].loc)}")
            if live.kill[p] & bit:
                if _Kill(p) not in found:
                    found.append(_Kill(p))
                return True
        return False

    blk = cfg.blocks[cfg.block_of[pos]]
    if scan(blk.items[blk.items.index(pos) + 1:]):
        return [_describe(cfg, e, files) for e in found]
    seen = set()
    todo = deque(cfg.graph.successors(blk.id))
    while todo:
        n = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        if isinstance(n, tuple):
            end = _ending(cfg, live, n, loc)
            if end is not None:
                if end not in found:
                    found.append(end)
                continue
        elif scan(cfg.blocks[n].items):
            continue
        todo.extend(cfg.graph.successors(n))
    if not found:  # only cycles that never leave: nothing reads it again
        found.append("not read again: every path from here loops without reading it")
    return [_describe(cfg, e, files) for e in found]


def _describe(cfg: CFG, event, files) -> str:
    if isinstance(event, _Kill):
        s = cfg.code[event.pos]
        proved = "" if getattr(s, "qp", None) in (None, "p0") else ", a predicated write proved a kill"
        return f"overwritten at {short_loc(s.loc)} ({written(s, files)}{proved}) before any read"
    return event


def why_dead(cfg: CFG, live: Liveness, pos: int, reg: str, files=None) -> str:
    """Why `reg` (a register name, resolved in the bank in force, or a location `r16@0`) is
    dead right after code position `pos`; one reason, or one per way the paths end:

        overwritten at t.s:9 (mov r20=r0) before any read
        one per path: not read by page_fault (conventions.toml [symbol.page_fault]); overwritten at ...
    """
    loc = _location(live, pos, reg)
    endings = path_endings(cfg, live, pos, loc, files)
    if len(endings) == 1:
        return endings[0]
    return "one per path: " + "; ".join(endings)


def live_text(cfg: CFG, proof, files=None) -> str:
    """A sites.WhyLive in the words of why_dead: `read at ivt.S:90 (st8 [r23]=r16,16)`."""
    if proof.reader is not None:
        s = cfg.code[proof.reader]
        return f"read at {short_loc(s.loc)} ({written(s, files)})"
    return f"live at {proof.exit}"


@dataclass
class ClobberReason:
    """Registers that share one explanation at a site; `dead` False when the native liveness
    does not prove them dead there (`reason` then says what reads them)."""

    regs: list[str]
    reason: str
    dead: bool


def explain_clobbers(cfg: CFG, live: Liveness, site, regs: list[str], files=None) -> list[ClobberReason]:
    """The reasons the clobbers `regs` of `site` (an ivtx.sites.Site) are free right after it,
    registers with the same reason grouped. A banked name at a bank switch must be dead in both
    banks (sites.clobber_locations), so each bank gets its reason."""
    from .emit_macro import SourceFiles
    from .sites import clobber_locations, site_facts, why_live

    files = files if files is not None else SourceFiles()
    last = site.pos + site.length - 1
    facts = site_facts(cfg, live, site)
    groups: dict[tuple[str, bool], list[str]] = {}
    for reg in regs:
        locs = clobber_locations(cfg, live, site, reg, facts)
        if locs is None:
            key = ("the name does not surely mean a free register here (unknown bank, or a stacked register "
                   "of the interrupted frame)", False)
        else:
            parts, dead = [], True
            for loc in locs:
                proof = why_live(cfg, live, last, loc)
                bank = f"in bank {loc[-1]}: " if len(locs) > 1 else ""
                if proof is not None:
                    dead = False
                    parts.append(bank + live_text(cfg, proof, files))
                else:
                    parts.append(bank + why_dead(cfg, live, last, loc, files))
            key = ("; ".join(parts), dead)
        groups.setdefault(key, []).append(reg)
    return [ClobberReason(rs, reason, dead) for (reason, dead), rs in groups.items()]
