"""Parse preprocessed IA-64 source (GNU as syntax) into ivtx.ir.Program with source coordinates.

Three steps, each linear in the input:
  1. scan: split every line at `;`, `;;`, `{ .mii` and `}` (outside strings and comments)
     into pieces, remembering where each piece starts;
  2. lark: parse every *distinct* piece once with grammars/ia64.lark (LALR, transformed
     inline into position-independent templates). IVT code repeats itself a lot (`;;`,
     `mov pr=r31,-1`, `rfi`), so this parses a fraction of the text;
  3. instantiate the templates in source order with their Loc, and apply what depends on
     context: the register frame for in/loc/out (`alloc`, `.regstk`), `.set` symbols,
     qualifying predicates and tags on the next instruction, and bundle braces.
Errors are ivtx.diag.IvtxError at the user's file:line:col (PPLine.loc_at).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ir, regs
from .diag import IvtxError, Loc
from .ppline import PPLine, Preprocessed, passthrough

# ---------------------------------------------------------------------------- tables

# Directives GNU as for IA-64 accepts without a leading dot.
DOTLESS_DIRECTIVES = frozenset(
    [f"data{n}{ua}" for n in (1, 2, 4, 8, 16) for ua in ("", ".ua")]
    + [f"real{n}{ua}" for n in (4, 8, 10, 16) for ua in ("", ".ua")]
    + ["string", "stringz"]
)

BUNDLE_TEMPLATES = ("mii", "mlx", "mmi", "mfi", "mmf", "mib", "mbb", "bbb", "mmb", "mfb")


@lru_cache(maxsize=1)
def mnemonic_table() -> dict[str, re.Pattern]:
    """ivtx/data/mnemonics.txt as {op: regex over the whole lower-case mnemonic}."""
    text = resources.files("ivtx.data").joinpath("mnemonics.txt").read_text()
    table: dict[str, list[str]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        ops = [t for t in line if t[0] not in "[{"]
        slots = [t for t in line if t[0] in "[{"]
        if line[: len(ops)] != ops or any(t[-1] not in "]}" for t in slots):
            raise ValueError(f"mnemonics.txt:{lineno}: op names must come before the completer slots")
        tail = ""
        for s in slots:
            alts = "|".join(re.escape(a) for a in s[1:-1].split("|"))
            tail += f"(?:\\.(?:{alts}))" + ("?" if s[0] == "[" else "")
        for op in ops:
            table.setdefault(op.split(".", 1)[0], []).append(re.escape(op) + tail)
    return {op: re.compile("|".join(f"(?:{p})" for p in pats)) for op, pats in table.items()}


_KNOWN_MNEMONICS: dict[str, bool] = {}


def is_mnemonic(name: str) -> bool:
    """Whether `name` (any case) is an IA-64 mnemonic with valid completers: `br.cond.sptk.many`."""
    low = name.lower()
    ok = _KNOWN_MNEMONICS.get(low)
    if ok is None:
        pat = mnemonic_table().get(low.split(".", 1)[0])
        ok = _KNOWN_MNEMONICS[low] = pat is not None and pat.fullmatch(low) is not None
    return ok


# ---------------------------------------------------------------------------- expressions

_U64 = (1 << 64) - 1


def _s64(v: int) -> int:
    v &= _U64
    return v - (1 << 64) if v >> 63 else v


def _div(a: int, b: int) -> int | None:
    if b == 0:
        return None
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


_BINOPS = {
    "*": lambda a, b: a * b,
    "/": _div,
    "%": lambda a, b: None if b == 0 else a - _div(a, b) * b,
    "<<": lambda a, b: 0 if not 0 <= b < 64 else a << b,
    ">>": lambda a, b: 0 if not 0 <= b < 64 else (a & _U64) >> b,
    "|": lambda a, b: a | b,
    "&": lambda a, b: a & b,
    "^": lambda a, b: a ^ b,
    "!": lambda a, b: a | ~b,  # gas "or not"
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    # gas comparisons give -1 for true; && and || give 1.
    "==": lambda a, b: -1 if a == b else 0,
    "!=": lambda a, b: -1 if a != b else 0,
    "<": lambda a, b: -1 if a < b else 0,
    ">": lambda a, b: -1 if a > b else 0,
    "<=": lambda a, b: -1 if a <= b else 0,
    ">=": lambda a, b: -1 if a >= b else 0,
    "&&": lambda a, b: 1 if a and b else 0,
    "||": lambda a, b: 1 if a or b else 0,
}
_UNOPS = {"-": lambda a: -a, "~": lambda a: ~a, "!": lambda a: 0 if a else 1, "+": lambda a: a}


def fold(expr: ir.Expr, symbols: dict[str, int] | None = None) -> int | None:
    """The value of `expr` as GNU as computes it (64-bit, signed view), or None if it is not
    constant here.  `psr.ic` and the other PSR bit names fold to their masks (primer section 1).

    >>> fold(ir.Binary("|", ir.Sym("psr.dt"), ir.Sym("psr.i")))
    147456
    """
    if isinstance(expr, ir.Num):
        return _s64(expr.value)
    if isinstance(expr, ir.Sym):
        if symbols and expr.name in symbols:
            return symbols[expr.name]
        return regs.psr_mask(expr.name)
    if isinstance(expr, ir.Binary):
        a = fold(expr.left, symbols)
        if a is None:
            return None
        b = fold(expr.right, symbols)
        if b is None:
            return None
        v = _BINOPS[expr.op](a, b)
        return None if v is None else _s64(v)
    if isinstance(expr, ir.Unary):
        a = fold(expr.arg, symbols)
        return None if a is None else _s64(_UNOPS[expr.op](a))
    return None  # Reloc, Str


def _number(text: str) -> ir.Num | ir.Sym | None:
    """A NUMBER token: decimal, 0x hex, 0b binary, 0 octal, or a local label reference `1f`/`1b`."""
    low = text.lower()
    try:
        if low.startswith("0x") and len(low) > 2:
            return ir.Num(int(low[2:], 16), text)
        if low.startswith("0b") and len(low) > 2:
            return ir.Num(int(low[2:], 2), text)
    except ValueError:
        return None
    if low.isdigit():
        if len(low) > 1 and low[0] == "0":
            return ir.Num(int(low, 8), text) if all(c in "01234567" for c in low) else None
        return ir.Num(int(low), text)
    if low[:-1].isdigit() and low[-1] in "fb":
        return ir.Sym(low)
    return None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            if m:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            if nxt in "xX":
                m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
                if m:
                    out.append(chr(int(m.group(0), 16) & 0xFF))
                    i += 2 + len(m.group(0))
                    continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------- templates


@dataclass(slots=True)
class _Proto:
    """A position-independent statement: `col` is its offset in the piece; `ops_cols` the
    offsets of its operands (for errors found in step 3); `stacked` the in/loc/out names it
    uses; `symbolic` whether some Imm did not fold (a `.set` symbol may fold it later)."""

    kind: str  # label stop bb be tag pred insn dir pv
    col: int
    obj: object  # IR payload (see _instantiate)
    ops_cols: tuple[int, ...] = ()
    stacked: tuple[tuple[str, int], ...] = ()
    symbolic: bool = False


class _Ops:
    __slots__ = ("ops", "cols")

    def __init__(self, ops, cols):
        self.ops, self.cols = ops, cols


_EXPR_TYPES = (ir.Num, ir.Sym, ir.Unary, ir.Binary, ir.Reloc)


class _Build(Transformer):
    """Inline LALR transformer: rule callbacks build ir objects while lark parses.

    Per-parse context (which piece is on which lark line, the catalog) lives in `self.ctx`,
    set by _parse_pieces under a lock; the Lark object and this transformer are built once.
    """

    def __init__(self):
        super().__init__()
        self.ctx: _Context | None = None
        self.opcol: dict[int, int] = {}  # id(operand or expr) -> column in its piece
        self.stacked: list[tuple[str, int]] = []

    # -- helpers
    def _err(self, msg: str, tok_or_line, col: int | None = None) -> IvtxError:
        if col is None:
            line, col = tok_or_line.line, tok_or_line.column - 1
        else:
            line = tok_or_line
        return IvtxError(msg, self.ctx.loc(line, col))

    def _at(self, obj, col: int):
        self.opcol[id(obj)] = col
        return obj

    def _col(self, obj) -> int:
        return self.opcol.get(id(obj), 0)

    def _expr(self, x, what: str = "an expression"):
        if isinstance(x, _EXPR_TYPES):
            return x
        line = self.ctx.cur_line
        kind = "register" if isinstance(x, (ir.Reg, ir.RegIndex)) else "memory operand" if isinstance(x, ir.Mem) else "string"
        raise IvtxError(f"{kind} '{x}' cannot be used in {what}", self.ctx.loc(line, self._col(x)))

    # -- expressions
    def number(self, c):
        tok = c[0]
        self.ctx.cur_line = tok.line
        val = _number(str(tok))
        if val is None:
            raise self._err(f"bad number '{tok}'", tok)
        return self._at(val, tok.column - 1)

    def char(self, c):
        tok = c[0]
        text = str(tok)
        body = text[1:-1] if len(text) > 2 and text.endswith("'") else text[1:]
        ch = _unescape(body)
        return self._at(ir.Num(ord(ch[0]) if ch else 0, text), tok.column - 1)

    def name(self, c):
        tok = c[0]
        text = str(tok)
        col = tok.column - 1
        self.ctx.cur_line = tok.line
        try:
            reg = regs.canonical(text)
        except regs.RegisterError as exc:
            raise self._err(str(exc), tok) from None
        if reg is not None:
            return self._at(ir.Reg(reg), col)
        if regs.is_stacked_name(text):
            if regs.stacked_out_of_range(text):
                raise self._err(f"register '{text}' out of range (in/loc/out go up to 95)", tok)
            low = text.lower()
            self.stacked.append((low, col))
            return self._at(ir.Reg(low), col)
        return self._at(ir.Sym(text), col)

    def indexed(self, c):
        tok, index = c
        file = str(tok).lower()
        if file not in regs.INDIRECT_FILES:
            raise self._err(f"'{tok}' is not an indirect register file ({', '.join(sorted(regs.INDIRECT_FILES))});"
                            " rotating register names (.rotr/.rotp/.rotf) are not supported", tok)
        if not _is_gr(index):
            raise self._err(f"the index of {file}[] must be a general register", tok.line, self._col(index))
        return self._at(ir.RegIndex(file, index), tok.column - 1)

    def reloc(self, c):
        tok, arg = c
        return self._at(ir.Reloc(str(tok)[1:].lower(), self._expr(arg)), tok.column - 1)

    def atname(self, c):
        tok = c[0]
        return self._at(ir.Sym(str(tok)), tok.column - 1)

    def _binary(op):  # noqa: N805 - builds methods
        def build(self, c):
            left, right = c
            return self._at(ir.Binary(op, self._expr(left), self._expr(right)), self._col(left))
        return build

    lor, land = _binary("||"), _binary("&&")
    eq, ne, ne2, lt, gt = _binary("=="), _binary("!="), _binary("!="), _binary("<"), _binary(">")
    le, ge = _binary("<="), _binary(">=")
    add, sub = _binary("+"), _binary("-")
    bor, band, bxor, bornot = _binary("|"), _binary("&"), _binary("^"), _binary("!")
    mul, div, mod, shl, shr = _binary("*"), _binary("/"), _binary("%"), _binary("<<"), _binary(">>")

    def _unary(op):  # noqa: N805
        def build(self, c):
            arg = c[0]
            return self._at(ir.Unary(op, self._expr(arg)), max(self._col(arg) - 1, 0))
        return build

    neg, bnot, lnot, pos = _unary("-"), _unary("~"), _unary("!"), _unary("+")

    # -- operands
    def memory(self, c):
        base = c[0]
        if not _is_gr(base):
            raise IvtxError(f"a memory operand needs a general register as its address, not '{base}'",
                            self.ctx.loc(self.ctx.cur_line, self._col(base)))
        return self._at(ir.Mem(base), max(self._col(base) - 1, 0))

    def string(self, c):
        parts = [str(t) for t in c]
        value = "".join(_unescape(p[1:-1]) for p in parts)
        return self._at(ir.Str(value, " ".join(parts)), c[0].column - 1)

    def oplist(self, c):
        ops, cols = [], []
        for x in c:
            col = self._col(x)
            if isinstance(x, _EXPR_TYPES):
                x = ir.Imm(x, fold(x))
            ops.append(x)
            cols.append(col)
        return _Ops(tuple(ops), tuple(cols))

    def srcs_only(self, c):
        return (), c[0].ops, c[0].cols

    def dests_srcs(self, c):
        return c[0].ops, c[1].ops, c[0].cols + c[1].cols

    # -- items
    def label(self, c):
        tok = c[0]
        text = str(tok)
        if tok.type == "NUMBER":
            if not text.isdigit():
                raise self._err(f"bad local label '{text}': local labels are decimal numbers", tok)
            return [(tok.line, _Proto("label", tok.column - 1, (text, True)))]
        return [(tok.line, _Proto("label", tok.column - 1, (text, False)))]

    def tag(self, c):
        tok = c[0]
        return [(tok.line, _Proto("tag", tok.column - 2, str(tok)))]

    def pred(self, c):
        tok = c[0]
        try:
            reg = regs.canonical(str(tok))
        except regs.RegisterError as exc:
            raise self._err(str(exc), tok) from None
        if reg is None or regs.kind_of(reg) != "pr":
            raise self._err(f"bad qualifying predicate '({tok})': expected a predicate register p0-p63", tok)
        return [(tok.line, _Proto("pred", tok.column - 2, reg))]

    def stop(self, c):
        tok = c[0]
        return [(tok.line, _Proto("stop", tok.column - 1, None))]

    def bundle_begin(self, c):
        tok = c[0]
        m = re.search(r"\.(\w+)", str(tok))
        return [(tok.line, _Proto("bb", tok.column - 1, m.group(1).lower() if m else None))]

    def bundle_end(self, c):
        tok = c[0]
        return [(tok.line, _Proto("be", tok.column - 1, None))]

    def _finish(self, tok, proto: _Proto, rest) -> list:
        out = [(tok.line, proto)]
        for r in rest:
            if isinstance(r, list):
                out.extend(r)
        self.opcol.clear()
        self.stacked = []
        return out

    def op_statement(self, c):
        tok = c[0]
        name = str(tok)
        col = tok.column - 1
        dests, ops, cols = (), (), ()
        rest = c[1:]
        if rest and isinstance(rest[0], tuple):
            dests, ops, cols = rest[0]
            rest = rest[1:]
        low = name.lower()
        stacked = tuple(self.stacked)
        if low.startswith(".") or low in DOTLESS_DIRECTIVES:
            if dests:
                raise self._err(f"directive '{name}' takes no '='", tok)
            if low in (".rotr", ".rotp", ".rotf"):
                raise self._err(f"rotating register names ({low}) are not supported", tok)
            proto = _Proto("dir", col, (low, ops), cols, stacked, _unfolded(ops))
            return self._finish(tok, proto, rest)
        pv = self.ctx.catalog.get(name) if self.ctx.catalog is not None else None
        if pv is not None:
            if pv.parens:
                raise self._err(f"pv op '{name}' is called with parentheses: {name}({', '.join(pv.args)})", tok)
            if dests or ops:
                raise self._err(f"pv op '{name}' takes no operands", tok)
            return self._finish(tok, _Proto("pv", col, (name, (), False)), rest)
        if not is_mnemonic(name):
            raise self._err(f"unknown mnemonic '{name}'", tok)
        for x, xc in zip(dests + ops, cols):
            if isinstance(x, ir.Str):
                raise self._err(f"a string cannot be an operand of '{low}'", tok.line, xc)
        proto = _Proto("insn", col, (low, dests, ops), cols, stacked, _unfolded(dests) or _unfolded(ops))
        return self._finish(tok, proto, rest)

    def call_statement(self, c):
        tok, args = c[0], c[1]
        name = str(tok)
        ops = args.ops if args is not None else ()
        cols = args.cols if args is not None else ()
        rest = c[2:]
        pv = self.ctx.catalog.get(name) if self.ctx.catalog is not None else None
        if pv is None:
            low = name.lower()
            if is_mnemonic(low) or low in DOTLESS_DIRECTIVES:
                raise self._err(f"'{name}(' : put a space between the mnemonic and a parenthesised operand", tok)
            raise self._err(f"unknown mnemonic '{name}' (not a pv op of the catalog, nor a macro defined here)", tok)
        if not pv.parens:
            raise self._err(f"pv op '{name}' is written without parentheses", tok)
        if len(ops) != pv.arity:
            raise self._err(_arity_msg(pv, len(ops)), tok)
        for role, x, xc in zip(pv.args, ops, cols):
            _check_role(self, pv, role, x, tok.line, xc)
        proto = _Proto("pv", tok.column - 1, (name, ops, True), cols, tuple(self.stacked), _unfolded(ops))
        return self._finish(tok, proto, rest)

    def assignment(self, c):
        tok, value = c[0], c[1]
        value = self._expr(value)
        ops = (ir.Imm(ir.Sym(str(tok))), ir.Imm(value, fold(value)))
        proto = _Proto("dir", tok.column - 1, ("=", ops), (tok.column - 1, self._col(value)), (),
                       _unfolded(ops[1:]))
        return self._finish(tok, proto, c[2:])

    def start(self, c):
        out = []
        for item in c:
            out.extend(item)
        return out


def _unfolded(ops) -> bool:
    return any(isinstance(x, ir.Imm) and x.value is None for x in ops)


def _is_gr(x) -> bool:
    return isinstance(x, ir.Reg) and (regs.kind_of(x.name) == "gr" or regs.is_stacked_name(x.name))


def _arity_msg(pv, got: int) -> str:
    n = pv.arity
    roles = f" ({', '.join(pv.args)})" if n else ""
    return f"pv op '{pv.name}' takes {n} operand{'s' if n != 1 else ''}{roles}, got {got}"


def _check_role(b: _Build, pv, role: str, x, line: int, col: int) -> None:
    kind = pv.role_kind(role)
    if kind in ("pred", "pclob"):
        ok, want = isinstance(x, ir.Reg) and regs.kind_of(x.name) == "pr", "a predicate register"
    elif kind == "kr":
        ok, want = isinstance(x, ir.Imm), "a kernel register name or number"
    else:
        ok, want = _is_gr(x), "a general register"
    if not ok:
        raise IvtxError(f"operand '{role}' of pv op '{pv.name}' must be {want}, not '{x}'", b.ctx.loc(line, col))


class _Context:
    def __init__(self, origins: list[tuple[PPLine, int]], catalog):
        self.origins = origins  # lark line (1-based) -> (first PPLine, column of the piece)
        self.catalog = catalog
        self.cur_line = 1

    def loc(self, line: int, col: int) -> Loc:
        ppl, col0 = self.origins[min(max(line, 1), len(self.origins)) - 1]
        return ppl.loc_at(col0 + col)


# ---------------------------------------------------------------------------- lark


def _grammar_text() -> str:
    try:
        return resources.files("ivtx.grammars").joinpath("ia64.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent / "grammars" / "ia64.lark").read_text()


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _lark() -> tuple[Lark, _Build]:
    build = _Build()
    options = dict(parser="lalr", lexer="contextual", transformer=build, maybe_placeholders=True)
    grammar = _grammar_text()
    cache = _lark_cache_path(grammar)
    if cache:  # the LALR tables from the cache: ~10 ms instead of ~45 ms at start-up
        try:
            return Lark(grammar, cache=cache, **options), build
        except OSError:
            pass
    return Lark(grammar, **options), build


def _lark_cache_path(grammar: str) -> str | None:
    """Where lark keeps its tables for this grammar: the user's own cache directory
    ($XDG_CACHE_HOME or ~/.cache, then ivtx/), never the installed package nor a shared
    temporary directory (the cache is a pickle). None when there is no such directory and
    it cannot be made; lark itself carries on when the file cannot be read or written."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    folder = os.path.join(base, "ivtx")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
    return os.path.join(folder, f"lark-{digest}-py{sys.version_info[0]}{sys.version_info[1]}.cache")


