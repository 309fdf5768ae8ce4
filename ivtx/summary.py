"""What `ivtx parse` tells about a file: handlers, instruction counts, sensitive instructions, bytes."""

from __future__ import annotations

from .effects import effects_of
from .ir import Instruction, Label, Program, PvCall, Stop
from .printer import statement_text

SENSITIVE = {"privileged", "sensitive"}


def summarize(program: Program, sizes=None) -> dict:
    """`sizes` (ivtx.sizes.Sizes of `regions(program)`) gives each handler its bytes; without
    it they are estimates (ivtx.layout.estimate_bytes)."""
    from .sizes import estimated

    stmts = program.statements
    handlers = []
    total_sensitive = []
    if sizes is None:
        sizes = estimated(program)
    for rs in sizes.regions:
        r = rs.region
        insns = 0
        pv = 0
        sens = []
        groups = 0
        for s in stmts[r.start:r.end]:
            if isinstance(s, Instruction):
                insns += 1
                if effects_of(s).flags & SENSITIVE:
                    sens.append({"line": s.loc.use_site.line, "file": s.loc.use_site.file, "text": statement_text(s)})
            elif isinstance(s, PvCall):
                pv += 1
                sens.append({"line": s.loc.use_site.line, "file": s.loc.use_site.file, "text": statement_text(s), "pv": True})
            elif isinstance(s, Stop):
                groups += 1
        total_sensitive += sens
        handlers.append({
            "name": r.name,
            "section": r.section,
            "vector": r.vector,
            "offset": r.offset,
            "slot": r.slot,
            "labels": r.labels,
            "instructions": insns,
            "pv_calls": pv,
            "stops": groups,
            "sensitive": sens,
            "bytes": rs.bytes,
            "bytes_source": rs.source,
            "bytes_estimate": rs.estimate,
        })
    return {
        "file": program.path,
        "statements": len(stmts),
        "instructions": sum(1 for s in stmts if isinstance(s, Instruction)),
        "pv_calls": sum(1 for s in stmts if isinstance(s, PvCall)),
        "labels": sum(1 for s in stmts if isinstance(s, Label)),
        "handlers": handlers,
        "vectors": sum(1 for h in handlers if h["vector"] is not None),
        "sensitive": len(total_sensitive),
        "sizes": {"source": "exact" if sizes.exact else "estimate", "reason": sizes.reason},
        "warnings": [w.render() if hasattr(w, "render") else str(w) for w in program.warnings],
    }
