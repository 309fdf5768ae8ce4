"""Tests for ivtx/effects.py and the shipped table ivtx/data/effects.txt."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter

import pytest

from ivtx.diag import IvtxError, Loc
from ivtx.effects import default_table, effects_of, known_mnemonic, load_table
from ivtx.ir import Binary, Imm, Instruction, Mem, Num, Reg, RegIndex, Sym

LOC = Loc("ivt.S", 42, 9)
P1_63 = {f"p{i}" for i in range(1, 64)}
P16_63 = {f"p{i}" for i in range(16, 64)}
ALIASES = {"sp": "r12", "gp": "r1", "rp": "b0"}


# --------------------------------------------------------------------------- helpers


def _operand(text: str):
    t = ALIASES.get(text.strip(), text.strip())
    if m := re.fullmatch(r"\[(\w+)\]", t):
        return Mem(Reg(m.group(1)))
    if m := re.fullmatch(r"(\w+)\[(\w+)\]", t):
        return RegIndex(m.group(1), Reg(m.group(2)))
    if re.fullmatch(r"[rfpb]\d+|(ar|cr)\.\w+|psr(\.l|\.um)?|pr(\.rot)?|ip", t):
        return Reg(t)
    if "|" in t:
        parts = [_operand(p).expr for p in t.split("|")]
        expr = parts[0]
        for part in parts[1:]:
            expr = Binary("|", expr, part)
        return Imm(expr)
    try:
        value = int(t, 0)
    except ValueError:
        return Imm(Sym(t))
    return Imm(Num(value), value)


def insn(text: str, loc: Loc = LOC) -> Instruction:
    """`(p6) ld8 r16=[r17],8` -> an Instruction, as the parser will build it."""
    qp = None
    if m := re.match(r"\((p\d+)\)\s*", text):
        qp, text = m.group(1), text[m.end() :]
    mnemonic, _, ops = text.strip().partition(" ")
    dests, eq, srcs = ops.partition("=")
    if not eq:
        dests, srcs = "", ops
    split = lambda s: tuple(_operand(o) for o in s.split(",") if o.strip())  # noqa: E731
    return Instruction(mnemonic, split(dests), split(srcs), loc, qp)


def fx(text: str):
    return effects_of(insn(text))


# --------------------------------------------------------------------------- compares (primer section 5)

CTYPES = [
    # ctype, must when qp=p0, must when qp=p5, may when qp=p0, may when qp=p5
    ("", {"p6", "p7"}, set(), set(), {"p6", "p7"}),
    (".unc", {"p6", "p7"}, {"p6", "p7"}, set(), set()),
    (".or", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
    (".and", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
    (".or.andcm", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
    (".orcm", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
    (".andcm", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
    (".and.orcm", set(), set(), {"p6", "p7"}, {"p6", "p7"}),
]


@pytest.mark.parametrize("ctype,must0,must5,may0,may5", CTYPES)
@pytest.mark.parametrize(
    "template", ["cmp.eq{} p6,p7=r16,r17", "cmp4.ne{} p6,p7=5,r17", "tbit.z{} p6,p7=r16,3", "tnat.nz{} p6,p7=r16"]
)
def test_compare_types(template, ctype, must0, must5, may0, may5):
    plain = fx(template.format(ctype))
    assert plain.must_writes == must0 and plain.may_writes == may0
    guarded = fx("(p5) " + template.format(ctype))
    assert guarded.must_writes == must5 and guarded.may_writes == may5
    assert "p5" in guarded.reads and "p5" not in plain.reads
    assert "r16" in plain.reads or "r17" in plain.reads


def test_parallel_compare_with_r0_relation():
    e = fx("cmp.lt.or p6,p7=r0,r16")
    assert e.may_writes == {"p6", "p7"} and not e.must_writes and e.reads == {"r16"}


def test_writes_to_p0_and_reads_of_r0_vanish():
    e = fx("cmp.eq p6,p0=r16,r0")
    assert e.must_writes == {"p6"} and e.reads == {"r16"}
    assert fx("(p0) mov r16=r17").must_writes == {"r16"}  # (p0) is no predicate at all
    assert fx("mov.m ar.rsc=r0").reads == set()
    assert fx("mov f6=f0").reads == set() and fx("mov f6=f1").must_writes == {"f6"}


def test_fp_compare_unc_and_frcpa():
    assert fx("(p5) fcmp.eq.unc.s1 p6,p7=f8,f9").must_writes == {"p6", "p7"}
    assert fx("(p5) fcmp.eq.s1 p6,p7=f8,f9").may_writes >= {"p6", "p7"}
    assert fx("frcpa.s1 f8,p6=f9,f10").must_writes == {"f8", "p6"}


# --------------------------------------------------------------------------- predicates as a whole


@pytest.mark.parametrize(
    "mask,written",
    [
        ("-1", P1_63),
        ("0x1ffff", P1_63),
        ("0xffffffffffffffff", P1_63),
        ("0x1003e", {"p1", "p2", "p3", "p4", "p5"} | P16_63),
        ("0xff3e", {"p1", "p2", "p3", "p4", "p5"} | {f"p{i}" for i in range(8, 16)}),
        ("0x10000", P16_63),
        ("-65536", P16_63),
        ("1", set()),
        ("0x3", {"p1"}),
        ("0xc0", {"p6", "p7"}),
    ],
)
def test_mov_to_pr_mask(mask, written):
    e = fx(f"mov pr=r16,{mask}")
    assert e.must_writes == written and not e.may_writes and e.reads == {"r16"}


def test_mov_to_pr_unknown_mask_and_predicated():
    e = fx("mov pr=r16,PR_MASK")
    assert e.may_writes == P1_63 and not e.must_writes
    e = fx("(p6) mov pr=r16,0xc0")
    assert e.may_writes == {"p6", "p7"} and e.reads == {"p6", "r16"}


def test_mov_to_pr_mask_out_of_range():
    with pytest.raises(IvtxError) as err:
        fx("mov pr=r16,0x20000")
    assert err.value.loc == LOC and "17 bits" in err.value.message


def test_whole_predicate_moves():
    assert fx("mov pr=r16").must_writes == P1_63
    assert fx("mov pr.rot=0x10000").must_writes == P16_63
    e = fx("mov r31=pr")
    assert e.reads == P1_63 and e.must_writes == {"r31"}


# --------------------------------------------------------------------------- predication, memory


def test_predicated_instruction_is_a_may_def_and_reads_its_predicate():
    e = fx("(p6) ld8 r16=[r17]")
    assert e.must_writes == set() and e.may_writes == {"r16"}
    assert e.reads == {"p6", "r17", "mem"}
    assert fx("ld8 r16=[r17]").must_writes == {"r16"}


def test_post_increment_writes_the_base():
    e = fx("ld8 r16=[r17],8")
    assert e.must_writes == {"r16", "r17"} and e.reads == {"r17", "mem"} and "load" in e.flags
    assert fx("ld8 r16=[r17],r18").reads == {"r17", "r18", "mem"}
    e = fx("st8 [r17]=r16,8")
    assert e.must_writes == {"r17"} and e.reads == {"r16", "r17"} and e.may_writes == {"mem", "alat"}
    e = fx("(p7) st8 [r17]=r16,8")
    assert e.must_writes == set() and e.may_writes == {"r17", "mem", "alat"}
    assert fx("lfetch.fault.excl.nt1 [r17],128").must_writes == {"r17"}
    assert fx("stf.spill [r2]=f6,32").must_writes == {"r2"}
    assert fx("ldf.fill f6=[r2],32").must_writes == {"f6", "r2"}


def test_spill_fill_touch_unat():
    e = fx("st8.spill [r17]=r11,16")
    assert e.may_writes == {"mem", "alat", "ar.unat"} and e.must_writes == {"r17"}
    e = fx("ld8.fill r4=[r14],16")
    assert "ar.unat" in e.reads and e.must_writes == {"r4", "r14"}


def test_check_load_may_not_write_its_target():
    e = fx("ld8.c.clr r16=[r17]")
    assert "r16" in e.may_writes and "r16" not in e.must_writes and "alat" in e.reads
    assert "speculative" in fx("ld8.s r16=[r17]").flags


def test_semaphores():
    e = fx("cmpxchg8.acq r26=[r17],r25,ar.ccv")
    assert e.reads == {"r17", "r25", "ar.ccv", "mem"} and e.must_writes == {"r26"}
    assert {"load", "store"} <= e.flags and "mem" in e.may_writes
    assert fx("fetchadd4.rel r2=[r3],1").must_writes == {"r2"}


# --------------------------------------------------------------------------- branches, system


def test_br_call():
    e = fx("br.call.sptk.many rp=ia64_syscall_setup")
    assert e.must_writes >= {"b0", "ar.pfs", "cfm", "ar.bsp"} and {"branch", "call"} <= e.flags
    assert {"cfm", "ar.bsp", "ar.ec"} <= e.reads  # the new bsp and pfs are built from the old state
    e = fx("br.call.sptk.many b6=b7")
    assert "b7" in e.reads and "indirect" in e.flags and "b6" in e.must_writes
    e = fx("(p6) br.call.dpnt.many b0=foo")
    assert {"b0", "ar.pfs", "cfm"} <= e.may_writes and not e.must_writes


def test_br_ret_and_plain_branches():
    e = fx("br.ret.sptk.many rp")
    assert e.reads >= {"b0", "ar.pfs"} and "cfm" in e.must_writes and "return" in e.flags
    e = fx("(p6) br.cond.spnt.many page_fault")
    assert e.reads == {"p6"} and not e.writes and e.flags == {"branch"}
    assert fx("br.sptk.many b0").reads == {"b0"}
    assert fx("mov b0=r30").must_writes == {"b0"}
    assert fx("mov.ret.sptk b7=r28,1f").must_writes == {"b7"}


@pytest.mark.parametrize("bank", [0, 1])
def test_bsw(bank):
    e = fx(f"bsw.{bank}")
    assert e.must_writes == {"psr.bn"} and e.bank == bank
    assert {"bank_switch", "ends_group", "privileged", "sensitive"} <= e.flags
    with pytest.raises(IvtxError, match="cannot be predicated"):
        fx(f"(p6) bsw.{bank}")


def test_rfi():
    e = fx("rfi")
    assert {"cr.ipsr", "cr.iip", "cr.ifs"} <= e.reads
    assert {"psr.bn", "psr.ic", "psr.i", "psr.dt", "psr.it", "psr.cpl"} <= e.must_writes
    assert "cfm" in e.may_writes and {"exit", "branch", "ends_group", "privileged"} <= e.flags
    assert e.bank is None


@pytest.mark.parametrize(
    "text,written",
    [
        ("rsm psr.dt", {"psr.dt"}),
        ("rsm psr.dt|psr.i", {"psr.dt", "psr.i"}),
        ("ssm psr.ic|psr.i|psr.dt|psr.dfh", {"psr.ic", "psr.i", "psr.dt", "psr.dfh"}),
        ("ssm psr.ic|0", {"psr.ic"}),
        ("ssm 0x6000", {"psr.i", "psr.ic"}),
        ("rsm psr.be|psr.up|psr.ac|psr.mfl|psr.mfh|psr.pk|psr.sp|psr.pp|psr.di|psr.si",
         {"psr.be", "psr.up", "psr.ac", "psr.mfl", "psr.mfh", "psr.pk", "psr.sp", "psr.pp", "psr.di", "psr.si"}),
        ("sum psr.up", {"psr.up"}),
    ],
)
def test_system_mask_writes_exactly_the_named_bits(text, written):
    e = fx(text)
    assert e.must_writes == written and not e.may_writes


def test_system_mask_unknown_and_out_of_range():
    e = fx("ssm PSR_DEFAULT_BITS")
    assert not e.must_writes and {"psr.i", "psr.ic", "psr.dt", "psr.be", "psr.si"} <= e.may_writes
    assert "psr.bn" not in e.may_writes and "psr.rt" not in e.may_writes
    assert fx("rsm psr.cpl").may_writes == fx("ssm PSR_DEFAULT_BITS").may_writes  # gas has no psr.cpl symbol
    with pytest.raises(IvtxError, match="outside psr bits 0-23") as err:
        fx("rsm psr.bn")
    assert err.value.loc == LOC
    assert fx("(p6) ssm psr.i").may_writes == {"psr.i"}


def test_cover_itc_thash_ivr_alloc():
    e = fx("cover")
    assert "cfm" in e.must_writes and "cr.ifs" in e.may_writes and {"ends_group", "sensitive"} <= e.flags
    e = fx("(p7) itc.d r18")
    assert e.reads == {"p7", "r18", "cr.ifa", "cr.itir", "rr", "psr.ic"} and e.may_writes == {"tlb"}
    assert {"privileged", "ends_group", "needs_ic_off"} <= e.flags
    e = fx("itr.d dtr[r20]=r18")
    assert {"r20", "r18", "cr.ifa", "cr.itir"} <= e.reads and "tlb" in e.may_writes
    e = fx("thash r17=r16")
    assert e.reads == {"r16", "cr.pta", "rr"} and "sensitive" in e.flags and "privileged" not in e.flags
    assert fx("ttag r17=r16").reads == {"r16", "rr"}
    e = fx("mov r16=cr.ivr")
    assert {"cr.ivr_state", "cr.irr0"} <= e.may_writes and {"cr.ivr_state", "cr.tpr"} <= e.reads
    e = fx("alloc r16=ar.pfs,0,0,0,0")
    assert e.must_writes == {"r16", "cfm"} and "starts_group" in e.flags
    e = fx("loadrs")
    assert "cfm" in e.reads and "cfm" not in e.writes and "ar.bspstore" in e.must_writes


def test_cr_and_indirect_moves():
    e = fx("mov r16=cr.ifa")
    assert e.reads == {"cr.ifa", "psr.ic"} and {"privileged", "needs_ic_off"} <= e.flags
    assert "needs_ic_off" not in fx("mov cr.dcr=r16").flags
    assert fx("mov rr[r8]=r9").may_writes == {"rr"}
    assert fx("mov r8=cpuid[r9]").reads == {"r9", "cpuid"}
    assert fx("mov r16=ip").reads == {"ip"}
    assert fx("mov r2=psr").reads >= {"psr.ic", "psr.it", "psr.mc"} and "psr.bn" not in fx("mov r2=psr").reads
    assert "psr.bn" not in fx("mov psr.l=r2").must_writes and "psr.rt" in fx("mov psr.l=r2").must_writes


def test_unnamed_application_register():
    assert fx("mov r2=ar.48").reads == {"ar.48"} and fx("mov ar.48=r2").must_writes == {"ar.48"}


@pytest.mark.parametrize(
    "text,privileged,sensitive",
    [
        ("mov r16=cr.ipsr", True, True), ("mov cr.iip=r16", True, True), ("mov psr.l=r16", True, True),
        ("mov r16=psr", True, True), ("rsm psr.i", True, True), ("ssm psr.i", True, True),
        ("bsw.0", True, True), ("rfi", True, True), ("itc.i r18", True, True), ("itr.i itr[r2]=r3", True, True),
        ("ptc.l r16,r17", True, True), ("ptc.g r16,r17", True, True), ("ptc.e r16", True, True),
        ("ptr.d r16,r17", True, True), ("tak r1=r3", True, True), ("tpa r8=r8", True, True),
        ("mov rr[r8]=r9", True, True), ("mov pkr[r8]=r9", True, True), ("mov dbr[r8]=r9", True, True),
        ("mov ibr[r8]=r9", True, True), ("mov pmc[r8]=r9", True, True), ("mov pmd[r8]=r9", True, True),
        ("mov ar.k6=r2", True, True), ("mov ar.itc=r2", True, True),
        ("mov r2=cpuid[r3]", False, True), ("mov r2=pmd[r3]", False, True), ("mov r2=ar.itc", False, True),
        ("fc r16", False, True), ("fc.i r16", False, True), ("thash r17=r16", False, True),
        ("ttag r17=r16", False, True), ("cover", False, True),
        ("mov r2=ar.k6", False, False), ("mov r2=psr.um", False, False), ("mov psr.um=r2", False, False),
        ("sum psr.up", False, False), ("mov r2=ar.ccv", False, False), ("ld8 r2=[r3]", False, False),
    ],
)
def test_sensitivity_flags(text, privileged, sensitive):
    flags = fx(text).flags
    assert ("privileged" in flags) == privileged and ("sensitive" in flags) == sensitive


# --------------------------------------------------------------------------- errors


def test_unknown_mnemonic_is_an_error_with_loc():
    here = Loc("entry.S", 7, 2)
    with pytest.raises(IvtxError) as err:
        effects_of(insn("frobnicate r1=r2", here))
    assert err.value.loc == here
    assert err.value.message.startswith("unknown instruction 'frobnicate' with operands 'r1 = r2'")


def test_unknown_completer_and_wrong_operands_are_errors():
    with pytest.raises(IvtxError, match="unknown instruction 'ld8.zz'"):
        fx("ld8.zz r16=[r17]")
    with pytest.raises(IvtxError, match=r"ld8 takes: r = \[r\]"):
        fx("ld8 r16=r17")
    with pytest.raises(IvtxError, match="br.ret"):
        fx("br.ret b0")  # gas wants a hint once a branch type is written


def test_known_mnemonic():
    known = ("ld8.c.clr.acq.nta", "ld8.fill.nt1", "br.call.sptk.many", "br.many", "cmp4.ltu.unc",
             "lfetch.fault.excl.nt1", "mov.m")
    for m in known:
        assert known_mnemonic(m), m
    for m in ("ld8.zz", "mov.x", "br.ret", "cmp.ltu.or", "pshl2.u", "hint.b", "ld3"):
        assert not known_mnemonic(m), m


# --------------------------------------------------------------------------- table validation

GOOD = """\
pseudo mem
completers hint = .nt1 .nta
regs ccv = ar.ccv

