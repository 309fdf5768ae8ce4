"""The pipeline, stage by stage: preprocess -> parse -> cfg -> liveness -> sites.

Each stage returns plain data; the CLI and report layers print. `Options` carries what the
user said on the command line (-I/-D/-U, prelude, conventions, catalog).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .cfg import CFG, build_cfg
from .conventions import ExitPolicy, inline_summaries, load_policy
from .diag import IvtxError, Loc
from .ir import Instruction, Program, PvCall
from .liveness import Liveness, solve
from .pvcatalog import Catalog, default_catalog
from .sites import Site, analyse_sites, find_sites


@dataclass
class Options:
    include_dirs: list[str] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    undefines: list[str] = field(default_factory=list)
    prelude: bool = True
    expand_pv: bool = False  # let #defines of pv macros (real headers) expand them
    conventions: str | None = None
    catalog: Catalog | None = None

    def cat(self) -> Catalog:
        return self.catalog or default_catalog()


@dataclass
class Analysis:
    path: str
    program: Program
    cfg: CFG
    policy: ExitPolicy
    liveness: Liveness
    sites: list[Site]
    timings: dict[str, float]
    warnings: list
    options: "Options | None" = None  # what it was analysed with (transform's default)

    @property
    def catalog_sites(self) -> list[Site]:
        return [s for s in self.sites if s.op is not None]


def read_source(path: str) -> str | None:
    """Existence check with a located error (preprocess reads the file itself)."""
    p = Path(path)
    if not p.exists():
        raise IvtxError(f"no such file: {path}", None)
    if p.is_dir():
        raise IvtxError(f"is a directory: {path}", None)
    return None


def load(path: str, opts: Options, timings: dict | None = None) -> tuple[Program, object]:
    """Preprocess and parse `path` into a Program (plus the preprocessed text object)."""
    from .parse import parse
    from .preprocess import preprocess, read_source_text

    read_source(path)
    t0 = time.perf_counter()
    keep = frozenset() if opts.expand_pv else frozenset(opts.cat().ops)
    if path.endswith(".s"):
        from .ppline import passthrough

        pp = passthrough(path, read_source_text(path))
    else:
        pp = preprocess(path, include_dirs=opts.include_dirs, defines=opts.defines, undefines=opts.undefines,
                        prelude=opts.prelude, keep_undefined=keep)
    t1 = time.perf_counter()
    program = parse(pp, catalog=opts.cat())
    t2 = time.perf_counter()
    if not any(isinstance(s, (Instruction, PvCall)) for s in program.statements):
        raise IvtxError(_no_code(path, pp), Loc(path, 1, 1))
    if timings is not None:
        timings["preprocess"] = t1 - t0
        timings["parse"] = t2 - t1
    return program, pp


def _no_code(path: str, pp) -> str:
    """An input without a single instruction is an error, not an empty report (README, CLI)."""
    text = "\n".join(pp.sources.texts.get(path, [])) if hasattr(pp, "sources") else ""
    if not text.strip():
        return "no code: the file is empty"
    return "no code: no instruction or pv-op call is left after preprocessing (see #if/#ifdef, -D, -U)"


def analyse(path: str, opts: Options) -> Analysis:
    timings: dict[str, float] = {}
    program, pp = load(path, opts, timings)
    sources = getattr(pp, "sources", None)
    del pp  # the preprocessed lines are not needed past parsing (memory on large inputs)
    t0 = time.perf_counter()
    cfg = build_cfg(program)
    t1 = time.perf_counter()
    policy = load_policy(opts.conventions)
    inline_summaries(sources.texts if sources is not None else {}, policy)
    live = solve(cfg, policy)
    t2 = time.perf_counter()
    sites = find_sites(cfg, opts.cat())
    analyse_sites(cfg, live, sites, opts.cat(), sources)
    t3 = time.perf_counter()
    timings["cfg"] = t1 - t0
    timings["liveness"] = t2 - t1
    timings["sites"] = t3 - t2
    for name, regs in live.nested_beyond.items():
        grs = [r for r in regs if r.startswith("r")]
        if grs:
            from .diag import Diagnostic

            entry = cfg.code[cfg.blocks[cfg.entries[name]].first] if name in cfg.entries else None
            program.warnings.append(Diagnostic(
                "warning", f"the nested-TLB handler '{name}' reads {', '.join(grs)} on entry, which the [nested] "
                f"summary of {policy.source} does not list: ivtx keeps them live across every nested miss (the "
                "code wins over the claim)", entry.loc if entry is not None else None))
    a = Analysis(path, program, cfg, policy, live, sites, timings, program.warnings, opts)
    if policy.unresolved_calls is not None:  # name the claim wherever it made a register free
        from .claims import attribute_claims

        attribute_claims(a)
    return a
