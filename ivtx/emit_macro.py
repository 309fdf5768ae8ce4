"""Source-preserving edits (design.md "Conventions") and the pvops *macro* rendering.

Where each site is written in the user's files (the innermost `Loc` of its instructions: a
macro body when the site comes from a C or gas macro expansion), how its operands are spelled
there (`MINSTATE_GET_IPSR(reg)` keeps `reg`, `(pUStk)` keeps `pUStk`), and the text edits that
turn a site into the catalog macro call with its clobbers, e.g.

    (p7)	itc.d r18		// insert       ->   (same line)  ITC_D(p7, r18, r16)	// insert

Only the site's own text changes; comments, layout and everything else stay byte for byte.
The generated native header (`asm/native/inst.h`) defines every catalog macro as its `native`
text, so the edited file assembles to the original instructions (primer section 7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .ir import Instruction, PvCall
from .pvcatalog import Catalog, PvOp

NATIVE_HEADER = "asm/native/inst.h"
# Headers that define the pv_ops assembler macros: a source including one needs no include added.
PV_HEADERS = ("asm/native/inst.h", "asm/paravirt_privop.h", "asm/pvchk_inst.h", "asm/xen/inst.h")

_MNEMONIC = re.compile(r"[A-Za-z_][\w.]*")
_NAME = re.compile(r"[A-Za-z_]\w*")


class Unplaceable(Exception):
    """The site's text cannot be located or split in the source (the reason is the message)."""


# --------------------------------------------------------------------------- the user's files


class SourceFiles:
    """The text of every file a site can be edited in, read once from disk."""

    def __init__(self, not_editable: tuple[str, ...] = ()):
        self.texts: dict[str, str] = {}
        self._lines: dict[str, tuple[str, list[str]]] = {}
        self._defines: dict[tuple[str, int], str | None] = {}
        self.not_editable = set(not_editable)
        # (file, line) -> (start, end, direction, comment): a site transform moved onto another
        # instruction's line (ivtx.pal_move), written there as `;; SITE ;;` between columns
        # start and end; its replacement goes on lines of its own before (-1) or after (1)
        self.moved: dict[tuple[str, int], tuple[int, int, int, str]] = {}

    def text(self, name: str) -> str:
        if name not in self.texts:
            self.texts[name] = Path(name).read_text(encoding="utf-8")
        return self.texts[name]

    def lines(self, name: str) -> list[str]:
        """The file's lines, split once (callers must not modify the list)."""
        text = self.text(name)
        cached = self._lines.get(name)
        if cached is None or cached[0] is not text:  # (texts may be replaced, diff.py)
            cached = self._lines[name] = (text, text.split("\n"))
            self._defines = {k: v for k, v in self._defines.items() if k[0] != name}
        return cached[1]

    def line(self, name: str, lineno: int) -> str:
        lines = self.lines(name)
        if not 1 <= lineno <= len(lines):
            raise Unplaceable(f"{name}:{lineno}: line not in the file")
        return lines[lineno - 1]

    def editable(self, name: str) -> bool:
        if name.startswith("<") or name in self.not_editable:
            return False
        try:
            self.text(name)
        except (OSError, UnicodeDecodeError):
            return False
        return True

    def in_c_macro(self, name: str, lineno: int) -> bool:
        """Whether a line belongs to a `#define` (its logical line starts with `#define`)."""
        lines = self.lines(name)
        i = lineno - 1
        while i > 0 and lines[i - 1].rstrip().endswith("\\"):
            i -= 1
        return re.match(r"\s*#\s*define\b", lines[i]) is not None

    def defined_name(self, name: str, lineno: int) -> str | None:
        """The macro whose `#define` (logical line) holds this line, or None."""
        key = (name, lineno)
        if key not in self._defines:
            lines = self.lines(name)
            i = lineno - 1
            while i > 0 and lines[i - 1].rstrip().endswith("\\"):
                i -= 1
            m = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)", lines[i]) if 0 <= i < len(lines) else None
            self._defines[key] = m.group(1) if m else None
        return self._defines[key]


@dataclass(frozen=True, slots=True)
class Span:
    """Text on one source line: columns [start, end), 0-based."""

    file: str
    line: int
    start: int
    end: int