_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "CHAR": "a character constant", "STRING": "a string",
    "RELOC": "a relocation (@gprel ...)", "CALLNAME": "a macro call", "STOP": "';;'", "_SEP": "end of statement",
    "RBRACE": "'}'", "BUNDLE_BEGIN": "'{'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "EQUAL": "'='", "COLON": "':'", "MINUS": "'-'", "PLUS": "'+'", "TILDE": "'~'", "BANG": "'!'",
}


def _expected(names) -> str:
    names = set(names)
    if {"NAME", "NUMBER"} <= names:
        return "expected an operand"
    shown = sorted(_FRIENDLY.get(n, repr(n.lower())) for n in names if not n.startswith("__"))
    return "expected " + (", ".join(shown[:6]) if shown else "something else")


def _lark_error(exc: UnexpectedInput, ctx: _Context) -> IvtxError:
    if isinstance(exc, UnexpectedCharacters):
        loc = ctx.loc(exc.line, exc.column - 1)
        if exc.char == '"':
            return IvtxError("unterminated string", loc)
        if exc.char == "'":
            return IvtxError("bad character constant", loc)
        return IvtxError(f"unexpected character {exc.char!r}", loc)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            ppl, col0 = ctx.origins[-1]
            return IvtxError(f"unexpected end of input: {_expected(exc.expected)}", ppl.loc_at(col0))
        loc = ctx.loc(tok.line, tok.column - 1)
        what = "end of statement" if tok.type in ("_SEP", "STOP", "RBRACE") else repr(str(tok))
        return IvtxError(f"unexpected {what}: {_expected(exc.expected)}", loc)
    if isinstance(exc, UnexpectedEOF):
        ppl, col0 = ctx.origins[-1]
        return IvtxError(f"unexpected end of input: {_expected(exc.expected)}", ppl.loc_at(col0))
    return IvtxError(str(exc))


