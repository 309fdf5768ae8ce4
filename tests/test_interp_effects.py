"""Property tests: the interpreter's semantics stay within the effects tables (issue 6, must-show 3).

For random instructions of many forms, run from random vector-entry states (random bank,
psr.ic, RSE mode ...): every location the interpreter changes is among the instruction's
must- or may-writes (ivtx.effects), every must-write is written, and a faulting instruction
changes nothing.  Interpreter state is named the tables' way: r16 is the bank in force, r32+
the frame in force before the instruction, and the pseudo-locations mem, tlb, cfm, rse, alat,
cr.ivr_state, rr ... stand for memory, the TLB log, the frame marker, the register stack
engine, the ALAT, the interrupt controller and the indirect register files.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivtx import ir
from ivtx.diag import Loc
from ivtx.effects import default_table, effects_of
from ivtx.entrystate import random_entry
from ivtx.interp import Interpreter
from ivtx.interp_state import Fault, NotModelled

TABLE = default_table()
LOC = Loc("prop.s", 1, 1)
AR_NAMES = ["ar.ccv", "ar.unat", "ar.fpsr", "ar.pfs", "ar.lc", "ar.ec", "ar.rsc", "ar.rnat", "ar.csd", "ar.ssd",
            "ar.itc", "ar.bsp", "ar.bspstore"] + [f"ar.k{n}" for n in range(8)]
CR_NAMES = ["cr.ifa", "cr.itir", "cr.iha", "cr.ipsr", "cr.iip", "cr.ifs", "cr.iim", "cr.isr", "cr.iipa",
            "cr.dcr", "cr.pta", "cr.tpr", "cr.itm", "cr.eoi", "cr.ivr"]
CRELS = ["eq", "ne", "lt", "le", "gt", "ge", "ltu", "leu", "gtu", "geu"]
CTYPES = ["", "unc", "or", "and", "or.andcm", "orcm", "andcm", "and.orcm"]


def R(name):
    return ir.Reg(name)


def I(v, sym=None):  # noqa: E743
    return ir.Imm(ir.Sym(sym), None) if sym else ir.Imm(ir.Num(v), v)


def M(name):
    return ir.Mem(R(name))


@st.composite
def instruction(draw):
    """(mnemonic, dests, srcs, predicable) for one of many forms."""
    gr = lambda: R(f"r{draw(st.integers(1, 40))}")  # noqa: E731  (r32-r40 are stacked)
    src = lambda: R(f"r{draw(st.integers(0, 40))}")  # noqa: E731
    pr = lambda: R(f"p{draw(st.integers(1, 63))}")  # noqa: E731
    br_ = lambda: R(f"b{draw(st.integers(0, 7))}")  # noqa: E731
    one = lambda xs: draw(st.sampled_from(xs))  # noqa: E731
    num = lambda lo, hi: I(draw(st.integers(lo, hi)))  # noqa: E731
    size = lambda: one(["1", "2", "4", "8"])  # noqa: E731
    choices = [
        lambda: (one(["add", "sub", "and", "or", "xor", "andcm", "shl", "shr", "shr.u"]), [gr()], [src(), src()]),
        lambda: (one(["add", "sub"]), [gr()], [src(), src(), I(1)]),
        lambda: (one(["adds", "addl"]), [gr()], [num(-8192, 8191), src()]),
        lambda: (one(["and", "or", "xor", "andcm", "sub"]), [gr()], [num(-128, 127), src()]),
        lambda: ("addp4", [gr()], [src(), src()]),
        lambda: ("mov", [gr()], [src()]),
        lambda: (one(["mov", "movl"]), [gr()], [num(-(1 << 63), (1 << 64) - 1)]),
        lambda: ("movl", [gr()], [I(None, "some_symbol")]),
        lambda: (one(["sxt1", "sxt2", "sxt4", "zxt1", "zxt2", "zxt4", "popcnt", "clz"]), [gr()], [src()]),
        lambda: ("dep", [gr()], [src(), src(), num(0, 63), num(1, 16)]),
        lambda: ("dep", [gr()], [I(one([0, -1])), src(), num(0, 63), num(1, 64)]),
        lambda: ("dep.z", [gr()], [src(), num(0, 63), num(1, 64)]),
        lambda: ("dep.z", [gr()], [num(-128, 127), num(0, 63), num(1, 64)]),
        lambda: (one(["extr", "extr.u"]), [gr()], [src(), num(0, 63), num(1, 64)]),
        lambda: (one(["shl", "shr", "shr.u"]), [gr()], [src(), num(0, 63)]),
        lambda: ("shladd", [gr()], [src(), num(1, 4), src()]),
        lambda: ("shrp", [gr()], [src(), src(), num(0, 63)]),
        lambda: (f"{one(['cmp', 'cmp4'])}.{one(CRELS)}" + (f".{c}" if (c := one(['', 'unc'])) else ""),
                 [pr(), pr()], [src(), src()]),
        lambda: (f"cmp.{one(['eq', 'ne'])}.{one(CTYPES[2:])}", [pr(), pr()], [num(-128, 127), src()]),
        lambda: (f"cmp.{one(['lt', 'le', 'gt', 'ge'])}.{one(CTYPES[2:])}", [pr(), pr()], [R("r0"), src()]),
        lambda: (f"tbit.{one(['z', 'nz'])}" + (f".{c}" if (c := one(CTYPES)) else ""), [pr(), pr()], [src(), num(0, 63)]),
        lambda: (f"tnat.{one(['z', 'nz'])}" + (f".{c}" if (c := one(CTYPES)) else ""), [pr(), pr()], [src()]),
        lambda: ("mov", [R("pr")], [src(), num(-65536, 65535)]),
        lambda: ("mov", [R("pr")], [src()]),
        lambda: ("mov", [R("pr.rot")], [I(draw(st.integers(0, (1 << 28) - 1)) << 16)]),
        lambda: ("mov", [gr()], [R("pr")]),
        lambda: ("mov", [br_()], [src()]),
        lambda: ("mov", [gr()], [br_()]),
        lambda: ("mov", [gr()], [R("ip")]),
        lambda: ("mov", [gr()], [R(one(AR_NAMES))]),
        lambda: ("mov", [R(one([a for a in AR_NAMES if a not in ("ar.itc", "ar.bspstore")]))], [src()]),
        lambda: ("mov", [R(one(["ar.ccv", "ar.rsc", "ar.lc", "ar.k3"]))], [num(-128, 127)]),
        lambda: ("mov", [R("ar.bspstore")], [src()]),
        lambda: ("mov", [gr()], [R(one(CR_NAMES))]),
        lambda: ("mov", [R(one(CR_NAMES))], [src()]),
        lambda: ("mov", [gr()], [R(one(["psr", "psr.um"]))]),
        lambda: ("mov", [R(one(["psr.l", "psr.um"]))], [src()]),
        lambda: (one(["rsm", "ssm"]), [], [I(draw(st.integers(0, (1 << 24) - 1)) & ~(0xF << 28))]),
        lambda: (one(["rum", "sum"]), [], [num(0, 63)]),
        lambda: (f"ld{size()}" + one(["", ".s", ".a", ".sa", ".c.clr", ".acq", ".bias"]), [gr()], [M(src().name)]),
        lambda: (f"ld{size()}", [gr()], [M(src().name), one([num(-256, 255), src()])]),
        lambda: ("ld8.fill", [gr()], [M(src().name)]),
        lambda: (f"st{size()}" + one(["", ".rel"]), [M(src().name)], [src()]),
        lambda: (f"st{size()}", [M(src().name)], [src(), num(-256, 255)]),
        lambda: ("st8.spill", [M(src().name)], [src()] + one([[], [num(-256, 255)]])),
        lambda: (f"cmpxchg{size()}.{one(['acq', 'rel'])}", [gr()], [M(src().name), src(), R("ar.ccv")]),
        lambda: (f"fetchadd{one(['4', '8'])}.acq", [gr()], [M(src().name), I(one([-16, -8, -4, -1, 1, 4, 8, 16]))]),
        lambda: (f"xchg{size()}", [gr()], [M(src().name), src()]),
        lambda: ("lfetch" + one(["", ".fault"]), [], [M(src().name)] + one([[], [num(-256, 255)]])),
        lambda: ("stf.spill", [M(src().name)], [R(f"f{draw(st.integers(0, 127))}")]),
        lambda: ("ldf.fill", [R(f"f{draw(st.integers(2, 127))}")], [M(src().name)]),
        lambda: ("itc." + one(["i", "d"]), [], [src()]),
        lambda: ("itr.d", [ir.RegIndex("dtr", src())], [src()]),
        lambda: (one(["ptc.l", "ptc.g", "ptr.d"]), [], [src(), src()]),
        lambda: ("ptc.e", [], [src()]),
        lambda: (one(["thash", "ttag"]), [gr()], [src()]),
        lambda: ("mov", [ir.RegIndex("rr", src())], [src()]),
        lambda: ("mov", [gr()], [ir.RegIndex("rr", src())]),
        lambda: (one(["srlz.d", "srlz.i", "mf", "invala"]), [], []),
        lambda: ("nop.m", [], [I(0)]),
        lambda: ("br.call.sptk.many", [br_()], [one([I(None, "elsewhere"), br_()])]),
        lambda: ("br.ret.sptk.many", [], [br_()]),
        lambda: (one(["br.cond.sptk", "br.sptk.many"]), [], [one([I(None, "elsewhere"), br_()])]),
        lambda: ("chk.s", [], [src(), I(None, "recovery")]),
    ]
    unpredicated = [
        lambda: ("alloc", [gr()], [R("ar.pfs"), num(0, 8), num(0, 8), num(0, 8), I(0)]),
        lambda: (one(["cover", "flushrs", "loadrs", "bsw.0", "bsw.1", "rfi"]), [], []),
    ]
    if draw(st.integers(0, 5)) == 0:
        mnemonic, dests, srcs = draw(st.sampled_from(unpredicated))()
        qp = None
    else:
        mnemonic, dests, srcs = draw(st.sampled_from(choices))()
        qp = draw(st.one_of(st.none(), st.just("p0"), st.sampled_from([f"p{n}" for n in range(1, 64)])))
    return ir.Instruction(mnemonic, tuple(dests), tuple(srcs), LOC, qp=qp)


# --------------------------------------------------------------------------- naming state the tables' way


def arch_name(phys: str, bank: int, bof: int) -> str:
    if phys[0] == "s":
        i = int(phys[1:]) - bof
        return f"r{32 + i}" if 0 <= i < 96 else "rse"
    if phys[0] == "r" and "@" in phys:
        name, b = phys.split("@")
        return name if int(b) == bank else phys
    return phys


def view(m, bank: int, bof: int) -> dict:
    """Every location of the machine by the effects tables' names (relative to bank / bof)."""
    out: dict = {}
    for k in list(dict.keys(m.v)):
        if k == "p0":
            continue
        name = arch_name(k, bank, bof)
        value = (m.v[k], k in m.nat) if k[0] in "rs" else m.v[k]
        if name == "rse":
            out.setdefault("rse", {})[k] = value
        else:
            out[name] = value
    out["rse"] = (m.bof, tuple(sorted(out.get("rse", {}).items())))
    for f, (bit, width, _) in TABLE.psr_fields.items():
        out[f"psr.{f}"] = (m.psr >> bit) & ((1 << width) - 1)
    out["cfm"] = m.cfm
    out["mem"] = tuple(sorted((a, m.mem.words[a]) for a in m.mem.written))
    out["tlb"] = tuple(m.tlb)
    out["alat"] = m.alat
    out["cr.ivr_state"] = (m.ivr, tuple(e for e in m.sys if e[0] in ("ivr", "eoi")))
    for file, entries in m.files.items():
        out[file] = tuple(sorted(entries.items()))
    return out


