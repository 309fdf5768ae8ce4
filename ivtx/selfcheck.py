"""The transform's self-check (design.md "Transform"): every output is measured and analysed again
as a new input before it is written. Each register the emitted code may clobber must be dead
where that code ends, in the output's own liveness; the bytes per vector come from the output
with the pv macros expanded natively (exact from the assembler, or the bundling estimate)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .diag import IvtxError
from .emit_macro import NATIVE_HEADER, native_header
from .ir import Program, PvCall
from .liveness import bank_names
from .transform import IvtxInternal, Plan, TransformResult, VectorSize, _relative_name


def reanalyse(a, res: "TransformResult", opts, plan: "Plan", where: dict, sizes: str, cache: dict,
               may_retry: bool) -> None:
    """Measure the output's vectors and analyse it as a new input; every register the emitted code
    may clobber must be dead there (the self-check). Fills res.vectors, res.program and
    res.native_program. When a vector overflows and `may_retry`, the caller plans again (with
    calls out of line) and the self-check waits for that final output."""
    from dataclasses import replace

    from .pipeline import Options, load

    main = a.path
    with tempfile.TemporaryDirectory(prefix="ivtx-transform-") as tmp:
        out_dir = Path(tmp) / "out"
        sup_dir = Path(tmp) / "support"
        out_main = out_dir / Path(main).name
        _write(out_main, res.text)
        for rel, text in res.headers.items():
            _write(out_dir / rel, text)
        for rel, text in res.support.items():
            _write(sup_dir / rel, text)
        renamed = {os.path.abspath(main): str(out_main)}
        for name in {w[0] for w in where.values()} | set(res.header_sources.values()):
            if os.path.abspath(name) != os.path.abspath(main):
                renamed[os.path.abspath(name)] = str(out_dir / _relative_name(name, main, opts))
        inc = [str(sup_dir), str(out_dir)] + list(opts.include_dirs) + [os.path.dirname(os.path.abspath(main))]
        o2 = replace(opts, include_dirs=inc) if isinstance(opts, Options) else Options(include_dirs=inc)
        # sizes: both sides with the pv macros expanded natively (what gas assembles)
        native_dir = sup_dir / "ivtx-native"
        _write(native_dir / NATIVE_HEADER, native_header(opts.cat()))
        try:
            native_after, _ = load(str(out_main), replace(o2, include_dirs=inc[:1] + [str(native_dir)] + inc[1:],
                                                           expand_pv=True))
            if "before" not in cache:
                cache["before"], _ = load(main, replace(o2, include_dirs=[str(native_dir)] + list(opts.include_dirs),
                                                        expand_pv=True))
        except IvtxError as exc:
            raise IvtxInternal(f"transform output does not parse: {exc.render()}") from None
        res.native_program = native_after
        res.vectors = _vector_sizes(cache, native_after, sizes)
        if may_retry and any(v.overflows for v in res.vectors):
            return
        try:
            # the model keeps every pv op a call, even where a header defines it (--expand-pv)
            b, program = _analyse_model(str(out_main), replace(o2, expand_pv=False), plan.rewrite)
        except IvtxError as exc:
            raise IvtxInternal(f"transform output does not parse: {exc.render()}") from None
        _check_output(b, plan, where, renamed)
        res.program = program


def _analyse_model(path: str, opts, rewrite):
    """The output analysed as a new input; `rewrite` turns the parsed program into the model the
    self-check runs on (calls as the pv ops they make). Returns (analysis, parsed program)."""
    from .cfg import build_cfg
    from .conventions import inline_summaries, load_policy
    from .liveness import solve
    from .pipeline import Analysis, load
    from .sites import analyse_sites, find_sites

    program, pp = load(path, opts)
    model = Program(program.path, list(program.statements), list(program.warnings))
    if rewrite is not None:
        rewrite(model)
    cfg = build_cfg(model)
    policy = load_policy(opts.conventions)
    inline_summaries(pp.sources.texts, policy)
    live = solve(cfg, policy, nested_code=False)
    sites = find_sites(cfg, opts.cat())
    analyse_sites(cfg, live, sites, opts.cat(), pp.sources)
    return Analysis(path, model, cfg, policy, live, sites, {}, model.warnings), program


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _check_output(b, plan: "Plan", where: dict, renamed: dict) -> None:
    """Each tagged emitted text: at every place it expands to in the output, the registers it
    may clobber are dead after it (the output's own liveness)."""
    from .sites import why_live

    at: dict[tuple, list[int]] = {}
    for p, s in enumerate(b.cfg.code):
        at.setdefault((os.path.abspath(s.loc.file), s.loc.line), []).append(p)
    for tag, check in plan.checks.items():
        at_tag = plan.aliases.get(tag, tag)
        if at_tag not in where:
            raise IvtxInternal(f"self-check: emitted text {tag} not found in the output")
        file, lo, hi = where[at_tag]
        line = lo
        out_file = os.path.abspath(renamed.get(os.path.abspath(file), file))
        positions = sorted(p for ln in range(lo, hi + 1) for p in at.get((out_file, ln), []))
        kind = tag[0]
        if kind == "after":  # inserted code whose temporaries must be dead once it has run
            _, match, regs, what = check
            hits = [p for p in positions if match(b.cfg.code[p])]
            if not hits:
                raise IvtxInternal(f"self-check: {what} not found in the output at {file}:{line}")
            for p in hits:
                _dead_after(b, p, regs, f"{what} at {file}:{line}", why_live)
        elif kind == "macro":
            op, clobbers, g = check
            hits = [p for p in positions if isinstance(b.cfg.code[p], PvCall) and b.cfg.code[p].name == op]
            if len(hits) != len(g.uses):
                raise IvtxInternal(f"self-check: {op} at {file}:{line} expands {len(hits)} times in the output, "
                                   f"the input had {len(g.uses)} uses")
            for p in hits:
                _dead_after(b, p, clobbers, f"{op} at {file}:{line}", why_live)
        elif kind == "call":
            from .emit_call import check_sequence

            check_sequence(b, tag, check, positions, _dead_after, why_live)
        else:
            from .emit_pal import check_pal

            check_pal(b, tag, check, positions, _dead_after, why_live)


def _dead_after(b, pos: int, regs: list[str], what: str, why_live) -> None:
    state = b.liveness.states[pos]
    bank = state.bank if state is not None else None
    for r in regs:
        names = [r] if "@" in r else bank_names(r, bank)
        if len(names) != 1:
            raise IvtxInternal(f"self-check: {what}: the bank is unknown in the output, {r} cannot be proved dead")
        proof = why_live(b.cfg, b.liveness, pos, names[0])
        if proof is not None:
            raise IvtxInternal(f"self-check: {what}: {r} is live in the output ({proof.describe(b.cfg)})")


def _sizes(program: Program, mode: str):
    """Region sizes of `program`, measured on a copy whose `.org` directives are `.align 256`:
    every entry keeps its alignment (so its bundling), and one overflowing vector does not make
    the assembler reject the whole file, which would leave only estimates (ivtx.sizes)."""
    from dataclasses import replace as copy

    from .ir import Directive, Imm, Num
    from .layout import regions
    from .sizes import region_sizes

    align = Directive(".align", (Imm(Num(256), 256),), None)
    stmts = [copy(align, loc=s.loc) if isinstance(s, Directive) and s.name == ".org" else s
             for s in program.statements]
    return region_sizes(Program(program.path, stmts, []), regions(program), mode=mode)


def _vector_sizes(cache: dict, after: Program, mode: str) -> "list[VectorSize]":
    """Bytes of every region before and after (ivtx.sizes: exact from the object file when the
    assembler is there, else estimated), matched by region name."""
    if "before sizes" not in cache:
        cache["before sizes"] = _sizes(cache["before"], mode)
    sb, sa = cache["before sizes"], _sizes(after, mode)
    after_by = {rs.region.name: rs for rs in sa.regions}
    out = []
    for rs in sb.regions:
        other = after_by.get(rs.region.name)
        out.append(VectorSize(rs.region.name, rs.region.offset, rs.region.slot, rs.bytes,
                              other.bytes if other else 0, sb.exact and sa.exact))
    return out
