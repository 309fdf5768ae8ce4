"""`ivtx bench`: how fast the analysis is, how it scales, and what the paravirtualized code costs.

Every figure is measured here with Python's own clocks (`time.perf_counter`) and process
accounting (`os.wait4`), and printed; no test asserts a speed (README, "Benchmarks"):
- per stage (preprocess, parse, cfg, liveness, sites, emit) on the bundled samples and the
  given files: minimum and median over `repeat` in-process runs after one warm-up;
- on synthetic IVTs (ivtx.synth) of 1x, 10x, 100x a full table, each timed run a table it
  has not seen (a new seed): the same stages (emit up to EMIT_MAX_SIZE), the fitted scaling
  exponent (least squares of log time against log statements), `ia64-linux-gnu-as -x` on the
  same preprocessed text as a ratio, the whole `ivtx report` process (wall time, peak
  resident memory) and tracemalloc's peak;
- with ivtx.transform present: per convention and handler, bytes before/after, slot use, and
  for the TLB-miss vectors the instruction groups on the shortest path from entry to `rfi`.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .diag import IvtxError

STAGES = ("preprocess", "parse", "cfg", "liveness", "sites", "emit")
GAS = "ia64-linux-gnu-as"
SCHEMA = "ivtx-bench/1"
TLB_MISS_VECTORS = (0, 1, 2, 3, 4)  # VHPT, ITLB, DTLB, alternate ITLB/DTLB (primer section 3)
CONVENTIONS = (("pvops", "macro"), ("pvops", "call"), ("pal-static", "call"))
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
EMIT_MAX_SIZE = 10  # transform takes minutes at 100x (measured separately, README "Benchmarks")


def stats(samples: list[float]) -> dict:
    return {"min": min(samples), "median": statistics.median(samples), "runs": len(samples)}


def fit_exponent(sizes: list[float], times: list[float]) -> float | None:
    """Slope of the least-squares line through (log size, log time): time ~ size**k.

    >>> round(fit_exponent([1, 10, 100], [0.1, 1.0, 10.0]), 6)
    1.0
    """
    pts = [(math.log(s), math.log(t)) for s, t in zip(sizes, times) if s > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def transform_module():
    """ivtx.transform when it is installed, else None (the cost part is then skipped)."""
    if importlib.util.find_spec("ivtx.transform") is None:
        return None
    return importlib.import_module("ivtx.transform")


# --------------------------------------------------------------------------- in-process stages


def run_stages(path: str, opts, emit=None) -> tuple[object, dict]:
    """One analysis (pipeline.analyse times its own stages; `total` is its wall time) and, in
    its own column, `emit(analysis)`."""
    from .pipeline import analyse

    gc.collect()
    t0 = time.perf_counter()
    a = analyse(path, opts)
    times = {k: a.timings.get(k, 0.0) for k in STAGES if k != "emit"}
    times["total"] = time.perf_counter() - t0
    if emit is not None:
        t1 = time.perf_counter()
        emit(a)
        times["emit"] = time.perf_counter() - t1
    return a, times


def measure_input(paths: str | list[str], opts, runs: int = 1, emit=None) -> dict:
    """Stage times over the runs (the caller has warmed up): `runs` times one file, or once
    each file of a list (the same kind of input, never seen before); sizes of the first."""
    if isinstance(paths, str):
        paths = [paths] * max(runs, 1)
    samples: dict[str, list[float]] = {}
    first = None
    for path in paths:
        a, times = run_stages(path, opts, emit)
        first = first or {"file": paths[0], "statements": len(a.program.statements), "code": len(a.cfg.code),
                          "sites": len(a.sites)}
        for k, v in times.items():
            samples.setdefault(k, []).append(v)
    return {**first, "stages": {k: stats(v) for k, v in samples.items()}}


def default_emit():
    """`transform(analysis, 'pvops', 'macro')` as the emit stage, or None without ivtx.transform."""
    mod = transform_module()
    if mod is None:
        return None
    conv, render = CONVENTIONS[0]

    def emit(a):
        try:  # sizes from estimates: the stage is ivtx's work, not the assembler's
            mod.transform(a, conv, render, sizes="estimate")
        except Exception:  # noqa: BLE001 - unresolved sites and transform failures are in the cost tables
            pass

    return emit


# --------------------------------------------------------------------------- processes


@dataclass
class ProcessRun:
    wall: float  # seconds
    cpu: float  # user + sys seconds
    maxrss_mb: float | None  # peak resident set of that process (see report_process)
    status: int
    stderr: str


def run_process(cmd: list[str], env: dict | None = None) -> ProcessRun:
    """Run `cmd` (stdout discarded); its CPU time from wait4 (this child's own)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return ProcessRun(wall, ru.ru_utime + ru.ru_stime, None, proc.returncode, text)


def _ivtx_env() -> dict:
    """The environment for the ivtx process: this very package first on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# `ivtx report` as `python -m ivtx.cli` does it, plus its peak resident set read from
# /proc/self/status at exit. A child's ru_maxrss would not do: Linux carries the forking
# parent's resident set (this bench, hundreds of MB after 100x) into it.
_HWM = "IVTX_BENCH_VmHWM_kB"
_REPORT = (
    "import atexit, sys\n"
    "def _hwm():\n"
    "    try:\n"
    "        for line in open('/proc/self/status'):\n"
    "            if line.startswith('VmHWM:'):\n"
    f"                sys.stderr.write('\\n{_HWM} ' + line.split()[1] + '\\n')\n"
    "    except OSError:\n"
    "        pass\n"
    "atexit.register(_hwm)\n"
    "from ivtx.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def report_process(path: str, runs: int, extra: list[str] | None = None) -> dict:
    """Whole-process `ivtx report FILE` (table to a pipe), min/median wall and CPU time, and
    the peak resident set (None where /proc is missing)."""
    cmd = [sys.executable, "-c", _REPORT, "report", path, *(extra or [])]
    env = _ivtx_env()
    done = []
    for _ in range(max(runs, 1)):
        r = run_process(cmd, env)
        lines = r.stderr.splitlines()
        hwm = [ln for ln in lines if ln.startswith(_HWM)]
        if hwm:
            r.maxrss_mb = int(hwm[-1].split()[1]) / 1024
            r.stderr = "\n".join(ln for ln in lines if not ln.startswith(_HWM))
        done.append(r)
    failed = next((r for r in done if r.status not in (0, 1)), None)
    peaks = [r.maxrss_mb for r in done if r.maxrss_mb is not None]
    out = {"command": "ivtx report " + " ".join([Path(path).name, *(extra or [])]),
           "wall": stats([r.wall for r in done]), "cpu": stats([r.cpu for r in done]),
           "maxrss_mb": max(peaks) if peaks else None}
    if failed is not None:
        out["error"] = f"exit {failed.status}: {(failed.stderr.strip().splitlines() or [''])[-1]}"
    return out


def gas_time(pp_text: str, runs: int, workdir: str) -> dict | None:
    """`ia64-linux-gnu-as -x` on the preprocessed text; None when gas is not on PATH."""
    gas = shutil.which(GAS)
    if gas is None:
        return None
    src = os.path.join(workdir, "input.s")
    obj = os.path.join(workdir, "input.o")
    Path(src).write_text(pp_text)
    done = [run_process([gas, "-x", "-o", obj, src]) for _ in range(max(runs, 1))]
    out = {"wall": stats([r.wall for r in done])}
    if done[-1].status != 0 or done[-1].stderr.strip():
        out["note"] = (done[-1].stderr.strip().splitlines() or [f"exit {done[-1].status}"])[0]
    return out


def traced_peak_mb(path: str, opts) -> float:
    """tracemalloc's peak of one in-process analysis (Python allocations only), in MB."""
    import tracemalloc

    from .pipeline import analyse

    gc.collect()
    tracemalloc.start()
    try:
        analyse(path, opts)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- synthetic scaling


def scaling(sizes: list[int], opts, repeat: int, workdir: str, emit=None, progress=None) -> dict:
    """Stages, gas, the report process and memory on synth.generate(size, seed) per size.

    Run k analyses seed k: every timed run sees a table it has not seen (no content cache
    helps), as a user's single run would. Sizes, gas and the processes use seed 0."""
    from .preprocess import preprocess
    from .synth import generate

    rows = []
    keep = frozenset(opts.cat().ops)
    for size in sizes:
        runs = max(1, repeat // size)
        paths = []
        for seed in range(runs):
            paths.append(os.path.join(workdir, f"synth_{size}x_seed{seed}.S"))
            Path(paths[-1]).write_text(generate(size, seed))
        size_emit = emit if size <= EMIT_MAX_SIZE else None
        if progress:
            progress(f"synthetic {size}x: analysis{' and emit' if size_emit else ''} ({runs} run{'s' if runs > 1 else ''})")
        row = {"size": size, **measure_input(paths, opts, emit=size_emit)}
        pp = preprocess(paths[0], keep_undefined=keep)
        if progress:
            progress(f"synthetic {size}x: {GAS} -x, ivtx report process, memory")
        row["gas"] = gas_time(pp.text, runs, workdir)
        del pp
        row["report_process"] = report_process(paths[0], runs)
        row["traced_peak_mb"] = traced_peak_mb(paths[0], opts) if size <= 10 else None
        rows.append(row)
    out = {"rows": rows}
    if len(rows) > 1:
        xs = [r["statements"] for r in rows]
        out["exponent"] = {k: fit_exponent([x for x, r in zip(xs, rows) if k in r["stages"]],
                                           [r["stages"][k]["min"] for r in rows if k in r["stages"]])
                           for k in rows[0]["stages"]}
        out["exponent_report_process"] = fit_exponent(xs, [r["report_process"]["wall"]["min"] for r in rows])
    return out


# --------------------------------------------------------------------------- cost of the pv output


def groups_to_rfi(cfg, entry_block: int, native: tuple[set[str], set[str]]) -> int | None:
    """Fewest instruction groups a handler executes from its entry to `rfi` (0-1 BFS over the
    code positions of the entry's region). `native` = (region names, external symbols) of
    the native program.

    Control that leaves for code the native program did not have (a pv stub, the PAL-static
    dispatcher, an indirect call through the pv_ops table) is a pv call: when the handler
    goes on after it, it is taken to come back there (the callee's groups are not counted);
    when nothing follows in the handler, it is the call that replaced `rfi`. Branches to the
    native program's own targets (page_fault, other vectors) end a path without `rfi`."""
    from collections import deque

    code, group, blocks, block_of = cfg.code, cfg.group, cfg.blocks, cfg.block_of
    regions, externals = native
    g = cfg.graph
    region = cfg.region_idx
    start = blocks[entry_block].first
    home = region[start]
    best = {start: 1}
    q = deque([(start, 1)])

    def pv_call(pos):
        return pos + 1 if pos + 1 < len(code) and region[pos + 1] == home else "rfi"

    def successors(pos):
        blk = blocks[block_of[pos]]
        if pos != blk.last:
            yield pos + 1
            return
        todo, seen = list(g.successors(blk.id)), set()
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            if isinstance(n, int):
                first = blocks[n].first
                if region[first] == home:
                    yield first
                elif cfg.regions[region[first]].name not in regions:
                    yield pv_call(pos)
            elif n[0] == "rfi":
                yield "rfi"
            elif n[0] in ("call", "nested"):
                todo.extend(g.successors(n))
            elif not (n[0] == "ext" and n[1] in externals):
                yield pv_call(pos)

    while q:
        pos, cost = q.popleft()
        if cost > best.get(pos, cost):
            continue
        for nxt in successors(pos):
            if nxt == "rfi":
                return cost
            step = 0 if group[nxt] == group[pos] else 1
            if cost + step < best.get(nxt, 1 << 30):
                best[nxt] = cost + step
                (q.appendleft if step == 0 else q.append)((nxt, cost + step))
    return None


def pv_cost(a, mod) -> list[dict]:
    """Per convention: per handler bytes before/after and slot use (transform's own measure,
    exact from the object file when gas is there); TLB-miss vectors: groups to `rfi`."""
    from .cfg import build_cfg
    from .layout import regions

    native = ({r.name for r in a.cfg.regions},
              {n[1] for n in a.cfg.graph.nodes if isinstance(n, tuple) and n[0] == "ext"})
    out = []
    for conv, render in CONVENTIONS:
        entry = {"convention": conv, "render": render, "handlers": []}
        try:
            res = mod.transform(a, conv, render)
        except IvtxError as exc:
            entry["skipped"] = exc.message
            out.append(entry)
            continue
        except Exception as exc:  # a transform bug is reported in the table, the bench goes on
            entry["skipped"] = f"transform failed: {type(exc).__name__}: {exc}"
            out.append(entry)
            continue
        entry["edits"] = len(res.edits)
        entry["restructurings"] = len(res.restructurings)
        if res.program is None:
            first = res.unresolved[0] if res.unresolved else None
            entry["skipped"] = (f"{len(res.unresolved)} unresolved site(s), nothing emitted"
                                + (f" ({first.instruction}: {first.reason})" if first else ""))
            out.append(entry)
            continue
        after_prog = res.native_program or res.program  # pv macros as the native code they stand for
        after_cfg = build_cfg(after_prog)
        after_regions = {r.name for r in regions(after_prog)}
        for v in res.vectors:
            r = next((x for x in a.cfg.regions if x.name == v.name), None)
            h = {"handler": v.name, "vector": r.vector if r else None, "slot": v.slot, "bytes_before": v.before,
                 "bytes_after": v.after, "exact": v.exact, "bundles_before": v.before // 16,
                 "bundles_after": v.after // 16, "slot_use": v.after / v.slot if v.slot else None}
            if r is not None and r.vector in TLB_MISS_VECTORS and v.name in after_regions:
                h["groups_to_rfi_before"] = (groups_to_rfi(a.cfg, a.cfg.entries[v.name], native)
                                             if v.name in a.cfg.entries else None)
                h["groups_to_rfi_after"] = (groups_to_rfi(after_cfg, after_cfg.entries[v.name], native)
                                            if v.name in after_cfg.entries else None)
            entry["handlers"].append(h)
        hs = entry["handlers"]
        entry["total"] = {"bytes_before": sum(h["bytes_before"] for h in hs),
                          "bytes_after": sum(h["bytes_after"] for h in hs),
                          "over_slot": [h["handler"] for h in hs if h["slot_use"] is not None and h["slot_use"] > 1]}
        out.append(entry)
    return out


# --------------------------------------------------------------------------- the whole bench


def bench_inputs(files: list[str]) -> list[str]:
    samples = sorted(str(p) for p in SAMPLES_DIR.glob("*.S")) if SAMPLES_DIR.is_dir() else []
    return samples + list(files)


def run_bench(files: list[str], opts, sizes: list[int], repeat: int, progress=None) -> dict:
    """Everything `ivtx bench` prints, as one JSON-ready dict (schema ivtx-bench/1)."""
    from . import __version__

    inputs = bench_inputs(files)
    emit = default_emit()
    mod = transform_module()
    result = {"schema": SCHEMA, "ivtx": __version__, "python": sys.version.split()[0], "repeat": repeat,
              "transform": mod is not None, "gas": shutil.which(GAS) is not None, "inputs": [],
              "process": [], "cost": []}
    if not SAMPLES_DIR.is_dir():
        result["note"] = f"bundled samples not found ({SAMPLES_DIR}): only the given files are measured"
    with tempfile.TemporaryDirectory(prefix="ivtx-bench-") as work:
        warm = inputs[0] if inputs else os.path.join(work, "warm-up.S")
        if not inputs:
            from .synth import generate

            Path(warm).write_text(generate(1, seed=1 << 20))
        run_stages(warm, opts, emit)  # warm-up: grammar, tables, catalog patterns
        for path in inputs:
            if progress:
                progress(f"stages: {Path(path).name}")
            result["inputs"].append(measure_input(path, opts, repeat, emit))
        if sizes:
            result["scaling"] = scaling(sizes, opts, repeat, work, emit, progress=progress)
        for path in files:
            if progress:
                progress(f"ivtx report process: {Path(path).name}")
            result["process"].append({"file": path, **report_process(path, repeat)})
    if mod is not None:
        from .pipeline import analyse

        for path in inputs:
            if progress:
                progress(f"pv cost: {Path(path).name}")
            result["cost"].append({"file": path, "conventions": pv_cost(analyse(path, opts), mod)})
    return result


# --------------------------------------------------------------------------- rendering


def _ms(s: dict | None) -> str:
    if not s:
        return "-"
    return f"{s['min'] * 1e3:.1f} / {s['median'] * 1e3:.1f}"


ANALYSIS = ("preprocess", "parse", "cfg", "liveness", "sites")


def render(result: dict, color: bool | None = None) -> str:
    """The bench as rich tables (times in ms as min / median)."""
    import io

    from rich.console import Console
    from rich.table import Table

    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    con = Console(file=io.StringIO(), force_terminal=color, no_color=not color, width=200, highlight=False)
    cols = [*ANALYSIS, "total", "emit"]
    heads = [*ANALYSIS, "analysis", "emit"]
    t = Table(title="Stages in-process, after a warm-up (ms, min / median)", header_style="bold")
    t.add_column("input")
    t.add_column("stmts", justify="right")
    for h in heads:
        t.add_column(h, justify="right")
    for i in result["inputs"]:
        t.add_row(Path(i["file"]).name, str(i["statements"]), *(_ms(i["stages"].get(s)) for s in cols))
    con.print(t)
    if result.get("note"):
        con.print(result["note"])
    if not result["transform"]:
        con.print("emit: skipped (ivtx.transform is not installed)")
    sc = result.get("scaling")
    if sc:
        _render_scaling(con, result, sc, cols, heads)
    if result["process"]:
        t = Table(title="Whole process", header_style="bold")
        for c in ("command", "wall ms (min / median)", "cpu ms (min / median)", "peak RSS MB"):
            t.add_column(c, justify="right" if c != "command" else "left")
        for p in result["process"]:
            t.add_row(p["command"], _ms(p["wall"]), _ms(p["cpu"]),
                      "-" if p["maxrss_mb"] is None else f"{p['maxrss_mb']:.0f}")
        con.print(t)
    for c in result["cost"]:
        _render_cost(con, c)
    return con.file.getvalue()


def _render_scaling(con, result: dict, sc: dict, cols: list[str], heads: list[str]) -> None:
    from rich.table import Table

    t = Table(title="Synthetic IVTs (ivtx.synth; in-process ms min / median, each run a new seed; processes: min)",
              header_style="bold")
    for c in ("size", "stmts", *heads, "gas -x", "analysis/gas", "report proc", "proc/gas", "RSS MB", "traced MB"):
        t.add_column(c, justify="right")
    for r in sc["rows"]:
        gas = r["gas"]
        gas_min = gas["wall"]["min"] if gas else None
        proc = r["report_process"]
        t.add_row(f"{r['size']}x", str(r["statements"]), *(_ms(r["stages"].get(s)) for s in cols),
                  f"{gas_min * 1e3:.1f}" if gas_min else "-",
                  f"{r['stages']['total']['min'] / gas_min:.0f}" if gas_min else "-",
                  f"{proc['wall']['min'] * 1e3:.0f}",
                  f"{proc['wall']['min'] / gas_min:.0f}" if gas_min else "-",
                  "-" if proc["maxrss_mb"] is None else f"{proc['maxrss_mb']:.0f}",
                  "-" if r["traced_peak_mb"] is None else f"{r['traced_peak_mb']:.0f}")
    con.print(t)
    if not result["gas"]:
        con.print(f"gas: skipped ({GAS} not on PATH)")
    if result["transform"] and any(r["size"] > EMIT_MAX_SIZE for r in sc["rows"]):
        con.print(f"emit: measured up to {EMIT_MAX_SIZE}x (transform takes minutes beyond)")
    for r in sc["rows"]:
        if r["gas"] and r["gas"].get("note"):
            con.print(f"gas said at {r['size']}x: {r['gas']['note']}")
        if r["report_process"].get("error"):
            con.print(f"ivtx report at {r['size']}x: {r['report_process']['error']}")
    ex = sc.get("exponent")
    if ex:
        parts = ", ".join(f"{h} {ex[c]:.2f}" for c, h in zip(cols, heads) if ex.get(c) is not None and c != "total")
        con.print(f"scaling exponent k (time ~ statements^k, least squares over {len(sc['rows'])} sizes, min times): "
                  f"analysis {ex['total']:.2f}; report process {sc['exponent_report_process']:.2f}; {parts}")


def _render_cost(con, c: dict) -> None:
    from rich.table import Table

    for conv in c["conventions"]:
        name = conv["convention"] + (f"/{conv['render']}" if conv["render"] else "")
        title = f"{Path(c['file']).name}: {name} ({conv.get('edits', 0)} sites edited, " \
                f"{conv.get('restructurings', 0)} restructurings)"
        if "skipped" in conv:
            con.print(f"{Path(c['file']).name}: {name}: not transformed ({conv['skipped']})")
            continue
        t = Table(title=title, header_style="bold")
        for col in ("handler", "vector", "bundles", "slot use", "groups to rfi"):
            t.add_column(col, justify="left" if col == "handler" else "right")
        for h in conv["handlers"]:
            if not h["bytes_before"] and not h["bytes_after"]:
                continue
            if h["bytes_before"] == h["bytes_after"] and "groups_to_rfi_before" not in h:
                continue
            use = "-" if h["slot_use"] is None else f"{h['slot_use']:.0%}"
            groups = ""
            if "groups_to_rfi_before" in h:
                g0, g1 = h["groups_to_rfi_before"], h["groups_to_rfi_after"]
                groups = f"{g0} -> {g1}" if g0 is not None and g1 is not None else "no path"
            exact = "" if h["exact"] else " (est.)"
            t.add_row(h["handler"], str(h["vector"]), f"{h['bundles_before']} -> {h['bundles_after']}{exact}", use, groups)
        tot = conv["total"]
        t.add_row("all vectors", "", f"{tot['bytes_before'] // 16} -> {tot['bytes_after'] // 16}", "", "")
        con.print(t)
        if tot["over_slot"]:
            con.print(f"over their slot: {', '.join(tot['over_slot'])}")
