"""Interpreter semantics of memory, application-register and register-stack forms (SDM vol. 3;
primer sections 1 and 2).

Memory is flat (no translation): psr.dt only decides whether a continuation load can take a
nested miss and whether an access needs a serialization first.  An access must be aligned
and its address must not be NaT (else a fault); `ld.s` defers a NaT address into the target.

The register stack (SDM vol. 2 "Register Stack Engine"): physical stacked registers s<N>,
the current frame starting at `bof`; the dirty partition is the registers between
ar.bspstore and ar.bsp (NaT-collection slots skipped).  `cover`, `alloc`, `br.call`, `br.ret`
move frames without memory traffic; `flushrs` and `loadrs` move the dirty partition between
registers and memory; eager-mode background spills are not modelled (their timing is not
architectural), and a `br.ret` into frames the RSE would have to reload takes the values
from the registers, not from memory.
"""

from __future__ import annotations

from .interp import semantics
from .interp_alu import gr_index, guard, operand, _no_nat
from .interp_state import MASK64, Fault, gr_reader, gr_writer, rse_advance, rse_count
from .ir import Imm

_SIZES = {"1": 1, "2": 2, "4": 4, "8": 8}


def _size(insn) -> int:
    op = insn.op
    for prefix in ("ld", "st", "cmpxchg", "xchg", "fetchadd"):
        if op.startswith(prefix) and op[len(prefix):] in _SIZES:
            return _SIZES[op[len(prefix):]]
    raise ValueError(op)


def address(m, read, size: int, speculative: bool = False) -> int | None:
    """The address a GR reader gives for a `size`-byte access; None for a deferred (ld.s) NaT."""
    a, an = read(m)
    if an:
        if speculative:
            return None
        raise Fault("nat-consumption", "address register is NaT")
    if a % size:
        raise Fault("unaligned-reference", f"{size}-byte access at {a:#x}")
    if m.unser:
        m.data_access()
    return a


@semantics("ld", "ld.postinc", "ld.spec", "ld.spec.postinc", "ld.adv", "ld.adv.postinc", "ld.check",
           "ld.check.postinc", "ld.fill", "ld.fill.postinc")
def _load(insn, ctx):
    size = _size(insn)
    wd = gr_writer(gr_index(insn.dests[0]))
    base = gr_index(insn.srcs[0].base)
    rb, wb = gr_reader(base), gr_writer(base)
    inc = operand(insn.srcs[1], ctx) if len(insn.srcs) > 1 else None
    comps = insn.completers
    speculative = "s" in comps or "sa" in comps
    advanced = "a" in comps or "sa" in comps
    fill = "fill" in comps

    def body(m):
        a = address(m, rb, size, speculative)
        if a is None:
            value, nat = 0, True
        else:
            value = m.mem.read(a, size)
            nat = bool((m.get("ar.unat") >> ((a >> 3) & 63)) & 1) if fill else False
        if inc is not None:
            b, bn = rb(m)
            i, inn = inc(m)
            wb(m, b + i, bn or inn)
        wd(m, value, nat)
        if advanced:
            m.alat += 1
            m.touch("alat")
    return guard(insn, body)


@semantics("st", "st.postinc", "st.spill", "st.spill.postinc")
def _store(insn, ctx):
    size = _size(insn)
    base = gr_index(insn.dests[0].base)
    rb, wb = gr_reader(base), gr_writer(base)
    rs = gr_reader(gr_index(insn.srcs[0]))
    inc = ctx.imm(insn.srcs[1]) if len(insn.srcs) > 1 else None
    spill = "spill" in insn.completers

    def body(m):
        value, nat = rs(m)
        if nat and not spill:
            raise Fault("nat-consumption", "store of a NaT register")
        a = address(m, rb, size)
        if inc is not None:
            wb(m, a + inc, False)  # before memory changes: writing r0 faults
        m.mem.write(a, size, value)
        if m.touched is not None:
            m.touch("mem")
        if spill:
            m.pend_unat.append(((a >> 3) & 63, int(nat)))
    return guard(insn, body)


@semantics("cmpxchg")
def _cmpxchg(insn, ctx):
    size = _size(insn)
    wd = gr_writer(gr_index(insn.dests[0]))
    base, src = gr_reader(gr_index(insn.srcs[0].base)), gr_index(insn.srcs[1])
    mask = (1 << (8 * size)) - 1

    def body(m):
        new = _no_nat(m, src, "cmpxchg")
        a = address(m, base, size)
        old = m.mem.read(a, size)
        wd(m, old)  # before memory changes: writing r0 faults
        if old == m.get("ar.ccv") & mask:
            m.mem.write(a, size, new)
            m.touch("mem")
    return guard(insn, body)


@semantics("fetchadd")
def _fetchadd(insn, ctx):
    size = _size(insn)
    wd, base = gr_writer(gr_index(insn.dests[0])), gr_reader(gr_index(insn.srcs[0].base))
    inc = ctx.imm(insn.srcs[1])

    def body(m):
        a = address(m, base, size)
        old = m.mem.read(a, size)
        wd(m, old)
        m.mem.write(a, size, old + inc)
        m.touch("mem")
    return guard(insn, body)


