"""Interpreter semantics of branches and system forms: PSR, banks, control registers, TLB,
translation hashes, serialization (SDM vol. 2 and 3; primer sections 1, 2, 6, 7).

Branches read their predicate and branch register with the same-group exception (a compare
or `mov b=` earlier in the group is seen).  A target inside the file continues the run;
anything else ends it with an Exit naming the symbol (symbols outside the file have stable
hashed addresses, so `movl r14=ia64_leave_kernel; mov rp=r14` is recognised at a call).
Interruption control registers (cr.ipsr ... cr.iha) fault when psr.ic=1.  TLB inserts log
the instruction with cr.ifa, cr.itir and the PTE at that moment; purges log their operands.
"""

from __future__ import annotations

from .interp import Exit, semantics
from .interp_alu import _no_nat, gr_index, guard
from .interp_state import MASK64, PSR_BN, PSR_IC, Fault, gr_writer, mix64, rse_advance, rse_retreat
from .ir import Imm, Reg, Sym

PFM_MASK = (1 << 38) - 1


def _branch_qp(insn):
    qp = insn.qp
    return None if qp in (None, "p0") else qp


def goto(m, ctx, addr: int, kind: str):
    """Continue at the code position of `addr`, or end the run there."""
    addr &= MASK64
    p = ctx.layout.code_pos(addr)
    if p is not None:
        return p
    name = ctx.layout.externals.get(addr & ~0xF) or ctx.layout.externals.get(addr)
    if name is not None:
        return Exit(kind, name)
    return Exit("unknown" if kind == "branch" else kind, f"{addr:#x}")


def _direct(insn, ctx):
    """The target of a direct branch: a code position, or an external symbol name."""
    op = next(o for o in reversed(insn.srcs) if isinstance(o, Imm))
    addr = ctx.imm(op)
    p = ctx.layout.code_pos(addr)
    if p is not None:
        return p, None
    name = ctx.layout.externals.get(addr) or (op.expr.name if isinstance(op.expr, Sym) else f"{addr:#x}")
    return None, name


@semantics("br.cond", "brl")
def _br(insn, ctx):
    qp = _branch_qp(insn)
    pos, name = _direct(insn, ctx)

    def op(m):
        if qp is not None and not m.for_branch(qp):
            return None
        return pos if pos is not None else Exit("branch", name)
    return op


@semantics("br.cond.indirect", "br.ia")
def _br_indirect(insn, ctx):
    qp = _branch_qp(insn)
    b = insn.srcs[0].name
    kind = "branch" if insn.op == "br" and "ia" not in insn.completers else "branch-ia32"

    def op(m):
        if qp is not None and not m.for_branch(qp):
            return None
        if kind == "branch-ia32":
            return Exit(kind, f"{m.for_branch(b):#x}")
        return goto(m, ctx, m.for_branch(b), "branch")
    return op


def _enter_call(m, link: str, ret: int) -> None:
    """br.call: ar.pfs = {pfm=CFM, pec=ec, ppl=cpl}; the caller's outputs become the frame."""
    cfm = m.cfm
    sof, sol = cfm & 0x7F, (cfm >> 7) & 0x7F
    m.put("ar.pfs", cfm | ((m.v["ar.ec"] & 0x3F) << 52) | (((m.psr >> 32) & 3) << 62))
    m.put(link, ret)
    m.set_bsp(rse_advance(m.v["ar.bsp"], sol))
    m.bof += sol
    m.set_cfm(sof - sol)
    m.touch("rse")


@semantics("br.call", "br.call.indirect", "brl.call")
def _call(insn, ctx):
    qp = _branch_qp(insn)
    link = insn.dests[0].name
    ret = ctx.layout.address(ctx.pos) + 16  # the next bundle: a branch ends its bundle
    src = insn.srcs[0]
    indirect = isinstance(src, Reg)
    pos, name = (None, None) if indirect else _direct(insn, ctx)

    def op(m):
        if qp is not None and not m.for_branch(qp):
            return None
        target = m.for_branch(src.name) if indirect else None
        _enter_call(m, link, ret)
        if indirect:
            r = goto(m, ctx, target, "call")
        else:
            r = pos if pos is not None else Exit("call", name)
        if isinstance(r, Exit):
            back = ret if link == "b0" else m.for_branch("b0")  # the callee returns through rp
            r.link = ctx.layout.canonical(back)
            r.return_pos = ctx.layout.code_pos(back)
        return r
    return op


@semantics("br.ret")
def _ret(insn, ctx):
    qp = _branch_qp(insn)
    b = insn.srcs[0].name

    def op(m):
        if qp is not None and not m.for_branch(qp):
            return None
        target = m.for_branch(b)
        pfs = m.get("ar.pfs")
        pfm = pfs & PFM_MASK
        sol = (pfm >> 7) & 0x7F
        m.bof -= sol
        m.set_bsp(rse_retreat(m.v["ar.bsp"], sol))
        m.set_cfm(pfm)
        m.put("ar.ec", (pfs >> 52) & 0x3F)
        ppl, cpl = (pfs >> 62) & 3, (m.psr >> 32) & 3
        if ppl > cpl:
            m.psr_update(3 << 32, ppl << 32)
        m.touch("rse")
        return goto(m, ctx, target, "return")
    return op


