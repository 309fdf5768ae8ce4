"""GNU as macro-level directives, expanded on preprocessed lines before parsing.

`.macro name a, b=default, c:req, d:vararg` ... `.endm` with `\\a`, `\\()` and `\\@` in the
body; `.exitm`; `.purgem`; `.rept n` / `.irp s, a, b` / `.irpc s, abc` ... `.endr`; and the
conditionals `.if`/`.ifeq`/`.ifne`/`.ifgt`/`.ifge`/`.iflt`/`.ifle`, `.ifdef`/`.ifndef`,
`.ifc`/`.ifnc`, `.ifeqs`/`.ifnes`, `.ifb`/`.ifnb`, `.else`, `.elseif`, `.endif`.

Control directives are recognised at the start of a line (as Linux code writes them); a
macro call may be any `;`-separated statement.  Expanded text keeps coordinates: body text
maps to the body line with `via` = the use site, argument text maps to where the argument
was written.  Macro names are case-insensitive, as in gas; arguments are separated by
commas (`name a, b`), keyword arguments are `name b=1`.  `.ifdef` knows the labels and
`.set`/`.equ`/`=` symbols defined above it in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diag import IvtxError, Loc
from .ppline import PPLine, Preprocessed

# a directive's dot follows no name character: `cr.ifa` and `cr.ifs` are not `.if` (which
# would send every IVT through the expander for nothing)
_TRIGGER = re.compile(r"(?<![\w.$])\.(?:macro|rept|irpc?|if\w*|else\w*|endif|endm|endr|exitm|purgem)\b",
                      re.IGNORECASE)
_CONTROL = re.compile(r"[ \t]*(\.[A-Za-z]\w*)\b[ \t]*", re.ASCII)
_IDENT = re.compile(r"[A-Za-z_.$][\w.$]*")
_LABEL = re.compile(r"[ \t]*([A-Za-z_.$][\w.$]*|\d+)[ \t]*:(?!:)")
_SETDEF = re.compile(r"[ \t]*(?:\.(?:set|equ)[ \t]+([A-Za-z_.$][\w.$]*)|([A-Za-z_.$][\w.$]*)[ \t]*=(?!=))", re.I)
_MAX_DEPTH = 100
_MAX_LINES = 200_000  # lines an expansion may go through: a runaway `.rept` is an error, not a hang

_OPENERS = (".macro", ".rept", ".irp", ".irpc")
_CLOSERS = {".macro": ".endm", ".rept": ".endr", ".irp": ".endr", ".irpc": ".endr"}


def _with_via(loc: Loc, use: Loc) -> Loc:
    """`loc` with `use` appended as its outermost expansion site."""
    if loc.via is None:
        return Loc(loc.file, loc.line, loc.col, use)
    return Loc(loc.file, loc.line, loc.col, _with_via(loc.via, use))


def sub_line(line: PPLine, a: int, b: int, via: Loc | None = None) -> PPLine:
    """Columns [a, b) of `line` as a PPLine of their own (optionally expanded from `via`).
    An empty slice keeps the place where it starts (for errors such as a bare `.if`)."""
    built = _Builder().add(line, a, b, via)
    if not built.spans:
        loc = line.loc_at(a)
        return PPLine("", [(0, _with_via(loc, via) if via is not None else loc, False)])
    return built.line()


class _Builder:
    """Builds one output PPLine from slices of source lines and literal text."""

    def __init__(self):
        self.text: list[str] = []
        self.spans: list[tuple[int, Loc, bool]] = []
        self.n = 0

    def add(self, line: PPLine, a: int, b: int, via: Loc | None = None) -> "_Builder":
        if b <= a:
            return self
        spans = line.spans
        for i, (s, loc, adv) in enumerate(spans):
            lo = max(s, a) if i else a
            hi = min(spans[i + 1][0], b) if i + 1 < len(spans) else b
            if lo >= hi:
                continue
            start_loc = line.loc_at(lo)
            if via is not None:
                start_loc = _with_via(start_loc, via)
            self.spans.append((self.n + lo - a, start_loc, adv))
        self.text.append(line.text[a:b])
        self.n += b - a
        return self

    def literal(self, text: str, loc: Loc) -> "_Builder":
        if text:
            self.spans.append((self.n, loc, False))
            self.text.append(text)
            self.n += len(text)
        return self

    def line(self) -> PPLine:
        spans = self.spans or [(0, Loc("<macro>", 1, 1), False)]
        return PPLine("".join(self.text), spans)


# ---------------------------------------------------------------------------- splitting

_STMT_SPLIT = re.compile(r'"(?:\\.|[^"\\])*"?|\'(?:\\.|[^\\\'])\'?|(?P<c>//|/\*)|(?P<s>;;?|[{}])')


def _segments(text: str) -> list[tuple[int, int]]:
    """[start, end) of each `;`/`;;`/brace-separated statement of a line (comments cut off)."""
    out, start = [], 0
    for m in _STMT_SPLIT.finditer(text):
        if m.lastgroup == "c":
            out.append((start, m.start()))
            return out
        if m.lastgroup == "s":
            out.append((start, m.start()))
            start = m.end()
    out.append((start, len(text)))
    return out


def _split_args(text: str) -> list[tuple[int, int]]:
    """[start, end) of each comma-separated argument (outside strings and parentheses)."""
    out, depth, start, i, n = [], 0, 0, 0, len(text)
    if not text.strip():
        return []
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            out.append((start, i))
            start = i + 1
        i += 1
    out.append((start, n))
    return out


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a] in " \t":
        a += 1
    while b > a and text[b - 1] in " \t":
        b -= 1
    return a, b


# ---------------------------------------------------------------------------- macros


@dataclass
class _Param:
    name: str
    default: str | None = None
    required: bool = False
    vararg: bool = False


@dataclass
class _Macro:
    name: str
    params: list[_Param]
    body: list[PPLine]
    loc: Loc


class _Exit(Exception):
    """`.exitm`: carries the lines expanded before it."""

    def __init__(self, out: list[PPLine]):
        super().__init__()
        self.out = out


@dataclass
class _State:
    macros: dict[str, _Macro] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)
    symbols: dict[str, int] = field(default_factory=dict)
    counter: int = 0
    lines: int = 0  # lines gone through, against _MAX_LINES


def expand(pp: Preprocessed) -> Preprocessed:
    """Expand gas macros and conditionals; `pp` itself when it uses none (the common case)."""
    if not any(_TRIGGER.search(line.text) for line in pp.lines if "." in line.text):
        return pp
    out = _Expander(_State()).run(pp.lines, depth=0)
    return Preprocessed(pp.path, out, pp.warnings, pp.sources, pp.macros)


class _Expander:
    def __init__(self, state: _State):
        self.st = state

    # -- the line loop
    def run(self, lines: list[PPLine], depth: int, in_macro: bool = False) -> list[PPLine]:
        saved, self.in_macro = getattr(self, "in_macro", False), in_macro
        try:
            return self._run(lines, depth, in_macro)
        finally:
            self.in_macro = saved

    def _run(self, lines: list[PPLine], depth: int, in_macro: bool) -> list[PPLine]:
        out: list[PPLine] = []
        conds: list[list] = []  # [active, taken, loc]
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i]
            text = line.text
            self.st.lines += 1
            if self.st.lines > _MAX_LINES:
                raise IvtxError(f"gas macro expansion goes past {_MAX_LINES} lines (a runaway '.rept' or "
                                "recursive macro?)", line.loc_at(0))
            m = _CONTROL.match(text)
            word = m.group(1).lower() if m else ""
            active = all(c[0] for c in conds)
            rest_at = m.end() if m else 0
            if word.startswith(".if") and word in _IFS:
                if active:
                    val = self._cond(word, line, rest_at)
                    conds.append([val, val, line.loc_at(m.start(1))])
                else:
                    conds.append([False, True, line.loc_at(m.start(1))])
                i += 1
                continue
            if word in (".else", ".elseif"):
                if not conds:
                    raise IvtxError(f"'{word}' without '.if'", line.loc_at(m.start(1)))
                c = conds[-1]
                outer = all(x[0] for x in conds[:-1])
                if word == ".else":
                    c[0], c[1] = (not c[1]) and outer, True
                else:
                    val = (not c[1]) and outer and self._cond(".if", line, rest_at)
                    c[0], c[1] = val, c[1] or val
                i += 1
                continue
            if word == ".endif":
                if not conds:
                    raise IvtxError("'.endif' without '.if'", line.loc_at(m.start(1)))
                conds.pop()
                i += 1
                continue
            if word in _OPENERS:
                j = self._block_end(lines, i, word)
                if active:
                    body = lines[i + 1:j]
                    if word == ".macro":
                        self._define(line, rest_at, body, m.start(1))
                    else:
                        try:
                            out.extend(self._repeat(word, line, rest_at, body, depth, m.start(1)))
                        except _Exit as exc:
                            raise _Exit(out + exc.out) from None
                i = j + 1
                continue
            if word in (".endm", ".endr"):
                raise IvtxError(f"'{word}' without '{'.macro' if word == '.endm' else '.rept'}'", line.loc_at(m.start(1)))
            if not active:
                i += 1
                continue
            if word == ".exitm":
                if not in_macro:
                    raise IvtxError("'.exitm' outside a macro", line.loc_at(m.start(1)))
                raise _Exit(out)
            if word == ".purgem":
                name = text[rest_at:].strip().lower()
                if name not in self.st.macros:
                    raise IvtxError(f"'.purgem': no macro '{name}'", line.loc_at(rest_at))
                del self.st.macros[name]
                i += 1
                continue
            out.extend(self._statements(line, depth))
            i += 1
        if conds:
            raise IvtxError("'.if' without '.endif'", conds[-1][2])
        return out

    def _block_end(self, lines: list[PPLine], i: int, word: str) -> int:
        """Index of the line closing the block opened at line i (nesting counted)."""
        closer = _CLOSERS[word]
        depth = 0
        for j in range(i + 1, len(lines)):
            m = _CONTROL.match(lines[j].text)
            w = m.group(1).lower() if m else ""
            if w in _OPENERS and _CLOSERS[w] == closer:
                depth += 1
            elif w == closer:
                if depth == 0:
                    return j
                depth -= 1
        m = _CONTROL.match(lines[i].text)
        raise IvtxError(f"'{word}' without '{closer}'", lines[i].loc_at(m.start(1)))

    # -- ordinary lines: find macro calls and symbol definitions
    def _statements(self, line: PPLine, depth: int) -> list[PPLine]:
        text = line.text
        segs = _segments(text)
        calls = []
        for a, b in segs:
            pos = a
            lm = _LABEL.match(text, pos, b)
            while lm:
                self.st.defined.add(lm.group(1))
                pos = lm.end()
                lm = _LABEL.match(text, pos, b)
            sm = _SETDEF.match(text, pos, b)
            if sm:
                self._note_set(line, sm, b)
            if self.st.macros:
                im = _IDENT.match(text, _skip_ws(text, pos, b), b)
                if im and im.group(0).lower() in self.st.macros:
                    calls.append((im.start(), im.end(), b))
        if not calls:
            return [line]
        out: list[PPLine] = []
        start = 0
        for a, name_end, b in calls:
            if text[start:a].strip():
                out.append(sub_line(line, start, a))
            out.extend(self._call(line, a, name_end, b, depth))
            start = b
        if text[start:].strip(" \t;"):
            out.append(sub_line(line, start, len(text)))
        return out

    def _note_set(self, line: PPLine, sm, b: int) -> None:
        from .parse import eval_expr

        name = sm.group(1) or sm.group(2)
        self.st.defined.add(name)
        value_at = sm.end()
        if sm.group(1):
            comma = line.text.find(",", value_at, b)
            if comma < 0:
                return
            value_at = comma + 1
        try:
            self.st.symbols[name] = eval_expr(sub_line(line, value_at, b), self.st.symbols)
        except IvtxError:
            self.st.symbols.pop(name, None)

    # -- definitions
    def _define(self, line: PPLine, at: int, body: list[PPLine], col: int) -> None:
        text = line.text
        a, b = _segments(text)[0]
        nm = _IDENT.match(text, _skip_ws(text, at, b), b)
        if not nm:
            raise IvtxError("'.macro' needs a name", line.loc_at(col))
        name = nm.group(0).lower()
        params: list[_Param] = []
        rest = text[nm.end():b]
        for pa, pb in _split_args(rest):
            pa, pb = _strip(rest, pa, pb)
            spec = rest[pa:pb]
            for word in spec.split() if "=" not in spec else [spec]:
                p = _param(word)
                if p is None:
                    raise IvtxError(f"bad macro parameter '{word}'", line.loc_at(nm.end() + pa))
                if any(q.name == p.name for q in params):
                    raise IvtxError(f"macro parameter '{p.name}' given twice", line.loc_at(nm.end() + pa))
                params.append(p)
        if any(p.vararg for p in params[:-1]):
            raise IvtxError("only the last macro parameter can be :vararg", line.loc_at(col))
        self.st.macros[name] = _Macro(name, params, body, line.loc_at(col))

    # -- uses
    def _call(self, line: PPLine, a: int, name_end: int, b: int, depth: int) -> list[PPLine]:
        text = line.text
        name = text[a:name_end].lower()
        mac = self.st.macros[name]
        use = line.loc_at(a)
        if depth >= _MAX_DEPTH:
            raise IvtxError(f"macro '{name}' nested more than {_MAX_DEPTH} deep (recursive?)", use)
        values: dict[str, tuple[PPLine, int, int] | str] = {}
        positional = 0
        raw = [(_strip(text, name_end + x, name_end + y)) for x, y in _split_args(text[name_end:b])]
        for k, (xa, xb) in enumerate(raw):
            km = re.match(r"([A-Za-z_]\w*)[ \t]*=(?!=)", text[xa:xb])
            if km and any(p.name == km.group(1) for p in mac.params):
                pname = km.group(1)
                values[pname] = (line, xa + km.end(), xb)
                continue
            if km and not any(p.vararg for p in mac.params):
                raise IvtxError(f"macro '{name}' has no parameter '{km.group(1)}'", line.loc_at(xa))
            if positional >= len(mac.params):
                raise IvtxError(f"macro '{name}' takes {len(mac.params)} argument{'s' if len(mac.params) != 1 else ''}, got {len(raw)}", line.loc_at(xa))
            p = mac.params[positional]
            if p.vararg:
                values[p.name] = (line, xa, raw[-1][1])
                break
            values[p.name] = (line, xa, xb)
            positional += 1
        for p in mac.params:
            if p.name not in values:
                if p.required:
                    raise IvtxError(f"macro '{name}': missing value for required parameter '{p.name}'", use)
                values[p.name] = p.default or ""
        count = self.st.counter  # gas `\@`: macros executed before this one
        self.st.counter += 1
        body = [self._substitute(bl, values, use, count, mac) for bl in mac.body]
        try:
            return self.run(body, depth + 1, in_macro=True)
        except _Exit as exc:
            return exc.out

    def _substitute(self, bl: PPLine, values, use: Loc, counter: int, mac: _Macro) -> PPLine:
        text = bl.text
        out = _Builder()
        start = 0
        i = text.find("\\")
        in_string = _string_mask(text)
        while i >= 0:
            j = i + 1
            if text.startswith("()", j):
                out.add(bl, start, i, use)
                start = j + 2
            elif text.startswith("@", j):
                out.add(bl, start, i, use)
                out.literal(str(counter), _with_via(bl.loc_at(i), use))
                start = j + 1
            else:
                m = re.compile(r"[A-Za-z_]\w*").match(text, j)
                if m and m.group(0) in values:
                    out.add(bl, start, i, use)
                    v = values[m.group(0)]
                    if isinstance(v, tuple):
                        out.add(v[0], v[1], v[2])
                    else:
                        out.literal(v, _with_via(bl.loc_at(i), use))
                    start = m.end()
                elif m and not in_string[i]:
                    raise IvtxError(f"macro '{mac.name}' has no parameter '{m.group(0)}'", _with_via(bl.loc_at(i), use))
            i = text.find("\\", max(start, i + 1))
        out.add(bl, start, len(text), use)
        if not out.text:
            return PPLine("", [(0, _with_via(bl.loc_at(0), use), False)])
        return out.line()

    # -- .rept / .irp / .irpc
    def _repeat(self, word: str, line: PPLine, at: int, body: list[PPLine], depth: int, col: int) -> list[PPLine]:
        from .parse import eval_expr

        text = line.text
        end = _segments(text)[0][1]
        use = line.loc_at(col)
        if depth >= _MAX_DEPTH:
            raise IvtxError(f"'{word}' nested more than {_MAX_DEPTH} deep", use)
        out: list[PPLine] = []
        if word == ".rept":
            count = eval_expr(sub_line(line, at, end), self.st.symbols)
            for _ in range(max(count, 0)):
                out.extend(self.run([sub_line(bl, 0, len(bl.text), use) if bl.text else bl for bl in body], depth + 1,
                                    in_macro=self.in_macro))
            return out
        args = _split_args(text[at:end])
        if not args:
            raise IvtxError(f"'{word}' needs a symbol", use)
        sa, sb = _strip(text, at + args[0][0], at + args[0][1])
        sym = text[sa:sb]
        if not re.fullmatch(r"[A-Za-z_]\w*", sym):
            raise IvtxError(f"'{word}': bad symbol '{sym}'", line.loc_at(sa))
        mac = _Macro(word, [_Param(sym)], body, use)
        if word == ".irp":
            items = [(line, *_strip(text, at + x, at + y)) for x, y in args[1:]] or [""]
        else:
            if len(args) > 2:
                raise IvtxError("'.irpc' takes a symbol and one string of characters", use)
            ca, cb = _strip(text, at + args[1][0], at + args[1][1]) if len(args) > 1 else (0, 0)
            items = [(line, k, k + 1) for k in range(ca, cb)] or [""]
        for item in items:
            values = {sym: item}
            out.extend(self.run([self._substitute(bl, values, use, self.st.counter, mac) for bl in body], depth + 1,
                                in_macro=self.in_macro))
        return out

    # -- conditionals
    def _cond(self, word: str, line: PPLine, at: int) -> bool:
        from .parse import eval_expr

        text = line.text
        end = _segments(text)[0][1]
        arg = text[at:end].strip()
        if word in (".ifdef", ".ifndef", ".ifnotdef"):
            if not _IDENT.fullmatch(arg):
                raise IvtxError(f"'{word}' needs a symbol name", line.loc_at(at))
            return (arg in self.st.defined) == (word == ".ifdef")
        if word in (".ifb", ".ifnb"):
            return (arg == "") == (word == ".ifb")
        if word in (".ifc", ".ifnc", ".ifeqs", ".ifnes"):
            parts = _split_args(text[at:end])
            if len(parts) != 2:
                raise IvtxError(f"'{word}' compares two strings: {word} a, b", line.loc_at(at))
            a, b = (text[at + x:at + y].strip() for x, y in parts)
            if word in (".ifeqs", ".ifnes"):
                for s, (x, _) in zip((a, b), parts):
                    if not (len(s) >= 2 and s[0] == s[-1] == '"'):
                        raise IvtxError(f"'{word}' needs quoted strings", line.loc_at(at + x))
                a, b = a[1:-1], b[1:-1]
            else:
                a, b = _unquote(a), _unquote(b)
            return (a == b) == (word in (".ifc", ".ifeqs"))
        value = eval_expr(sub_line(line, at, end), self.st.symbols)
        return _IF_TESTS[word](value)


_IF_TESTS = {
    ".if": lambda v: v != 0, ".ifne": lambda v: v != 0, ".ifeq": lambda v: v == 0,
    ".ifgt": lambda v: v > 0, ".ifge": lambda v: v >= 0, ".iflt": lambda v: v < 0, ".ifle": lambda v: v <= 0,
}
_IFS = set(_IF_TESTS) | {".ifdef", ".ifndef", ".ifnotdef", ".ifb", ".ifnb", ".ifc", ".ifnc", ".ifeqs", ".ifnes"}


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == "'" else s


def _skip_ws(text: str, i: int, end: int) -> int:
    while i < end and text[i] in " \t":
        i += 1
    return i


def _param(word: str) -> _Param | None:
    m = re.fullmatch(r"([A-Za-z_]\w*)(?::(req|vararg))?(?:[ \t]*=[ \t]*(.*))?", word.strip(), re.S)
    if not m:
        return None
    return _Param(m.group(1), m.group(3), m.group(2) == "req", m.group(2) == "vararg")


def _string_mask(text: str) -> list[bool]:
    mask = [False] * (len(text) + 1)
    inside = False
    i = 0
    while i < len(text):
        c = text[i]
        mask[i] = inside
        if c == '"':
            inside = not inside
        elif c == "\\" and inside and i + 1 < len(text):
            mask[i + 1] = True
            i += 1
        i += 1
    return mask
