"""Print an ivtx.ir.Program as GNU as text, and compare programs ignoring coordinates.

The output assembles (`ia64-linux-gnu-as -x`) to the same bytes as the parsed source and
parses back to an equal Program (`ir_equal`): one statement per line, stops `;;` and
bundle braces on their own lines, registers in canonical spelling (an unnamed AR as `ar5`,
which is how gas spells it), expressions fully parenthesised where operators nest.
"""

from __future__ import annotations

import dataclasses

from . import ir
from .regs import gas_name


def format_expr(e) -> str:
    """An expression in gas syntax; nested operators get parentheses (gas precedence is not C's)."""
    if isinstance(e, ir.Num):
        return str(e)
    if isinstance(e, ir.Sym):
        return e.name
    if isinstance(e, ir.Binary):
        return f"{_sub(e.left)} {e.op} {_sub(e.right)}"
    if isinstance(e, ir.Unary):
        return f"{e.op}{_sub(e.arg)}"
    if isinstance(e, ir.Reloc):
        return f"@{e.op}({format_expr(e.arg)})"
    if isinstance(e, ir.Str):
        return e.text
    raise TypeError(f"not an expression: {e!r}")


def _sub(e) -> str:
    text = format_expr(e)
    return f"({text})" if isinstance(e, (ir.Binary, ir.Unary)) else text


def format_operand(x) -> str:
    if isinstance(x, ir.Reg):
        return gas_name(x.name)
    if isinstance(x, ir.Mem):
        return f"[{gas_name(x.base.name)}]"
    if isinstance(x, ir.RegIndex):
        return f"{x.file}[{gas_name(x.index.name)}]"
    if isinstance(x, ir.Imm):
        return format_expr(x.expr)
    return format_expr(x)


def _operands(dests, srcs) -> str:
    right = ", ".join(format_operand(x) for x in srcs)
    if dests:
        return ", ".join(format_operand(x) for x in dests) + " = " + right
    return right


def format_statement(s) -> str:
    """One statement as a line of gas text (without the newline)."""
    if isinstance(s, ir.Instruction):
        head = ""
        if s.tag is not None:
            head += f"[{s.tag}:] "
        if s.qp is not None:
            head += f"({s.qp}) "
        ops = _operands(s.dests, s.srcs)
        return f"\t{head}{s.mnemonic}" + (f" {ops}" if ops else "")
    if isinstance(s, ir.Label):
        return f"{s.name}:"
    if isinstance(s, ir.Stop):
        return "\t;;"
    if isinstance(s, ir.BundleBegin):
        return "{ ." + s.template if s.template else "{"
    if isinstance(s, ir.BundleEnd):
        return "}"
    if isinstance(s, ir.Directive):
        if s.name == "=" and len(s.args) == 2:
            return f"\t{format_operand(s.args[0])} = {format_operand(s.args[1])}"
        args = ", ".join(format_operand(a) for a in s.args)
        return f"\t{s.name}" + (f" {args}" if args else "")
    if isinstance(s, ir.PvCall):
        if not s.parens:
            return f"\t{s.name}"
        return f"\t{s.name}(" + ", ".join(format_operand(a) for a in s.args) + ")"
    raise TypeError(f"not a statement: {s!r}")


def statement_text(s) -> str:
    """One statement, compact, for reports: `(p7) itc.d r18`, `mov r16=cr.ifa`, `ITC_D(p7, r24, r25)`."""
    if isinstance(s, ir.Instruction):
        head = f"[{s.tag}:] " if s.tag is not None else ""
        if s.qp is not None:
            head += f"({s.qp}) "
        right = ",".join(format_operand(x) for x in s.srcs)
        ops = (",".join(format_operand(x) for x in s.dests) + "=" + right) if s.dests else right
        return f"{head}{s.mnemonic}" + (f" {ops}" if ops else "")
    return format_statement(s).strip()


def print_program(prog: ir.Program) -> str:
    """Assembly text for `prog` that gas accepts (and that parses back to an equal Program)."""
    return "".join(format_statement(s) + "\n" for s in prog.statements)


# ---------------------------------------------------------------------------- comparison


def strip_loc(s):
    """A statement with its coordinates removed (loc=None), for comparisons."""
    return dataclasses.replace(s, loc=None)


def strip_locs(prog: ir.Program) -> list:
    return [strip_loc(s) for s in prog.statements]


def ir_equal(a: ir.Program, b: ir.Program) -> bool:
    """Whether two programs have the same statements, ignoring locs.  Numbers compare with
    their spelling (`0x10` is not `16`), which the printer keeps."""
    return strip_locs(a) == strip_locs(b)


def first_difference(a: ir.Program, b: ir.Program) -> str | None:
    """A short description of where two programs first differ (for test messages)."""
    sa, sb = strip_locs(a), strip_locs(b)
    for i, (x, y) in enumerate(zip(sa, sb)):
        if x != y:
            return f"statement {i}: {x!r} != {y!r} (at {a.statements[i].loc})"
    if len(sa) != len(sb):
        return f"lengths differ: {len(sa)} != {len(sb)}"
    return None
