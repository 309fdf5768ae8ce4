"""Interpreter semantics of the integer, compare, predicate and branch-register forms
(SDM vol. 3 instruction reference; primer sections 1 and 5).

A result's NaT bit is the OR of its sources' NaT bits.  Compares follow the primer's
table; a NaT source makes normal, unc and and-type compares clear both targets and leaves
or-type targets alone.
"""

from __future__ import annotations

from .interp import semantics
from .interp_state import MASK64, PNAMES, Fault, gr_reader, gr_writer
from .ir import Imm, Reg

SIGN = 1 << 63


def s64(x: int) -> int:
    return x - (1 << 64) if x & SIGN else x


def gr_index(op) -> int:
    return int(op.name[1:])


def operand(op, ctx):
    """A reader m -> (value, nat) for a GR or immediate source operand."""
    if isinstance(op, Reg):
        return gr_reader(gr_index(op))
    if isinstance(op, Imm):
        c = (ctx.imm(op), False)
        return lambda m: c
    raise TypeError(op)


def guard(insn, body):
    """Run `body` only when the qualifying predicate holds (primer section 5)."""
    qp = insn.qp
    if qp in (None, "p0"):
        return body

    def op(m):
        if m.get(qp):
            return body(m)
        return None
    return op


def binary(insn, ctx, fn):
    """r1 = fn(a, b) over two sources (GR or immediate), NaT = OR."""
    a, b = (operand(o, ctx) for o in insn.srcs[:2])
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        (x, xn), (y, yn) = a(m), b(m)
        wd(m, fn(x, y), xn or yn)
    return guard(insn, body)


@semantics("add")
def _add(insn, ctx):
    if insn.mnemonic == "addp4":
        # zero-extended 32-bit sum, with the region bits taken from r3{31:30}
        return binary(insn, ctx, lambda x, y: ((x + y) & 0xFFFFFFFF) | (((y >> 30) & 3) << 61))
    if len(insn.srcs) == 3:
        return binary(insn, ctx, lambda x, y: x + y + 1)
    return binary(insn, ctx, lambda x, y: x + y)


@semantics("sub")
def _sub(insn, ctx):
    if len(insn.srcs) == 3:
        return binary(insn, ctx, lambda x, y: x - y - 1)
    return binary(insn, ctx, lambda x, y: x - y)


_LOGICAL = {"and": lambda x, y: x & y, "andcm": lambda x, y: x & ~y, "or": lambda x, y: x | y,
            "xor": lambda x, y: x ^ y}


@semantics("logical")
def _logical(insn, ctx):
    return binary(insn, ctx, _LOGICAL[insn.op])


@semantics("mov.gr")
def _mov_gr(insn, ctx):
    a = operand(insn.srcs[0], ctx)
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        x, xn = a(m)
        wd(m, x, xn)
    return guard(insn, body)


def _sext(x: int, bits: int) -> int:
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


@semantics("unary")
def _unary(insn, ctx):
    op = insn.op
    if op[:3] in ("sxt", "zxt"):
        bits = 8 * int(op[3:])
        fn = (lambda x: _sext(x, bits)) if op.startswith("sxt") else (lambda x: x & ((1 << bits) - 1))
    elif op == "popcnt":
        fn = lambda x: bin(x).count("1")  # noqa: E731
    elif op == "clz":
        fn = lambda x: 64 - x.bit_length()  # noqa: E731
    else:
        return None  # czx: not modelled
    a = operand(insn.srcs[0], ctx)
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        x, xn = a(m)
        wd(m, fn(x) & MASK64, xn)
    return guard(insn, body)


@semantics("dep")
def _dep(insn, ctx):
    """dep r1=r2,r3,pos,len: r3 with bits pos..pos+len-1 from r2; dep r1=imm1,r3,pos,len fills
    the field with the sign of imm1; dep.z deposits into zero.  Bits beyond 63 are dropped."""
    srcs = insn.srcs
    wd = gr_writer(gr_index(insn.dests[0]))
    if insn.mnemonic == "dep.z":
        a = operand(srcs[0], ctx)
        pos, length = ctx.imm(srcs[1]), ctx.imm(srcs[2])
        field = (1 << length) - 1

        def body(m):
            x, xn = a(m)
            wd(m, ((x & field) << pos) & MASK64, xn)
        return guard(insn, body)
    a, b = operand(srcs[0], ctx), operand(srcs[1], ctx)
    pos, length = ctx.imm(srcs[2]), ctx.imm(srcs[3])
    field = (1 << length) - 1
    mask = (field << pos) & MASK64
    imm_form = isinstance(srcs[0], Imm)

    def body(m):
        (x, xn), (y, yn) = a(m), b(m)
        if imm_form:
            x = MASK64 if x & SIGN else 0
        wd(m, (y & ~mask) | ((x & field) << pos) & mask, xn or yn)
    return guard(insn, body)