def written(m, bank: int, bof: int) -> set[str]:
    """What the instruction wrote (pending, PSR and unat updates, and immediate changes)."""
    out = {arch_name(k, bank, bof) for k in m.pend}
    for clear, setbits in m.pend_psr:
        mask = clear | setbits
        out |= {f"psr.{f}" for f, (bit, width, _) in TABLE.psr_fields.items() if (mask >> bit) & ((1 << width) - 1)}
    if m.pend_unat:
        out.add("ar.unat")
    return out | m.touched


# --------------------------------------------------------------------------- the property


@st.composite
def machine_states(draw):
    seed = draw(st.integers(0, 2 ** 32))
    rng = random.Random(seed)
    s = random_entry(rng, None)
    values = dict(s.values)
    if draw(st.booleans()):  # addresses usable by 8- and 16-byte accesses
        values = {k: s.value(k)[0] for k in s.keys()}
        values = {k: (v & ~0xF if k[0] in "rs" else v) for k, v in values.items()}
    values["ar.rsc"] = values["ar.rsc"] & ~3 if draw(st.booleans()) else values["ar.rsc"]
    psr = s.psr | (draw(st.integers(0, 1)) << 44) | (draw(st.integers(0, 1)) << 13)
    cfm = s.cfm if draw(st.booleans()) else 0
    return replace(s, values=values, psr=psr, cfm=cfm)


