"""ivtx.parse (+ gasmacro, regs, grammars/ia64.lark): IR for each construct, errors at file:line:col."""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess

import pytest

from ivtx import ir
from ivtx.diag import IvtxError, Loc
from ivtx.parse import fold, is_mnemonic, mnemonic_table, parse, parse_text
from ivtx.ppline import PPLine, Preprocessed
from ivtx.regs import AR_NAMES, CR_NAMES

GAS = shutil.which("ia64-linux-gnu-as")
OBJDUMP = shutil.which("ia64-linux-gnu-objdump")
OBJCOPY = shutil.which("ia64-linux-gnu-objcopy")


def need_gas():
    if not (GAS and OBJDUMP and OBJCOPY):
        if os.environ.get("IVTX_REQUIRE_GAS") == "1":
            pytest.fail("ia64-linux-gnu-as/objdump/objcopy not on PATH and IVTX_REQUIRE_GAS=1")
        pytest.skip("ia64-linux-gnu-as not on PATH (Debian package binutils-ia64-linux-gnu)")


def stmts(text: str):
    return parse_text(text, "t.s").statements


def one(text: str):
    (s,) = stmts(text)
    return s


def insn(text: str) -> ir.Instruction:
    s = one(text)
    assert isinstance(s, ir.Instruction), s
    return s


def R(name):
    return ir.Reg(name)


def imm(text_or_value):
    """Imm of a plain decimal number."""
    return ir.Imm(ir.Num(int(text_or_value), str(text_or_value)), int(text_or_value))


def error(text: str, path: str = "t.s") -> IvtxError:
    with pytest.raises(IvtxError) as info:
        parse_text(text, path)
    return info.value


def where(exc: IvtxError) -> str:
    return str(exc.loc)


# ---------------------------------------------------------------------------- labels, tags, predicates


def test_labels_local_labels_and_references():
    s = stmts("foo:\n1:\tld8 r18=[r17]\n\tbr.cond.sptk 1b\n.itlb_fault: mov r1=r2\n\tmovl r30=1f\n")
    assert [type(x).__name__ for x in s] == ["Label", "Label", "Instruction", "Instruction", "Label", "Instruction", "Instruction"]
    assert (s[0].name, s[0].local) == ("foo", False)
    assert (s[1].name, s[1].local) == ("1", True)
    assert s[3].srcs == (ir.Imm(ir.Sym("1b")),)
    assert s[4].name == ".itlb_fault"
    assert s[6].srcs == (ir.Imm(ir.Sym("1f")),)
    assert s[2].loc == Loc("t.s", 2, 4)  # "1:\t" then ld8 at column 4


def test_tag_and_predicate():
    i = insn("[1:](p6)movl r19 = swapper_pg_dir")
    assert (i.tag, i.qp, i.mnemonic) == ("1", "p6", "movl")
    assert i.dests == (R("r19"),) and i.srcs == (ir.Imm(ir.Sym("swapper_pg_dir")),)
    assert insn("(p0) itc.i r18").qp == "p0"
    assert insn("mov r1=r2").qp is None and insn("mov r1=r2").pred == "p0"


def test_tag_alone_applies_to_next_instruction():
    s = stmts('\t.xdata4 "__mca_table", 1f-., 99f-.; [99:]\n\tld8 r2=[r3]\n')
    assert isinstance(s[0], ir.Directive) and s[1].tag == "99"


# ---------------------------------------------------------------------------- bundles and stops


def test_stops_and_bundles_mid_line():
    s = stmts("\tmov r31=pr;;\t(p6) br.cond.spnt page_fault;;\n")
    assert [type(x).__name__ for x in s] == ["Instruction", "Stop", "Instruction", "Stop"]
    assert s[2].qp == "p6" and s[2].mnemonic == "br.cond.spnt"
    assert s[1].loc == Loc("t.s", 1, 12) and s[3].loc == Loc("t.s", 1, 43)
    s = stmts("\t{ .mib; nop.m 0; nop.i 0; br.sptk b0;; }\n")
    assert [type(x).__name__ for x in s] == ["BundleBegin", "Instruction", "Instruction", "Instruction", "Stop", "BundleEnd"]
    assert s[0].template == "mib" and s[3].srcs == (R("b0"),)
    s = stmts("1:{ .mlx\n\tnop.m 0\n\tmovl r2=0x1234;;\n};\n")
    assert isinstance(s[0], ir.Label) and s[1].template == "mlx" and isinstance(s[-1], ir.BundleEnd)


