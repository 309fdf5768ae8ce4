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
from .ir import Program
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
    from .preprocess import preprocess

    read_source(path)
    t0 = time.perf_counter()
    keep = frozenset() if opts.expand_pv else frozenset(opts.cat().ops)
    if path.endswith(".s"):
        from .ppline import passthrough

        try:
            text = Path(path).read_text()
        except UnicodeDecodeError as exc:
            raise IvtxError(f"input is not text (byte {exc.start} cannot be decoded)", Loc(path, 1, 1)) from None
        pp = passthrough(path, text)
    else:
        pp = preprocess(path, include_dirs=opts.include_dirs, defines=opts.defines, undefines=opts.undefines,
                        prelude=opts.prelude, keep_undefined=keep)
    t1 = time.perf_counter()
    program = parse(pp, catalog=opts.cat())
    t2 = time.perf_counter()
    if timings is not None:
        timings["preprocess"] = t1 - t0
        timings["parse"] = t2 - t1
    return program, pp


def analyse(path: str, opts: Options) -> Analysis:
    timings: dict[str, float] = {}
    program, pp = load(path, opts, timings)
    t0 = time.perf_counter()
    cfg = build_cfg(program)
    t1 = time.perf_counter()
    policy = load_policy(opts.conventions)
    inline_summaries(pp.sources.texts if hasattr(pp, "sources") else {}, policy)
    live = solve(cfg, policy)
    t2 = time.perf_counter()
    sites = find_sites(cfg, opts.cat())
    analyse_sites(cfg, live, sites, opts.cat(), getattr(pp, "sources", None))
    t3 = time.perf_counter()
    timings["cfg"] = t1 - t0
    timings["liveness"] = t2 - t1
    timings["sites"] = t3 - t2
    return Analysis(path, program, cfg, policy, live, sites, timings, program.warnings)