form ld
  match ld{1|8}[@hint]   r = [r]
  reads s1 mem
  writes d1
  flags load

form ccv
  match mov   ccv = r
  reads s1
  writes d1
"""


def _broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_good_table_loads():
    table = load_table(GOOD, "t.txt")
    assert table.known_mnemonic("ld8.nta") and not table.known_mnemonic("ld2")
    e = effects_of(insn("ld1.nt1 r2=[r3]"), table)
    assert e.form == "ld" and e.must_writes == {"r2"} and e.reads == {"r3", "mem"}


@pytest.mark.parametrize(
    "old,new,line,message",
    [
        ("r = [r]", "r = [x]", 6, "unknown operand class '[x]'"),
        ("reads s1 mem", "reads s1 memory", 7, "unknown location class 'memory'"),
        ("reads s1 mem", "reads s1 r0", 7, "unknown location class 'r0'"),
        ("reads s1 mem", "reads s1 psr.bogus", 7, "unknown location class 'psr.bogus'"),
        ("writes d1\n  flags", "writes d1 s1 s3\n  flags", 8, "'s3' does not exist in shape 'r = [r]' (t.txt:6)"),
        ("  writes d1\n  flags load", "  writes d1\n  flags load shiny", 9, "unknown flag 'shiny'"),
        ("  flags load", "  flags load bank_switch", 9, "bank_switch"),
        ("form ccv", "form ld", 11, "duplicate form 'ld' (first at t.txt:5)"),
        ("  match mov   ccv = r", "  match ld{1|8}[@hint]   r = [r]", 12, "duplicate row (same as t.txt:6)"),
        ("  match mov   ccv = r", "  match ld8.nta   r = [r]", 12, "orphan row, it can never match (taken by t.txt:6)"),
        ("[@hint]", "[@hints]", 6, "unknown completer class '@hints'"),
        ("[@hint]", "", 2, "completer class 'hint' is declared but used by no row"),
        ("reads s1 mem", "reads s1", 1, "pseudo-location 'mem' is declared but used by no row"),
        ("match mov   ccv = r", "match mov   ar.ccv = r", 3, "register class 'ccv' is declared but used by no row"),
        ("regs ccv = ar.ccv", "regs ccv = ar.ccv ar.bogus", 3, "unknown register 'ar.bogus'"),
        ("match mov   ccv = r\n  reads s1", "match mov   ccv = imm\n  reads s1", 13,
         "'s1' is 'imm', which is not a location"),
        ("  writes d1\n  flags load", "  writes prmask(d1)\n  flags load", 8, "must be an immediate"),
        ("match ld{1|8}", "match ld{1|8", 6, "unbalanced"),
        ("pseudo mem", "pseudo mem\nbogus thing", 2, "unknown declaration"),
        ("form ccv", "form ccv\n  reads r1\n  reads r2", 13, "'reads' given twice"),
        ("form ccv\n", "form ccv\n  frob r1\n", 12, "unexpected indented line"),
    ],
)
def test_broken_rows_are_rejected_naming_file_and_line(old, new, line, message):
    with pytest.raises(IvtxError) as err:
        load_table(_broken(old, new), "t.txt")
    assert (err.value.loc.file, err.value.loc.line) == ("t.txt", line), err.value.message
    assert message in err.value.message


def test_shipped_table_declares_every_flag_it_uses_and_marks_privileged_sensitive():
    table = default_table()
    assert all("sensitive" in f.flags for f in table.forms if "privileged" in f.flags)
    names = [f.name for f in table.forms]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- coverage

# Every mnemonic that the Linux ivt.S / minstate.h / entry.S / fsys.S / pal.S use.
LINUX_MNEMONICS = """
add addl adds alloc and andcm br.call.dpnt.many br.call.dptk.few br.call.spnt br.call.spnt.many
br.call.sptk.many br.cond.dpnt br.cond.dpnt.few br.cond.dpnt.many br.cond.dptk br.cond.spnt
br.cond.spnt.few br.cond.spnt.many br.cond.sptk br.cond.sptk.few br.cond.sptk.many br.many
br.ret.dptk.many br.ret.sptk br.ret.sptk.many br.spnt.few br.spnt.many br.sptk.many break bsw.0
bsw.1 cmp.eq cmp.eq.or.andcm cmp.eq.unc cmp.ge cmp.gt cmp.gt.unc cmp.leu cmp.lt cmp.ne cmp.ne.or
cmp.ne.or.andcm cmp4.eq cmp4.ge cmp4.ltu cmp4.ne cmp4.ne.unc cmpxchg8.acq cmpxchg8.rel cover dep
dep.z extr.u flushrs getf.sig invala itc.d itc.i itr.d ld1 ld1.bias ld4 ld4.acq ld8 ld8.fill
ldf.fill lfetch lfetch.fault.excl.nt1 lfetch.fault.nt1 loadrs mf mov mov.i mov.m mov.ret.sptk
mov.sptk movl nop nop.b nop.i nop.m or probe.w.fault ptc.l rfi rsm setf.sig shl shladd shr shr.u
srlz.d srlz.i ssm st1 st2 st4 st8 st8.spill stf.spill sub sxt4 sync.i tbit.nz tbit.nz.unc tbit.z
thash tnat.nz tnat.nz.or tnat.z tpa xmpy.hu xmpy.l
""".split()

# One instruction per operand shape those files (and IVT code in general) use.
IVT_FORMS = """
mov r16=cr.ifa | mov r19=cr.isr | mov r22=cr.iha | mov r17=cr.iim | mov r28=cr.iip | mov r30=cr.ifs
mov r21=cr.ipsr | mov r18=cr.itir | mov r32=cr.ivr | mov cr.ifa=r22 | mov cr.itir=r25 | mov cr.iha=r17
mov cr.ipsr=r21 | mov cr.ifs=r30 | mov cr.iip=r17 | mov r31=pr | mov pr=r31,-1 | mov pr.rot=0x10000
mov r19=ar.k7 | mov r16=ar.k6 | mov ar.k6=r2 | mov r27=ar.rsc | mov ar.rsc=r0 | mov ar.rsc=3
mov r25=ar.unat | mov ar.unat=r29 | mov r26=ar.pfs | mov ar.pfs=r17 | mov r18=ar.bsp
mov r23=ar.bspstore | mov ar.bspstore=r23 | mov r24=ar.rnat | mov ar.rnat=r24 | mov r21=ar.fpsr
mov r8=ar.ccv | mov ar.ccv=r15 | mov r9=ar.csd | mov ar.ssd=r31 | mov r2=ar.itc | mov r21=ar.lc
mov ar.lc=r17 | mov ar.lc=0 | mov r3=ar.ec | mov.m r24=ar.rnat | mov.m ar.rsc=0 | mov.i r26=ar.pfs
mov r29=b0 | mov b0=r29 | mov.ret.sptk b7=r28,1f | mov.sptk b7=r8,ia64_leave_kernel | mov f2=f0
mov r20=r1 | mov r24=-262144 | movl r19=swapper_pg_dir | mov r8=ip | mov r22=psr | mov psr.l=r3
rsm psr.dt | ssm psr.ic|psr.i | bsw.0 | bsw.1 | cover | rfi | srlz.d | srlz.i | sync.i | mf | invala
flushrs | loadrs | alloc r19=ar.pfs,8,0,0,0 | break 0 | nop 0 | nop.m 0 | nop.i 0 | nop.b 0
shl r21=r16,3 | shr.u r17=r16,61 | shr.u r22=r16,r22 | shr r18=r18,39 | shr r22=r22,r27
shladd r30=r15,3,r30 | dep r17=r17,r19,11,3 | dep r23=0,r20,0,14 | dep.z r17=r26,0,62
extr.u r23=r21,32,2 | add r17=r17,r18 | add r22=-14,r18 | adds r24=0x661,r23 | addl r22=123,r1
sub r19=r19,r26 | sub r9=0,r8 | and r19=r19,r16 | and r22=0xf,r20 | andcm r18=0x10,r18
or r19=r17,r19 | sxt4 r8=r8 | getf.sig r2=f8 | setf.sig f7=r3 | xmpy.l f8=f8,f7 | xmpy.hu f8=f8,f7
cmp.eq p6,p7=5,r17 | cmp.eq p6,p7=r17,r0 | cmp.eq.or.andcm p6,p7=r20,r0 | cmp.ne.or p6,p0=4,r18
cmp.eq.unc p6,p0=r0,r0 | cmp4.ne.unc p6,p0=r15,r0 | cmp.leu p6,p7=r15,r3 | cmp4.ltu p6,p0=1,r32
tbit.z p6,p7=r18,0 | tbit.nz.unc p10,p11=r19,32 | tnat.nz p8,p0=r32 | tnat.nz.or p7,p0=r15
ld8 r17=[r17] | ld8 r27=[r2],16 | ld4.acq r28=[r20] | ld1.bias r17=[r16] | ld8.fill r12=[r2]
ld8.fill r4=[r14],16 | ldf.fill f12=[sp] | ldf.fill f2=[r14],32 | st1 [r16]=r0 | st8 [r17]=r18
st8 [r16]=r29,16 | st8.spill [r17]=r15 | st8.spill [r17]=r11,16 | stf.spill [r2]=f10
stf.spill [r2]=f6,32 | lfetch [r21] | lfetch.fault.excl.nt1 [r17],128 | lfetch.fault.nt1 [sp]
cmpxchg8.acq r26=[r17],r25,ar.ccv | probe.w.fault r31,3 | itc.i r18 | itc.d r18 | itr.d dtr[r25]=r23
ptc.l r16,r17 | thash r17=r16 | tpa r8=r8 | fc r16 | br.sptk.many dispatch_to_fault_handler
br.call.sptk.many rp=ia64_syscall_setup | br.call.sptk.many b6=b6 | br.cond.sptk.many b7
br.ret.sptk.many rp | br.many b7 | br.cond.spnt page_fault | (p6) br.cond.dpnt.few .map
""".replace("\n", " | ").split(" | ")


@pytest.mark.parametrize("mnemonic", LINUX_MNEMONICS)
def test_linux_mnemonics_are_known(mnemonic):
    assert known_mnemonic(mnemonic)


def test_ivt_forms_all_resolve():
    missing = []
    for text in filter(str.strip, IVT_FORMS):
        try:
            fx(text.strip())
        except IvtxError as err:
            missing.append(err.message)
    assert not missing, "\n".join(missing)


# --------------------------------------------------------------------------- gas round trip

GAS = shutil.which("ia64-linux-gnu-as")


def _sample_operands(table, form, match) -> str:
    """Operands for one match line: its `e.g.` text, else made up from the shape."""
    if match.example:
        return match.example
    used = Counter()
    pools = {"d": {"r": "r2 r8", "f": "f6 f7", "p": "p6 p7", "b": "b6 b7"},
             "s": {"r": "r3 r4 r5", "f": "f8 f9 f10", "p": "p8", "b": "b7"}}

    def one(side: str, cls: str) -> str:
        if cls in pools[side]:
            used[side, cls] += 1
            return pools[side][cls].split()[used[side, cls] - 1]
        if cls == "imm":
            return "foo" if form.flags & {"branch", "check"} else "1"
        if cls.endswith("[r]"):
            return cls[:-3] + "[r3]"
        return {"ar": "ar.ccv", "cr": "cr.dcr"}.get(cls) or min(table.regs.get(cls, ({cls},))[0])

    dests = ", ".join(one("d", c) for c in match.shape.dests)
    srcs = ", ".join(one("s", c) for c in match.shape.srcs)
    return f"{dests} = {srcs}" if dests else srcs


@pytest.mark.skipif(GAS is None, reason="ia64-linux-gnu-as (binutils-ia64-linux-gnu) not installed")
def test_every_mnemonic_the_table_accepts_assembles(tmp_path):
    """The table accepts no mnemonic/operand shape that GNU as would reject."""
    table = default_table()
    lines, origin = [], []
    for form in table.forms:
        for match in form.matches:
            ops = _sample_operands(table, form, match)
            for mnemonic in sorted(match.mnemonics):
                lines.append(f"\t{mnemonic} {ops} ;;")
                origin.append(f"{table.name}:{match.line} ({form.name}) {mnemonic} {ops}")
    source = tmp_path / "all.s"
    source.write_text("\n".join(lines) + "\nfoo:\n")
    run = subprocess.run([GAS, "-xnone", str(source), "-o", str(tmp_path / "all.o")], capture_output=True, text=True)
    errors = [l for l in run.stderr.splitlines() if "Error:" in l]
    report = [f"{origin[int(e.split(':')[1]) - 1]}: {e.split('Error: ')[1]}" for e in errors]
    assert not report, "\n".join(report[:40])
    assert len(lines) > 2000