def test_semicolons_that_are_not_stops():
    s = stmts("mov r1 = r2 ; ; mov r3=r4 ;;; mov r5=r6\n")
    kinds = [type(x).__name__ for x in s]
    assert kinds == ["Instruction", "Instruction", "Stop", "Instruction"]


# ---------------------------------------------------------------------------- registers


@pytest.mark.parametrize("text,name", [
    ("r0", "r0"), ("r127", "r127"), ("f127", "f127"), ("p63", "p63"), ("b7", "b7"),
    ("ar.k7", "ar.k7"), ("ar7", "ar.k7"), ("ar36", "ar.unat"), ("AR.PFS", "ar.pfs"), ("ar.ccv", "ar.ccv"),
    ("ar.itc", "ar.itc"), ("ar.bspstore", "ar.bspstore"), ("ar.lc", "ar.lc"), ("ar.ec", "ar.ec"),
    ("ar20", "ar.20"), ("cr.ifa", "cr.ifa"), ("cr20", "cr.ifa"), ("Cr.IFA", "cr.ifa"), ("cr.ivr", "cr.ivr"),
    ("cr3", "cr.3"), ("psr", "psr"), ("psr.l", "psr.l"), ("psr.um", "psr.um"), ("pr", "pr"), ("pr.rot", "pr.rot"),
    ("ip", "ip"), ("sp", "r12"), ("gp", "r1"), ("tp", "r13"), ("rp", "b0"), ("ret0", "r8"), ("ret3", "r11"),
    ("farg0", "f8"), ("fret7", "f15"),
])
def test_register_names(text, name):
    assert R(name) in insn(f"mov r2={text}").srcs + insn(f"mov r2={text}").dests


def test_numbered_names_are_lower_case_only_like_gas():
    # gas takes `R16` for a symbol (it refuses `mov R16=r17`), but names like AR.PFS are case-insensitive
    assert insn("mov r2=R16").srcs == (ir.Imm(ir.Sym("R16")),)


def test_indirect_register_files():
    for f in ("rr", "pkr", "dbr", "ibr", "pmc", "pmd", "cpuid", "msr"):
        assert insn(f"mov r16={f}[r3]").srcs == (ir.RegIndex(f, R("r3")),)
    i = insn("itr.d dtr[r3]=r2")
    assert i.dests == (ir.RegIndex("dtr", R("r3")),) and i.srcs == (R("r2"),)
    assert insn("itr.i itr[r20]=r21").dests == (ir.RegIndex("itr", R("r20")),)


def test_memory_operands_and_operand_order():
    i = insn("ld8 r16=[r17],8")
    assert i.dests == (R("r16"),) and i.srcs == (ir.Mem(R("r17")), imm(8))
    i = insn("st8 [r17]=r16,8")
    assert i.dests == (ir.Mem(R("r17")),) and i.srcs == (R("r16"), imm(8))
    i = insn("itc.d r18")
    assert i.dests == () and i.srcs == (R("r18"),)
    i = insn("cmpxchg8.acq r26=[r17],r25,ar.ccv")
    assert i.srcs == (ir.Mem(R("r17")), R("r25"), R("ar.ccv"))
    i = insn("lfetch.fault.excl.nt1 [r22]")
    assert i.srcs == (ir.Mem(R("r22")),)
    i = insn("cmp.eq.or.andcm p6,p7=r20,r0")
    assert i.dests == (R("p6"), R("p7")) and i.completers == ("eq", "or", "andcm")