@semantics("extr")
def _extr(insn, ctx):
    a = operand(insn.srcs[0], ctx)
    pos, length = ctx.imm(insn.srcs[1]), ctx.imm(insn.srcs[2])
    wd = gr_writer(gr_index(insn.dests[0]))
    unsigned = insn.mnemonic == "extr.u"
    top = min(pos + length, 64)

    def body(m):
        x, xn = a(m)
        field = (x >> pos) & ((1 << (top - pos)) - 1)
        if not unsigned:
            field = _sext(field, top - pos)
        wd(m, field & MASK64, xn)
    return guard(insn, body)


def _shl(x, c):
    return 0 if c > 63 else x << c


def _shr(x, c):
    return s64(x) >> min(c, 63)


def _shr_u(x, c):
    return 0 if c > 63 else x >> c


@semantics("parallel")
def _parallel(insn, ctx):
    op = insn.mnemonic
    if op in ("shl", "shr", "shr.u"):
        return binary(insn, ctx, {"shl": _shl, "shr": _shr, "shr.u": _shr_u}[op])
    if op in ("shladd", "shrp"):
        a, b = operand(insn.srcs[0], ctx), operand(insn.srcs[2], ctx)
        count = ctx.imm(insn.srcs[1] if op == "shladd" else insn.srcs[2])
        if op == "shrp":
            b = operand(insn.srcs[1], ctx)
        wd = gr_writer(gr_index(insn.dests[0]))
        fn = (lambda x, y: (x << count) + y) if op == "shladd" else (lambda x, y: ((x << 64) | y) >> count)

        def body(m):
            (x, xn), (y, yn) = a(m), b(m)
            wd(m, fn(x, y) & MASK64, xn or yn)
        return guard(insn, body)
    return None  # multimedia forms: not modelled


# --------------------------------------------------------------------------- compares


_RELATIONS = {
    "eq": lambda a, b, bits: a == b, "ne": lambda a, b, bits: a != b,
    "lt": lambda a, b, bits: _sext(a, bits) < _sext(b, bits), "le": lambda a, b, bits: _sext(a, bits) <= _sext(b, bits),
    "gt": lambda a, b, bits: _sext(a, bits) > _sext(b, bits), "ge": lambda a, b, bits: _sext(a, bits) >= _sext(b, bits),
    "ltu": lambda a, b, bits: a < b, "leu": lambda a, b, bits: a <= b,
    "gtu": lambda a, b, bits: a > b, "geu": lambda a, b, bits: a >= b,
}
CTYPES = ("or.andcm", "and.orcm", "unc", "or", "and", "orcm", "andcm")


def split_ctype(completers: tuple[str, ...]) -> tuple[str, str]:
    """("eq", "or", "andcm") -> ("eq", "or.andcm"); ("nz", "unc") -> ("nz", "unc")."""
    rel, rest = completers[0], ".".join(completers[1:])
    return rel, rest


def write_compare(m, p1: int, p2: int, ctype: str, rel: bool, nat: bool) -> None:
    """Primer section 5's table, with NaT: normal/unc/and types clear both targets, the
    or types leave them (SDM cmp)."""
    if ctype in ("", "unc"):
        if nat:
            m.set_pr(p1, 0)
            m.set_pr(p2, 0)
        else:
            m.set_pr(p1, int(rel))
            m.set_pr(p2, int(not rel))
    elif ctype in ("and", "andcm"):
        if nat or rel == (ctype == "andcm"):
            m.set_pr(p1, 0, "and")
            m.set_pr(p2, 0, "and")
    elif ctype in ("or", "orcm"):
        if not nat and rel == (ctype == "or"):
            m.set_pr(p1, 1, "or")
            m.set_pr(p2, 1, "or")
    elif ctype == "or.andcm":
        if not nat and rel:
            m.set_pr(p1, 1, "or")
            m.set_pr(p2, 0, "and")
    elif ctype == "and.orcm":
        if not nat and not rel:
            m.set_pr(p1, 0, "and")
            m.set_pr(p2, 1, "or")
    else:
        raise ValueError(ctype)