@dataclass
class Located:
    """One instruction as written: its span (qp and tag included) and its operands' spelling."""

    span: Span
    qp: str | None
    dests: list[str]
    srcs: list[str]
    in_macro: bool  # inside a C #define: statements are joined with ';' on the logical line


def _back_ws(line: str, i: int) -> int:
    while i > 0 and line[i - 1] in " \t":
        i -= 1
    return i


def locate(insn: Instruction, files: SourceFiles) -> Located:
    """The source text of `insn` at its innermost location (a macro body for expansions)."""
    loc = insn.loc
    if not files.editable(loc.file):
        raise Unplaceable(f"written in {loc.file}, which ivtx does not edit")
    line = files.line(loc.file, loc.line)
    i = loc.col - 1
    m = _MNEMONIC.match(line, i)
    if m is None or m.group(0).lower() != insn.mnemonic:
        raise Unplaceable(f"the mnemonic '{insn.mnemonic}' is not spelled out at {loc.file}:{loc.line}:{loc.col}")
    start = i
    qp = None
    if insn.qp is not None:
        j = _back_ws(line, start)
        k = line.rfind("(", 0, j)
        if j == 0 or line[j - 1] != ")" or k < 0 or not _NAME.fullmatch(line[k + 1:j - 1].strip()):
            raise Unplaceable(f"the qualifying predicate ({insn.qp}) is not written before '{insn.mnemonic}'")
        qp, start = line[k + 1:j - 1].strip(), k
    if insn.tag is not None:
        j = _back_ws(line, start)
        k = line.rfind("[", 0, j)
        if j == 0 or line[j - 1] != "]" or k < 0:
            raise Unplaceable(f"the tag [{insn.tag}:] is not written before the instruction")
        start = k
    dests, srcs, end = _operands(line, m.end(), insn)
    return Located(Span(loc.file, loc.line, start, end), qp, dests, srcs, files.in_c_macro(loc.file, loc.line))


def _operands(line: str, pos: int, insn: Instruction) -> tuple[list[str], list[str], int]:
    """Split the operand text after the mnemonic: dests `=` srcs, top-level commas, up to the end
    of the statement (`;`, a comment, a continuation, a brace, or the `,`/`)` that ends a macro
    argument). Raises Unplaceable when the counts do not match the parsed instruction."""
    commas = max(len(insn.dests) - 1, 0) + max(len(insn.srcs) - 1, 0)
    parts: list[str] = []
    eq_at = None
    seen = 0  # top-level commas so far
    depth = 0
    seg = pos
    i = pos
    n = len(line)
    while i < n:
        c = line[i]
        if c in "\"'":
            close = line.find(c, i + 1)
            i = n if close < 0 else close + 1
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                break  # the `)` closing a macro argument
            depth -= 1
        elif depth == 0:
            if c in ";{}" or line.startswith("//", i) or line.startswith("/*", i):
                break
            if c == "\\" and not line[i + 1:].strip():
                break
            if c == ",":
                if seen == commas:
                    break  # the `,` ending a macro argument
                seen += 1
                parts.append(line[seg:i])
                seg = i + 1
            elif c == "=" and eq_at is None and insn.dests and line[i + 1:i + 2] != "=" \
                    and line[i - 1:i] not in ("<", ">", "!", "="):
                parts.append(line[seg:i])
                eq_at = len(parts)
                seg = i + 1
        i += 1
    end = i
    tail = line[seg:end]
    if tail.strip() or parts:
        parts.append(tail)
    while end > pos and line[end - 1] in " \t":
        end -= 1
    parts = [p.strip() for p in parts]
    if insn.dests:
        if eq_at is None:
            raise Unplaceable("the operands are not written out (a macro supplies them)")
        dests, srcs = parts[:eq_at], parts[eq_at:]
    else:
        dests, srcs = [], parts
    if len(dests) != len(insn.dests) or len(srcs) != len(insn.srcs) or any(not p for p in dests + srcs):
        raise Unplaceable("the operands are not written out one by one (a macro supplies some of them)")
    return dests, srcs, end


