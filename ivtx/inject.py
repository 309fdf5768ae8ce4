"""`ivtx verify FILE --inject`: fault injection over every pv call of the pvops macro rendering of
FILE (the source's own pv calls, with any live written clobber re-chosen, and every native site
as the pv call ivtx chose for it). At each call in turn one clobber argument is replaced by a
register the liveness says is live after it, and both programs run from the same random entry
states under the scribbling model (ivtx.verify.inject_clobber_faults). A forced live clobber
that verify does not catch is listed with why: the read that makes it live never ran on the
states tried, or ran without its value reaching anything compared."""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

from .diag import IvtxError


def run_injection(path: str, opts, trials: int, seed: int):
    """(report, the program injected into: 'FILE' or its macro rendering, unresolved count)."""
    from .pipeline import analyse
    from .selfcheck import _write
    from .transform import transform
    from .verify import inject_clobber_faults

    a = analyse(path, opts)
    res = transform(a, "pvops", "macro", options=opts)
    if not res.ok or res.text is None:
        return None, f"the pvops macro rendering of {path}", len(res.unresolved)
    with tempfile.TemporaryDirectory(prefix="ivtx-inject-") as tmp:
        out = Path(tmp) / Path(path).name
        support = [(f"support/{r}", t) for r, t in res.support.items()]
        for rel, text in [(out.name, res.text), *res.headers.items(), *support]:
            _write(Path(tmp) / rel, text)
        inc = [str(Path(tmp) / "support"), tmp] + list(opts.include_dirs) + [str(Path(path).resolve().parent)]
        try:
            b = analyse(str(out), replace(opts, include_dirs=inc))
        except IvtxError as exc:  # the transform's own output: a bug of ivtx, not of the input
            raise IvtxError(f"the macro rendering of {path} does not analyse: {exc.message}", None) from None
        report = inject_clobber_faults(b, trials=trials, seed=seed)
        back = _line_map(res.text, res.source_text)
        at_out = re.compile(re.escape(str(out)) + r":(\d+)")

        def user_lines(text: str | None) -> str | None:
            return None if text is None else at_out.sub(lambda m: f"{path}:{back.get(int(m.group(1)), '?')}", text)

        for inj in report.injections:  # name the sites in the user's file, not the temporary copy
            inj.explanation, inj.why_live = user_lines(inj.explanation), user_lines(inj.why_live)
            use = inj.loc.use_site
            if str(use.file) == str(out):
                line = back.get(use.line)
                inj.where = f"{path}:{line}:{use.col}" if line else f"{path} (a line ivtx inserted)"
            else:
                inj.where = str(use).replace(tmp, "<rendering>")
            if (inj.loc.file, inj.loc.line) != (use.file, use.line):  # written in a macro body: say where
                if str(inj.loc.file) == str(out):
                    inj.where += f" (in {path}:{back.get(inj.loc.line, '?')})"
                else:
                    inj.where += f" (in {str(inj.loc.file).replace(tmp, '<rendering>')}:{inj.loc.line})"
    return report, f"the pvops macro rendering of {path}", 0


def _line_map(new: str, old: str) -> dict[int, int]:
    """Output line -> source line, where the rendering kept or edited a line in place (the macro
    rendering edits sites where they are written, and adds an #include and restructuring lines)."""
    import difflib

    a, b = old.split("\n"), new.split("\n")
    out: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for k in range(j2 - j1):
                out[j1 + k + 1] = i1 + k + 1
    return out


def render(report, what: str, trials: int) -> tuple[str, bool]:
    """The per-site lines and the summary; ok unless the program's own clobbers are caught live."""
    lines = [f"ivtx verify --inject: {what}: at each pv call a live register is forced in as a clobber; "
             f"{trials} trials per handler that reaches it", ""]
    for inj in report.injections:
        if inj.live is None:
            status = f"skipped: {inj.explanation}"
        elif inj.caught:
            status = f"caught ({inj.role} {inj.original} -> {inj.live}, in {inj.handler})"
        else:
            status = f"MISSED ({inj.role} {inj.original} -> {inj.live}): {inj.explanation}"
        lines.append(f"{inj.where}: {inj.call}: {status}")
    att = report.attempted
    lines += ["", f"{len(report.injections)} pv calls: {len(att)} with a clobber to force, {report.caught} caught, "
                  f"{len(report.misses)} missed (each with its reason), "
                  f"{len(report.injections) - len(att)} without a clobber argument or a live register; "
                  f"catch rate {report.catch_rate:.0%}"]
    ok = report.baseline.ok
    if not ok:
        lines.append("the program's own clobbers disagree with the native run (baseline): "
                     + ", ".join(h.name for h in report.baseline.mismatches))
    return "\n".join(lines) + "\n", ok