@semantics("xchg")
def _xchg(insn, ctx):
    size = _size(insn)
    wd, base, src = gr_writer(gr_index(insn.dests[0])), gr_reader(gr_index(insn.srcs[0].base)), gr_index(insn.srcs[1])

    def body(m):
        new = _no_nat(m, src, "xchg")
        a = address(m, base, size)
        old = m.mem.read(a, size)
        wd(m, old)
        m.mem.write(a, size, new)
        m.touch("mem")
    return guard(insn, body)


@semantics("lfetch", "lfetch.postinc")
def _lfetch(insn, ctx):
    """A prefetch: no architectural effect, except the post-increment and, for .fault, the
    NaT check of the address."""
    base = gr_index(insn.srcs[0].base)
    inc = operand(insn.srcs[1], ctx) if len(insn.srcs) > 1 else None
    faulting = "fault" in insn.completers

    def body(m):
        b, bn = m.gr(base)
        if bn and faulting:
            raise Fault("nat-consumption", f"lfetch.fault through NaT r{base}")
        if inc is not None:
            i, inn = inc(m)
            m.set_gr(base, b + i, bn or inn)
    return guard(insn, body)


# --------------------------------------------------------------------------- floating-point spill/fill

FR_ONE = (0xFFFF << 64) | (1 << 63)  # f1 = +1.0 as sign|exponent(17)|significand(64)


def _fr_read(m, name: str) -> int:
    if name == "f0":
        return 0
    if name == "f1":
        return FR_ONE
    return m.get(name)


def _fr_write(m, name: str, value: int) -> None:
    if name in ("f0", "f1"):
        raise Fault("illegal-operation", f"write to {name}")
    m.put(name, value)


@semantics("stf", "stf.postinc")
def _stf(insn, ctx):
    """stf.spill: 16 bytes (significand, then sign|exponent); stf8: the significand."""
    spill = insn.mnemonic.startswith("stf.spill")
    if not spill and insn.op != "stf8":
        return None  # stfs / stfd / stfe convert formats: not modelled
    base = gr_index(insn.dests[0].base)
    rb = gr_reader(base)
    f = insn.srcs[0].name
    inc = operand(insn.srcs[1], ctx) if len(insn.srcs) > 1 else None
    size = 16 if spill else 8

    def body(m):
        a = address(m, rb, size)
        v = _fr_read(m, f)
        if inc is not None:
            m.set_gr(base, a + inc(m)[0], False)  # before memory changes: writing r0 faults
        m.mem.write(a, 8, v & MASK64)
        if spill:
            m.mem.write(a + 8, 8, v >> 64)
        m.touch("mem")
    return guard(insn, body)


@semantics("ldf", "ldf.postinc")
def _ldf(insn, ctx):
    if not (insn.mnemonic.startswith("ldf.fill") or insn.op == "ldf8"):
        return None
    fill = insn.mnemonic.startswith("ldf.fill")
    base = gr_index(insn.srcs[0].base)
    rb = gr_reader(base)
    f = insn.dests[0].name
    inc = operand(insn.srcs[1], ctx) if len(insn.srcs) > 1 else None
    size = 16 if fill else 8

    def body(m):
        a = address(m, rb, size)
        low = m.mem.read(a, 8)
        value = (low | ((m.mem.read(a + 8, 8) & 0x3FFFF) << 64)) if fill else ((0x1003E << 64) | low)
        _fr_write(m, f, value)
        if inc is not None:
            b, bn = m.gr(base)
            m.set_gr(base, b + inc(m)[0], bn)
    return guard(insn, body)


@semantics("mov.fr")
def _mov_fr(insn, ctx):
    d, s = insn.dests[0].name, insn.srcs[0].name
    return guard(insn, lambda m: _fr_write(m, d, _fr_read(m, s)))


@semantics("getf", "setf")
def _getf_setf(insn, ctx):
    if insn.mnemonic == "getf.sig":
        wd, s = gr_writer(gr_index(insn.dests[0])), insn.srcs[0].name
        return guard(insn, lambda m: wd(m, _fr_read(m, s) & MASK64))
    if insn.mnemonic == "setf.sig":
        d, s = insn.dests[0].name, gr_index(insn.srcs[0])
        return guard(insn, lambda m: _fr_write(m, d, (0x1003E << 64) | m.gr(s)[0]))
    return None


# --------------------------------------------------------------------------- application registers