def locate_pvcall(call: PvCall, files: SourceFiles) -> tuple[Span, list[str], bool]:
    """The source text of a pv-op call `NAME(a, b, c)`: its span and the arguments as written."""
    loc = call.loc
    if not files.editable(loc.file):
        raise Unplaceable(f"written in {loc.file}, which ivtx does not edit")
    line = files.line(loc.file, loc.line)
    i = loc.col - 1
    m = _NAME.match(line, i)
    if m is None or m.group(0) != call.name:
        raise Unplaceable(f"the pv op '{call.name}' is not spelled out at {loc}")
    end = m.end()
    args: list[str] = []
    if call.parens:
        j = end
        while j < len(line) and line[j] in " \t":
            j += 1
        if j >= len(line) or line[j] != "(":
            raise Unplaceable(f"the arguments of '{call.name}' are not on its line")
        depth, seg, k = 0, j + 1, j
        while k < len(line):
            c = line[k]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
                if depth == 0:
                    break
            elif c == "," and depth == 1:
                args.append(line[seg:k].strip())
                seg = k + 1
            k += 1
        if k >= len(line):
            raise Unplaceable(f"the arguments of '{call.name}' continue on another line")
        last = line[seg:k].strip()
        if last or args:
            args.append(last)
        end = k + 1
    return Span(loc.file, loc.line, i, end), args, files.in_c_macro(loc.file, loc.line)


# --------------------------------------------------------------------------- text edits


@dataclass
class TextEdit:
    """Replace columns [start, end) of a line; `after` lines are inserted after that line
    (plain context only). `tag` lets the caller find where the new text landed."""

    file: str
    line: int
    start: int
    end: int
    new: str
    after: list[str] = field(default_factory=list)
    tag: object = None
    before: list[str] = field(default_factory=list)


def apply_edits(files: SourceFiles, edits: list[TextEdit]) -> tuple[dict[str, str], dict[object, tuple[str, int, int]]]:
    """New text of every edited file, and for each tagged edit the output lines (file, first,
    last) its line became, inserted lines included.

    A line left blank by deletions is dropped (kept empty when dropping it would pull the next
    line into a `#define` whose body ended there)."""
    by_file: dict[str, list[TextEdit]] = {}
    for e in edits:
        by_file.setdefault(e.file, []).append(e)
    out: dict[str, str] = {}
    where: dict[object, tuple[str, int, int]] = {}
    for name, es in by_file.items():
        lines = files.lines(name)
        es.sort(key=lambda e: (e.line, e.start, e.end))
        per_line: dict[int, list[TextEdit]] = {}
        for e in es:
            per_line.setdefault(e.line, []).append(e)
        new_lines: list[str] = []
        count = [0]  # physical lines so far (an entry may hold several)

        def put(x: str) -> None:
            new_lines.append(x)
            count[0] += x.count("\n") + 1

        for ln, text in enumerate(lines, 1):
            mine = per_line.get(ln)
            if not mine:
                put(text)
                continue
            pieces, cursor = [], 0
            # each edit's output lines: its own lines before, the line itself (when the edit
            # changes it), its own lines after; an insertion next to another site's text does
            # not become part of that site's place (the self-check looks there)
            own: dict[int, list[int]] = {}
            for e in mine:
                for b in e.before:
                    put(b)
                    own.setdefault(id(e), []).append(count[0])
            for e in mine:
                if e.start < cursor:
                    raise AssertionError(f"overlapping edits at {name}:{ln}")
                pieces.append(text[cursor:e.start])
                pieces.append(e.new)
                cursor = e.end
            pieces.append(text[cursor:])
            new = "".join(pieces)
            if not new.strip() and text.strip():
                prev_cont = ln > 1 and lines[ln - 2].rstrip().endswith("\\")
                if text.rstrip().endswith("\\") or not prev_cont:
                    new = None
                else:
                    new = ""
            if new is not None:
                put(new)
                for e in mine:
                    if e.new or e.end > e.start or not e.before:
                        own.setdefault(id(e), []).append(count[0])
            for e in mine:
                for a in e.after:
                    put(a)
                    own.setdefault(id(e), []).append(count[0])
            for e in mine:
                if e.tag is not None:
                    mine_lines = own.get(id(e)) or [count[0]]
                    where[e.tag] = (name, min(mine_lines), max(mine_lines))
        out[name] = "\n".join(new_lines)
    return out, where