def test_stacked_registers_follow_alloc():
    s = stmts(".proc f\nf: alloc r2=ar.pfs,2,3,4,0\n\tmov r3=in1\n\tmov r3=loc2\n\tmov r3=out3\n"
              "\tst8 [in0]=out0\n.endp f\n")
    movs = [x for x in s if isinstance(x, ir.Instruction) and x.op in ("mov", "st8")]
    assert [m.srcs[0] for m in movs[:3]] == [R("r33"), R("r36"), R("r40")]
    assert movs[3].dests == (ir.Mem(R("r32")),) and movs[3].srcs == (R("r37"),)
    # alloc's own destination is named in the new frame (gas: r34)
    assert one("alloc loc0=ar.pfs,2,2,2,0\n").dests == (R("r34"),)
    # .regstk sets the frame too; the frame stays in force after .endp, as in gas
    s = stmts(".regstk 1,1,1,0\nmov r1=loc0\n")
    assert s[1].srcs == (R("r33"),)


def test_psr_operands_and_bit_masks():
    i = insn("rsm psr.dt|psr.i")
    assert i.srcs[0].value == (1 << 17) | (1 << 14)
    i = insn("ssm psr.ic | 0")
    assert i.srcs[0].value == 1 << 13
    assert insn("mov psr.l=r16").dests == (R("psr.l"),)
    assert insn("mov r16=psr").srcs == (R("psr"),)
    # psr.cpl is not a gas predefined mask: an unknown symbol
    assert insn("ssm psr.cpl").srcs[0].value is None


# ---------------------------------------------------------------------------- expressions


@pytest.mark.parametrize("text,value", [
    ("1+2<<3", 17), ("1|1+1", 2), ("6&3==2", -1), ("6 ^ 3 & 5", 5), ("5 > 3 + 1", -1),
    ("1 || 0 && 0", 1), ("-16 >> 2", 4611686018427387900), ("-7 / 2", -3), ("-7 % 2", -1),
    ("2 ! 1", -2), ("~0", -1), ("!5", 0), ("'i'", 105), ("'i", 105), ("010", 8), ("0b101", 5),
    ("0x1f", 31), ("1 <> 2", -1), ("1 << 64", 0), ("0xffffffffffffffff", -1), ("(14 + ((14 -3))) + 3", 28),
    ("(1 << 5) | (1 << 0) | (1 << 6) | (0x0 << 2)|(0 << 7)|(2 << 9)", 1121),
])
def test_expression_values_follow_gas(text, value):
    (x,) = one(f"\tdata8 {text}\n").args
    assert x.value == value


def test_expression_trees():
    i = insn("adds r1=@gprel(foo+8),gp")
    assert i.srcs[0] == ir.Imm(ir.Reloc("gprel", ir.Binary("+", ir.Sym("foo"), ir.Num(8, "8"))))
    i = insn("addl r2=@ltoff(@fptr(bar)),gp")
    assert i.srcs[0].expr == ir.Reloc("ltoff", ir.Reloc("fptr", ir.Sym("bar")))
    d = one('\t.xdata4 ".data..patch.vtop", 1b-.\n')
    assert d.args[1] == ir.Imm(ir.Binary("-", ir.Sym("1b"), ir.Sym(".")))


def test_set_symbols_fold_later_uses():
    s = stmts("N = 3\n\t.set M, N+1\n\tadds r1=M*2,r0\n")
    assert s[0] == ir.Directive("=", (ir.Imm(ir.Sym("N")), imm(3)), s[0].loc)
    assert s[2].srcs[0].value == 8