# ---------------------------------------------------------------------------- scanning

_TEMPLATE_RE = "|".join(BUNDLE_TEMPLATES)
_SCAN = re.compile(
    r'"(?:\\.|[^"\\])*"?'                 # string (an unterminated one runs to the end: lark says so)
    r"|'(?:\\.|[^\\'])'?"                # character constant
    r"|(?P<lc>//)"                       # line comment
    r"|(?P<cc>/\*)"                      # C comment (may continue on later lines)
    r"|(?P<stop>;;)|(?P<sep>;)|(?P<rb>\})"
    r"|(?P<lb>\{(?:[ \t]*\.(?i:" + _TEMPLATE_RE + r")\b)?)"
)
_CC_END = re.compile(r"\*/")


def _scan(lines: list[PPLine]) -> list[tuple[str, int, int]]:
    """Split lines into pieces (text, line index, start column): statements, `;;`, `{ .mii`, `}`."""
    pieces: list[tuple[str, int, int]] = []
    add = pieces.append
    in_comment = False
    for li, line in enumerate(lines):
        text = line.text
        pos = 0
        if in_comment:
            m = _CC_END.search(text)
            if m is None:
                continue
            pos, in_comment = m.end(), False
        elif text.lstrip(" \t").startswith("#"):
            continue  # `#` line comment (and cpp line markers)
        start = pos
        for m in _SCAN.finditer(text, pos):
            kind = m.lastgroup
            if kind is None:
                continue  # string or char constant: part of the statement
            if kind == "cc":
                end = _CC_END.search(text, m.end())
                if end is not None:
                    continue  # a one-line comment stays in the piece; the grammar ignores it
                _piece(add, text, start, m.start(), li)
                in_comment = True
                start = len(text)
                break
            _piece(add, text, start, m.start(), li)
            if kind == "lc":
                start = len(text)
                break
            if kind != "sep":
                add((m.group(), li, m.start()))
            start = m.end()
        _piece(add, text, start, len(text), li)
    return pieces