@semantics("mov.from.ar", "mov.from.counter")
def _mov_from_ar(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    name = insn.srcs[0].name

    def body(m):
        wd(m, m.get(name))
    return guard(insn, body)


@semantics("mov.to.ar", "mov.to.kr", "mov.to.counter")
def _mov_to_ar(insn, ctx):
    name = insn.dests[0].name
    if name == "ar.bsp":
        def readonly(m):
            raise Fault("illegal-operation", "ar.bsp is read-only")
        return guard(insn, readonly)
    src = insn.srcs[0]
    if isinstance(src, Imm):
        value = ctx.imm(src)
        return guard(insn, lambda m: m.put(name, value))
    n = gr_index(src)

    def body(m):
        m.put(name, _no_nat(m, n, f"mov {name}"))
    return guard(insn, body)


@semantics("mov.to.bspstore")
def _mov_to_bspstore(insn, ctx):
    """A new backing store: the dirty registers stay dirty, so bsp = new bspstore + ndirty
    (Linux reads ar.bsp right after to learn ndirty).  Needs enforced lazy mode (rsc.mode=0)."""
    n = gr_index(insn.srcs[0])

    def body(m):
        value = _no_nat(m, n, "mov ar.bspstore") & ~7
        if m.get("ar.rsc") & 3:
            raise Fault("illegal-operation", "ar.bspstore written with the RSE not in enforced lazy mode")
        m.put("ar.bsp", rse_advance(value, m.ndirty()))
        m.put("ar.bspstore", value)
    return guard(insn, body)


# --------------------------------------------------------------------------- frames


@semantics("alloc")
def _alloc(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    i, l, o, r = (ctx.imm(x) for x in insn.srcs[1:5])
    sof, sol, sor = i + l + o, i + l, r // 8

    target = gr_index(insn.dests[0])

    def op(m):
        if sof > 96 or sol > sof or r > sof or target == 0 or target - 32 >= sof:
            raise Fault("illegal-operation", f"alloc frame {i},{l},{o},{r} with target r{target}")
        pfs = m.get("ar.pfs")
        m.set_cfm((m.cfm & ~0x3FFFF) | sof | (sol << 7) | (sor << 14))
        wd(m, pfs)  # named in the new frame
        return None
    return op


@semantics("cover")
def _cover(insn, ctx):
    """The current frame joins the dirty partition; with psr.ic=0 cr.ifs gets CFM (valid bit 63)."""
    def op(m):
        if not (m.psr >> 13) & 1:
            m.put("cr.ifs", (1 << 63) | m.cfm)
            m.crlog.append(("cr.ifs", (1 << 63) | m.cfm))
        m.set_bsp(rse_advance(m.v["ar.bsp"], m.sof))
        m.bof += m.sof
        m.set_cfm(0)
        m.touch("rse")
        return None
    return op


@semantics("clrrrb")
def _clrrrb(insn, ctx):
    def op(m):
        m.set_cfm(m.cfm & ((1 << 18) - 1) if insn.mnemonic == "clrrrb" else m.cfm & ~(0x3F << 32))
        return None
    return op


def dirty_slots(m):
    """(address, physical index or None for a NaT-collection slot) of the dirty partition."""
    lo, hi = m.v["ar.bspstore"], m.v["ar.bsp"]
    idx = m.bof - rse_count(lo, hi)
    out = []
    for a in range(lo, hi, 8):
        if (a >> 3) & 63 == 63:
            out.append((a, None))
        else:
            out.append((a, idx))
            idx += 1
    return out


@semantics("flushrs")
def _flushrs(insn, ctx):
    """Spill the dirty partition to the backing store: bspstore = bsp; NaT bits gather in rnat
    and go to memory at each collection slot."""
    def op(m):
        rnat = m.v["ar.rnat"]
        for a, idx in dirty_slots(m):
            if idx is None:
                m.mem.write(a, 8, rnat)
                continue
            value, nat = m.stacked(idx)
            m.mem.write(a, 8, value)
            rnat = (rnat & ~(1 << ((a >> 3) & 63))) | (int(nat) << ((a >> 3) & 63))
        m.touch("mem", "rse")
        m.put("ar.rnat", rnat)
        m.put("ar.bspstore", m.v["ar.bsp"])
        return None
    return op


@semantics("loadrs")
def _loadrs(insn, ctx):
    """Reload rsc.loadrs bytes below bsp into the stacked registers; bspstore = bsp - loadrs.
    Needs CFM.sof = 0."""
    def op(m):
        if m.sof:
            raise Fault("illegal-operation", "loadrs with CFM.sof != 0")
        bsp = m.v["ar.bsp"]
        lo = bsp - ((m.get("ar.rsc") >> 16) & 0x3FFF)
        idx = m.bof - rse_count(lo, bsp)
        rnat = m.v["ar.rnat"]
        for a in range(lo, bsp, 8):
            if (a >> 3) & 63 == 63:
                continue
            coll = a | 0x1F8
            nats = m.mem.read(coll, 8) if coll < bsp else rnat
            m.put(f"s{idx}", m.mem.read(a, 8), bool((nats >> ((a >> 3) & 63)) & 1))
            idx += 1
        m.touch("rse")
        m.put("ar.bspstore", lo)
        return None
    return op


@semantics("invala")
def _invala(insn, ctx):
    def op(m):
        m.alat = 0
        m.touch("alat")
    return guard(insn, op)


@semantics("invala.e")
def _invala_e(insn, ctx):
    return guard(insn, lambda m: None)
