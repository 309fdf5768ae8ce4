"""The `ivtx` command line. Only this layer and report.py print.

Exit status: 0 success; 1 findings (check violations, unresolved sites with
--fail-on-unresolved); 2 bad input or usage (file:line:col: error: ...); 70 internal error.
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


def _options(args):
    from .pipeline import Options

    return Options(include_dirs=args.include_dirs, defines=args.defines, undefines=args.undefines,
                   prelude=args.prelude, expand_pv=args.expand_pv, conventions=args.conventions)


def write_output(path: str | None, text: str, inputs: list[str]) -> None:
    """Write atomically (temp file + rename), never over an input; '-' or None is stdout."""
    if path in (None, "-"):
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
    write_output(args.output, pp.text, [args.file])
    return EXIT_OK


def cmd_parse(args) -> int:
    from .pipeline import load
    from .report import render_parse
    from .summary import summarize

    opts = _options(args)
    results = []
    for f in args.files:
        program, _ = load(f, opts)
        _print_warnings(program.warnings)
        results.append(summarize(program))
    if args.json:
        write_output(args.output, json.dumps(results if len(results) > 1 else results[0], indent=2) + "\n", args.files)
    else:
        write_output(args.output, render_parse(results, color=_color(args)), args.files)
    return EXIT_OK


def cmd_cfg(args) -> int:
    from .cfg_render import render
    from .pipeline import load
    from .cfg import build_cfg

    opts = _options(args)
    program, _ = load(args.file, opts)
    _print_warnings(program.warnings)
    cfg = build_cfg(program)
    text = render(cfg, args.format, handler=args.handler)
    write_output(args.output, text, [args.file])
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
        _print_warnings(a.warnings)
        text = report.render(a, args.format, handler=args.handler, color=_color(args), output=args.output)
        if text is not None:
            write_output(args.output, text, [args.file])
        unresolved = sum(1 for s in a.sites if s.op is not None and not s.resolved)
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


def _color(args) -> bool | None:
    c = getattr(args, "color", "auto")
    if c == "always":
        return True
    if c == "never":
        return False
    return None


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
    _common(sp)
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("check", help="verify the clobbers written in pv-annotated source")
    sp.add_argument("file")
    sp.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    sp.add_argument("--strict", action="store_true", help="sensitive instructions outside the catalog fail too")
    sp.add_argument("-o", "--output")
    _common(sp)
    sp.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IvtxError as exc:
        print(exc.render(), file=sys.stderr)
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