def _piece(add, text: str, a: int, b: int, li: int) -> None:
    seg = text[a:b]
    stripped = seg.strip()
    if stripped:
        add((stripped, li, a + len(seg) - len(seg.lstrip())))


def _parse_pieces(lines: list[PPLine], pieces, catalog) -> dict[str, list[_Proto]]:
    """Parse each distinct piece once; return {piece text: [protos]}.

    Pieces of the common simple shapes (see _fast_items) skip lark's LALR loop but go through
    the same transformer callbacks; the others are parsed by lark in one text. If anything
    raises, the whole lot is parsed by lark alone, so errors are exactly lark's first one."""
    templates: dict[str, list[_Proto]] = {}
    order: list[str] = []
    origins: list[tuple[PPLine, int]] = []
    for text, li, col in pieces:
        if text not in templates:
            templates[text] = []
            order.append(text)
            origins.append((lines[li], col))
    if not order:
        return templates
    parser, build = _lark()
    with _LOCK:
        try:
            slow = _parse_fast(build, order, _Context(origins, catalog), templates)
        except IvtxError:
            slow = list(range(len(order)))
            for t in order:
                templates[t] = []
        if slow:
            ctx = _Context([origins[i] for i in slow], catalog)
            build.ctx, build.opcol, build.stacked = ctx, {}, []
            try:
                items = parser.parse("\n".join(order[i] for i in slow) + "\n")
            except UnexpectedInput as exc:
                raise _lark_error(exc, ctx) from None
            finally:
                build.ctx = None
                build.opcol = {}
            for line, proto in items:
                templates[order[slow[line - 1]]].append(proto)
    return templates


