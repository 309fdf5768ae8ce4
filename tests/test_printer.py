"""ivtx.printer: parse -> print -> parse gives an equal IR, and gas assembles both to the same bytes."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivtx import ir
from ivtx.parse import fold, parse_text
from ivtx.printer import first_difference, format_expr, format_statement, ir_equal, print_program, strip_locs

GAS = shutil.which("ia64-linux-gnu-as")
OBJDUMP = shutil.which("ia64-linux-gnu-objdump")

SAMPLES = {
    "tlb_miss": """\
\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
\t.align 32; .proc vhpt_miss; vhpt_miss:
\tmov r16 = cr.ifa
\tmovl r18=14
\t;;
\trsm psr.dt
\tmov r31=pr
\tmov r19=ar.k7
\tshl r21=r16,3
\tshr.u r17=r16,61
\t;;
\tcmp.eq p6,p7=5,r17
\tshr.u r18=r22,((14 + ((14 -3))) + ((14 -3)))
\t;;
(p7)\tdep r17=r17,r19,(14 -3),3
\tsrlz.d
\t[1:](p6)movl r19 = swapper_pg_dir; .xdata4 ".data..patch.vtop", 1b-.
\t.pred.rel "mutex", p6, p7
(p6)\tshr.u r21=r21,((14 + ((14 -3))) + ((14 -3)))+14
(p7)\tshr.u r21=r21,((14 + ((14 -3))) + ((14 -3)))+14 -3
\t;;
\tld8 r17=[r17]
\t;;
(p7)\tcmp.eq.or.andcm p6,p7=r20,r0
\t(p10) itc.i r18; (p11) itc.d r18
(p6)\tbr.cond.spnt.many page_fault
\tadds r24=(1 << 5) | (1 << 0) | (1 << 6) | (0x0 << 2)|(0 << 7)|(2 << 9),r23
\tmov pr=r31,-1
\trfi
.endp vhpt_miss
\t.org ia64_ivt+0x400
\t.align 32; .proc itlb_miss; itlb_miss:
\tmov r16 = cr.ifa
\tmov r29=b0
\tmovl r30=1f
\t;;
1:\tld8 r18=[r17]
\t;;
\tmov b0=r29
\ttbit.z p6,p0=r18,0
(p6)\tbr.cond.spnt page_fault
\t;;
\tmov r31=pr; mov r19=6;; br.sptk.many dispatch_to_fault_handler
.endp itlb_miss
""",
    "bundles_and_unwind": """\
\t.text
\t.global f
\t.proc f
f:
\t.prologue
\t.save ar.pfs, r34
\talloc r34=ar.pfs,2,2,1,0
\t.save rp, r35
\tmov r35=rp
\t.body
\tmov out0=in1
\tadds loc0=16,in0
\t;;
{ .mib; nop.m 0; mov r16=ar.pfs; br.call.sptk.many b7=2f;; }
2:{ .mlx
\tnop.m 0
\tmovl r2=0x123456789abcdef0
};
{ .mmi
\tst8.spill [r16]=r12,16
\tld8.fill r13=[r17],-8
\tnop.i 0x10 ;;
}
\t.mem.offset 0,0; st8.spill [r2]=r3,8
\t.mem.offset 8,0; st8.spill [r4]=r5,8
\tmov ar.rsc=0
\tmov r9=ar.bsp
\tmov r10=ar40
\tmov r11=cpuid[r3]
\tmov rr[r8]=r9
\tmov psr.l=r16
\tmov r2=psr.um
\tmov pr.rot=0x10000
\tssm psr.ic | psr.dt
\t;;
\tsrlz.i
\taddl r14=@gprel(foo),gp
\taddl r15=@ltoff(@fptr(f)),gp
\tcmp4.ltu.unc p8,p9=r1,r2
\tfma.s.s1 f6=f7,f8,f9
\tbr.ret.sptk.many rp
\t.endp f
""",
    "data_and_symbols": """\
\t.data
N = 4
\t.set M, N*2+1
1:
buf:\tdata8 M, N << 2, -1, 'i', 010, 0b11, 1b-., ~0
\tdata4 6&3==2, 1|1+1, 2 ! 1
\t.byte 1,2,3
\t.ascii "a;b" "\\n"
\t.asciz "x"
\t.align 8
\t.skip 16
\t.quad buf
\t.xdata8 ".data", buf
""",
    "macros": """\