def check_effects(insn, state) -> str:
    """Run one instruction and check it against its effects; 'ok', 'fault' or 'not modelled'."""
    eff = effects_of(insn)
    program = ir.Program("prop.s", [ir.Label("start", LOC), insn])
    it = Interpreter(program)
    m = state.machine(it)
    m.interp = it
    bank, bof = m.bn, m.bof
    # registers are generated on first use: make them all now, so that a read is not a change
    for k in state.keys() + [f"f{n}" for n in range(2, 128)] + [f"s{k}" for k in range(bof - 16, bof + 100)]:
        m.v[k]
    before = view(m, bank, bof)
    m.touched = set()
    try:
        it.ops[0](m)
    except NotModelled:
        return "not modelled"
    except Fault:
        m.commit()  # faults are precise: what earlier instructions wrote happens, the faulting one writes nothing
        assert view(m, bank, bof) == before, "a faulting instruction changed state"
        return "fault"
    wrote = written(m, bank, bof)
    m.commit()
    after = view(m, bank, bof)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed = eff.must_writes | eff.may_writes
    assert changed <= allowed, f"{insn.mnemonic} {insn.dests} {insn.srcs} qp={insn.qp}: changed {changed - allowed}"
    must = eff.must_writes
    if insn.qp not in (None, "p0") and before[insn.qp]:
        must = effects_of(replace(insn, qp=None)).must_writes  # the predicate is true
    assert must <= wrote, f"{insn.mnemonic} qp={insn.qp}: must-writes not written {must - wrote}"
    return "ok"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instruction(), machine_states())