# A piece made only of labels, tags, a predicate and one statement whose operands are
# expressions over names and numbers, or [expr] (the bulk of IVT code), is parsed here by
# precedence climbing over the grammar's levels; anything else goes to lark. Terminals and
# levels as in grammars/ia64.lark; the objects come from the same _Build callbacks.
_F_NAME = r"[A-Za-z_.$][\w.$]*"
_F_NUM = r"[0-9]\w*"
_F_PREFIX = re.compile(rf"(?:(?P<label>{_F_NAME}|{_F_NUM}):|\[(?P<tag>{_F_NAME}|{_F_NUM}):\]|\((?P<pred>{_F_NAME})\))[ \t]*")
_F_HEAD = re.compile(rf"(?P<call>[A-Za-z_][\w$]*)\(|(?P<name>{_F_NAME})")
_F_TOKEN = re.compile(rf"[ \t]*(?:(?P<name>{_F_NAME})|(?P<num>{_F_NUM})"
                      r"|(?P<op>\|\||&&|==|!=|<>|<=|>=|<<|>>|[-+*%|&^!~<>(),=\[\]]))")
_F_LEVELS = (
    {"||": "lor"},
    {"&&": "land"},
    {"==": "eq", "!=": "ne", "<>": "ne2", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"},
    {"+": "add", "-": "sub"},
    {"|": "bor", "&": "band", "^": "bxor", "!": "bornot"},
    {"*": "mul", "%": "mod", "<<": "shl", ">>": "shr"},
)
_F_UNARY = {"-": "neg", "~": "bnot", "!": "lnot", "+": "pos"}


class _NotSimple(Exception):
    pass


def _parse_fast(build: _Build, order: list[str], ctx: _Context, templates: dict) -> list[int]:
    """Protos of the simple pieces into `templates`; the indices of the others."""
    from lark import Token

    build.ctx, build.opcol, build.stacked = ctx, {}, []
    slow = []
    try:
        for i, text in enumerate(order):
            try:
                items = _fast_items(build, text, i + 1, Token)
            except _NotSimple:
                build.opcol.clear()
                build.stacked = []
                slow.append(i)
                continue
            templates[text] = [proto for _, proto in items]
    finally:
        build.ctx = None
        build.opcol = {}
    return slow


def _fast_items(b: _Build, text: str, line: int, Token) -> list:
    """The transformer's items for `text` (lark line `line`); _NotSimple if it is not simple."""
    if '"' in text or "'" in text or "/" in text or "@" in text:
        raise _NotSimple
    items: list = []
    pos, n = 0, len(text)
    while pos < n:
        m = _F_PREFIX.match(text, pos)
        if m is None:
            break
        kind = m.lastgroup
        val = m.group(kind)
        tok = Token("NUMBER" if val[0].isdigit() else "NAME", val, line=line, column=m.start(kind) + 1)
        items += getattr(b, kind)([tok])
        pos = m.end()
    if pos == n:
        return items
    m = _F_HEAD.match(text, pos)
    if m is None:
        raise _NotSimple
    call = m.lastgroup == "call"
    head = Token("CALLNAME" if call else "NAME", m.group(m.lastgroup), line=line, column=pos + 1)
    pos = m.end()
    if not call and pos < n and text[pos] not in " \t":
        raise _NotSimple
    toks = []
    while pos < n:
        m = _F_TOKEN.match(text, pos)
        if m is None:
            raise _NotSimple
        kind = m.lastgroup
        toks.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    toks.append(("end", "", n))
    p = _FastOperands(b, toks, line, Token)
    if call:
        args = None if p.take(")") else p.oplist(")")
        p.expect("end")
        return items + b.call_statement([head, args])
    if p.peek() == ("end", ""):
        return items + b.op_statement([head])
    if p.peek() == ("op", "="):
        raise _NotSimple  # `name = expr` is an assignment
    first = p.oplist("=", "end")
    if p.take("="):
        rest = b.dests_srcs([first, p.oplist("end")])
    else:
        rest = b.srcs_only([first])
    p.expect("end")
    return items + b.op_statement([head, rest])


class _FastOperands:
    """Operand lists and expressions over pre-split tokens, by the grammar's precedence."""

    def __init__(self, b: _Build, toks: list, line: int, Token):
        self.b, self.toks, self.i, self.line, self.Token = b, toks, 0, line, Token

    def peek(self) -> tuple[str, str]:
        kind, text, _ = self.toks[self.i]
        return kind, text

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.i += 1
            return True
        return False

    def expect(self, kind: str) -> None:
        if self.peek()[0] != kind:
            raise _NotSimple

    def oplist(self, *enders: str):
        ops = [self.operand()]
        while self.take(","):
            ops.append(self.operand())
        kind, text = self.peek()
        if (text if kind == "op" else kind) not in enders:
            raise _NotSimple
        return self.b.oplist(ops)

    def operand(self):
        if self.take("["):
            x = self.b.memory([self.expr(0)])
            if not self.take("]"):
                raise _NotSimple
            return x
        return self.expr(0)

    def expr(self, level: int):
        if level == 0:  # most operands are one name or number: no operator levels to climb
            kind = self.toks[self.i][0]
            if kind in ("name", "num"):
                nkind, ntext, _ = self.toks[self.i + 1]  # an "end" token always follows
                if nkind == "end" or (nkind == "op" and ntext in ",=])"):
                    return self.atom()
        elif level == len(_F_LEVELS):
            return self.unary()
        ops = _F_LEVELS[level]
        left = self.expr(level + 1)
        while True:
            kind, text = self.peek()
            if kind != "op" or text not in ops:
                return left
            self.i += 1
            left = getattr(self.b, ops[text])([left, self.expr(level + 1)])

    def unary(self):
        kind, text = self.peek()
        if kind == "op" and text in _F_UNARY:
            self.i += 1
            return getattr(self.b, _F_UNARY[text])([self.unary()])
        return self.atom()

    def atom(self):
        kind, text, col = self.toks[self.i]
        self.i += 1
        if kind == "name":
            if self.peek() == ("op", "["):
                raise _NotSimple  # rr[r3]
            return self.b.name([self.Token("NAME", text, line=self.line, column=col + 1)])
        if kind == "num":
            return self.b.number([self.Token("NUMBER", text, line=self.line, column=col + 1)])
        if kind == "op" and text == "(":
            x = self.expr(0)
            if not self.take(")"):
                raise _NotSimple
            return x
        raise _NotSimple


# ---------------------------------------------------------------------------- step 3


def _resolve_stacked(x, frame: regs.Frame | None, where):
    if isinstance(x, ir.Reg) and regs.is_stacked_name(x.name):
        if frame is None:
            raise IvtxError(f"'{x.name}' used before any 'alloc' or '.regstk' set up a register frame", where(x.name))
        try:
            return ir.Reg(frame.resolve(x.name))
        except regs.RegisterError as exc:
            raise IvtxError(str(exc), where(x.name)) from None
    if isinstance(x, ir.Mem):
        return ir.Mem(_resolve_stacked(x.base, frame, where))
    if isinstance(x, ir.RegIndex):
        return ir.RegIndex(x.file, _resolve_stacked(x.index, frame, where))
    return x


def _refold(ops, symbols):
    return tuple(ir.Imm(x.expr, fold(x.expr, symbols)) if isinstance(x, ir.Imm) and x.value is None else x
                 for x in ops)


def _frame_from(args, what: str, loc: Loc) -> regs.Frame:
    vals = [a.value if isinstance(a, ir.Imm) else None for a in args]
    if len(vals) < 3 or any(v is None or v < 0 for v in vals[:3]):
        raise IvtxError(f"{what} needs constant input, local and output counts", loc)
    ins, locs, outs = vals[:3]
    if ins + locs + outs > 96:
        raise IvtxError(f"{what}: a frame has at most 96 registers, not {ins + locs + outs}", loc)
    return regs.Frame(ins, locs, outs)


def _instantiate(lines: list[PPLine], pieces, templates) -> list[ir.Statement]:
    out: list[ir.Statement] = []
    emit = out.append
    frame: regs.Frame | None = None
    symbols: dict[str, int] = {}
    qp: tuple[str, Loc] | None = None
    tag: tuple[str, Loc] | None = None
    bundle: Loc | None = None

    for text, li, col0 in pieces:
        ppl = lines[li]
        for p in templates[text]:
            loc = ppl.loc_at(col0 + p.col)
            kind = p.kind
            if qp is not None and kind not in ("insn", "tag"):
                raise IvtxError(f"qualifying predicate ({qp[0]}) must be followed by an instruction", qp[1])
            if kind == "insn" or kind == "dir" or kind == "pv":
                if p.stacked:
                    def where(name, p=p, ppl=ppl, col0=col0):
                        col = next((c for n, c in p.stacked if n == name), p.col)
                        return ppl.loc_at(col0 + col)
                if kind == "insn":
                    mnemonic, dests, srcs = p.obj
                    if mnemonic == "alloc":  # as in gas, `alloc loc0=ar.pfs,2,2,2,0` names r34
                        frame = _frame_from(srcs[1:], "alloc", loc)
                    if p.stacked:
                        dests = tuple(_resolve_stacked(x, frame, where) for x in dests)
                        srcs = tuple(_resolve_stacked(x, frame, where) for x in srcs)
                    if p.symbolic and symbols:
                        dests, srcs = _refold(dests, symbols), _refold(srcs, symbols)
                    insn = ir.Instruction(mnemonic, dests, srcs, loc)
                    if qp is not None:
                        insn.qp, qp = qp[0], None
                    if tag is not None:
                        insn.tag, tag = tag[0], None
                    emit(insn)
                elif kind == "dir":
                    name, args = p.obj
                    if p.stacked:
                        args = tuple(_resolve_stacked(x, frame, where) for x in args)
                    if p.symbolic and symbols:
                        args = _refold(args, symbols)
                    if name == ".regstk":
                        frame = _frame_from(args, ".regstk", loc)
                    elif name in (".set", ".equ", "=") and len(args) == 2:
                        sym, val = args
                        if isinstance(sym, ir.Imm) and isinstance(sym.expr, ir.Sym):
                            if isinstance(val, ir.Imm) and val.value is not None:
                                symbols[sym.expr.name] = val.value
                            else:
                                symbols.pop(sym.expr.name, None)
                    emit(ir.Directive(name, args, loc))
                else:
                    name, args, parens = p.obj
                    if p.stacked:
                        args = tuple(_resolve_stacked(x, frame, where) for x in args)
                    if p.symbolic and symbols:
                        args = _refold(args, symbols)
                    if tag is not None:
                        raise IvtxError(f"tag [{tag[0]}:] cannot be put on pv op '{name}'", tag[1])
                    emit(ir.PvCall(name, args, loc, parens))
            elif kind == "stop":
                emit(ir.Stop(loc))
            elif kind == "label":
                name, local = p.obj
                emit(ir.Label(name, loc, local))
            elif kind == "pred":
                qp = (p.obj, loc)
            elif kind == "tag":
                if tag is not None:
                    raise IvtxError(f"two tags in a row: [{tag[0]}:] has no instruction", tag[1])
                tag = (p.obj, loc)
            elif kind == "bb":
                if bundle is not None:
                    raise IvtxError(f"nested bundle '{{': the bundle opened at {bundle} is not closed", loc)
                bundle = loc
                emit(ir.BundleBegin(p.obj, loc))
            elif kind == "be":
                if bundle is None:
                    raise IvtxError("'}' without a bundle '{' to close", loc)
                bundle = None
                emit(ir.BundleEnd(loc))
    if qp is not None:
        raise IvtxError(f"qualifying predicate ({qp[0]}) must be followed by an instruction", qp[1])
    if tag is not None:
        raise IvtxError(f"tag [{tag[0]}:] is not followed by an instruction", tag[1])
    if bundle is not None:
        raise IvtxError("bundle '{' is not closed", bundle)
    return out


# ---------------------------------------------------------------------------- API


def parse(pp: Preprocessed, *, catalog=None) -> ir.Program:
    """Parse preprocessed source into a Program (gas macros are expanded first).

    `catalog` is the pv op catalog (ivtx.pvcatalog.Catalog); default: the shipped one.
    """
    from . import gasmacro
    from .pvcatalog import default_catalog

    if catalog is None:
        catalog = default_catalog()
    pp = gasmacro.expand(pp)
    pieces = _scan(pp.lines)
    templates = _parse_pieces(pp.lines, pieces, catalog)
    statements = _instantiate(pp.lines, pieces, templates)
    return ir.Program(pp.path, statements, list(pp.warnings))


def parse_text(text: str, path: str = "<text>", *, catalog=None) -> ir.Program:
    """Parse assembly text with no C preprocessing (`.s` input, tests)."""
    return parse(passthrough(path, text), catalog=catalog)


def eval_expr(line: PPLine, symbols: dict[str, int] | None = None) -> int:
    """Value of the expression that is the whole of `line` (for gas `.if`, `.rept`): an
    IvtxError at the line's coordinates if it does not parse or is not constant."""
    probe = "data8 "
    text = line.text.strip()
    col = len(line.text) - len(line.text.lstrip())
    if not text:
        raise IvtxError("expected an expression", line.loc_at(col))
    here = line.loc_at(col)
    advances = next((adv for s, _, adv in reversed(line.spans) if s <= col), True)
    spans = [(0, here, False), (len(probe), here, advances)]
    spans += [(s - col + len(probe), lo, adv) for s, lo, adv in line.spans if s > col]
    shifted = PPLine(probe + line.text[col:], spans)
    pieces = _scan([shifted])
    if len(pieces) != 1:
        raise IvtxError("expected one expression", here)
    templates = _parse_pieces([shifted], pieces, None)
    protos = templates[pieces[0][0]]
    args = protos[0].obj[1] if protos and protos[0].kind == "dir" else ()
    if len(args) != 1 or not isinstance(args[0], ir.Imm):
        raise IvtxError("expected one expression", line.loc_at(col))
    value = fold(args[0].expr, symbols)
    if value is None:
        raise IvtxError(f"expression '{text}' is not a constant here", line.loc_at(col))
    return value