def _width(text: str) -> int:
    """Display width with tabs every 8 columns."""
    w = 0
    for ch in text:
        w = (w // 8 + 1) * 8 if ch == "\t" else w + 1
    return w


def replace_span(line: str, span: Span, new: str, tag=None) -> TextEdit:
    """Replace a span keeping the layout: a predicate written in the label column leaves the call
    at the first tab stop, and a trailing comment stays in its display column."""
    start, end = span.start, span.end
    if start == 0 and line[:1] == "(" and not new.startswith("("):
        new = "\t" + new
    m = re.match(r"([ \t]+)(//|/\*)", line[end:])
    if m is None:
        return TextEdit(span.file, span.line, start, end, new, tag=tag)
    col = _width(line[:end + len(m.group(1))])
    here = _width(line[:start] + new)
    pad = ""
    if "\t" in m.group(1):
        while (here // 8 + 1) * 8 <= col:
            pad += "\t"
            here = (here // 8 + 1) * 8
    pad += " " * max(col - here, 0)
    if not pad:
        pad = "\t" if "\t" in m.group(1) else " "
    return TextEdit(span.file, span.line, start, end + len(m.group(1)), new + pad, tag=tag)


def delete_span(span: Span) -> TextEdit:
    return TextEdit(span.file, span.line, span.start, span.end, "")


# --------------------------------------------------------------------------- macro rendering


def macro_call(op: PvOp, texts: dict[str, str]) -> str:
    """`ITC_D(p7, r18, r16)` from role -> text; `RFI` for ops without parentheses."""
    if not op.parens:
        return op.name
    return f"{op.name}(" + ", ".join(texts[r] for r in op.args) + ")"


def native_header(catalog: Catalog) -> str:
    """`asm/native/inst.h`: every catalog op as its native instruction(s), clobbers ignored."""
    out = ["/*",
           " * Generated by ivtx from the privileged-op catalog (" + catalog.source + "):",
           " * the native definition of every pv_ops assembler macro.  Each expands to the",
           " * instruction(s) the op stands for; the clobber arguments are not used.",
           " */",
           "",
           "/* A kernel tree has its own asm/native/inst.h, which defines more than the pv_ops",
           " * macros (DO_SAVE_MIN, ...): it comes first (outside the guard, so that a second copy",
           " * of this file earlier on the path passes it on), and ivtx defines only what it left out. */",
           "#ifdef __has_include_next",
           "#if __has_include_next(<asm/native/inst.h>)",
           "#include_next <asm/native/inst.h>",
           "#endif",
           "#endif",
           "",
           "#ifndef IVTX_NATIVE_INST_H",
           "#define IVTX_NATIVE_INST_H",
           ""]
    for op in catalog.ops.values():
        body = op.native
        for role in op.args:
            repl = f"ar.k##{role}" if op.role_kind(role) == "kr" else role
            body = body.replace("ar.k${" + role + "}", repl).replace("${" + role + "}", role)
        head = f"#define {op.name}({', '.join(op.args)})" if op.parens else f"#define {op.name}"
        out += [f"#ifndef {op.name}", f"{head}\t{body}", "#endif"]
    out += ["", "#endif /* IVTX_NATIVE_INST_H */", ""]
    return "\n".join(out)


_INCLUDE = re.compile(r'\s*#\s*include\s*[<"]([^>"]+)[>"]')


def includes_pv_header(texts: list[str]) -> bool:
    """Whether any of the texts includes a header that defines the pv_ops macros."""
    for t in texts:
        for line in t.split("\n"):
            m = _INCLUDE.match(line)
            if m and m.group(1) in PV_HEADERS:
                return True
    return False


def include_edit(main: str, text: str, header: str = NATIVE_HEADER) -> TextEdit:
    """An edit inserting `#include <header>` before the file's first #include, or before its
    first line of code when it has none (after a leading comment)."""
    lines = text.split("\n")
    in_comment = False
    first_code = None
    for i, line in enumerate(lines):
        s = line.strip()
        if in_comment:
            if "*/" in s:
                in_comment = False
            continue
        if _INCLUDE.match(line):
            first_code = i
            break
        if not s or s.startswith("//"):
            continue
        if s.startswith("/*"):
            in_comment = "*/" not in s[2:]
            continue
        first_code = i
        break
    i = first_code if first_code is not None else len(lines) - 1
    note = "\t/* ivtx: defines the pv_ops macros below */"
    return TextEdit(main, i + 1, 0, 0, f"#include <{header}>{note}\n")


# --------------------------------------------------------------------------- inserting statements


def _inline(items: list[str]) -> str:
    """Statements and `;;` on one logical line: `;; mov r16=cr.ifa ;;`."""
    out = ""
    for it in items:
        if it == ";;":
            out += " ;;"
        else:
            out += (" " if not out or out.endswith(";;") or out.endswith(":") else "; ") + it
    return out


def _lines(items: list[str], indent: str, comment: str | None) -> list[str]:
    out = []
    for it in items:
        if it == ";;" or it.endswith(":"):
            out.append(f"{indent};;" if it == ";;" else it)
        else:
            text = f"{indent}{it}"
            if comment:
                text += "\t" * max(1, (40 - _width(text) + 7) // 8) + f"// {comment}"
                comment = None
            out.append(text)
    return out


def _indent(line: str) -> str:
    stripped = line.lstrip(" \t")
    ind = line[:len(line) - len(stripped)]
    return ind or "\t"


def _code_follows(line: str, end: int) -> bool:
    rest = line[end:].strip()
    return bool(rest) and not rest.startswith("//") and not rest.startswith("/*")


def _next_statement(a, pos: int):
    stmts = a.cfg.program.statements
    i = a.cfg.stmt_index[pos] + 1
    return stmts[i] if i < len(stmts) else None


def stop_span(files: SourceFiles, stop) -> Span | None:
    loc = stop.loc
    if not files.editable(loc.file):
        return None
    line = files.line(loc.file, loc.line)
    i = loc.col - 1
    return Span(loc.file, loc.line, i, i + 2) if line[i:i + 2] == ";;" else None


def insert_after_span(files: SourceFiles, span: Span, in_macro: bool, items: list[str],
                      comment: str | None = None, tag=None) -> TextEdit:
    line = files.line(span.file, span.line)
    if in_macro or _code_follows(line, span.end):
        return TextEdit(span.file, span.line, span.end, span.end, _inline(items), tag=tag)
    # lines of their own after this one: anchored at the line's end, so that an edit of the
    # statement itself (which may take the spaces before its comment) does not overlap it
    return TextEdit(span.file, span.line, len(line), len(line), "", after=_lines(items, _indent(line), comment),
                    tag=tag)


def insert_before_span(files: SourceFiles, span: Span, in_macro: bool, items: list[str],
                       comment: str | None = None) -> TextEdit:
    line = files.line(span.file, span.line)
    if in_macro or line[:span.start].strip():
        return TextEdit(span.file, span.line, span.start, span.start, _inline(items).lstrip() + " ")
    return TextEdit(span.file, span.line, span.start, span.start, "", before=_lines(items, _indent(line), comment))


def insert_after(a, files: SourceFiles, g, items: list[str], comment: str | None = None) -> list[TextEdit]:
    """Statements right after site group `g` (items: statements and ';;'). A leading ';;' is
    the stop already written after the site when there is one."""
    site = g.first
    last = site.pos + site.length - 1
    span = g.located[-1].span if g.located else g.pv_span
    nxt = _next_statement(a, last)
    if items and items[0] == ";;" and type(nxt).__name__ == "Stop" and not g.in_macro:
        sp = stop_span(files, nxt)
        if sp is not None and not _code_follows(files.line(sp.file, sp.line), sp.end) \
                and not files.in_c_macro(sp.file, sp.line):
            return [insert_after_span(files, sp, False, items[1:], comment)]
    return [insert_after_span(files, span, g.in_macro, items, comment)]


def insert_before(a, files: SourceFiles, g, items: list[str], leading_stop: bool = False,
                  comment: str | None = None) -> list[TextEdit]:
    """Statements right before site group `g`, after a stop when the site does not start its
    instruction group and `leading_stop` asks for one."""
    from .emit_call import starts_group

    if leading_stop and not starts_group(a, g):
        items = [";;"] + items
    span = g.located[0].span if g.located else g.pv_span
    return [insert_before_span(files, span, g.in_macro, items, comment)]