def test_what_the_interpreter_changes_is_within_the_effects_tables(insn, state):
    check_effects(insn, state)


# one instruction of every modelled form, so that each form is checked whatever hypothesis draws
EVERY_FORM = """add r20=r16,r17; sub r20=r16,r17,1; adds r20=5,r16; addp4 r20=r16,r17; andcm r20=r16,r17
mov r20=r16; movl r20=0x1234; sxt1 r20=r16; popcnt r20=r16; dep r20=r16,r17,4,8; dep.z r20=r16,4,8
extr.u r20=r16,4,8; shl r20=r16,3; shr r20=r16,r17; shladd r20=r16,2,r17; shrp r20=r16,r17,5
cmp.eq p6,p7=r16,r17; cmp4.lt.unc p6,p7=r16,r17; cmp.eq.or p6,p7=r16,r17; cmp.ne.and.orcm p6,p7=r16,r17
tbit.z p6,p7=r16,3; tnat.nz.unc p6,p7=r16; mov pr=r16,0x1003e; mov pr=r16; mov pr.rot=0x10000; mov r20=pr
mov b6=r16; mov r20=b6; mov r20=ip; mov r20=ar.ccv; mov ar.ccv=r16; mov ar.k3=r16; mov r20=ar.itc
mov ar.itc=r16; mov ar.bspstore=r16; mov r20=cr.ifa; mov cr.ifa=r16; mov r20=cr.dcr; mov cr.dcr=r16
mov r20=cr.ivr; mov cr.eoi=r16; mov r20=psr; mov psr.l=r16; mov r20=psr.um; mov psr.um=r16
rsm psr.dt|psr.i; ssm psr.ic; sum 0x4; ld8 r20=[r18]; ld4 r20=[r18],8; ld8.s r20=[r18]; ld8.a r20=[r18]
ld8.c.clr r20=[r18]; ld8.fill r20=[r18]; st8 [r18]=r16; st8 [r18]=r16,8; st8.spill [r18]=r16
cmpxchg8.acq r20=[r18],r16,ar.ccv; fetchadd8.acq r20=[r18],8; xchg8 r20=[r18],r16; lfetch [r18],8
stf.spill [r18]=f6; stf8 [r18]=f6; ldf.fill f6=[r18]; ldf8 f6=[r18]; mov f6=f7; getf.sig r20=f6
setf.sig f6=r16; alloc r20=ar.pfs,0,1,2,0; cover; flushrs; loadrs; clrrrb; bsw.0; bsw.1; invala; invala.e r16
itc.d r16; itr.d dtr[r17]=r16; ptc.l r16,r17; ptc.g r16,r17; ptc.e r16; ptr.d r16,r17; thash r20=r16
ttag r20=r16; mov rr[r16]=r17; mov r20=rr[r16]; srlz.d; srlz.i; mf; nop.m 0; br.call.sptk.many b6=elsewhere
br.call.sptk.many b0=b6; br.ret.sptk.many b6; br.sptk.many elsewhere; br.cond.sptk.many b6
chk.s r16, elsewhere; rfi; break 0; fc r16; lfetch [r18]; ld8.fill r20=[r18],8; ld8.s r20=[r18],8
ld8.a r20=[r18],8; ld8.c.clr r20=[r18],8; st8.spill [r18]=r16,16; stf.spill [r18]=f6,16; ldf.fill f6=[r18],16
mov r20=cpuid[r16]; mov r20=pmd[r16]; tbit.nz.and p6,p7=r16,3; brl.sptk.many elsewhere
brl.call.sptk.many b0=elsewhere; br.ia.sptk b6; brp.sptk elsewhere, there; mov r20=pkr[r16]"""