\t.macro SAVE reg, off=8, what:req
\tst8 [\\reg]=\\what,\\off
\t.endm
\t.text
g:
\tSAVE r16, 16, r17
\tSAVE r18, what=r19
\t.rept 3
\tnop.i 0
\t.endr
\t.irp r, r21, r22
\tmov \\r=r0
\t.endr
""",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_ir(name):
    prog = parse_text(SAMPLES[name], f"{name}.s")
    text = print_program(prog)
    again = parse_text(text, "printed.s")
    assert ir_equal(prog, again), first_difference(prog, again)
    # and printing is a fixed point
    assert print_program(again) == text


def test_ir_equal_can_fail():
    a = parse_text("mov r1=r2\n")
    b = parse_text("mov r1=r3\n")
    assert not ir_equal(a, b)
    assert "statement 0" in first_difference(a, b)
    assert strip_locs(a)[0].loc is None


def test_print_format():
    prog = parse_text("[1:](p6)movl r19 = swapper_pg_dir;; { .mii\n}\nfoo: RFI\nMOV_FROM_IFA(r16)\nx = 1+2\n"
                      "mov r16=ar20\n")
    assert print_program(prog).splitlines() == [
        "\t[1:] (p6) movl r19 = swapper_pg_dir", "\t;;", "{ .mii", "}", "foo:", "\tRFI", "\tMOV_FROM_IFA(r16)",
        "\tx = 1 + 2", "\tmov r16 = ar20",
    ]


def _assemble(tmp_path, name: str, text: str) -> str:
    src = tmp_path / f"{name}.s"
    obj = tmp_path / f"{name}.o"
    src.write_text(text)
    run = subprocess.run([GAS, "-x", "-o", str(obj), str(src)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    dump = subprocess.run([OBJDUMP, "-s", "-r", str(obj)], capture_output=True, text=True, check=True).stdout
    return dump.split("\n", 2)[2]  # drop the file name header


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_same_bytes_as_original(tmp_path, name):
    if not (GAS and OBJDUMP):
        if os.environ.get("IVTX_REQUIRE_GAS") == "1":
            pytest.fail("ia64-linux-gnu-as not on PATH and IVTX_REQUIRE_GAS=1")
        pytest.skip("ia64-linux-gnu-as not on PATH (Debian package binutils-ia64-linux-gnu)")
    text = SAMPLES[name]
    printed = print_program(parse_text(text, f"{name}.s"))
    original = _assemble(tmp_path, "orig", text)
    assert "Contents of section" in original
    assert _assemble(tmp_path, "printed", printed) == original


# ---------------------------------------------------------------------------- expressions

_leaf = st.one_of(
    st.integers(0, 1 << 40).map(lambda v: ir.Num(v, str(v))),
    st.integers(0, 255).map(lambda v: ir.Num(v, hex(v))),
    st.sampled_from(["foo", "psr.ic", "psr.dt", "1f", "1b", ".", "bar.baz"]).map(ir.Sym),
)
_OPS = ["*", "/", "%", "<<", ">>", "|", "&", "^", "!", "+", "-", "==", "!=", "<", ">", "<=", ">=", "&&", "||"]
_expr = st.recursive(
    _leaf,
    lambda sub: st.one_of(
        st.builds(ir.Binary, st.sampled_from(_OPS), sub, sub),
        st.builds(ir.Unary, st.sampled_from(["-", "~", "!", "+"]), sub),
        st.builds(ir.Reloc, st.sampled_from(["gprel", "ltoff", "pcrel"]), sub),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_expr)
def test_expressions_print_and_parse_back(e):
    text = format_expr(e)
    (d,) = parse_text(f"\tdata8 {text}\n").statements
    assert d.args[0].expr == e, text
    assert d.args[0].value == fold(e)


def test_statement_kinds_print():
    loc = None
    assert format_statement(ir.Stop(loc)) == "\t;;"
    assert format_statement(ir.BundleBegin(None, loc)) == "{"
    assert format_statement(ir.PvCall("ITC_D", (ir.Reg("p7"), ir.Reg("r24"), ir.Reg("r25")), loc)) == "\tITC_D(p7, r24, r25)"
    assert format_statement(ir.Label("1", loc, True)) == "1:"
