"""`ivtx check`: verify pv-annotated source. Every clobber a human wrote must be provably dead at
its site (else the finding names the later read), not be an operand of the same call, and name
a register the replacement may really use; no raw sensitive instruction may be left unwrapped.

Operand kinds (a GR where a predicate is expected ...) are checked earlier, by the parser, as
located input errors (exit 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .diag import Diagnostic, Loc
from .printer import statement_text
from .sites import clobber_locations, own_frame_size, why_live

SCHEMA = "ivtx-check/1"

# code -> (one-line description for SARIF rules, default severity)
RULES = {
    "live-clobber": ("A clobber written in a pv-op call is live after the call: the replacement "
                     "would destroy a value that is read later", "error"),
    "clobber-operand": ("A clobber is also an operand of the same pv-op call", "error"),
    "clobber-duplicate": ("The same register is given for two clobbers of one pv-op call", "error"),
    "clobber-constant": ("r0 / p0 given as a clobber: they are constants, not scratch registers", "error"),
    "clobber-frame": ("A stacked register clobber (r32-r127) that is not in a frame the code "
                      "allocated itself", "error"),
    "bank-unknown": ("A banked clobber (r16-r31) at a site where the register bank is unknown", "error"),
    "unwrapped": ("A raw privileged instruction that the catalog wraps in a pv op", "error"),
    "uncatalogued": ("A sensitive instruction with no pv op in the catalog", "warning"),
    "switched": ("A privileged instruction inside a macro that is replaced as a whole per hypervisor", "note"),
    "unresolved-flow": ("Control flow ivtx cannot follow: everything is treated as live there", "note"),
    "claimed-free": ("A clobber is dead only because of a claim in the convention file "
                     "([unresolved_calls]), which ivtx cannot check", "note"),
}
CLOBBER_CODES = ("live-clobber", "clobber-operand", "clobber-duplicate", "clobber-constant",
                 "clobber-frame", "bank-unknown")


@dataclass
class Finding:
    severity: str  # error | warning | note
    code: str
    message: str
    loc: Loc
    proof: str | None = None
    read_at: Loc | None = None  # where the live clobber is read later (the proof), if it is a read
    role: str | None = None  # the clobber argument a clobber finding is about ("clob", "pclob", "clob1")

    def to_dict(self) -> dict:
        u = self.loc.use_site
        out = {"severity": self.severity, "code": self.code, "message": self.message, "file": u.file,
               "line": u.line, "col": u.col, "proof": self.proof}
        if self.role is not None:
            out["role"] = self.role
        if self.read_at is not None:
            r = self.read_at.use_site
            out["read_at"] = {"file": r.file, "line": r.line, "col": r.col}
        return out


@dataclass
class CheckResult:
    findings: list[Finding]
    pv_sites: int
    clobbers: int  # clobber arguments written by hand
    clobbers_bad: int  # ... of which a finding rejects

    @property
    def verified_dead(self) -> int:
        return self.clobbers - self.clobbers_bad

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")


class Findings(list):
    """The findings of `check`, carrying the counts of the run (`result`, a CheckResult)."""

    result: "CheckResult | None" = None


def check(a, strict: bool = False) -> list[Finding]:
    res = run_check(a, strict)
    out = Findings(res.findings)
    out.result = res
    return out


def run_check(a, strict: bool = False) -> CheckResult:
    cfg = a.cfg
    out: list[Finding] = []
    pv_sites = clobbers = bad = 0
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
        pv_sites += 1
        found = _check_call(a, site)
        roles = [r for r in site.args if site.op.role_kind(r) in ("clob", "pclob")]
        clobbers += len(roles)
        bad += len({f.role for f in found if f.code in CLOBBER_CODES})
        out += found
    claimed = a.policy.unresolved_calls
    for u in cfg.unresolved:
        if claimed is not None and u.reason.startswith("br.call"):
            out.append(Finding("note", "unresolved-flow", f"{u.reason}; treated as a call that {claimed.claim}",
                               u.loc))
            continue
        out.append(Finding("note", "unresolved-flow", f"{u.reason}; everything is treated as live there", u.loc))
    return CheckResult(out, pv_sites, clobbers, bad)


def _check_call(a, site) -> list[Finding]:
    """The findings about the clobbers of one pv-op call (at most one per clobber argument)."""
    cfg, live = a.cfg, a.liveness
    s = cfg.code[site.pos]
    op = site.op
    out: list[Finding] = []
    operands = {val: role for role, val in site.args.items() if op.role_kind(role) not in ("clob", "pclob")}
    seen: dict[str, str] = {}
    for role, val in site.args.items():
        if op.role_kind(role) not in ("clob", "pclob"):
            continue
        head = f"{op.name}: clobber {val} ({role})"
        if val in ("r0", "p0"):
            out.append(Finding("error", "clobber-constant", f"{head}: {val} is a constant register, not scratch "
                               "(a replacement cannot use it)", s.loc, role=role))
            continue
        if val in seen:
            out.append(Finding("error", "clobber-duplicate", f"{head}: the same register is already "
                               f"clobber {seen[val]}", s.loc, role=role))
            continue
        seen[val] = role
        if val in operands and not op.may_alias(role, operands[val]):
            out.append(Finding("error", "clobber-operand", f"{head}: it is also the {operands[val]} operand", s.loc, role=role))
            continue
        locs = clobber_locations(cfg, live, site, val)
        if locs is None:
            n = int(val[1:])
            if n >= 32:
                sof = own_frame_size(cfg, site.pos + site.length - 1)
                owned = f"r32-r{31 + sof}" if sof else "none"
                out.append(Finding("error", "clobber-frame", f"{head}: {val} is not provably in a register frame "
                                   f"this code allocated (`cover`, then `alloc`, on every path; owned here: "
                                   f"{owned}); it may be the interrupted context's or not exist", s.loc, role=role))
            else:
                out.append(Finding("error", "bank-unknown", f"{head}: the register bank at this site is unknown, "
                                   f"so {val} cannot be proved dead", s.loc, role=role))
            continue
        if val in site.claims:  # dead, but only by a convention-file claim: say so
            out.append(Finding("note", "claimed-free", f"{head}: {site.claims[val]}", s.loc, role=role))
        for loc in locs:
            proof = why_live(cfg, live, site.pos + site.length - 1, loc)
            if proof is None:
                continue
            where = "" if len(locs) == 1 else f" (as {loc}, the bank switch makes the name mean both banks)"
            read_at = cfg.code[proof.reader].loc if proof.reader is not None else None
            out.append(Finding("error", "live-clobber", f"{head} is live after this site{where}", s.loc,
                               proof=f"{val} is {proof.describe(cfg)}", read_at=read_at, role=role))
            break
    return out


def render_findings(a, findings: list[Finding] | CheckResult, fmt: str) -> str:
    if isinstance(findings, CheckResult):
        res = findings
    else:
        res = getattr(findings, "result", None) or _result_of(a, findings)
    if fmt == "json":
        from . import __version__
        from .report import display_path

        return json.dumps({"schema": SCHEMA, "tool": {"name": "ivtx", "version": __version__},
                           "file": display_path(a.path), "pv_sites": res.pv_sites, "clobbers": res.clobbers,
                           "clobbers_verified_dead": res.verified_dead, "errors": res.errors,
                           "findings": [_portable(f.to_dict()) for f in res.findings]}, indent=2) + "\n"
    if fmt == "sarif":
        from .report import sarif_log, sarif_result

        results = []
        for f in res.findings:
            related = [(f.read_at.use_site, "read here, after the site")] if f.read_at is not None else []
            results.append(sarif_result(f.code, f.severity, f.message + (f" ({f.proof})" if f.proof else ""),
                                        f.loc.use_site, related))
        return json.dumps(sarif_log(results, {k: v for k, v in RULES.items()}), indent=2) + "\n"
    lines = []
    for f in res.findings:
        d = Diagnostic(f.severity, f.message, f.loc.use_site)
        lines.append(d.render(getattr(a, "sources", None)))
        if f.proof:
            lines.append(f"  proof: {f.proof}")
    lines.append(f"{a.path}: {res.pv_sites} pv sites, {res.clobbers} clobbers written, {res.verified_dead} proved "
                 f"dead, {res.errors} error(s)")
    return "\n".join(lines) + "\n"


def _portable(d: dict) -> dict:
    from .report import display_path

    d["file"] = display_path(d["file"])
    if "read_at" in d:
        d["read_at"]["file"] = display_path(d["read_at"]["file"])
    return d


def _result_of(a, findings: list[Finding]) -> CheckResult:
    pv = [s for s in a.sites if s.kind == "pvcall" and not s.switched]
    clobbers = sum(1 for s in pv for r in s.args if s.op.role_kind(r) in ("clob", "pclob"))
    bad = len({(f.loc, f.role) for f in findings if f.code in CLOBBER_CODES})
    return CheckResult(findings, len(pv), clobbers, bad)
