"""The C preprocessor stage (`gcc -E -x assembler-with-cpp` semantics) with an exact line map.

Every output column maps back to file:line:col through `PPLine.spans` (see ppline.py): plain
text maps 1:1; a token from a macro's replacement list maps to that token in the #define,
with `via=` the use site (nested expansions chain `via`); a macro argument maps to where the
argument was written. Expansion follows the hide-set ("painted blue") rule.

Assembler-mode details, as gcc does them:
  * a quote starts a literal ending at the matching quote on the same line; an unmatched
    quote (`don't`) is not an error, it makes the rest of the line literal text;
  * `#` in a function-like macro not followed by a parameter is a plain `#`; a `##` paste
    that does not form one token leaves the two tokens side by side.
Chosen differently from gcc: text after a comment spanning lines starts a new output line
(gas statements never merge), `#include <x>` not found is a warning, an unknown `# word`
directive is an error, and the prelude only supplies defaults (a name defined on the command
line keeps the command line's value; -U names stay undefined after the prelude).

Speed (ivt.S with the prelude in ~30 ms cold, ~17 ms warm): a line naming no macro is copied
as is with one span per source piece; long replacement lists are pre-cut into chunks of inert
tokens; the complete expansion of an object-like macro is memoised per macro table and
replayed with its `via` chain re-rooted; files' logical lines and parsed #defines are cached
by content across calls (a -D matrix preprocesses the same files many times).
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from contextlib import contextmanager
from importlib import resources

from .diag import Diagnostic, IvtxError, Loc, SourceCache, default_sources
from .ppline import PPLine, Preprocessed

MAX_INCLUDE_DEPTH = 200
MAX_NESTING = 100  # macro calls within macro arguments, parentheses in #if
MAX_LINE_WORK = 300_000  # tokens one line's expansion may go through (`#define A B B` chains explode)
PRELUDE_NAME = "ivtx_prelude.h"
COMMAND_LINE = "<command-line>"

# token kinds. A CHUNK is a run of inert tokens from one replacement list, spelled as one
# text: a speed-up for long bodies such as SAVE_MIN (see _compile_body).
ID, NUM, STR, PUNCT, NL, PASTE, PLACEMARKER, CHUNK = range(8)

_TOKEN_RE = re.compile(
    r"""(\s*)(?:
      (?P<id>[A-Za-z_]\w*)
    | (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<open>["'].*)
    | (?P<punct>\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-*/%+&^|]=|\#\#|\S)
    )""",
    re.X | re.S,
)
_KIND = {"id": ID, "num": NUM, "str": STR, "open": STR, "punct": PUNCT}
_MACRO_NAME_RE = re.compile(r"\b[A-Za-z_]\w*")  # `$` is not in identifiers in assembler mode
_SPECIAL_RE = re.compile(r"[/'\"]")
_DIRECTIVE_RE = re.compile(r"\s*#\s*")
_WORD_RE = re.compile(r"[A-Za-z_]\w*|\d+")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_PASTE_PAIRS = frozenset(
    "++ -- << >> <= >= == != && || -> += -= *= /= %= &= |= ^= ## // /* .. +. -.".split()
)
_HEADER_RE = re.compile(r'\s*(?:"([^"]*)"|<([^>]*)>)')
_HAS_OPERATORS = ("__has_include", "__has_include_next", "__has_attribute", "__has_cpp_attribute",
                  "__has_builtin")
_CONDITIONALS = frozenset({"if", "ifdef", "ifndef", "elif", "else", "endif"})


class _Tok:
    """A preprocessing token and where it was spelled (`file`, `line`, `col`, `via` make its
    Loc). `ws` is the whitespace before it (original text for source tokens, "" or " " in a
    replacement list); `hs` its hide set; `adv` False for a token made by `#` or `##`, whose
    characters all map to one place; `parts` the tokens of a CHUNK."""

    __slots__ = ("kind", "text", "ws", "file", "line", "col", "via", "hs", "adv", "parts")

    def __init__(self, kind, text, ws, file, line, col, via=None, hs=None, adv=True):
        self.kind, self.text, self.ws = kind, text, ws
        self.file, self.line, self.col, self.via = file, line, col, via
        self.hs, self.adv = hs, adv

    def loc(self) -> Loc:
        return Loc(self.file, self.line, self.col, self.via)

    def __repr__(self) -> str:  # for debugging and test failure output
        return f"_Tok({self.text!r} @{self.line}:{self.col})"


class _Macro:
    __slots__ = ("name", "params", "variadic", "body", "loc", "items", "has_paste", "builtin")

    def __init__(self, name, params, variadic, body, loc, builtin=None):
        self.name, self.params, self.variadic, self.body, self.loc = name, params, variadic, body, loc
        self.builtin = builtin
        self.has_paste = any(t.kind == PASTE for t in body)
        self.items = None  # compiled on first use: most header macros are never expanded

    def compiled(self) -> list:
        if self.items is None:
            self.items = _compile_body(self.params, self.variadic, self.body)
        return self.items

    def same_as(self, other: "_Macro") -> bool:
        """Same parameters and replacement list (whitespace compared as present/absent)."""
        def shape(m):
            return [(t.text, bool(t.ws)) for t in m.body]
        return self.params == other.params and self.variadic == other.variadic and shape(self) == shape(other)


def _compile_body(params, variadic, body):
    """Items of a replacement list:
        (0, tok)               a literal token
        (1, i, tok, pasted)    parameter i (`pasted`: next to `##`, so substituted unexpanded)
        (2, i, tok)            `#param` (function-like macros only; elsewhere `#` is literal)
        (3, tok, gnu_comma)    `##`; `gnu_comma` marks `, ## __VA_ARGS__`, which drops the
                               comma when there are no variable arguments
        (4, text, tok, parts, names)  a chunk: literal tokens on one line at their source
                               spacing, none of them a string, `#`, `(`, `)`, `,` or next to
                               `##`; used as one token when none of `names` is a macro.
    """
    index = {p: i for i, p in enumerate(params or ())}
    items: list = []
    run: list[_Tok] = []

    def flush():
        if len(run) == 1:
            items.append((0, run[0]))
        elif run:
            text = run[0].text + "".join(t.ws + t.text for t in run[1:])
            names = frozenset(t.text for t in run if t.kind == ID)
            items.append((4, text, run[0], tuple(run), names))
        run.clear()

    k, n = 0, len(body)
    while k < n:
        t = body[k]
        if params is not None and t.kind == PUNCT and t.text == "#" and k + 1 < n \
                and body[k + 1].kind == ID and body[k + 1].text in index:
            flush()
            items.append((2, index[body[k + 1].text], t))
            k += 2
            continue
        if t.kind == PASTE:
            flush()
            nxt = body[k + 1]
            gnu_comma = (variadic and items and items[-1][0] == 0 and items[-1][1].text == ","
                         and nxt.kind == ID and index.get(nxt.text) == len(params) - 1)
            items.append((3, t, gnu_comma))
        elif t.kind == ID and t.text in index:
            flush()
            pasted = (k > 0 and body[k - 1].kind == PASTE) or (k + 1 < n and body[k + 1].kind == PASTE)
            items.append((1, index[t.text], t, pasted))
        elif t.kind == STR or t.text in _UNCHUNKED or (k + 1 < n and body[k + 1].kind == PASTE):
            flush()
            items.append((0, t))
        else:
            if run:
                last = run[-1]
                if last.line != t.line or last.col + len(last.text) + len(t.ws) != t.col:
                    flush()
            run.append(t)
        k += 1
    flush()
    return items


_UNCHUNKED = frozenset({"#", "(", ")", ","})


class _Line:
    """A logical line: comments replaced by a space, continuations joined. `marks` are
    (offset, line, col): text from offset on came from line:col onwards."""

    __slots__ = ("text", "marks", "directive", "macro")

    def __init__(self, text, marks, directive):
        self.text, self.marks, self.directive = text, marks, directive
        self.macro = None  # for a #define line: its macro, once parsed (lines are cached)

    def pos(self, off: int) -> tuple[int, int]:
        marks = self.marks
        if len(marks) == 1:
            m = marks[0]
        else:
            m = marks[max(bisect_right(marks, off, key=lambda x: x[0]) - 1, 0)]
        return m[1], m[2] + off - m[0]


_LINE_CACHE: dict[tuple[str, str], list[_Line]] = {}
_LINE_CACHE_MAX_TEXT = 1 << 18  # bigger files are scanned again rather than kept after the run


def _logical_lines(name: str, text: str) -> list[_Line]:
    """The logical lines of a file, cached by name and content (a -D matrix rereads them)."""
    key = (name, text)
    lines = _LINE_CACHE.get(key)
    if lines is None:
        scanner = _Scanner(name, text)
        lines = []
        while (line := scanner.next_line()) is not None:
            lines.append(line)
        if len(text) <= _LINE_CACHE_MAX_TEXT:
            if len(_LINE_CACHE) >= 256:
                _LINE_CACHE.clear()
            _LINE_CACHE[key] = lines
    return lines


class _Reader:
    """A cursor over a file's logical lines, with push-back."""

    def __init__(self, name: str, text: str):
        self.lines = _logical_lines(name, text)
        self.i = 0
        self.pending: list[_Line] = []

    def push_back(self, line: _Line) -> None:
        self.pending.append(line)

    def next_line(self) -> _Line | None:
        if self.pending:
            return self.pending.pop()
        i = self.i
        if i >= len(self.lines):
            return None
        self.i = i + 1
        return self.lines[i]


class _Scanner:
    """Phases 1-3 of translation for one file: physical lines -> logical lines."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.phys = text.split("\n")
        if self.phys and self.phys[-1] == "":
            self.phys.pop()
        self.i = 0
        self.in_comment: tuple[int, int] | None = None  # (line, col) of an open /*

    def _raw(self):
        """Next backslash-joined line: (text, marks) or None at end of file."""
        phys, i = self.phys, self.i
        if i >= len(phys):
            return None
        s = phys[i]
        if s.endswith("\r"):
            s = s[:-1]
        self.i = i + 1
        if not s or s[-1] not in "\\ \t":
            return s, [(0, i + 1, 1)]
        marks = [(0, i + 1, 1)]
        while True:
            body = s.rstrip(" \t")
            if not body.endswith("\\") or self.i >= len(phys):
                if body.endswith("\\"):  # backslash-newline at end of file
                    s = body[:-1]
                return s, marks
            s = body[:-1]
            nxt = phys[self.i]
            if nxt.endswith("\r"):
                nxt = nxt[:-1]
            self.i += 1
            marks.append((len(s), self.i, 1))
            s += nxt

    def next_line(self) -> _Line | None:
        while True:
            raw = self._raw()
            if raw is None:
                if self.in_comment is not None:
                    raise IvtxError("unterminated comment", Loc(self.name, *self.in_comment))
                return None
            s, marks = raw
            start, directive_ok = 0, True
            if self.in_comment is not None:
                end = s.find("*/")
                if end < 0:
                    continue
                self.in_comment = None
                start, directive_ok = end + 2, False
                if not s[start:].strip():
                    continue
            if start == 0 and not _SPECIAL_RE.search(s):
                return _Line(s, marks, s.lstrip().startswith("#"))
            return self._scan(s, marks, start, directive_ok)

    def _scan(self, s, marks, start, directive_ok) -> _Line:
        """Replace comments by a space, keeping literals; may join lines for a directive."""
        out: list[str] = []
        omarks: list[tuple[int, int, int]] = []
        olen = 0

        def copy(a, b):  # append s[a:b] with its marks
            nonlocal olen
            if a >= b:
                return
            k = max(bisect_right(marks, a, key=lambda x: x[0]) - 1, 0)
            m = marks[k]
            col = m[2] + a - m[0]
            if not omarks or omarks[-1][1] != m[1] or omarks[-1][2] + olen - omarks[-1][0] != col:
                omarks.append((olen, m[1], col))
            for off, ln, col in marks[k + 1:]:
                if off >= b:
                    break
                omarks.append((olen + off - a, ln, col))
            out.append(s[a:b])
            olen += b - a

        def space_at(a):  # one space standing for the comment that starts at s[a]
            nonlocal olen
            k = max(bisect_right(marks, a, key=lambda x: x[0]) - 1, 0)
            m = marks[k]
            omarks.append((olen, m[1], m[2] + a - m[0]))
            out.append(" ")
            olen += 1

        i = start
        directive = None
        while True:
            mt = _SPECIAL_RE.search(s, i)
            if mt is None:
                copy(i, len(s))
                break
            j = mt.start()
            c = s[j]
            if c == "/":
                nxt = s[j + 1:j + 2]
                if nxt == "/":
                    copy(i, j)
                    space_at(j)
                    break
                if nxt == "*":
                    copy(i, j)
                    space_at(j)
                    end = s.find("*/", j + 2)
                    if end >= 0:
                        i = end + 2
                        continue
                    # a comment running past the end of the line
                    if directive is None:
                        directive = directive_ok and "".join(out).lstrip().startswith("#")
                    k = max(bisect_right(marks, j, key=lambda x: x[0]) - 1, 0)
                    open_at = (marks[k][1], marks[k][2] + j - marks[k][0])
                    if not directive:
                        self.in_comment = open_at
                        break
                    # a directive continues after the comment: join the following lines
                    while True:
                        raw = self._raw()
                        if raw is None:
                            raise IvtxError("unterminated comment", Loc(self.name, *open_at))
                        s, marks = raw
                        end = s.find("*/")
                        if end >= 0:
                            break
                    i = end + 2
                    continue
                copy(i, j + 1)
                i = j + 1
                continue
            # a quote: a literal up to the matching quote, else the rest of the line
            k = j + 1
            n = len(s)
            while k < n:
                ch = s[k]
                if ch == "\\":
                    k += 2
                    continue
                if ch == c:
                    break
                k += 1
            if k >= n:
                copy(i, n)
                break
            copy(i, k + 1)
            i = k + 1
        text = "".join(out)
        if not omarks:
            omarks.append((0, marks[0][1], marks[0][2] + start))
        if directive is None:
            directive = directive_ok and text.lstrip().startswith("#")
        return _Line(text, omarks, directive)


class _File:
    __slots__ = ("name", "reader", "conds", "dir_index", "defaults_only")

    def __init__(self, name, text, dir_index=None, defaults_only=False):
        self.name = name
        self.reader = _Reader(name, text)
        self.conds: list[list] = []  # [loc, name, taken, else_seen, outer_skip, active]
        self.dir_index = dir_index  # index in include_dirs where this file was found
        self.defaults_only = defaults_only

    @property
    def skipping(self) -> bool:
        if not self.conds:
            return False
        return not self.conds[-1][5]


def preprocess(path: str, *, include_dirs=(), defines=(), undefines=(), prelude: bool = True,
               keep_undefined: frozenset[str] = frozenset(), text: str | None = None) -> Preprocessed:
    """Preprocess `path` (or `text`, named `path`) like `gcc -E -x assembler-with-cpp`.

    `defines` are "NAME" or "NAME=VALUE" (-D), `undefines` names (-U, after all -D); the
    prelude (ivtx/prelude/ivtx_prelude.h) runs after them and before the file. Names in
    `keep_undefined` are never defined, so `ITC_D(p7, r24, r25)` survives as written.
    Raises IvtxError (with a location) on any error.
    """
    pp = _Preprocessor(list(include_dirs), frozenset(keep_undefined))
    try:
        return pp.run(path, text, list(defines), list(undefines), prelude)
    except RecursionError:  # a last resort: the nesting limits above should come first
        raise IvtxError("preprocessing nested too deeply", None) from None


def prelude_path() -> str:
    return str(resources.files("ivtx.prelude").joinpath(PRELUDE_NAME))



# absolute path -> text read instead of the file (source_overrides)
_OVERRIDES: dict[str, str] = {}


@contextmanager
def source_overrides(texts: dict[str, str]):
    """While active, these files (by path) are read from memory instead of disk: how transform
    analyses an edited variant of the input under the input's own name (a site moved to try
    it elsewhere) without writing anything."""
    saved = dict(_OVERRIDES)
    _OVERRIDES.update({os.path.abspath(k): v for k, v in texts.items()})
    try:
        yield
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(saved)


def read_source_text(path: str, loc: Loc | None = None, sources=None) -> str:
    """A source file as text (a leading BOM dropped); a NUL byte or invalid UTF-8 is an error
    at its line and column. `loc` locates a failure to read (the #include); `sources` gets
    the undecodable text so the error can show its line."""
    if _OVERRIDES:
        text = _OVERRIDES.get(os.path.abspath(path))
        if text is not None:
            return text
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise IvtxError(f"cannot read '{path}': {e.strerror or e}", loc) from None
    bad, what = data.find(b"\0"), "NUL byte (binary file?)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if bad < 0 or e.start < bad:
            bad, what = e.start, f"invalid UTF-8 byte 0x{data[e.start]:02x}"
    if bad >= 0:
        if sources is not None:
            sources.add(path, data.decode("utf-8", "replace"))
        line_start = data.rfind(b"\n", 0, bad) + 1
        col = len(data[line_start:bad].decode("utf-8", "replace")) + 1
        raise IvtxError(f"{what} in source file", Loc(path, data.count(b"\n", 0, bad) + 1, col))
    return text.removeprefix("\ufeff")

class _Preprocessor:
    def __init__(self, include_dirs: list[str], keep: frozenset[str]):
        self.include_dirs = include_dirs
        self.keep = keep
        self.macros: dict[str, _Macro] = {}
        self.lines: list[PPLine] = []
        self.warnings: list[Diagnostic] = []
        self.sources = SourceCache()
        self.files: list[_File] = []
        self.missing_warned: set[str] = set()
        self.file_cache: dict[str, str] = {}
        self.generation = 0  # bumped by every #define / #undef: invalidates self.memo
        self.memo: dict[str, tuple] = {}  # object-like macro -> (generation, expansion, root)
        self.builtin_used = False
        self.depth = 0  # nesting of recursive expansions (arguments, _expand_alone)
        self.work = 0  # tokens expanded for the current line (MAX_LINE_WORK)
        builtin = Loc("<built-in>", 1, 1)
        for name in ("__FILE__", "__LINE__") + _HAS_OPERATORS:
            self.macros[name] = _Macro(name, None, False, [], builtin, builtin=name)
        self.macros["__ASSEMBLER__"] = _Macro(
            "__ASSEMBLER__", None, False, [_Tok(NUM, "1", "", "<built-in>", 1, 1)], builtin)

    # ------------------------------------------------------------------ driver

    def run(self, path, text, defines, undefines, use_prelude) -> Preprocessed:
        cmd, undef_lines = [], []
        for d in defines:
            name, eq, value = str(d).partition("=")
            cmd.append(f"#define {name} {value if eq else '1'}")
        for u in undefines:
            undef_lines.append(f"#undef {u}")
        if cmd or undef_lines:
            cmd_text = "\n".join(cmd + undef_lines) + "\n"
            self._remember(COMMAND_LINE, cmd_text)
            self._run_file(_File(COMMAND_LINE, cmd_text))
        if use_prelude:
            ppath = prelude_path()
            ptext = resources.files("ivtx.prelude").joinpath(PRELUDE_NAME).read_text("utf-8")
            self.sources.add(ppath, ptext)
            self._run_file(_File(ppath, ptext, defaults_only=True))
            for u in undefines:
                self.macros.pop(u, None)
            self.generation += 1
        if text is None:
            text = self._read(path, None)
        else:
            text = self._check_text(path, text)
            self._remember(path, text)
        self._run_file(_File(path, text))
        return Preprocessed(path, self.lines, self.warnings, self.sources, frozenset(self.macros))

    def _remember(self, name: str, text: str) -> None:
        """Sources that are not on disk also go to the default cache, so that an error
        (which carries no cache) still prints its line and caret."""
        self.sources.add(name, text)
        default_sources().add(name, text)

    def _read(self, path: str, loc: Loc | None) -> str:
        cached = self.file_cache.get(path)
        if cached is not None:
            return cached
        text = read_source_text(path, loc, self.sources)
        self.sources.add(path, text)
        self.file_cache[path] = text
        return text

    def _check_text(self, path: str, text: str) -> str:
        bad = text.find("\0")
        if bad >= 0:
            line_start = text.rfind("\n", 0, bad) + 1
            self.sources.add(path, text.replace("\0", "?"))
            raise IvtxError("NUL byte (binary file?) in source file",
                            Loc(path, text.count("\n", 0, bad) + 1, bad - line_start + 1))
        return text

    def _run_file(self, f: _File) -> None:
        """Process `f` and every file it includes (an explicit stack, not recursion)."""
        base = len(self.files)
        self.files.append(f)
        macros, lines = self.macros, self.lines
        while len(self.files) > base:
            fs = self.files[-1]
            self.work = 0
            line = fs.reader.next_line()
            if line is None:
                if fs.conds:
                    c = fs.conds[-1]
                    raise IvtxError(f"unterminated #{c[1]}", c[0])
                self.files.pop()
                continue
            if line.directive:
                self._directive(fs, line, in_args=False)
                continue
            if fs.skipping:
                continue
            text = line.text
            if macros.keys().isdisjoint(_MACRO_NAME_RE.findall(text)):
                text = text.rstrip()
                n = len(text)
                if not n:  # blank lines are dropped, as with gcc -P
                    continue
                spans = [(off, Loc(fs.name, ln, col), True) for off, ln, col in line.marks if off < n]
                if not spans:
                    m = line.marks[0]
                    spans = [(0, Loc(fs.name, m[1], m[2]), True)]
                lines.append(PPLine(text, spans))
                continue
            toks = self._tokenize(line, 0, fs.name)
            stack = toks[::-1]
            out: list[_Tok] = []
            self._expand(stack, out, lambda in_args, fs=fs: self._more(fs, in_args))
            m = line.marks[0]
            self._emit(out, fs.name, m[1], m[2])

    def _more(self, fs: _File, in_args: bool):
        """Tokens of the next text line (after a NL token) for a macro call spanning lines."""
        while True:
            line = fs.reader.next_line()
            if line is None:
                return None
            if line.directive:
                if not in_args:  # looking for '(' stops at a directive
                    fs.reader.push_back(line)
                    return None
                self._directive(fs, line, in_args=True)
                continue
            if fs.skipping:
                continue
            m = line.marks[0]
            return [_Tok(NL, "", "", fs.name, m[1], m[2])] + self._tokenize(line, 0, fs.name)

    # ------------------------------------------------------------------ tokens

    @staticmethod
    def _tokenize(line: _Line, start: int, file: str) -> list[_Tok]:
        text, marks = line.text, line.marks
        toks = []
        append = toks.append
        k, nmarks = 0, len(marks)
        while k + 1 < nmarks and marks[k + 1][0] <= start:
            k += 1
        off0, lno, c0 = marks[k]
        c0 -= off0
        nxt = marks[k + 1][0] if k + 1 < nmarks else len(text) + 1
        pos = start
        # findall: every non-blank character is in some token, so offsets can be summed
        for ws, ident, num, lit, open_, punct in _TOKEN_RE.findall(text, start):
            pos += len(ws)
            while pos >= nxt:  # the token starts past the next mark (joined line, comment)
                k += 1
                off0, lno, c0 = marks[k]
                c0 -= off0
                nxt = marks[k + 1][0] if k + 1 < nmarks else len(text) + 1
            if ident:
                append(_Tok(ID, ident, ws, file, lno, c0 + pos))
                pos += len(ident)
            elif punct:
                append(_Tok(PASTE if punct == "##" else PUNCT, punct, ws, file, lno, c0 + pos))
                pos += len(punct)
            else:
                word = num or lit or open_
                append(_Tok(NUM if num else STR, word, ws, file, lno, c0 + pos))
                pos += len(word)
        return toks

    # ------------------------------------------------------------------ expansion

    def _expand(self, stack: list[_Tok], out: list[_Tok], more=None, in_if: bool = False) -> None:
        """Expand tokens popped from `stack` (next token last) into `out`. `more(in_args)`
        supplies the next line when a macro call runs past the end of the input."""
        macros = self.macros
        while stack:
            t = stack.pop()
            self.work += 1
            if self.work > MAX_LINE_WORK:
                raise IvtxError(f"macro expansion of this line goes past {MAX_LINE_WORK} tokens "
                                "(macros that double their text at every level?)", t.loc())
            if t.kind == ID:
                m = macros.get(t.text)
                if m is not None and not (t.hs and t.text in t.hs):
                    if m.params is None:
                        if m.builtin:
                            if m.builtin in _HAS_OPERATORS:  # `__has_include(x)`: only in #if
                                out.append(t)
                                if in_if and stack and stack[-1].text == "(":
                                    depth = 0
                                    while stack:
                                        p = stack.pop()
                                        out.append(p)
                                        depth += (p.text == "(") - (p.text == ")")
                                        if depth == 0:
                                            break
                                continue
                            stack.append(self._builtin(m, t))
                            continue
                        if not in_if and not t.hs:
                            res = self._expand_alone(m, t)
                            if res is not None:
                                out.extend(res)
                                continue
                        body = self._subst(m, None, _hs_add(t.hs, t.text), t, in_if)
                        if body:
                            stack.extend(reversed(body))
                        continue
                    if self._find_paren(stack, more):
                        args, rparen = self._collect_args(stack, more, m, t)
                        hs = _hs_add(t.hs & rparen.hs if (t.hs and rparen.hs) else None, t.text)
                        body = self._subst(m, args, hs, t, in_if)
                        stack.extend(reversed(body))
                        continue
                elif in_if and t.text == "defined":  # its operand is never expanded
                    out.append(t)
                    if stack and stack[-1].text == "(":
                        out.append(stack.pop())
                        if stack and stack[-1].kind == ID:
                            out.append(stack.pop())
                        if stack and stack[-1].text == ")":
                            out.append(stack.pop())
                    elif stack and stack[-1].kind == ID:
                        out.append(stack.pop())
                    continue
            out.append(t)

    def _expand_alone(self, m: _Macro, t: _Tok) -> list[_Tok] | None:
        """The complete expansion of object-like `m` at `t`, computed once per macro table and
        replayed with `via` re-rooted at each use (`(pUStk)` appears hundreds of times). None
        when the expansion needs the tokens after it (it ends in a function-like macro name)."""
        entry = self.memo.get(m.name)
        if entry is not None and entry[0] == self.generation:
            _, res, root = entry
            if res is None:
                return None
            new_root = t.loc()
            vias = {id(root): new_root}
            out = []
            for r in res:
                v = r.via
                nv = vias.get(id(v))
                if nv is None:
                    nv = _reroot(v, root, new_root, vias)
                c = _Tok(r.kind, r.text, r.ws, r.file, r.line, r.col, nv, r.hs, r.adv)
                if r.kind == CHUNK:
                    c.parts = r.parts
                out.append(c)
            if out:
                out[0].ws = t.ws
            return out
        if self.depth > MAX_NESTING // 4:  # deep chains of macros: expand in place instead
            return None
        body = self._subst(m, None, frozenset((m.name,)), t, False)
        root = body[0].via if body else None
        res: list[_Tok] = []
        used, self.builtin_used = self.builtin_used, False
        self.depth += 1
        try:
            self._expand(body[::-1], res, _needs_context)
        except _NeedsContext:
            self.memo[m.name] = (self.generation, None, None)
            return None
        finally:
            self.depth -= 1
            builtin, self.builtin_used = self.builtin_used, used or self.builtin_used
        if not builtin:
            self.memo[m.name] = (self.generation, res, root)
        return res

    @staticmethod
    def _find_paren(stack: list[_Tok], more) -> bool:
        while True:
            i = len(stack) - 1
            while i >= 0 and stack[i].kind == NL:
                i -= 1
            if i >= 0:
                if stack[i].kind == PUNCT and stack[i].text == "(":
                    del stack[i + 1:]
                    return True
                return False
            toks = more(False) if more is not None else None
            if toks is None:
                return False
            stack[0:0] = toks[::-1]

    def _collect_args(self, stack, more, m: _Macro, name: _Tok):
        stack.pop()  # '('
        args: list[list[_Tok]] = [[]]
        nparams = len(m.params)
        depth = 0
        newline = False
        while True:
            if not stack:
                toks = more(True) if more is not None else None
                if toks is None:
                    raise IvtxError(f"unterminated argument list invoking macro '{m.name}'", name.loc())
                stack.extend(reversed(toks))
            t = stack.pop()
            if t.kind == NL:
                newline = True
                continue
            if newline:
                t.ws = t.ws or " "
                newline = False
            if t.kind == PUNCT:
                if t.text == "(":
                    depth += 1
                elif t.text == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif t.text == "," and depth == 0 and not (m.variadic and len(args) == nparams):
                    args.append([])
                    continue
            args[-1].append(t)
        if len(args) != nparams:
            if nparams == 0 and len(args) == 1 and not args[0]:
                args = []
            elif m.variadic and len(args) == nparams - 1:
                args.append([])
            else:
                at_least = "at least " if m.variadic else ""
                need = nparams - 1 if m.variadic else nparams
                raise IvtxError(f"macro '{m.name}' requires {at_least}{need} argument"
                                f"{'' if need == 1 else 's'}, but {len(args)} given", name.loc())
        return args, t

    def _subst(self, m: _Macro, args, hs, use: _Tok, in_if: bool) -> list[_Tok]:
        """The replacement list of `m` for `args`, every token hidden from `hs` (Prosser).
        No chunks for #if, whose evaluator needs single tokens."""
        via = use.loc()
        macros = self.macros
        expanded: dict[int, list[_Tok]] = {}
        unions: dict = {None: hs}
        res: list[_Tok] = []
        append = res.append
        for it in m.compiled():
            op = it[0]
            if op == 0:
                b = it[1]
                append(_Tok(b.kind, b.text, b.ws, b.file, b.line, b.col, via, hs))
            elif op == 4:
                b = it[2]
                if in_if or not macros.keys().isdisjoint(it[4]):
                    for b in it[3]:
                        append(_Tok(b.kind, b.text, b.ws, b.file, b.line, b.col, via, hs))
                else:
                    c = _Tok(CHUNK, it[1], b.ws, b.file, b.line, b.col, via, hs)
                    c.parts = it[3]
                    append(c)
            elif op == 1:
                idx, p = it[1], it[2]
                if it[3]:
                    src = args[idx]
                else:
                    src = expanded.get(idx)
                    if src is None:
                        src = args[idx]
                        for t in src:
                            if t.kind == ID and t.text in macros:
                                if self.depth > MAX_NESTING:
                                    raise IvtxError("macro calls nested too deeply in arguments",
                                                    t.loc())
                                src = []
                                self.depth += 1
                                try:
                                    self._expand(args[idx][::-1], src, None, in_if)
                                finally:
                                    self.depth -= 1
                                break
                        expanded[idx] = src
                if not src:
                    if it[3]:
                        append(_Tok(PLACEMARKER, "", p.ws, p.file, p.line, p.col, via))
                    continue
                first = True
                for t in src:
                    th = t.hs
                    nh = unions.get(th)
                    if nh is None:
                        nh = unions[th] = th | hs
                    c = _Tok(t.kind, t.text, p.ws if first else t.ws, t.file, t.line, t.col,
                             t.via, nh, t.adv)
                    if t.kind == CHUNK:
                        c.parts = t.parts
                    append(c)
                    first = False
            elif op == 2:
                append(_stringify(args[it[1]], it[2], via, hs))
            else:
                if it[2]:  # GNU `, ## __VA_ARGS__`
                    if not args[-1]:
                        res.pop()
                    continue
                b = it[1]
                append(_Tok(PASTE, "##", b.ws, b.file, b.line, b.col, via))
        if m.has_paste:
            res = _paste_all(res, hs, via)
        self.work += len(res)
        if self.work > MAX_LINE_WORK:
            raise IvtxError(f"macro expansion of this line goes past {MAX_LINE_WORK} tokens "
                            "(macros that double their text at every level?)", use.loc())
        if res:
            res[0].ws = use.ws
        return res

    def _builtin(self, m: _Macro, t: _Tok) -> _Tok:
        self.builtin_used = True
        site = t.loc().use_site
        text = str(site.line) if m.builtin == "__LINE__" else '"' + _escape(site.file) + '"'
        return _Tok(NUM if m.builtin == "__LINE__" else STR, text, t.ws, t.file, t.line, t.col,
                    t.via, _hs_add(t.hs, m.name))

    # ------------------------------------------------------------------ output

    def _emit(self, toks: list[_Tok], file: str, line: int, col: int) -> None:
        """Output lines for `toks` (a NL token starts the next line), with spans merged while
        the source columns advance with the output columns."""
        parts: list[str] = []
        append = parts.append
        spans = [(0, Loc(file, line, col), True)]
        ocol = 0
        # the last span: output column ocol maps to source column ocol + s_delta
        s_file, s_line, s_via, s_delta = file, line, None, col
        p_file, p_line, p_via, p_end = None, -1, None, -1  # end of the previous token
        p_text = ""
        for t in toks:
            kind = t.kind
            if kind == NL:
                self._finish(parts, spans)
                parts = []
                append = parts.append
                ocol = 0
                spans = [(0, Loc(t.file, t.line, t.col), True)]
                s_file, s_line, s_via, s_delta = t.file, t.line, None, t.col
                p_line, p_text = -1, ""
                continue
            if kind == PLACEMARKER:
                continue
            ws, text, tline, tcol, tvia, adv = t.ws, t.text, t.line, t.col, t.via, t.adv
            if not ws and p_text and not (adv and p_end == tcol and p_line == tline
                                          and p_via is tvia and p_file == t.file):
                pair = p_text[-1] + text[0]
                if (pair[0] in _WORD_CHARS and pair[1] in _WORD_CHARS) or pair in _PASTE_PAIRS:
                    ws = " "  # keep tokens from different places apart, as gcc does
            if ws:
                append(ws)
                ocol += len(ws)
            if not (adv and s_line == tline and s_delta == tcol - ocol and s_via is tvia
                    and s_file == t.file):
                spans.append((ocol, Loc(t.file, tline, tcol, tvia), adv))
                if adv:
                    s_file, s_line, s_via, s_delta = t.file, tline, tvia, tcol - ocol
                else:
                    s_line = -1
            append(text)
            ocol += len(text)
            if adv:
                p_file, p_line, p_via, p_end = t.file, tline, tvia, tcol + len(text)
            else:
                p_line = -1
            p_text = text
        self._finish(parts, spans)

    def _finish(self, parts, spans) -> None:
        text = "".join(parts).rstrip()
        n = len(text)
        if not n:
            return
        while len(spans) > 1 and spans[-1][0] >= n:
            spans.pop()
        # a span at col 0 followed by one at col 0 (line starting with an expansion)
        if len(spans) > 1 and spans[1][0] == 0:
            del spans[0]
        self.lines.append(PPLine(text, spans))

    # ------------------------------------------------------------------ directives

    def _directive(self, fs: _File, line: _Line, in_args: bool) -> None:
        text = line.text
        m = _DIRECTIVE_RE.match(text)
        pos = m.end()
        w = _WORD_RE.match(text, pos)
        name = w.group() if w else None
        if fs.skipping and name not in _CONDITIONALS:
            return
        if name is None:
            if text[pos:].strip():
                raise IvtxError(f"invalid preprocessing directive '#{text[pos:].split()[0]}'",
                                self._loc(fs, line, pos))
            return  # the null directive
        here = self._loc(fs, line, pos)
        rest = w.end()
        if name.isdigit() or name in ("line", "pragma", "ident", "sccs"):
            return
        handler = getattr(self, "_d_" + name, None)
        if handler is None:
            if name in ("include_next", "import"):
                handler = self._d_include
            else:
                raise IvtxError(f"unknown preprocessor directive '#{name}'", here)
        if in_args and name in ("include", "include_next", "import"):
            raise IvtxError(f"#{name} inside macro arguments", here)
        handler(fs, line, rest, here, name)

    def _loc(self, fs: _File, line: _Line, off: int) -> Loc:
        ln, col = line.pos(off)
        return Loc(fs.name, ln, col)

    def _end_loc(self, fs, line) -> Loc:
        return self._loc(fs, line, len(line.text.rstrip()))

    def _macro_name(self, fs, line, rest, here, name) -> tuple[_Tok | None, list[_Tok]]:
        toks = self._tokenize(line, rest, fs.name)
        if not toks:
            raise IvtxError(f"no macro name given in #{name} directive", self._end_loc(fs, line))
        if toks[0].kind != ID:
            raise IvtxError("macro names must be identifiers", toks[0].loc())
        return toks[0], toks[1:]

    def _extra(self, fs, toks, name) -> None:
        if toks:
            self.warnings.append(Diagnostic("warning", f"extra tokens at end of #{name} directive",
                                            toks[0].loc()))

    # conditionals: a cond is [loc, directive name, taken, else_seen, outer_skip, active]

    def _push_cond(self, fs, here, name, value_fn) -> None:
        outer = fs.skipping
        active = False if outer else bool(value_fn())
        fs.conds.append([here, name, active, False, outer, active])

    def _d_if(self, fs, line, rest, here, name):
        self._push_cond(fs, here, name, lambda: self._eval_if(fs, line, rest, name))

    def _d_ifdef(self, fs, line, rest, here, name):
        def value():
            tok, extra = self._macro_name(fs, line, rest, here, name)
            self._extra(fs, extra, name)
            return (tok.text in self.macros) == (name == "ifdef")
        self._push_cond(fs, here, name, value)

    _d_ifndef = _d_ifdef

    def _d_elif(self, fs, line, rest, here, name):
        if not fs.conds:
            raise IvtxError("#elif without #if", here)
        c = fs.conds[-1]
        if c[3]:
            raise IvtxError("#elif after #else", here)
        if c[4] or c[2]:
            c[5] = False
        else:
            c[5] = c[2] = bool(self._eval_if(fs, line, rest, name))

    def _d_else(self, fs, line, rest, here, name):
        if not fs.conds:
            raise IvtxError("#else without #if", here)
        c = fs.conds[-1]
        if c[3]:
            raise IvtxError("#else after #else", here)
        c[3] = True
        c[5] = not c[4] and not c[2]
        c[2] = True
        if not c[4]:
            self._extra(fs, self._tokenize(line, rest, fs.name), name)

    def _d_endif(self, fs, line, rest, here, name):
        if not fs.conds:
            raise IvtxError("#endif without #if", here)
        c = fs.conds.pop()
        if not c[4]:
            self._extra(fs, self._tokenize(line, rest, fs.name), name)

    # definitions

    def _d_define(self, fs, line, rest, here, name):
        macro = line.macro
        if macro is None:  # a macro never changes once parsed, so the line keeps it
            macro = line.macro = self._parse_define(fs, line, rest, here, name)
        mname = macro.name
        if mname in self.keep:
            return
        old = self.macros.get(mname)
        if old is not None:
            if fs.defaults_only:
                return
            if old.builtin is None and not old.same_as(macro):
                self.warnings.append(Diagnostic(
                    "warning", f"'{mname}' redefined (previous definition at {old.loc})", macro.loc))
        self.macros[mname] = macro
        self.generation += 1

    def _parse_define(self, fs, line, rest, here, name) -> _Macro:
        tok, toks = self._macro_name(fs, line, rest, here, name)
        mname = tok.text
        if mname == "defined":
            raise IvtxError("'defined' cannot be used as a macro name", tok.loc())
        params = None
        variadic = False
        k = 0
        if toks and toks[0].text == "(" and not toks[0].ws:
            params, k = self._params(toks, line, fs)
            variadic = bool(params) and params[-1][1]
            params = tuple(p for p, _ in params)
        body = toks[k:]
        for b in body:
            b.ws = " " if b.ws else ""
        if body:
            body[0].ws = ""
            if body[0].kind == PASTE or body[-1].kind == PASTE:
                bad = body[0] if body[0].kind == PASTE else body[-1]
                raise IvtxError("'##' cannot appear at either end of a macro expansion", bad.loc())
        if not variadic:
            for b in body:
                if b.kind == ID and b.text == "__VA_ARGS__":
                    raise IvtxError("__VA_ARGS__ can only appear in the expansion of a variadic macro",
                                    b.loc())
        return _Macro(mname, params, variadic, body, tok.loc())

    def _params(self, toks, line, fs):
        """Parse `(a, b, rest...)` starting at toks[0] == '('; returns [(name, variadic)], next index."""
        params: list[tuple[str, bool]] = []
        k = 1
        while True:
            if k >= len(toks):
                raise IvtxError("missing ')' in macro parameter list", self._end_loc(fs, line))
            t = toks[k]
            if t.text == ")" and not params:
                return params, k + 1
            if t.text == "...":
                params.append(("__VA_ARGS__", True))
                k += 1
            elif t.kind == ID:
                if t.text == "__VA_ARGS__":
                    raise IvtxError("__VA_ARGS__ can not be used as a parameter name", t.loc())
                if any(p == t.text for p, _ in params):
                    raise IvtxError(f"duplicate macro parameter '{t.text}'", t.loc())
                k += 1
                if k < len(toks) and toks[k].text == "...":
                    params.append((t.text, True))
                    k += 1
                else:
                    params.append((t.text, False))
            else:
                raise IvtxError(f"expected parameter name, found '{t.text}'", t.loc())
            if k >= len(toks):
                raise IvtxError("missing ')' in macro parameter list", self._end_loc(fs, line))
            t = toks[k]
            if t.text == ")":
                return params, k + 1
            if t.text != "," or params[-1][1]:
                raise IvtxError(f"expected ',' or ')', found '{t.text}'", t.loc())
            k += 1

    def _d_undef(self, fs, line, rest, here, name):
        tok, extra = self._macro_name(fs, line, rest, here, name)
        self._extra(fs, extra, name)
        if tok.text == "defined":
            raise IvtxError("'defined' cannot be used as a macro name", tok.loc())
        if self.macros.pop(tok.text, None) is not None:
            self.generation += 1

    # diagnostics

    def _d_error(self, fs, line, rest, here, name):
        msg = " ".join(line.text[rest:].split())
        raise IvtxError(f"#error {msg}".rstrip(), here)

    def _d_warning(self, fs, line, rest, here, name):
        msg = " ".join(line.text[rest:].split())
        self.warnings.append(Diagnostic("warning", f"#warning {msg}".rstrip(), here))

    # includes

    def _d_include(self, fs, line, rest, here, name):
        text = line.text
        m = _HEADER_RE.match(text, rest)
        if m is None:  # computed include: expand macros, then look again
            out: list[_Tok] = []
            self._expand(self._tokenize(line, rest, fs.name)[::-1], out)
            spelled = "".join((t.ws and " ") + t.text for t in out).strip()
            mm = re.fullmatch(r'"([^"]*)"|<([^>]*)>', spelled)
            if mm is None:
                raise IvtxError(f'#{name} expects "FILENAME" or <FILENAME>', self._loc(fs, line, rest))
            quoted, header, at = mm.group(1), mm.group(2), self._loc(fs, line, rest + 1)
        else:
            quoted, header = m.group(1), m.group(2)
            at = self._loc(fs, line, m.start(1) - 1 if quoted is not None else m.start(2) - 1)
        target = quoted if quoted is not None else header
        if not target:
            raise IvtxError(f"empty filename in #{name}", at)
        if len(self.files) > MAX_INCLUDE_DEPTH:
            raise IvtxError(f"#include nested too deeply (more than {MAX_INCLUDE_DEPTH} levels)", at)
        found = self._find_include(fs, target, quoted is not None, name == "include_next")
        if found is None:
            if quoted is not None:
                raise IvtxError(f'cannot find include file "{target}"', at)
            if target not in self.missing_warned:
                self.missing_warned.add(target)
                self.warnings.append(Diagnostic(
                    "warning", f"cannot find include file <{target}> in the include path; skipped", at))
            return
        path, dir_index = found
        self.files.append(_File(path, self._read(path, at), dir_index))

    def _find_include(self, fs: _File, target: str, quoted: bool, next_: bool):
        if os.path.isabs(target):
            return (target, None) if os.path.isfile(target) else None
        start = 0
        if next_ and fs.dir_index is not None:
            start = fs.dir_index + 1
        elif quoted:
            here = os.path.dirname(fs.name)
            cand = os.path.normpath(os.path.join(here, target)) if here else target
            if os.path.isfile(cand):
                return cand, None
        for i in range(start, len(self.include_dirs)):
            cand = os.path.normpath(os.path.join(self.include_dirs[i], target))
            if os.path.isfile(cand):
                return cand, i
        return None

    # ------------------------------------------------------------------ #if expressions

    def _eval_if(self, fs, line, rest, name) -> int:
        toks = self._tokenize(line, rest, fs.name)
        if not toks:
            raise IvtxError(f"#{name} with no expression", self._end_loc(fs, line))
        out: list[_Tok] = []
        self._expand(toks[::-1], out, None, in_if=True)
        if not out:
            raise IvtxError(f"#{name} with no expression", self._end_loc(fs, line))
        expr = _Expr(out, self.macros, self._end_loc(fs, line))
        expr.has_include = lambda target, quoted, next_: (
            self._find_include(fs, target, quoted, next_) is not None)
        return expr.evaluate() != 0


class _NeedsContext(Exception):
    """An expansion done on its own reached its end while looking for macro arguments."""


def _needs_context(in_args):
    raise _NeedsContext


def _reroot(loc: Loc | None, root: Loc, new_root: Loc, done: dict) -> Loc | None:
    """`loc` with the `via` chain ending at `root` moved to end at `new_root`."""
    if loc is None:
        return None
    if loc is root:
        return new_root
    r = done.get(id(loc))
    if r is None:
        r = done[id(loc)] = Loc(loc.file, loc.line, loc.col, _reroot(loc.via, root, new_root, done))
    return r


def _unchunk(c: _Tok) -> list[_Tok]:
    toks = [_Tok(b.kind, b.text, b.ws, b.file, b.line, b.col, c.via, c.hs) for b in c.parts]
    toks[0].ws = c.ws
    return toks


def _hs_add(hs, name):
    return frozenset((name,)) if not hs else hs | {name}


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _stringify(arg: list[_Tok], hash_tok: _Tok, via: Loc, hs) -> _Tok:
    parts = []
    for i, t in enumerate(arg):
        if i and t.ws:
            parts.append(" ")
        parts.append(_escape(t.text) if t.kind == STR else t.text)
    return _Tok(STR, '"' + "".join(parts) + '"', hash_tok.ws, hash_tok.file, hash_tok.line,
                hash_tok.col, via, hs, False)


def _paste_all(res: list[_Tok], hs, via) -> list[_Tok]:
    """Apply `##` left to right; placemarkers stand for empty arguments. Pasted tokens get `hs`."""
    if any(t.kind == CHUNK for t in res):  # a chunk that came in through an argument
        res = [p for t in res for p in (_unchunk(t) if t.kind == CHUNK else (t,))]
    out: list[_Tok] = []
    i, n = 0, len(res)
    while i < n:
        t = res[i]
        if t.kind == PASTE and out and i + 1 < n:
            left, right = out.pop(), res[i + 1]
            i += 2
            if left.kind == PLACEMARKER:
                out.append(right)
                continue
            if right.kind == PLACEMARKER:
                out.append(left)
                continue
            text = left.text + right.text
            m = _TOKEN_RE.fullmatch(text)
            if m is not None and not m.group(1):
                out.append(_Tok(_KIND[m.lastgroup], text, left.ws, left.file,  # a pasted `##` is inert
                                left.line, left.col, left.via, hs, False))
            else:  # not one token: assembler mode keeps both, side by side
                out.append(left)
                out.append(_Tok(right.kind, right.text, "", right.file, right.line, right.col,
                                right.via, right.hs, right.adv))
            continue
        out.append(t)
        i += 1
    return [t for t in out if t.kind != PLACEMARKER]


# ---------------------------------------------------------------------- #if evaluation

_M64 = (1 << 64) - 1
_INT_RE = re.compile(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)")
_BINARY = {
    "*": 10, "/": 10, "%": 10, "+": 9, "-": 9, "<<": 8, ">>": 8,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "==": 6, "!=": 6,
    "&": 5, "^": 4, "|": 3, "&&": 2, "||": 1,
}


class _Expr:
    """A C integer constant expression of #if: intmax_t/uintmax_t (64-bit) arithmetic,
    short-circuit `&&`, `||`, `?:` (no division-by-zero error in an unevaluated operand)."""

    def __init__(self, toks: list[_Tok], macros, end: Loc):
        self.toks, self.macros, self.end, self.i = toks, macros, end, 0
        self.depth = 0
        self.has_include = lambda target, quoted, next_: False

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _fail(self, msg, tok):
        raise IvtxError(msg, tok.loc() if tok is not None else self.end)

    def evaluate(self) -> int:
        v, _ = self._comma(True)
        t = self._peek()
        if t is not None:
            if t.text == ")":
                self._fail("missing '(' in expression", t)
            if t.text == ":":
                self._fail("':' without preceding '?'", t)
            if t.kind == PUNCT and t.text != "(":
                self._fail(f"token '{t.text}' is not valid in preprocessor expressions", t)
            self._fail(f"missing binary operator before token '{t.text}'", t)
        return v

    def _comma(self, ev):
        v = self._cond(ev)
        while (t := self._peek()) is not None and t.text == ",":
            self.i += 1
            v = self._cond(ev)
        return v

    def _cond(self, ev):
        c = self._binary(1, ev)
        t = self._peek()
        if t is None or t.text != "?":
            return c
        self.i += 1
        a = self._comma(ev and c[0] != 0)
        t2 = self._peek()
        if t2 is None or t2.text != ":":
            self._fail("'?' without following ':'", t2 if t2 is not None else t)
        self.i += 1
        b = self._cond(ev and c[0] == 0)
        uns = a[1] or b[1]
        v = a[0] if c[0] != 0 else b[0]
        return (v & _M64 if uns else v), uns

    def _binary(self, min_prec, ev):
        """Precedence climbing over the binary operators (all left-associative)."""
        left = self._unary(ev)
        while True:
            op = self._peek()
            if op is None or op.kind != PUNCT:
                return left
            prec = _BINARY.get(op.text)
            if prec is None or prec < min_prec:
                return left
            self.i += 1
            if self._peek() is None:
                self._fail(f"operator '{op.text}' has no right operand", op)
            if op.text == "&&":
                right = self._binary(prec + 1, ev and left[0] != 0)
                left = (int(left[0] != 0 and right[0] != 0), False)
            elif op.text == "||":
                right = self._binary(prec + 1, ev and left[0] == 0)
                left = (int(left[0] != 0 or right[0] != 0), False)
            else:
                left = _apply(op, left, self._binary(prec + 1, ev), ev)

    def _unary(self, ev):
        t = self._peek()
        if t is None:
            self._fail("missing expression", None if self.i == 0 else self.toks[self.i - 1])
        self.i += 1
        self.depth += 1
        try:
            return self._primary(t, ev)
        finally:
            self.depth -= 1

    def _primary(self, t, ev):
        if self.depth > MAX_NESTING:
            self._fail("expression nested too deeply", t)
        text = t.text
        if t.kind == PUNCT:
            if text in ("+", "-", "~", "!"):
                if self._peek() is None:
                    self._fail(f"operator '{text}' has no right operand", t)
                v, uns = self._unary(ev)
                if text == "-":
                    v = -v
                elif text == "~":
                    v = ~v
                elif text == "!":
                    return int(v == 0), False
                return _wrap(v, uns), uns
            if text == "(":
                v = self._comma(ev)
                close = self._peek()
                if close is None or close.text != ")":
                    self._fail("missing ')' in expression", t)
                self.i += 1
                return v
            self._fail(f"token '{text}' is not valid in preprocessor expressions", t)
        if t.kind == NUM:
            return _number(t)
        if t.kind == ID:
            if text == "defined":
                return self._defined(t)
            if text in _HAS_OPERATORS:
                return self._has(t)
            nxt = self._peek()
            if nxt is not None and nxt.text == "(" and not nxt.ws:
                self._fail(f"function-like macro '{text}' is not defined", t)
            return 0, False
        if t.kind == STR and text.startswith("'"):
            self._fail("character constants are not supported in #if", t)
        self._fail(f"token '{text}' is not valid in preprocessor expressions", t)

    def _has(self, t):
        """`__has_include("x")`, `__has_include(<x>)`, `__has_include_next`; the compiler
        queries (`__has_attribute(x)` ...) are 0: there is no compiler here."""
        open_ = self._peek()
        if open_ is None or open_.text != "(":
            self._fail(f"missing '(' after '{t.text}'", open_ if open_ is not None else t)
        start = self.i + 1
        depth = 0
        while (p := self._peek()) is not None:
            self.i += 1
            depth += (p.text == "(") - (p.text == ")")
            if depth == 0:
                break
        else:
            self._fail(f"missing ')' after '{t.text}'", t)
        inner = self.toks[start:self.i - 1]
        if not t.text.startswith("__has_include"):
            return 0, False
        spelled = "".join((x.ws and " ") + x.text for x in inner).strip()
        m = re.fullmatch(r'"([^"]*)"|<([^>]*)>', spelled)
        if m is None:
            self._fail(f"operator '{t.text}' requires a header name", inner[0] if inner else t)
        quoted = m.group(1) is not None
        target = m.group(1) if quoted else m.group(2)
        return int(self.has_include(target, quoted, t.text.endswith("_next"))), False

    def _defined(self, t):
        nxt = self._peek()
        paren = nxt is not None and nxt.text == "("
        if paren:
            self.i += 1
            nxt = self._peek()
        if nxt is None or nxt.kind != ID:
            self._fail("operator 'defined' requires an identifier", nxt if nxt is not None else t)
        self.i += 1
        if paren:
            close = self._peek()
            if close is None or close.text != ")":
                self._fail("missing ')' after 'defined'", close if close is not None else nxt)
            self.i += 1
        return int(nxt.text in self.macros), False


def _wrap(v: int, uns: bool) -> int:
    v &= _M64
    if not uns and v >> 63:
        v -= 1 << 64
    return v


def _number(t: _Tok):
    text = t.text
    m = _INT_RE.fullmatch(text)
    if m is None:
        if "." in text or (not text.lower().startswith("0x") and ("e" in text.lower())):
            raise IvtxError("floating constant in preprocessor expression", t.loc())
        raise IvtxError(f"invalid integer constant '{text}' in #if", t.loc())
    digits, suffix = m.groups()
    s = suffix.lower()
    if s not in ("", "u", "l", "ul", "lu", "ll", "ull", "llu"):
        raise IvtxError(f"invalid suffix '{suffix}' on integer constant", t.loc())
    lower = digits.lower()
    if lower.startswith("0x"):
        v = int(lower[2:], 16)
    elif lower.startswith("0b"):
        v = int(lower[2:], 2)
    elif lower.startswith("0") and len(lower) > 1:
        v = int(lower, 8)
    else:
        v = int(lower)
    if v > _M64:
        raise IvtxError("integer constant is too large for its type", t.loc())
    return v, ("u" in s) or v > (1 << 63) - 1


def _apply(op: _Tok, a, b, ev):
    o = op.text
    av, au = a
    bv, bu = b
    uns = au or bu
    if o in ("<<", ">>"):
        uns = au
        if uns:
            av &= _M64
        if bv < 0 and not bu:
            o, bv = (">>" if o == "<<" else "<<"), -bv
        bv &= _M64
        if o == "<<":
            return _wrap(av << min(bv, 64), uns), uns
        return _wrap(av >> min(bv, 64), uns), uns
    if uns:
        av &= _M64
        bv &= _M64
    if o in ("<", ">", "<=", ">=", "==", "!="):
        r = {"<": av < bv, ">": av > bv, "<=": av <= bv, ">=": av >= bv,
             "==": av == bv, "!=": av != bv}[o]
        return int(r), False
    if o in ("/", "%"):
        if bv == 0:
            if not ev:
                return 0, uns
            raise IvtxError("division by zero in #if", op.loc())
        q = abs(av) // abs(bv)
        if (av < 0) != (bv < 0):
            q = -q
        return _wrap(q if o == "/" else av - q * bv, uns), uns
    r = {"*": av * bv, "+": av + bv, "-": av - bv, "&": av & bv, "^": av ^ bv, "|": av | bv}[o]
    return _wrap(r, uns), uns