def _fixed_state(sof: int):
    s = replace(random_entry(random.Random(7), None), cfm=sof | (sof << 7), nat_free=True)
    values = {k: s.value(k)[0] for k in s.keys()}
    values = {k: (v & ~0xF if k[0] in "rs" else v) for k, v in values.items()}  # aligned addresses
    values.update({"ar.rsc": 0, "p9": 1})
    return replace(s, values=values, nats=frozenset(), psr=s.psr & ~(1 << 13))


def test_every_modelled_form_writes_its_must_writes_and_nothing_else():
    from ivtx.interp import SEMANTICS
    from ivtx.parse import parse_text

    texts = [t.strip() for line in EVERY_FORM.splitlines() for t in line.split(";") if t.strip()]
    outcomes: dict[str, set] = {}
    for text in texts:
        (insn,) = [s for s in parse_text(text, "forms.s").statements if isinstance(s, ir.Instruction)]
        variants = [insn]
        if "unpredicated" not in effects_of(insn).flags:
            variants.append(replace(insn, qp="p9"))  # p9 is true in the fixed state
        for variant in variants:
            for sof in (0, 8):  # loadrs wants an empty frame, r32+ a non-empty one
                outcomes.setdefault(effects_of(insn).form, set()).add(check_effects(variant, _fixed_state(sof)))
    assert not {f for f, o in outcomes.items() if "not modelled" in o}
    assert not {f for f, o in outcomes.items() if "ok" not in o}, "every form must run without a fault once"
    assert set(SEMANTICS) <= set(outcomes), sorted(set(SEMANTICS) - set(outcomes))


def test_the_property_covers_many_forms():
    """The generator reaches most forms the interpreter models (so the property means something)."""
    from ivtx.interp import SEMANTICS

    forms = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(instruction())
    def collect(i):
        forms.add(effects_of(i).form)

    collect()
    missing = set(SEMANTICS) - forms
    assert len(set(SEMANTICS) & forms) >= 40, sorted(missing)