def test_gas_agrees_with_fold(tmp_path):
    """The values fold() computes are the bytes gas emits for the same expressions."""
    need_gas()
    exprs = ["1+2<<3", "1|1+1", "6&3==2", "6 ^ 3 & 5", "5 > 3 + 1", "1 || 0 && 0", "-16 >> 2", "-7 / 2",
             "-7 % 2", "2 ! 1", "~0", "!5", "'i'", "010", "0b101", "1 <> 2", "3 - 1 == 2", "2 * 3 << 1",
             "psr.ic", "psr.i|psr.dt", "psr.bn", "psr.be", "psr.mfl", "psr.ed", "psr.is", "psr.dfh|psr.rt",
             "(-5) / 2 * 3 + 7 % 4", "0x10 - 1 - 1", "1 + - 1", "7 & ~2", "1 >= 2"]
    src = "\t.data\n" + "".join(f"\tdata8 {e}\n" for e in exprs)
    (tmp_path / "e.s").write_text(src)
    subprocess.run([GAS, "-x", "-o", str(tmp_path / "e.o"), str(tmp_path / "e.s")], check=True, capture_output=True)
    subprocess.run([OBJCOPY, "-O", "binary", "-j", ".data", str(tmp_path / "e.o"), str(tmp_path / "e.bin")], check=True)
    data = (tmp_path / "e.bin").read_bytes()
    ours = [d.args[0].value for d in parse_text(src).statements[1:]]
    theirs = [struct.unpack_from("<q", data, 8 * k)[0] for k in range(len(exprs))]
    assert ours == theirs


# ---------------------------------------------------------------------------- directives


@pytest.mark.parametrize("text,name,nargs", [
    ('.section .text..ivt,"ax",@progbits', ".section", 3), (".text", ".text", 0), (".data", ".data", 0),
    (".previous", ".previous", 0), ('.pushsection ".data..patch.x","a"', ".pushsection", 2),
    (".popsection", ".popsection", 0), (".org ia64_ivt+0x400", ".org", 1), (".org 0x10, 0", ".org", 2),
    (".align 32", ".align", 1), (".global foo", ".global", 1), (".globl foo", ".globl", 1), (".weak foo", ".weak", 1),
    (".proc foo", ".proc", 1), (".endp foo", ".endp", 1), (".prologue", ".prologue", 0),
    (".prologue 12, r2", ".prologue", 2), (".body", ".body", 0), (".save ar.pfs, r17", ".save", 2),
    (".save rp, r16", ".save", 2), (".save ar.unat, r9", ".save", 2), (".savesp ar.unat, 16", ".savesp", 2),
    (".savepsp pr, -8", ".savepsp", 2), (".spillsp ar.rnat, 8", ".spillsp", 2), (".spillpsp rp, 8", ".spillpsp", 2),
    (".fframe 16", ".fframe", 1), (".vframe r14", ".vframe", 1), (".altrp b7", ".altrp", 1),
    (".label_state 1", ".label_state", 1), (".copy_state 1", ".copy_state", 1), (".unwabi @svr4, 'i'", ".unwabi", 2),
    (".restore sp", ".restore", 1), ('.pred.rel "mutex", p6, p7', ".pred.rel", 3), (".pred.rel.mutex p6,p7", ".pred.rel.mutex", 2),
    (".mem.offset 0,0", ".mem.offset", 2), ('.xdata4 "__ex_table", 99f-., y-.+4', ".xdata4", 3),
    ("data8 1b-.", "data8", 1), ("data4.ua 7", "data4.ua", 1), (".data1 1,2", ".data1", 2), ('.ascii "ab"', ".ascii", 1),
    ('.asciz "ab"', ".asciz", 1), ('.string "x"', ".string", 1), ('stringz "x"', "stringz", 1), (".skip 16", ".skip", 1),
    (".space 8", ".space", 1), (".serialize.data", ".serialize.data", 0), (".serialize.instruction", ".serialize.instruction", 0),
    (".regstk 0,0,0,0", ".regstk", 4), (".explicit", ".explicit", 0), (".auto", ".auto", 0), (".default", ".default", 0),
    (".type foo,@function", ".type", 2), (".size foo, .-foo", ".size", 2), ('.file "x.c"', ".file", 1), ('.ident "x"', ".ident", 1),
    (".set x, 4", ".set", 2), (".equ y, 5", ".equ", 2), (".lcomm buf, 64, 8", ".lcomm", 3), (".comm c, 8", ".comm", 2),
    (".byte 1", ".byte", 1), (".short 1", ".short", 1), (".word 1", ".word", 1), (".long 1", ".long", 1), (".quad 1", ".quad", 1),
    (".psr abi64", ".psr", 1), (".psr lsb", ".psr", 1), (".radix C", ".radix", 1),
])
def test_directives(text, name, nargs):
    d = one(text + "\n")
    assert isinstance(d, ir.Directive) and d.name == name and len(d.args) == nargs