@semantics("chk.s")
def _chk_s(insn, ctx):
    if not insn.srcs[0].name.startswith("r"):
        return None  # FR NaTVal is not modelled
    n = gr_index(insn.srcs[0])
    pos, name = _direct(insn, ctx)

    def body(m):
        if m.gr(n)[1]:
            return pos if pos is not None else Exit("branch", name)
        return None
    return guard(insn, body)


@semantics("break")
def _break(insn, ctx):
    what = f"break {ctx.imm(insn.srcs[0]):#x}"
    return guard(insn, lambda m: Exit("fault", what))


@semantics("rfi")
def _rfi(insn, ctx):
    """PSR from cr.ipsr (bank included), the covered frame back from cr.ifs when ifs.v=1, and
    out to cr.iip (primer section 2)."""
    def op(m):
        ipsr, ifs = m.get("cr.ipsr"), m.get("cr.ifs")
        m.get("cr.iip")
        m.psr_update(MASK64, ipsr)
        if ifs >> 63:
            pfm = ifs & PFM_MASK
            sof = pfm & 0x7F
            m.bof -= sof
            m.set_bsp(rse_retreat(m.v["ar.bsp"], sof))
            m.set_cfm(pfm)
            m.touch("rse")
        m.unser.clear()
        return Exit("rfi")
    return op


# --------------------------------------------------------------------------- PSR and banks


@semantics("bsw.0", "bsw.1")
def _bsw(insn, ctx):
    bank = int(insn.mnemonic[-1])

    def op(m):
        m.psr_update(1 << PSR_BN, bank << PSR_BN)
        return None
    return op


@semantics("system_mask", "user_mask")
def _sm(insn, ctx):
    mask = ctx.imm(insn.srcs[0]) & (0xFFFFFF if insn.op in ("rsm", "ssm") else 0x3F)
    reset = insn.op in ("rsm", "rum")

    def body(m):
        m.psr_update(mask, 0) if reset else m.psr_update(0, mask)
    return guard(insn, body)


_PSR_READABLE = 0xFFFFFFFF | (3 << 35)


