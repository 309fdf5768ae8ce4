"""Instruction groups of the code transform emits: no RAW or WAW inside a group (primer section 4).

Every sequence transform inserts (call sequences, stubs, reloads, saves and restores) is checked
here with the ISA effects tables before it is emitted; a conflict is a bug in ivtx and stops the
transform (IvtxInternal). A group ends at `;;` and at an unconditional branch (taken, it ends the
group; gas checks the same way). Allowed inside a group, as in gas (ia64-raw.tbl):
- a non-branch instruction writing a predicate or branch register that a branch reads
  (`mov b6=r16` ... `br.cond.sptk.many b6`);
- writes to p0 (dropped by the effects tables already);
- several AND-type or several OR-type compares writing one predicate.
WAR is always allowed. Memory and pseudo locations (mem, tlb, alat, rse) are ordered, not checked.

    group_conflicts(["mov r16=r17", "add r18=r16,r0", ";;"])
    -> ["RAW on r16: 'add r18=r16,r0' reads what 'mov r16=r17' wrote in the same group"]
"""

from __future__ import annotations

from .effects import effects_of
from .ir import Instruction

PSEUDO = {"mem", "tlb", "alat", "rse", "cfm", "ip", "cr.ivr_state", "rr", "pkr", "dbr", "ibr", "pmc", "pmd",
          "msr", "cpuid"}
_PARALLEL = ("and", "or", "andcm", "orcm", "or.andcm", "and.orcm")


def _kind(insn: Instruction) -> str | None:
    """'and' / 'or' for a parallel compare (what gas treats as the same type), else None."""
    if insn.op not in ("cmp", "cmp4", "tbit", "tnat"):
        return None
    ctype = ".".join(c for c in insn.completers if c in ("and", "or", "andcm", "orcm"))
    if not ctype:
        return None
    return "and" if ctype in ("and", "andcm", "and.orcm") else "or"


def group_conflicts(items: list[str], path: str = "<emitted>") -> list[str]:
    """RAW/WAW conflicts inside the groups of a sequence (statements, ';;', 'N:' labels and
    directives, as transform writes them)."""
    from .parse import parse_text

    text = "\n".join(it for it in items) + "\n"
    prog = parse_text(text, path)
    out: list[str] = []
    written: dict[str, tuple[Instruction, str | None]] = {}
    for s in prog.statements:
        name = type(s).__name__
        if name == "Stop":
            written = {}
            continue
        if not isinstance(s, Instruction):
            continue
        e = effects_of(s)
        branch = "branch" in e.flags
        for loc in sorted(e.reads - PSEUDO):
            if loc in written:
                w, _ = written[loc]
                if branch and loc[0] in "pb" and "branch" not in effects_of(w).flags:
                    continue  # a compare or `mov b=r` feeding a branch
                out.append(f"RAW on {loc}: '{_text(s)}' reads what '{_text(w)}' wrote in the same group")
        kind = _kind(s)
        for loc in sorted((e.must_writes | e.may_writes) - PSEUDO):
            if loc in written:
                w, wkind = written[loc]
                if kind is not None and kind == wkind and loc[0] == "p":
                    continue
                out.append(f"WAW on {loc}: '{_text(s)}' and '{_text(w)}' write it in the same group")
            written[loc] = (s, kind)
        if branch and s.qp in (None, "p0") and not s.mnemonic.startswith("br.call"):
            written = {}  # a taken branch ends the group
    return out


def check_groups(items: list[str], what: str) -> None:
    """Raise IvtxInternal when an emitted sequence has a RAW or WAW inside a group."""
    conflicts = group_conflicts(items)
    if conflicts:
        from .transform import IvtxInternal

        raise IvtxInternal(f"emitted code for {what} has a dependency violation: {conflicts[0]}")


def _text(s: Instruction) -> str:
    from .printer import statement_text

    return statement_text(s)