def test_directive_arguments():
    d = one('.section .text..ivt,"ax"\n')
    assert d.args == (ir.Imm(ir.Sym(".text..ivt")), ir.Str("ax", '"ax"'))
    d = one('.pred.rel "mutex", p6, p7\n')
    assert d.args == (ir.Str("mutex", '"mutex"'), R("p6"), R("p7"))
    d = one(".save ar.pfs, r17\n")
    assert d.args == (R("ar.pfs"), R("r17"))
    d = one(".unwabi @svr4, 'i'\n")
    assert d.args == (ir.Imm(ir.Sym("@svr4")), ir.Imm(ir.Num(105, "'i'"), 105))
    d = one('.ascii "" "\\0"\n')
    assert d.args == (ir.Str("\0", '"" "\\0"'),)


# ---------------------------------------------------------------------------- pv_ops macro uses


def test_pv_calls():
    s = stmts("\tMOV_FROM_IFA(r16)\n\tITC_D(p7, r24, r25)\n\tMOV_TO_KR(CURRENT_STACK, r26, r8, r9)\n"
              "\tRFI\n\tRSM_PSR_DT\n\talloc r2=ar.pfs,0,0,1,0\n\tMOV_FROM_IFA(out0)\n")
    assert s[0] == ir.PvCall("MOV_FROM_IFA", (R("r16"),), s[0].loc)
    assert s[1].args == (R("p7"), R("r24"), R("r25"))
    assert s[2].args == (ir.Imm(ir.Sym("CURRENT_STACK")), R("r26"), R("r8"), R("r9"))
    assert (s[3].name, s[3].args, s[3].parens) == ("RFI", (), False)
    assert (s[4].name, s[4].parens) == ("RSM_PSR_DT", False)
    assert s[6].args == (R("r32"),)
    assert s[0].loc == Loc("t.s", 1, 2)
    # lower-case rfi is the instruction
    assert isinstance(one("rfi\n"), ir.Instruction)


def test_pv_call_without_catalog_entry_is_unknown():
    e = error("\tMOV_FROM_FOO(r16)\n")
    assert e.message.startswith("unknown mnemonic 'MOV_FROM_FOO'") and where(e) == "t.s:1:2"


# ---------------------------------------------------------------------------- comments


def test_comments():
    s = stmts("# line comment\n\tmov r1=r2 // trailing; not a separator\n\tmov r3 /* c; */ = r4\n/* a\n;; b */ nop.m 0\n")
    assert [x.mnemonic for x in s] == ["mov", "mov", "nop.m"]
    assert s[1].dests == (R("r3"),)
    assert s[2].loc == Loc("t.s", 5, 9)


# ---------------------------------------------------------------------------- mnemonics


def test_mnemonic_table():
    for good in ("br.cond.sptk.many", "br.sptk.many", "br.call.sptk.many", "ld8.c.clr.acq.nta", "cmp.eq.or.andcm",
                 "cmp4.ltu.unc", "tbit.nz.unc", "fma.s.s1", "fcmp.unord.unc.s0", "st8.spill", "ld8.fill.nt1",
                 "mov.m", "bsw.1", "srlz.d", "nop.b", "ptc.ga", "probe.rw.fault", "chk.a.clr", "MOV", "Nop.m"):
        assert is_mnemonic(good), good
    for bad in ("br.cond.sptk.mnay", "ld8.foo", "cmp.ltu.or", "movl.x", "bsw", "foo", "br.cond", "ld8.fill.s"):
        assert not is_mnemonic(bad), bad


def _expansions():
    """Every mnemonic the table accepts (completer slots expanded)."""
    from importlib import resources
    text = resources.files("ivtx.data").joinpath("mnemonics.txt").read_text()
    for raw in text.splitlines():
        toks = raw.split("#", 1)[0].split()
        ops = [t for t in toks if t[0] not in "[{"]
        choices = [t[1:-1].split("|") + ([""] if t[0] == "[" else []) for t in toks if t[0] in "[{"]
        for op in ops:
            for combo in itertools.product(*choices):
                yield ".".join([op] + [c for c in combo if c])