@semantics("mov.from.psr", "mov.from.um")
def _mov_from_psr(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    mask = _PSR_READABLE if insn.srcs[0].name == "psr" else 0x3F

    def body(m):
        if m.pend_psr:
            m.violation("RAW", "psr")
        wd(m, m.psr & mask)
    return guard(insn, body)


@semantics("mov.to.psr.l", "mov.to.um")
def _mov_to_psr(insn, ctx):
    n = gr_index(insn.srcs[0])
    mask = 0xFFFFFFFF if insn.dests[0].name == "psr.l" else 0x3F

    def body(m):
        m.psr_update(mask, _no_nat(m, n, "mov psr") & mask)
    return guard(insn, body)


@semantics("srlz.d", "srlz.i")
def _srlz(insn, ctx):
    """Serialization: PSR changes made in earlier groups are in effect from here on."""
    kind = insn.mnemonic

    def body(m):
        m.unser.clear()
        m.serializations.append((kind, m.pos))
    return guard(insn, body)


# --------------------------------------------------------------------------- control registers


def _ic_off(m, what: str) -> None:
    if (m.psr >> PSR_IC) & 1:
        raise Fault("illegal-operation", f"{what} with psr.ic=1")
    if "ic" in m.unser:
        m.hazard(f"{what} before a psr.ic change was serialized")


@semantics("mov.from.icr", "mov.from.cr")
def _mov_from_cr(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    cr = insn.srcs[0].name
    interruption = insn.mnemonic == "mov" and cr in _ICR

    def body(m):
        if interruption:
            m.interrupt_cr_check(cr)
        wd(m, m.get(cr))
    return guard(insn, body)


_ICR = frozenset({"cr.ipsr", "cr.isr", "cr.18", "cr.iip", "cr.ifa", "cr.itir", "cr.iipa", "cr.ifs",
                  "cr.iim", "cr.iha", "cr.iib0", "cr.iib1"})
_CR_READONLY = frozenset({"cr.ivr", "cr.irr0", "cr.irr1", "cr.irr2", "cr.irr3"})


@semantics("mov.to.icr", "mov.to.cr", "mov.to.eoi")
def _mov_to_cr(insn, ctx):
    cr = insn.dests[0].name
    n = gr_index(insn.srcs[0])

    def body(m):
        if cr in _ICR:
            m.interrupt_cr_check(cr)
        if cr in _CR_READONLY:
            raise Fault("illegal-operation", f"{cr} is read-only")
        value = _no_nat(m, n, f"mov {cr}")
        m.put(cr, value)
        m.crlog.append((cr, value))
        if cr == "cr.eoi":
            m.sys.append(("eoi",))
            m.touch("cr.ivr_state")
    return guard(insn, body)


@semantics("mov.from.ivr")
def _mov_from_ivr(insn, ctx):
    """Reading cr.ivr acknowledges the highest pending vector (15: none) and marks it in service."""
    wd = gr_writer(gr_index(insn.dests[0]))

    def body(m):
        vec = m.ivr[0] if m.ivr else 15
        wd(m, vec)  # before the side effect: a bad target faults
        if m.ivr:
            m.ivr = m.ivr[1:]
        m.sys.append(("ivr", vec))
        m.touch("cr.ivr_state")
    return guard(insn, body)


def _file_index(file: str, value: int) -> int:
    return value >> 61 if file == "rr" else value & 0xFF


def file_value(m, file: str, idx: int) -> int:
    """An indirect register: as written, else a value generated from the trial's seed."""
    v = m.files.get(file, {}).get(idx)
    if v is None:
        v = mix64(m.seed ^ mix64(hash_name(file)) ^ idx)
        if file == "rr":
            v = (v & ~0xFC) | (((v >> 2) % 6 + 12) << 2)  # page size 4K..128K
    return v


def hash_name(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode())


@semantics("mov.from.indirect", "mov.from.cpuid", "mov.from.pmd")
def _mov_from_file(insn, ctx):
    wd = gr_writer(gr_index(insn.dests[0]))
    file = insn.srcs[0].file
    n = gr_index(insn.srcs[0].index)

    def body(m):
        idx = _file_index(file, _no_nat(m, n, f"{file}[]"))
        wd(m, file_value(m, file, idx))
    return guard(insn, body)


@semantics("mov.to.indirect")
def _mov_to_file(insn, ctx):
    file = insn.dests[0].file
    n, s = gr_index(insn.dests[0].index), gr_index(insn.srcs[0])

    def body(m):
        idx = _file_index(file, _no_nat(m, n, f"{file}[]"))
        value = _no_nat(m, s, f"mov {file}[]")
        m.files.setdefault(file, {})[idx] = value
        m.sys.append((file, idx, value))
        m.touch(file)
    return guard(insn, body)


# --------------------------------------------------------------------------- TLB


@semantics("itc")
def _itc(insn, ctx):
    n = gr_index(insn.srcs[0])
    kind = insn.mnemonic

    def body(m):
        _ic_off(m, kind)
        pte = _no_nat(m, n, kind)
        m.tlb.append((kind, m.get("cr.ifa"), m.get("cr.itir"), pte))
        m.touch("tlb")
    return guard(insn, body)


@semantics("itr")
def _itr(insn, ctx):
    slot, n = gr_index(insn.dests[0].index), gr_index(insn.srcs[0])
    kind = insn.mnemonic

    def body(m):
        _ic_off(m, kind)
        pte = _no_nat(m, n, kind)
        index = _no_nat(m, slot, kind)
        m.tlb.append((kind, index, m.get("cr.ifa"), m.get("cr.itir"), pte))
        m.touch("tlb")
    return guard(insn, body)


@semantics("ptc.l", "ptc.g", "ptc.e", "ptr")
def _purge(insn, ctx):
    regs_ = [gr_index(o) for o in insn.srcs]
    kind = insn.mnemonic

    def body(m):
        vals = [_no_nat(m, n, kind) for n in regs_]
        if len(vals) == 2:
            vals[1] = (vals[1] >> 2) & 0x3F  # page size from bits 7:2
        m.tlb.append((kind, *vals))
        m.touch("tlb")
    return guard(insn, body)


def thash_value(m, va: int) -> int:
    """The short-format VHPT hash (SDM thash, pta.vf=0): region bits of va, pta.base above the
    table size, the virtual page number scaled to 8-byte entries below it; long format (vf=1)
    is modelled as a deterministic hash of (va, pta, rr)."""
    pta = m.get("cr.pta")
    vrn = va >> 61
    rr = file_value(m, "rr", vrn)
    ps = (rr >> 2) & 0x3F
    if (pta >> 8) & 1:
        return mix64(va >> ps ^ mix64(pta ^ rr)) & ~7
    size = max((pta >> 2) & 0x3F, 15)
    mask = (1 << size) - 1
    base = pta & ~0x7FFF & ((1 << 61) - 1)
    index = ((va & ((1 << 61) - 1)) >> ps) << 3
    return (vrn << 61) | (base & ~mask) | (index & mask)


@semantics("thash", "ttag")
def _thash(insn, ctx):
    wd, n = gr_writer(gr_index(insn.dests[0])), gr_index(insn.srcs[0])
    tag = insn.op == "ttag"

    def body(m):
        va, nat = m.gr(n)
        if nat:
            wd(m, 0, True)
            return
        if tag:
            rr = file_value(m, "rr", va >> 61)
            wd(m, ((va >> ((rr >> 2) & 0x3F)) ^ ((rr >> 8) << 39)) & ((1 << 63) - 1))
        else:
            wd(m, thash_value(m, va))
    return guard(insn, body)