def compare_op(insn, test):
    """An op for a compare whose relation is `test(m) -> (rel, nat)`."""
    rel_name, ctype = split_ctype(insn.completers)
    p1, p2 = (int(d.name[1:]) for d in insn.dests)
    qp = insn.qp if insn.qp not in (None, "p0") else None

    def op(m):
        if qp is not None and not m.get(qp):
            if ctype == "unc":
                if p1 == p2:
                    raise Fault("illegal-operation", "unc compare with p1 == p2")
                m.set_pr(p1, 0)
                m.set_pr(p2, 0)
            return None
        if p1 == p2:
            raise Fault("illegal-operation", "compare with p1 == p2")
        rel, nat = test(m)
        write_compare(m, p1, p2, ctype, rel, nat)
        return None
    return op


@semantics("cmp.normal", "cmp.unc", "cmp.parallel")
def _cmp(insn, ctx):
    rel_name, _ = split_ctype(insn.completers)
    fn = _RELATIONS[rel_name]
    bits = 32 if insn.op == "cmp4" else 64
    mask = (1 << bits) - 1
    a, b = (operand(o, ctx) for o in insn.srcs)

    def test(m):
        (x, xn), (y, yn) = a(m), b(m)
        return fn(x & mask, y & mask, bits), xn or yn
    return compare_op(insn, test)


@semantics("tbit.normal", "tbit.unc", "tbit.parallel")
def _tbit(insn, ctx):
    rel_name, _ = split_ctype(insn.completers)
    want = 1 if rel_name == "nz" else 0
    a = operand(insn.srcs[0], ctx)
    if insn.op == "tnat":
        def test(m):
            return int(a(m)[1]) == want, False
    else:
        pos = ctx.imm(insn.srcs[1])

        def test(m):
            x, xn = a(m)
            return ((x >> pos) & 1) == want, xn
    return compare_op(insn, test)


# --------------------------------------------------------------------------- predicates, b-registers


def _no_nat(m, n: int, what: str) -> int:
    x, xn = m.gr(n)
    if xn:
        raise Fault("nat-consumption", f"{what} from a NaT register")
    return x


@semantics("mov.to.pr")
def _mov_to_pr(insn, ctx):
    """mov pr=r,mask17: bit i (1..15) selects pi, bit 16 all of p16-p63 (primer section 1)."""
    n = gr_index(insn.srcs[0])
    mask = ctx.imm(insn.srcs[1])
    targets = [i for i in range(1, 16) if (mask >> i) & 1] + (list(range(16, 64)) if (mask >> 16) & 1 else [])

    def body(m):
        x = _no_nat(m, n, "mov pr")
        for i in targets:
            m.set_pr(i, (x >> i) & 1)
    return guard(insn, body)


@semantics("mov.to.pr.all")
def _mov_to_pr_all(insn, ctx):
    n = gr_index(insn.srcs[0])

    def body(m):
        x = _no_nat(m, n, "mov pr")
        for i in range(1, 64):
            m.set_pr(i, (x >> i) & 1)
    return guard(insn, body)


@semantics("mov.to.pr.rot")
def _mov_to_pr_rot(insn, ctx):
    value = ctx.imm(insn.srcs[0])

    def body(m):
        for i in range(16, 64):
            m.set_pr(i, (value >> i) & 1)
    return guard(insn, body)


@semantics("mov.from.pr")
def _mov_from_pr(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        if any(PNAMES[i] in m.pend for i in range(1, 64)):
            m.violation("RAW", "pr")
        wd(m, m.predicates())
    return guard(insn, body)


@semantics("mov.to.br")
def _mov_to_br(insn, ctx):
    b = insn.dests[0].name
    n = gr_index(insn.srcs[0])

    def body(m):
        m.put(b, _no_nat(m, n, f"mov {b}"))
    return guard(insn, body)


@semantics("mov.from.br")
def _mov_from_br(insn, ctx):
    b = insn.srcs[0].name
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        wd(m, m.get(b))
    return guard(insn, body)


@semantics("mov.from.ip")
def _mov_from_ip(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    here = ctx.layout.address(ctx.pos)

    def body(m):
        wd(m, here)
    return guard(insn, body)


@semantics("nop", "mf", "brp", "fc")
def _no_effect(insn, ctx):
    return lambda m: None