def test_every_table_mnemonic_is_known_to_gas(tmp_path):
    need_gas()
    names = sorted(set(_expansions()))
    assert len(names) > 1000 and all(is_mnemonic(n) for n in names)
    bad = ["ld8.foo", "br.cond.sptk.mnay", "cmp.ltu.or"]  # negative controls: gas must reject these
    (tmp_path / "m.s").write_text("".join(f"\t{n}\n" for n in names + bad))
    run = subprocess.run([GAS, "-x", "-o", str(tmp_path / "m.o"), str(tmp_path / "m.s")], capture_output=True, text=True)
    unknown = [line.split("`")[1].rstrip("'") for line in run.stderr.splitlines() if "Unknown opcode" in line]
    assert unknown == bad


def test_register_names_match_objdump(tmp_path):
    """ar/cr numbers <-> names as the disassembler prints them."""
    need_gas()
    src = "".join(f"\tmov r16=ar{n}\n" for n in range(128)) + "".join(f"\tmov r16=cr{n}\n" for n in range(128))
    (tmp_path / "r.s").write_text(src)
    subprocess.run([GAS, "-xnone", "-o", str(tmp_path / "r.o"), str(tmp_path / "r.s")], check=True, capture_output=True)
    dis = subprocess.run([OBJDUMP, "-d", str(tmp_path / "r.o")], check=True, capture_output=True, text=True).stdout
    seen = [tok.split("=")[1] for tok in dis.split() if tok.startswith("r16=")]
    ours = [f"ar.{AR_NAMES[n]}" if n in AR_NAMES else None for n in range(128)]
    ours += [f"cr.{CR_NAMES[n]}" if n in CR_NAMES else None for n in range(128)]
    assert len(seen) == 256
    for got, want in zip(seen, ours):
        if want is not None:
            assert got == want
        else:  # objdump prints unnamed ones numerically
            assert not got[3:].isalpha(), got
    assert mnemonic_table()


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text,message,loc", [
    ("\tfoo r1=r2\n", "unknown mnemonic 'foo'", "t.s:1:2"),
    ("\tmov r1=r2\n\tld8.foo r1=[r2]\n", "unknown mnemonic 'ld8.foo'", "t.s:2:2"),
    ("\tmov r16=r128\n", "register 'r128' out of range (general registers are r0-r127)", "t.s:1:10"),
    ("\tmov f6=f128\n", "register 'f128' out of range", "t.s:1:9"),
    ("\tcmp.eq p64,p7=r1,r2\n", "register 'p64' out of range", "t.s:1:9"),
    ("\tmov b8=r1\n", "register 'b8' out of range", "t.s:1:6"),
    ("(r6) mov r1=r2\n", "bad qualifying predicate '(r6)'", "t.s:1:2"),
    ("(p64) mov r1=r2\n", "register 'p64' out of range", "t.s:1:2"),
    ("\tmov r16=\n", "unexpected end of statement: expected an operand", "t.s:1:10"),
    ("\tnop.m 0\n\t{ .mii\n\tnop.m 0\n", "bundle '{' is not closed", "t.s:2:2"),
    ("\tnop.m 0\n\t}\n", "'}' without a bundle '{' to close", "t.s:2:2"),
    ("{ .mii\n{ .mii\n}\n", "nested bundle '{': the bundle opened at t.s:1:1 is not closed", "t.s:2:1"),
    ("\t.org ia64_ivt+*\n", "unexpected '*': expected an operand", "t.s:1:16"),
    ("\tITC_D(p7, r24)\n", "pv op 'ITC_D' takes 3 operands (pred, src, clob), got 2", "t.s:1:2"),
    ("\tITC_D(r7, r24, r25)\n", "operand 'pred' of pv op 'ITC_D' must be a predicate register, not 'r7'", "t.s:1:8"),
    ("\tMOV_FROM_IFA(p6)\n", "operand 'dst' of pv op 'MOV_FROM_IFA' must be a general register, not 'p6'", "t.s:1:15"),
    ("\tRFI(r1)\n", "pv op 'RFI' is written without parentheses", "t.s:1:2"),
    ("\tMOV_FROM_IFA\n", "pv op 'MOV_FROM_IFA' is called with parentheses: MOV_FROM_IFA(dst)", "t.s:1:2"),
    ('\t.ascii "abc\n', "unterminated string", "t.s:1:9"),
    ("\tmov r1=r2 `\n", "unexpected character '`'", "t.s:1:12"),
    ("\tmov r1=in0\n", "'in0' used before any 'alloc' or '.regstk' set up a register frame", "t.s:1:9"),
    ("\talloc r2=ar.pfs,2,0,0,0\n\tmov r1=in2\n", "'in2' is beyond the frame's 2 input registers", "t.s:2:9"),
    ("\tmov r16=ar.5\n", "'ar.5' is not a register to GNU as (it reads it as a symbol): write ar5", "t.s:1:10"),
    ("\tmov r1=r2+1\n", "register 'r2' cannot be used in an expression", "t.s:1:9"),
    ("\tld8 r1=[5]\n", "a memory operand needs a general register as its address, not '5'", "t.s:1:10"),
    ("(p6) foo:\n", "qualifying predicate (p6) must be followed by an instruction", "t.s:1:1"),
    ("\tdata8 12ab\n", "bad number '12ab'", "t.s:1:8"),
])
def test_errors(text, message, loc):
    e = error(text)
    assert e.message.startswith(message), e.message
    assert where(e) == loc


