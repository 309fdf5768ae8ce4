"""`ivtx check`: verify pv-annotated source. Every clobber a human wrote must be provably dead at
its site (else the finding names the later read), not be an operand of the same call, and be
of the right kind; no raw sensitive instruction may be left unwrapped."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .diag import Diagnostic, Loc
from .liveness import bank_names
from .printer import statement_text
from .sites import why_live


@dataclass
class Finding:
    severity: str  # error | warning | note
    code: str
    message: str
    loc: Loc
    proof: str | None = None

    def to_dict(self) -> dict:
        u = self.loc.use_site
        return {"severity": self.severity, "code": self.code, "message": self.message, "file": u.file,
                "line": u.line, "col": u.col, "proof": self.proof}


def check(a, strict: bool = False) -> list[Finding]:
    cfg = a.cfg
    live = a.liveness
    out: list[Finding] = []
    for site in a.sites:
        s = cfg.code[site.pos]
        text = statement_text(s)
        if site.switched:
            out.append(Finding("note", "switched", f"'{text}' is {site.switched}", s.loc))
            continue
        if site.kind == "uncatalogued":
            out.append(Finding("error" if strict else "warning", "uncatalogued",
                               f"sensitive instruction '{text}' has no pv op in the catalog", s.loc))
            continue
        if site.kind == "native":
            out.append(Finding("error", "unwrapped",
                               f"raw privileged instruction '{text}' is not wrapped: use {site.op.name}", s.loc))
            continue
        state = live.states[site.pos]
        bank = state.bank if state is not None else None
        op = site.op
        operands = {}
        for role, val in site.args.items():
            if op.role_kind(role) not in ("clob", "pclob"):
                operands[val] = role
        for role, val in site.args.items():
            kind = op.role_kind(role)
            if kind not in ("clob", "pclob"):
                continue
            if val in operands and not op.may_alias(role, operands[val]):
                out.append(Finding("error", "clobber-operand",
                                   f"{op.name}: clobber {val} ({role}) is also its {operands[val]} operand", s.loc))
                continue
            names = bank_names(val, bank)
            if len(names) != 1:
                out.append(Finding("error", "bank-unknown",
                                   f"{op.name}: clobber {val} ({role}): the register bank at this site is unknown, "
                                   f"so {val} cannot be proved dead", s.loc))
                continue
            proof = why_live(cfg, live, site.pos, names[0])
            if proof is not None:
                out.append(Finding("error", "live-clobber",
                                   f"{op.name}: clobber {val} ({role}) is live after this site", s.loc,
                                   proof=f"{val} is {proof.describe(cfg)}"))
    for u in cfg.unresolved:
        out.append(Finding("note", "unresolved-flow", f"{u.reason}; everything is treated as live there", u.loc))
    return out


def render_findings(a, findings: list[Finding], fmt: str) -> str:
    if fmt == "json":
        pv = [s for s in a.sites if s.kind == "pvcall"]
        clobbers = sum(1 for s in pv for r in s.args if s.op.role_kind(r) in ("clob", "pclob"))
        bad = sum(1 for f in findings if f.code in ("live-clobber", "clobber-operand", "bank-unknown"))
        return json.dumps({"file": a.path, "pv_sites": len(pv), "clobbers": clobbers,
                           "clobbers_verified_dead": clobbers - bad,
                           "findings": [f.to_dict() for f in findings]}, indent=2) + "\n"
    if fmt == "sarif":
        from . import __version__

        levels = {"error": "error", "warning": "warning", "note": "note"}
        results = [{"ruleId": f.code, "level": levels[f.severity],
                    "message": {"text": f.message + (f" ({f.proof})" if f.proof else "")},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.loc.use_site.file},
                                                        "region": {"startLine": f.loc.use_site.line,
                                                                   "startColumn": f.loc.use_site.col}}}]}
                   for f in findings]
        return json.dumps({"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
                           "runs": [{"tool": {"driver": {"name": "ivtx", "version": __version__}},
                                     "results": results}]}, indent=2) + "\n"
    lines = []
    for f in findings:
        d = Diagnostic(f.severity, f.message, f.loc.use_site)
        lines.append(d.render(getattr(a, "sources", None)))
        if f.proof:
            lines.append(f"  proof: {f.proof}")
    pv = [s for s in a.sites if s.kind == "pvcall"]
    clobbers = sum(1 for s in pv for r in s.args if s.op.role_kind(r) in ("clob", "pclob"))
    errors = sum(1 for f in findings if f.severity == "error")
    bad = sum(1 for f in findings if f.code in ("live-clobber", "clobber-operand", "bank-unknown"))
    lines.append(f"{a.path}: {len(pv)} pv sites, {clobbers} clobbers written, {clobbers - bad} proved dead, "
                 f"{errors} error(s)")
    return "\n".join(lines) + "\n"
