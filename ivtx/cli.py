"""The `ivtx` command line. Only this layer and report.py print.

Exit status: 0 success; 1 findings (check violations, unresolved sites with
--fail-on-unresolved); 2 bad input or usage (file:line:col: error: ...); 3 transform found
sites it could not resolve (nothing written); 70 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .diag import IvtxError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_UNRESOLVED = 3
EXIT_INTERNAL = 70


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR", help="add an include directory")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]", help="define a macro")
    p.add_argument("-U", dest="undefines", action="append", default=[], metavar="NAME", help="undefine a macro")
    p.add_argument("--no-prelude", dest="prelude", action="store_false",
                   help="do not supply the built-in Linux ia64 assembler macros")
    p.add_argument("--expand-pv", action="store_true",
                   help="let #define'd pv_ops macros (real kernel headers) expand to native code")
    p.add_argument("--conventions", metavar="FILE", help="exit-policy convention file (default: Linux ia64)")


def _sizes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", choices=["auto", "exact", "estimate"], default="auto",
                   help="bytes per handler: exact from ia64-linux-gnu-as when it is on PATH and accepts the "
                        "file, else estimated (auto, the default); exact (fail without it); estimate (never assemble)")


def _options(args):
    from .pipeline import Options

    return Options(include_dirs=args.include_dirs, defines=args.defines, undefines=args.undefines,
                   prelude=args.prelude, expand_pv=args.expand_pv, conventions=args.conventions)


def write_output(path: str | None, text, inputs: list[str]) -> None:
    """Write atomically (temp file + rename), never over an input; '-' or None is stdout.
    `text` is a string, or a function that writes into the file it is given (large JSON
    is streamed rather than built as one string)."""
    if path in (None, "-"):
        if callable(text):
            text(sys.stdout)
        else:
            sys.stdout.write(text)
        return
    target = Path(path).resolve()
    for inp in inputs:
        try:
            if Path(inp).resolve() == target:
                raise IvtxError(f"refusing to overwrite the input file {inp}", None)
        except OSError:
            continue
    if target.is_dir():
        raise IvtxError(f"output path is a directory: {path}", None)
    if not target.parent.exists():
        raise IvtxError(f"output directory does not exist: {target.parent}", None)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            if callable(text):
                text(f)
            else:
                f.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cmd_pp(args) -> int:
    from .preprocess import preprocess

    opts = _options(args)
    keep = frozenset() if opts.expand_pv else frozenset(opts.cat().ops)
    pp = preprocess(args.file, include_dirs=opts.include_dirs, defines=opts.defines, undefines=opts.undefines,
                    prelude=opts.prelude, keep_undefined=keep)
    _print_warnings(pp.warnings)
    write_output(args.output, pp.text, _inputs(args.file, pp))
    return EXIT_OK


def _inputs(path: str, pp) -> list[str]:
    """The files an output must not overwrite: the input and every file it included."""
    return [path, *(name for name in getattr(getattr(pp, "sources", None), "texts", {}) if not name.startswith("<"))]


def region_sizes_for(args, program, regs=None):
    """Region sizes as `--sizes` asks: exact from the object file, or estimates (ivtx.sizes)."""
    from .sizes import region_sizes

    sizes = region_sizes(program, regs, mode=getattr(args, "sizes", "auto"))
    if getattr(args, "sizes", "auto") == "exact" and not sizes.exact:
        raise IvtxError(f"exact sizes unavailable (--sizes exact): {sizes.reason}", None)
    return sizes


def cmd_parse(args) -> int:
    from .pipeline import load
    from .report import render_parse
    from .summary import summarize

    opts = _options(args)
    results = []
    inputs = list(args.files)
    for f in args.files:
        program, pp = load(f, opts)
        _hold_warnings(program.warnings)
        inputs += _inputs(f, pp)
        results.append(summarize(program, region_sizes_for(args, program)))
    _release_warnings()
    if args.json:
        write_output(args.output, json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n", inputs)
    else:
        write_output(args.output, render_parse(results, color=_color(args)), inputs)
    return EXIT_OK


def cmd_cfg(args) -> int:
    from .cfg import build_cfg
    from .cfg_render import render
    from .effects import effects_of
    from .pipeline import load

    opts = _options(args)
    program, pp = load(args.file, opts)
    _hold_warnings(program.warnings)
    for insn in program.instructions():
        effects_of(insn)  # an instruction the ISA tables do not know is an error here too
    cfg = build_cfg(program)
    text = render(cfg, args.format, handler=args.handler)
    _release_warnings()
    write_output(args.output, text, _inputs(args.file, pp))
    return EXIT_OK


def cmd_report(args) -> int:
    from . import report
    from .pipeline import analyse

    opts = _options(args)
    if args.config_matrix:
        from .matrix import run_matrix

        result = run_matrix(args.file, opts, args.config_matrix)
        text = report.render_matrix(result, args.format, handler=args.handler, color=_color(args))
        write_output(args.output, text, [args.file, args.config_matrix])
        unresolved = result.unresolved_count
    else:
        a = analyse(args.file, opts)
        _hold_warnings(a.warnings)
        sizes = region_sizes_for(args, a.program, a.cfg.regions)
        unresolved = sum(1 for s in a.sites if s.op is not None and not s.resolved)
        if args.format == "json":
            data = report.report_data(a, args.handler, sizes)
            del a, sizes  # only the report's plain data is needed from here (memory)

            def text(f, data=data):
                json.dump(data, f, indent=2)
                f.write("\n")
        else:
            text = report.render(a, args.format, handler=args.handler, color=_color(args), output=args.output,
                                 sizes=sizes)
        _release_warnings()
        if text is not None:
            write_output(args.output, text, [args.file])
    if args.fail_on_unresolved and unresolved:
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_check(args) -> int:
    from .check import check, render_findings
    from .pipeline import analyse

    opts = _options(args)
    a = analyse(args.file, opts)
    _print_warnings(a.warnings)
    findings = check(a, strict=args.strict)
    text = render_findings(a, findings, args.format)
    write_output(args.output, text, [args.file])
    failing = [f for f in findings if f.severity == "error"]
    return EXIT_FINDINGS if failing else EXIT_OK


def cmd_bench(args) -> int:
    """Speed, scaling and pv-output cost (ivtx.bench); the table to stdout, JSON to --json."""
    from .bench import bench_inputs, render, run_bench
    from .pipeline import read_source

    for f in args.files:
        read_source(f)
    inputs = bench_inputs(args.files)
    if args.json and any(Path(i).resolve() == Path(args.json).resolve() for i in inputs):
        raise IvtxError(f"refusing to overwrite the input file {args.json}", None)  # before minutes of work
    result = run_bench(args.files, _options(args), args.sizes, args.repeat,
                       progress=lambda msg: print(f"ivtx bench: {msg}", file=sys.stderr, flush=True))
    if args.json:
        write_output(args.json, json.dumps(result, indent=2) + "\n", inputs)
    sys.stdout.write(render(result, color=_color(args)))
    return EXIT_OK


def _size_list(text: str) -> list[int]:
    """`--sizes 1,10,100`: how many full IVTs each synthetic input holds ('' or 0: none)."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1,10,100, not {text!r}") from None
    if any(s < 0 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must not be negative")
    return [s for s in sizes if s > 0]


def cmd_transform(args) -> int:
    from .pipeline import analyse
    from .transform import render_report, transform, unified_patch

    opts = _options(args)
    a = analyse(args.file, opts)
    _print_warnings(a.warnings)
    res = transform(a, args.convention, args.render, args.backend, options=opts, sizes=args.sizes)
    sys.stderr.write(render_report(res))
    if args.report_json:
        from .transform import report_data

        write_output(args.report_json, json.dumps(report_data(res), indent=2) + "\n", [args.file])
    if not res.ok:
        return EXIT_UNRESOLVED
    inputs = [args.file] + list(res.header_sources.values())
    if args.patch:
        text = unified_patch(args.file, res.source_text, res.text)
        for rel, header in res.header_sources.items():
            text += unified_patch(header, Path(header).read_text(), res.headers[rel])
        write_output(args.output, text, inputs)
    else:
        if res.headers and args.output in (None, "-"):
            raise IvtxError(f"the output edits included file(s) {', '.join(res.headers)}: give -o FILE, they are "
                            "written next to it", None)
        write_output(args.output, res.text, inputs)
        for rel, text in res.headers.items():
            write_output(str(Path(args.output).parent / rel), text, inputs)
    if args.support_dir:
        for rel, text in res.support.items():
            target = Path(args.support_dir) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            write_output(str(target), text, inputs)
    elif res.support:
        print(f"ivtx: note: support files not written ({', '.join(res.support)}); --support-dir DIR writes them",
              file=sys.stderr)
    return EXIT_OK


def cmd_diff(args) -> int:
    """Native and paravirtualized handlers side by side (ivtx.diff), or the unified patch.

    The side-by-side view shows a file with unresolved sites too (they stay as written, marked
    `?`), and exits 3 like transform; the patch is written only when every site is resolved."""
    import shutil

    from .diff import build_diff, color_patch, patch_text, render
    from .pipeline import analyse
    from .transform import render_report, transform

    if args.unified and args.handler:
        raise IvtxError("--handler selects handlers of the side-by-side view; the unified patch covers the whole "
                        "file (it must produce exactly the transform output)", None)
    if args.width is not None and args.width < 20:
        raise IvtxError("--width must be at least 20", None)
    opts = _options(args)
    a = analyse(args.file, opts)
    _hold_warnings(a.warnings)
    color = {"always": True, "never": False}.get(args.color, sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    res = transform(a, args.convention, args.render, options=opts, sizes=args.sizes, partial=not args.unified)
    if res.program is None and not args.unified:  # no output even in part (a slot overflows): say why
        res = transform(a, args.convention, args.render, options=opts, sizes=args.sizes)
    if args.sizes == "exact" and not all(v.exact for v in res.vectors):
        raise IvtxError("exact sizes unavailable (--sizes exact): the assembler is missing or refused the file", None)
    if res.analysis is not None:  # sites were moved: the rows pair the output with the moved input
        a = res.analysis
    if args.unified or res.program is None:
        if not res.ok:
            _release_warnings()
            sys.stderr.write(render_report(res))
            return EXIT_UNRESOLVED
        text = patch_text(res, args.file)
        text = color_patch(text) if color else text
    else:
        width = args.width
        if width is None:
            cols = os.environ.get("COLUMNS", "")
            width = int(cols) if cols.isdigit() and int(cols) >= 20 else (
                shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120)
        text = render(build_diff(a, res, handler=args.handler, catalog=opts.cat()), width=max(width, 20),
                      color=color, plain=args.plain)
    _release_warnings()
    write_output(None, text, [args.file])
    if not res.ok:
        print(f"ivtx: {args.file}: {len(res.unresolved)} site(s) unresolved (marked ?): ivtx transform would write "
              "nothing", file=sys.stderr)
        return EXIT_UNRESOLVED
    return EXIT_OK


def cmd_verify(args) -> int:
    """Differential verification (ivtx.verify): FILE against --against OTHER, or against what
    `ivtx.transform` makes of it.  Per handler: trials run and agree/disagree; for a mismatch
    the smallest differing state and the first diverging instruction.  Exit 1 on a mismatch
    (or a run that needs an instruction the interpreter does not model)."""
    import importlib.util
    import time

    from .conventions import inline_summaries, load_policy
    from .pipeline import load
    from .verify import scribbling_model, verify

    opts = _options(args)
    if args.trials < 1:
        raise IvtxError("--trials must be at least 1", None)
    if args.inject:
        if args.against or args.handler:
            raise IvtxError("--inject works on FILE's own pv calls (its pvops macro rendering): not with "
                            "--against or --handler", None)
        from .inject import render, run_injection

        report, what, unresolved = run_injection(args.file, opts, args.trials, args.seed)
        if report is None:
            print(f"ivtx: {args.file}: {what} left {unresolved} site(s) unresolved: nothing to inject into",
                  file=sys.stderr)
            return EXIT_UNRESOLVED
        text, ok = render(report, what, args.trials)
        write_output(None, text, [args.file])
        return EXIT_OK if ok else EXIT_FINDINGS
    t0 = time.perf_counter()
    policy = load_policy(opts.conventions)
    native, pp = load(args.file, opts)
    _print_warnings(native.warnings)
    inline_summaries(pp.sources.texts if hasattr(pp, "sources") else {}, policy)
    if args.against:
        transformed, _ = load(args.against, opts)
        what = args.against
    elif importlib.util.find_spec("ivtx.transform") is None:
        raise IvtxError("ivtx transform is not available in this version: give the other program with --against FILE", None)
    else:
        from .pipeline import analyse
        from .transform import transform

        res = transform(analyse(args.file, opts), args.convention, args.render, options=opts)
        if not res.ok or res.program is None:
            print(f"ivtx: {args.file}: the {args.convention} transform left {len(res.unresolved)} site(s) unresolved: "
                  "nothing to verify", file=sys.stderr)
            return EXIT_UNRESOLVED
        transformed = res.program
        what = f"its {args.convention} transform ({res.render} rendering)"
    model = scribbling_model if args.pv_model == "scribble" else None
    result = verify(native, transformed, args.trials, args.seed, args.handler, policy=policy, pv_model=model)
    if args.handler is not None and not result.handlers:
        raise IvtxError(f"no vector handler named '{args.handler}' in {args.file}", None)
    lines = [f"ivtx verify: {args.file} against {what}: {args.trials} trials per handler, seed {args.seed}, "
             f"pv ops of the transformed program: {args.pv_model}", ""]
    width = max([len(h.name) for h in result.handlers] + [7])
    lines.append(f"{'handler':<{width}}  offset  trials  result        exits (native)")
    for h in result.handlers:
        exits = ", ".join(f"{k} x{n}" for k, n in h.exits.most_common(3)) + (", ..." if len(h.exits) > 3 else "")
        lines.append(f"{h.name:<{width}}  {h.offset:#06x}  {h.trials:>6}  {h.status:<12}  {exits}")
    for h in result.handlers:
        if h.mismatch is not None:
            lines += ["", f"{h.name} ({h.offset:#06x}) disagrees:", "  " + h.mismatch.describe().replace("\n", "\n  ")]
        elif h.not_modelled:
            lines += ["", f"{h.name} ({h.offset:#06x}): {h.not_modelled}"]
    counts = {s: sum(1 for h in result.handlers if h.status == s) for s in ("agree", "disagree", "not modelled")}
    lines += ["", f"{len(result.handlers)} handlers: {counts['agree']} agree, {counts['disagree']} disagree, "
              f"{counts['not modelled']} not modelled; {sum(h.trials for h in result.handlers)} trials in "
              f"{result.seconds:.2f} s ({time.perf_counter() - t0:.2f} s in all)"]
    write_output(None, "\n".join(lines) + "\n", [args.file])
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _color(args) -> bool | None:
    c = getattr(args, "color", "auto")
    if c == "always":
        return True
    if c == "never":
        return False
    return None


_held_warnings: list = []


def _hold_warnings(warnings) -> None:
    """Keep warnings until the command cannot fail any more: an error must be the first line
    of stderr (the warnings follow it, where they may explain it)."""
    _held_warnings.extend(warnings)


def _release_warnings() -> None:
    held = list(_held_warnings)
    _held_warnings.clear()
    _print_warnings(held)


def _print_warnings(warnings) -> None:
    """Warnings to stderr; the missing system includes are folded into one line."""
    missing = []
    for w in warnings:
        msg = getattr(w, "message", "")
        if msg.startswith("cannot find include file <"):
            name = msg[len("cannot find include file <"):].split(">", 1)[0]
            if name not in missing:
                missing.append(name)
            continue
        print(w.render() if hasattr(w, "render") else str(w), file=sys.stderr)
    if missing:
        print(f"ivtx: warning: {len(missing)} system include(s) not found and skipped: {', '.join(missing)} "
              "(the built-in prelude supplies the common Linux ia64 macros; -I gives real headers)", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="ivtx", description="Provable clobber registers and paravirtualization for IA-64 IVT code.")
    p.add_argument("--version", action="version", version=f"ivtx {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sp = sub.add_parser("pp", help="print the preprocessed text (what gas would read)")
    sp.add_argument("file")
    sp.add_argument("-o", "--output")
    _common(sp)
    sp.set_defaults(func=cmd_pp)

    sp = sub.add_parser("parse", help="handlers, instruction counts and sensitive instructions per file")
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("-o", "--output")
    sp.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    _sizes_option(sp)
    _common(sp)
    sp.set_defaults(func=cmd_parse)

    sp = sub.add_parser("cfg", help="the control-flow graph: blocks and edges")
    sp.add_argument("file")
    sp.add_argument("--handler", metavar="NAME")
    sp.add_argument("--format", choices=["text", "dot", "json", "graphml"], default="text")
    sp.add_argument("-o", "--output")
    _common(sp)
    sp.set_defaults(func=cmd_cfg)

    sp = sub.add_parser("report", help="the clobber-register report of every privileged site")
    sp.add_argument("file")
    sp.add_argument("--handler", metavar="NAME")
    sp.add_argument("--format", choices=["table", "json", "sarif", "markdown"], default="table")
    sp.add_argument("-o", "--output")
    sp.add_argument("--fail-on-unresolved", action="store_true", help="exit 1 when a site has no clobbers")
    sp.add_argument("--config-matrix", metavar="FILE", help="analyse every -D set listed in FILE (TOML)")
    sp.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    _sizes_option(sp)
    _common(sp)
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("check", help="verify the clobbers written in pv-annotated source")
    sp.add_argument("file")
    sp.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    sp.add_argument("--strict", action="store_true", help="sensitive instructions outside the catalog fail too")
    sp.add_argument("-o", "--output")
    _common(sp)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("bench", help="time every stage, the scaling on synthetic IVTs and the pv-output cost")
    sp.add_argument("files", nargs="*", metavar="FILE", help="inputs measured besides the bundled samples")
    sp.add_argument("--json", metavar="OUT", help="also write the figures as JSON (schema ivtx-bench/1)")
    sp.add_argument("--sizes", type=_size_list, default=[1, 10, 100], metavar="1,10,100",
                    help="synthetic inputs, in full IVTs (default 1,10,100; 0 for none)")
    sp.add_argument("--repeat", type=int, default=5, metavar="N", help="timed runs per input after a warm-up (default 5)")
    sp.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    _common(sp)
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("transform", help="paravirtualize every privileged site (pv_ops macros or calls, PAL-static)")
    sp.add_argument("file")
    sp.add_argument("--convention", choices=["pvops", "pal-static"], default="pvops")
    sp.add_argument("--render", choices=["macro", "call"], default="macro", help="pvops: macro calls or explicit calls")
    sp.add_argument("--backend", choices=["native"], default="native", help="what the support files implement")
    sp.add_argument("-o", "--output", help="the transformed source (edited headers are written next to it)")
    sp.add_argument("--patch", action="store_true", help="write a unified diff of the source instead (patch -p1)")
    sp.add_argument("--support-dir", metavar="DIR", help="write the support files (native header, stubs) here")
    sp.add_argument("--report-json", metavar="FILE", help="also write what was done (edits, restructurings, "
                    "unresolved sites, bytes per vector) as JSON")
    _sizes_option(sp)
    _common(sp)
    sp.set_defaults(func=cmd_transform)

    sp = sub.add_parser("diff", help="native and paravirtualized handlers side by side (or the unified patch)")
    sp.add_argument("file")
    sp.add_argument("--convention", choices=["pvops", "pal-static"], default="pvops")
    sp.add_argument("--render", choices=["macro", "call"], default="macro", help="pvops: macro calls or explicit calls")
    sp.add_argument("--handler", metavar="NAME", help="one handler (its label or offset, e.g. 0x400)")
    view = sp.add_mutually_exclusive_group()
    view.add_argument("--side-by-side", dest="unified", action="store_false", default=False,
                      help="the aligned view (default)")
    view.add_argument("--unified", action="store_true", help="the unified patch (patch -p1, git apply)")
    sp.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                    help="auto: only on a terminal and without NO_COLOR")
    sp.add_argument("--width", type=int, metavar="N", help="columns (default: COLUMNS, the terminal, else 120)")
    sp.add_argument("--plain", action="store_true", help="no box drawing (for pagers and logs)")
    _sizes_option(sp)
    _common(sp)
    sp.set_defaults(func=cmd_diff)

    sp = sub.add_parser("verify", help="run native and transformed handlers from random states and compare them")
    sp.add_argument("file")
    sp.add_argument("--against", metavar="OTHER", help="the program to compare with (default: ivtx's own transform)")
    sp.add_argument("--convention", choices=["pvops", "pal-static"], default="pvops")
    sp.add_argument("--render", choices=["macro", "call"], default="macro")
    sp.add_argument("--trials", type=int, default=200, metavar="N", help="random entry states per handler (default 200)")
    sp.add_argument("--seed", type=int, default=0, metavar="S")
    sp.add_argument("--handler", metavar="NAME", help="one handler (its name or offset, e.g. 0x1400)")
    sp.add_argument("--pv-model", choices=["scribble", "native"], default="scribble",
                    help="how the transformed program's pv ops run: natively, or natively and then overwriting "
                         "every clobber they name (default: scribble, which proves the clobbers dead)")
    sp.add_argument("--inject", action="store_true",
                    help="fault injection: at each pv call of FILE's pvops macro rendering in turn, force a live "
                         "register in as a clobber and report whether verify catches it")
    _common(sp)
    sp.set_defaults(func=cmd_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    import gc

    # the analysis allocates many small long-lived objects: fewer young-generation
    # collections cut the time on large inputs by about a fifth (measured by the bench)
    gc.set_threshold(50_000, 20, 20)
    parser = build_parser()
    args = parser.parse_args(argv)
    _held_warnings.clear()
    try:
        return args.func(args)
    except IvtxError as exc:
        print(exc.render(), file=sys.stderr)
        _release_warnings()
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("ivtx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except RecursionError:
        print("ivtx: error: input nests too deeply", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:  # never a traceback for the user; tests look for this line
        print(f"ivtx: internal error: {type(exc).__name__}: {exc} (please report this with the input)", file=sys.stderr)
        if os.environ.get("IVTX_DEBUG"):
            raise
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