def test_error_inside_a_cpp_macro_expansion_points_at_the_use_site():
    # line 7 of ivt.S used a macro from minstate.h; the expansion maps every column to the
    # macro body's line with via = the use site (PPLine contract)
    use = Loc("ivt.S", 7, 2)
    body = Loc("minstate.h", 60, 2, via=use)
    pp = Preprocessed("ivt.S", [PPLine("\tmov r1=r2", [(0, Loc("ivt.S", 6, 1), True)]),
                                PPLine("\tfrob r16=r17", [(0, Loc("ivt.S", 7, 1), True), (1, body, False)])])
    with pytest.raises(IvtxError) as info:
        parse(pp)
    assert info.value.loc == body and info.value.loc.use_site == use


def test_errors_never_leak_lark_exceptions():
    for text in ("(", ")", "[", "[1", "[1:", "{ .mii }", "mov r1=(r2", "mov r1=,", "x = ", ".org (", "1", "'", "@",
                 "mov r1=@gprel(", "(p6)", "[1:]", "a: b: (p6) (p7) mov r1=r2", "mov r1=r2 = r3 = r4"):
        try:
            parse_text(text + "\n")
        except IvtxError as e:
            assert e.loc is not None and e.loc.file == "<text>"


# ---------------------------------------------------------------------------- gas macros


MACROS = """\
\t.macro SAVE reg, off=8, what:req
\tst8 [\\reg]=\\what,\\off
\t.endm
\t.macro TWICE x
\t.rept 2
\tadd \\x=1,\\x
\t.endr
\t.endm
\t.macro pick a, b
\t.ifc \\a,r1
\tmov \\b=r1
\t.exitm
\t.endif
\tmov \\b=\\a
\t.endm
foo:
\tSAVE r16, 16, r17
\tSAVE r18, what=r19
\tTWICE r20 ;; nop.m 0
\t.irp r, r21, r22
\tmov \\r=r0
\t.endr
\tpick r1, r5
\tpick r2, r6
\t.set N, 3
\t.if N > 2
\tmov r7=1
\t.else
\tmov r7=2
\t.endif
\t.ifdef foo
\tmov r8=1
\t.endif
\t.ifndef bar
\tmov r9=1
\t.endif
\t.macro lab n
lab\\n\\():\tnop.m \\@
\t.endm
\tlab 1
\tlab 2
\t.irpc c, 012
\tmov r1\\c=r0
\t.endr
\t.purgem lab
"""


def test_gas_macros_expand():
    s = [x for x in stmts(MACROS)]
    text = [(type(x).__name__, getattr(x, "mnemonic", getattr(x, "name", ""))) for x in s]
    insns = [x for x in s if isinstance(x, ir.Instruction)]
    assert insns[0].dests == (ir.Mem(R("r16")),) and insns[0].srcs == (R("r17"), imm(16))
    assert insns[1].srcs == (R("r19"), imm(8))  # default and keyword argument
    assert [i.dests[0] for i in insns[2:4]] == [R("r20"), R("r20")]
    assert insns[4].mnemonic == "nop.m"
    assert [i.dests[0] for i in insns[5:7]] == [R("r21"), R("r22")]
    assert (insns[7].dests, insns[7].srcs) == ((R("r5"),), (R("r1"),))  # .exitm taken
    assert (insns[8].dests, insns[8].srcs) == ((R("r6"),), (R("r2"),))
    assert [i.dests[0] for i in insns[9:12]] == [R("r7"), R("r8"), R("r9")] and insns[9].srcs == (imm(1),)
    labels = [x.name for x in s if isinstance(x, ir.Label)]
    assert labels == ["foo", "lab1", "lab2"]
    # \@ counts the macros executed before (SAVE SAVE TWICE pick pick -> 5, 6): what gas emits
    assert [i.srcs[0].value for i in insns if i.mnemonic == "nop.m" and i.srcs[0].value > 0] == [5, 6]
    assert [i.dests[0] for i in insns[-3:]] == [R("r10"), R("r11"), R("r12")]
    assert ("Directive", ".set") in text


def test_macro_expansion_locs():
    s = stmts(MACROS)
    first = next(x for x in s if isinstance(x, ir.Instruction))
    assert first.loc == Loc("t.s", 2, 2, via=Loc("t.s", 17, 2))


@pytest.mark.parametrize("text,message,loc", [
    ("\t.macro m a\n\tmov \\a=r0\n\t.endm\n\tm r1, r2\n", "macro 'm' takes 1 argument, got 2", "t.s:4:8"),
    ("\t.macro m a\n\tmov \\b=r0\n\t.endm\n\tm r1\n", "macro 'm' has no parameter 'b'", "t.s:2:6"),
    ("\t.macro m a\n\tmov \\a=r0\n\t.endm\n\tm b=r1\n", "macro 'm' has no parameter 'b'", "t.s:4:4"),
    ("\t.macro m a:req\n\t.endm\n\tm\n", "macro 'm': missing value for required parameter 'a'", "t.s:3:2"),
    ("\tnop.m 0\n\t.endm\n", "'.endm' without '.macro'", "t.s:2:2"),
    ("\t.macro m\n\tnop.m 0\n", "'.macro' without '.endm'", "t.s:1:2"),
    ("\t.rept 2\n\tnop.m 0\n", "'.rept' without '.endr'", "t.s:1:2"),
    ("\t.if 1\n\tnop.m 0\n", "'.if' without '.endif'", "t.s:1:2"),
    ("\t.else\n", "'.else' without '.if'", "t.s:1:2"),
    ("\t.if foo+\n\t.endif\n", "unexpected end of statement", "t.s:1:10"),
    ("\t.macro m a\n\tfrob \\a\n\t.endm\n\tm r1\n", "unknown mnemonic 'frob'", "t.s:2:2"),
])
def test_macro_errors(text, message, loc):
    e = error(text)
    assert e.message.startswith(message), e.message
    assert str(e.loc) == loc


def test_error_in_macro_body_carries_use_site():
    e = error("\t.macro m a\n\tfrob \\a\n\t.endm\n\tnop.m 0\n\tm r1\n")
    assert e.loc.via == Loc("t.s", 5, 2)


# ---------------------------------------------------------------------------- speed


def test_fold_does_not_guess():
    assert fold(ir.Sym("ia64_ivt")) is None
    assert fold(ir.Binary("/", ir.Num(1), ir.Num(0))) is None
    assert fold(ir.Reloc("gprel", ir.Num(1))) is None
