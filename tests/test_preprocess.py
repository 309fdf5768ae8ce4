"""Tests for ivtx/preprocess.py: line map, directives, errors with exact locations, prelude,
and a differential test against gcc's own preprocessor."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ivtx.diag import IvtxError, Loc
from ivtx.preprocess import MAX_INCLUDE_DEPTH, prelude_path, preprocess


def pp(text: str, **kw):
    kw.setdefault("prelude", False)
    return preprocess("t.S", text=text, **kw)


def out(text: str, **kw) -> list[str]:
    return [line.text for line in pp(text, **kw).lines]


def loc_of(result, needle: str, nth: int = 0) -> Loc:
    """Location of the nth occurrence of `needle` in the output."""
    seen = 0
    for line in result.lines:
        start = 0
        while (col := line.text.find(needle, start)) >= 0:
            if seen == nth:
                return line.loc_at(col)
            seen += 1
            start = col + 1
    raise AssertionError(f"{needle!r} not in output:\n{result.text}")


def where(loc: Loc) -> tuple[str, int, int]:
    return (Path(loc.file).name, loc.line, loc.col)


# ----------------------------------------------------------------------------- line map


def test_plain_text_maps_one_to_one():
    r = pp("\tmov r31=pr\t\t// save pr\n  ld8 r18=[r17] /* c */ ;;\n")
    assert [line.text for line in r.lines] == ["\tmov r31=pr", "  ld8 r18=[r17]   ;;"]
    assert where(loc_of(r, "r31")) == ("t.S", 1, 6)
    assert where(loc_of(r, ";;")) == ("t.S", 2, 25)  # after the comment: columns of the source
    assert loc_of(r, "mov").via is None


def test_macro_in_included_header_maps_to_define_line_with_use_site(tmp_path):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "m.h").write_text(
        "/* header */\n"
        "#define SAVE(reg)\tmov reg=pr;; \\\n"
        "\t\tadd r3=r4,r5\n")
    main = tmp_path / "ivt.S"
    main.write_text('#include "m.h"\nentry:\n\tSAVE(r31)  // here\n')
    r = preprocess(str(main), include_dirs=[str(tmp_path / "inc")], prelude=False)
    assert [line.text for line in r.lines] == ["entry:", "\tmov r31=pr;; add r3=r4,r5"]
    add = loc_of(r, "add")
    assert where(add) == ("m.h", 3, 3)
    assert add.via is not None and where(add.via) == ("ivt.S", 3, 2)
    assert where(loc_of(r, "r5")) == ("m.h", 3, 13)
    assert where(loc_of(r, "mov")) == ("m.h", 2, 19)
    # the argument maps to where it was written, in the main file
    arg = loc_of(r, "r31")
    assert where(arg) == ("ivt.S", 3, 7) and arg.via is None
    # every file read is in the sources, for carets
    assert r.sources.line(str(tmp_path / "inc" / "m.h"), 3) == "\t\tadd r3=r4,r5"
    assert r.sources.line(str(main), 3) == "\tSAVE(r31)  // here"


def test_nested_expansion_chains_via():
    r = pp("#define INNER nop.m 0\n#define OUTER(x) x; INNER\n  OUTER(mov r1=r2)\n")
    assert r.lines[0].text == "  mov r1=r2; nop.m 0"
    nop = loc_of(r, "nop")
    assert [where(loc) for loc in nop.chain()] == [("t.S", 1, 15), ("t.S", 2, 21), ("t.S", 3, 3)]
    assert nop.use_site == Loc("t.S", 3, 3)


def test_every_column_of_an_expansion_maps_somewhere_sensible():
    r = pp("#define PASTE(a, b) a##b\n#define K(n) PASTE(ar.k, n)\n\tmov r16=K(6)\n")
    line = r.lines[0]
    assert line.text == "\tmov r16=ar.k6"
    for col in range(len(line.text)):
        loc = line.loc_at(col)
        assert loc.use_site.line == 3 and loc.file == "t.S"
    assert where(line.loc_at(line.text.index("ar"))) == ("t.S", 2, 20)


def test_macro_call_spanning_lines_goes_on_the_line_of_its_use():
    r = pp("#define F(a, b) a + b\nx F(1,\n   2) y\nnext\n")
    assert [line.text for line in r.lines] == ["x 1 + 2 y", "next"]
    assert where(loc_of(r, "2")) == ("t.S", 3, 4)
    assert where(loc_of(r, "y")) == ("t.S", 3, 7)
    assert where(loc_of(r, "next")) == ("t.S", 4, 1)


def test_multiline_comment_keeps_line_structure():
    r = pp("mov r1=r2 /* one\n two */ mov r3=r4\nnop.i 0\n")
    assert [line.text for line in r.lines] == ["mov r1=r2", " mov r3=r4", "nop.i 0"]
    assert where(loc_of(r, "r3")) == ("t.S", 2, 13)


def test_backslash_continuation_maps_each_part():
    r = pp("mov r1=\\\n  r2\n")
    assert r.lines[0].text == "mov r1=  r2"
    assert where(loc_of(r, "r2")) == ("t.S", 2, 3)


def test_statements_from_an_expansion_stay_on_one_line():
    r = pp("#define TWO mov r1=r2;; \\\n\tmov r3=r4;;\n\tTWO\n")
    assert r.lines[0].text == "\tmov r1=r2;; mov r3=r4;;"


def test_blank_and_directive_lines_produce_no_output_lines():
    assert out("\n// only a comment\n#define X 1\n\nX\n") == ["1"]


# ----------------------------------------------------------------------------- directives


def test_conditionals_and_expressions():
    src = """\
#define A 3
#if A == 3 && !defined B && defined(A)
ok1
#elif 1
bad
#endif
#ifndef B
ok2
#else
bad
#endif
#if 0
#if 1
bad
#else
bad
#endif
# anything at all, even an unknown directive
#elif (A > 2) ? 1 : 1/0
ok3
#else
bad
#endif
#if -1 < 0u
bad
#elif 0x10 == 16 && 010 == 8 && 0b101 == 5 && (1 << 4) == 16 && ~0 == -1 && -7 / 2 == -3 && -7 % 2 == -1
ok4
#endif
#if UNDEFINED_NAME || 0 && 1/0
bad
#endif
#if 18446744073709551615u == -1 && 9223372036854775807 > 0
ok5
#endif
"""
    assert out(src) == ["ok1", "ok2", "ok3", "ok4", "ok5"]


@pytest.mark.parametrize("expr, value", [
    ("1 ? 2 : 0", 1), ("0 ? 1 : 0", 0), ("(2 || 1/0)", 1), ("1, 0", 0), ("-1 >> 63 == -1", 1),
    ("1 << 63 < 0", 1), ("(1u << 63) > 0", 1), ("(4 << -1) == 2", 1), ("(4 >> -1) == 8", 1),
    ("-8 >> 1 == -4", 1), ("3 & 5 ^ 1 | 8", 1), ("!!7 == 1", 1), ("10 % 4 * 3 == 6", 1),
])
def test_if_expression_values(expr, value):
    assert out(f"#if {expr}\nyes\n#else\nno\n#endif\n") == ["yes" if value else "no"]


def test_include_search_order(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "h.h").write_text("beside\n")
    (tmp_path / "a" / "h.h").write_text("first_dir\n")
    (tmp_path / "b" / "h.h").write_text("second_dir\n")
    (tmp_path / "a" / "next.h").write_text("#include_next <h.h>\n")
    main = tmp_path / "m.S"
    main.write_text('#include "h.h"\n#include <h.h>\n#include <next.h>\n')
    r = preprocess(str(main), include_dirs=[str(tmp_path / "a"), str(tmp_path / "b")], prelude=False)
    assert [line.text for line in r.lines] == ["beside", "first_dir", "second_dir"]


def test_include_guard_and_computed_include(tmp_path):
    (tmp_path / "g.h").write_text("#ifndef G\n#define G\nonce\n#endif\n")
    main = tmp_path / "m.S"
    main.write_text('#define HDR "g.h"\n#include HDR\n#include "g.h"\n')
    r = preprocess(str(main), prelude=False)
    assert [line.text for line in r.lines] == ["once"]


def test_has_include(tmp_path):
    (tmp_path / "here.h").write_text("")
    main = tmp_path / "m.S"
    main.write_text('#if __has_include("here.h") && !__has_include(<nope.h>) && defined __has_include\nyes\n'
                    "#endif\n#if __has_attribute(packed)\nno\n#endif\n")
    assert [line.text for line in preprocess(str(main), prelude=False).lines] == ["yes"]


def test_missing_angle_include_is_one_warning_per_header(tmp_path):
    (tmp_path / "x.h").write_text("#include <asm/nope.h>\n")
    main = tmp_path / "m.S"
    main.write_text('#include <asm/nope.h>\n#include "x.h"\n#include <asm/nope.h>\n#include <other.h>\nok\n')
    r = preprocess(str(main), prelude=False)
    assert [line.text for line in r.lines] == ["ok"]
    msgs = [(w.severity, w.message, where(w.loc)) for w in r.warnings]
    assert msgs == [
        ("warning", "cannot find include file <asm/nope.h> in the include path; skipped", ("m.S", 1, 10)),
        ("warning", "cannot find include file <other.h> in the include path; skipped", ("m.S", 4, 10)),
    ]


def test_quoted_include_is_not_searched_for_angle_brackets(tmp_path):
    (tmp_path / "h.h").write_text("x\n")
    main = tmp_path / "m.S"
    main.write_text("#include <h.h>\n")
    r = preprocess(str(main), prelude=False)  # beside the file does not count for <...>
    assert r.lines == [] and len(r.warnings) == 1


def test_warning_directive_and_redefinition_are_warnings():
    r = pp("#warning  look  here\n#define A 1\n#define A 1\n#define A  2\nA\n")
    assert [line.text for line in r.lines] == ["2"]
    assert [(w.message, where(w.loc)) for w in r.warnings] == [
        ("#warning look here", ("t.S", 1, 2)),
        ("'A' redefined (previous definition at t.S:3:9)", ("t.S", 4, 9)),
    ]


def test_line_pragma_ident_and_null_directives_are_ignored():
    assert out('#line 10 "x.c"\n#pragma once\n#ident "v"\n#\n# 12 "y.S"\nok\n') == ["ok"]


def test_builtin_line_and_file():
    assert out("a __LINE__\n#define L __LINE__ __FILE__\nL\n") == ["a 1", '3 "t.S"']


def test_directives_inside_macro_arguments():
    src = "#define F(a) <a>\nF(1\n#ifdef F\nyes\n#else\nno\n#endif\n)\n"
    assert out(src) == ["<1 yes>"]


def test_function_like_name_without_arguments_before_a_directive():
    assert out("#define F(x) <x>\nF\n#define G 1\n(2) G\n") == ["F", "(2) 1"]


# ----------------------------------------------------------------------------- macros


@pytest.mark.parametrize("src, expected", [
    ("#define F(x) <x>\nF F (1) F\n(2)\n", ["F <1> <2>"]),
    ("#define F(x, y) [x|y]\nF((a,b),c) F( , ) F(F(1,2),3)\n", ["[(a,b)|c] [|] [[1|2]|3]"]),
    ("#define E() e\nE() E ( )\n", ["e e"]),
    ("#define V(...) <__VA_ARGS__>\n#define W(a, rest...) a: rest\nV() V(1, 2) W(x) W(x, y, z)\n",
     ["<> <1, 2> x: x: y, z"]),
    ("#define G(f, ...) f(1, ## __VA_ARGS__)\nG(h) G(h, 2)\n", ["h(1) h(1, 2)"]),
    ('#define S(x) #x\nS( a  "b\\n"  c ) S()\n', ['"a \\"b\\\\n\\" c" ""']),
    ("#define C(a, b) a##b\nC(x, 1) C(, y) C(x, ) C(+, +) C(ar.k, 7)\n", ["x1 y x ++ ar.k7"]),
    ("#define foo foo + 1\nfoo\n", ["foo + 1"]),
    ("#define x 2*y\n#define y x+1\nx y\n", ["2*x+1 2*y+1"]),
    ("#define f(a) a*g\n#define g(a) f(a)\nf(2)(9)\n", ["2*9*g"]),
    ("#define F(x) <x>\n#define G F\nG(1)\n", ["<1>"]),
    ("#define H(x) # x #y\nH(1)\n", ['"1" #y']),  # assembler mode: a lone # stays
    ("#define N\na N b N\n", ["a b"]),
])
def test_function_like_macro_edge_cases(src, expected):
    assert out(src) == expected


def test_painted_blue_token_stays_unexpanded_when_rescanned():
    # `f` inside f's own expansion is painted; passing it to g does not revive it
    assert out("#define f(x) g(f)(x)\n#define g(y) y\nf(1)\n") == ["f(1)"]


def test_apostrophes_do_not_break_anything():
    r = pp("#define FOO bar\ndon't FOO here\nit's 'FOO' FOO\nFOO // don't\n")
    # as in gcc's assembler mode, an unmatched quote makes the rest of its line literal
    assert [line.text for line in r.lines] == ["don't FOO here", "it's 'bar' FOO", "bar"]


def test_defines_and_undefines_order():
    r = pp("A B F(2) C\n", defines=["A=1", "B", "F(x)=x+x", "C=3"], undefines=["C", "A"])
    assert r.lines[0].text == "A 1 2+2 C"
    assert "B" in r.macros and "A" not in r.macros and "C" not in r.macros


def test_command_line_define_errors_point_at_the_command_line():
    with pytest.raises(IvtxError) as e:
        pp("x\n", defines=["1BAD=2"])
    assert e.value.message == "macro names must be identifiers"
    assert e.value.loc == Loc("<command-line>", 1, 9)


def test_keep_undefined_leaves_pv_op_calls_alone():
    src = ("#define ITC_D(pred, reg, clob) (pred) itc.d reg\n#define RFI rfi\n"
           "#ifdef ITC_D\nbad\n#endif\n\tITC_D(p7, r24, r25)\n\tRFI\n")
    r = pp(src, keep_undefined=frozenset({"ITC_D", "RFI"}))
    assert [line.text for line in r.lines] == ["\tITC_D(p7, r24, r25)", "\tRFI"]
    assert "ITC_D" not in r.macros and "RFI" not in r.macros
    assert [line.text for line in pp(src).lines] == ["bad", "\t(p7) itc.d r24", "\trfi"]


# ----------------------------------------------------------------------------- prelude


PV_OPS = ["MOV_FROM_IFA", "MOV_FROM_IPSR", "MOV_TO_IFA", "ITC_I", "ITC_D", "ITC_I_AND_D", "THASH",
          "SSM_PSR_I", "RSM_PSR_I", "RSM_PSR_DT", "SSM_PSR_IC_AND_DEFAULT_BITS_AND_SRLZ_I",
          "BSW_0", "BSW_1", "COVER", "RFI"]


def test_prelude_supplies_linux_definitions_but_not_pv_ops():
    src = ("ENTRY(vhpt_miss)\n\tmov r19=IA64_KR(PT_BASE)\n\tLOAD_PHYSICAL(p6, r19, swapper_pg_dir)\n"
           "\tshr.u r18=r22,PGDIR_SHIFT\n\tdv_serialize_data\n\tadds r16=PT(CR_IPSR),r1\n"
           "\tMOV_FROM_IFA(r16)\n\tRFI\nEND(vhpt_miss)\n")
    r = preprocess("ivt.S", text=src)
    texts = [line.text for line in r.lines if "ivt.S" in line.loc_at(0).use_site.file]
    assert texts == [
        ".align 32; .proc vhpt_miss; vhpt_miss:",
        "\tmov r19=ar.k7",
        '\t[1:](p6)movl r19 = swapper_pg_dir; .xdata4 ".data..patch.vtop", 1b-.',
        "\tshr.u r18=r22,((14 + (14 - 3)) + (14 - 3))",
        "\t.serialize.data",
        "\tadds r16=(64),r1",
        "\tMOV_FROM_IFA(r16)",
        "\tRFI",
        ".endp vhpt_miss",
    ]
    for name in ("__ASSEMBLY__", "__KERNEL__", "PAGE_SHIFT", "_PAGE_P_BIT", "__IA64_BREAK_SYSCALL",
                 "IA64_PSR_I_BIT", "IA64_STK_OFFSET", "THIS_CPU"):
        assert name in r.macros
    assert not set(PV_OPS) & r.macros
    entry = loc_of(r, ".align")
    assert entry.file == prelude_path() and where(entry.via) == ("ivt.S", 1, 1)


def test_prelude_off():
    r = preprocess("ivt.S", text="ENTRY(x)\nPAGE_SHIFT\n", prelude=False)
    assert [line.text for line in r.lines] == ["ENTRY(x)", "PAGE_SHIFT"]
    assert "__KERNEL__" not in r.macros


def test_command_line_beats_prelude():
    src = "PAGE_SHIFT CONFIG_PGTABLE_LEVELS __KERNEL__\n#if defined(PUD_SHIFT)\npud\n#endif\n"
    r = preprocess("ivt.S", text=src, defines=["CONFIG_IA64_PAGE_SIZE_64KB", "CONFIG_PGTABLE_LEVELS=4"],
                   undefines=["__KERNEL__"])
    texts = [line.text for line in r.lines if line.loc_at(0).use_site.file == "ivt.S"]
    assert texts == ["16 4 __KERNEL__", "pud"]
    assert r.warnings == []


def test_prelude_values_used_in_preprocessor_expressions():
    src = "#if PT(B6) != 0 || IA64_PSR_I != (1 << 14) || _PAGE_D != 0x40\n#error bad\n#endif\nok\n"
    assert [line.text for line in preprocess("ivt.S", text=src).lines][-1] == "ok"


# ----------------------------------------------------------------------------- errors


ERRORS = [
    ("#ifdef X\nfoo\n", "unterminated #ifdef", 1, 2),
    ("#if 1\n#if 0\n#endif\n", "unterminated #if", 1, 2),
    ("  #  else\n", "#else without #if", 1, 6),
    ("#endif\n", "#endif without #if", 1, 2),
    ("#elif 1\n", "#elif without #if", 1, 2),
    ("#if 1\n#else\n#elif 1\n#endif\n", "#elif after #else", 3, 2),
    ("#if 1\n#else\n#else\n#endif\n", "#else after #else", 3, 2),
    ("#define 1x\n", "macro names must be identifiers", 1, 9),
    ("#define\n", "no macro name given in #define directive", 1, 8),
    ("#define F(a,a) a\n", "duplicate macro parameter 'a'", 1, 13),
    ("#define F(a b) a\n", "expected ',' or ')', found 'b'", 1, 13),
    ("#define F(a\n", "missing ')' in macro parameter list", 1, 12),
    ("#define A ## b\n", "'##' cannot appear at either end of a macro expansion", 1, 11),
    ("#define defined 1\n", "'defined' cannot be used as a macro name", 1, 9),
    ("#define F(x) x\nF(1,2)\n", "macro 'F' requires 1 argument, but 2 given", 2, 1),
    ("#define F(x, y) x\n  F(1)\n", "macro 'F' requires 2 arguments, but 1 given", 2, 3),
    ("#define F(x, y, ...) x\nF(1)\n", "macro 'F' requires at least 2 arguments, but 1 given", 2, 1),
    ("#define F(x) x\n\tF(1,\n2\n", "unterminated argument list invoking macro 'F'", 2, 2),
    ("#if 1 +\n#endif\n", "operator '+' has no right operand", 1, 7),
    ("#if (1\n#endif\n", "missing ')' in expression", 1, 5),
    ("#if 1 2\n#endif\n", "missing binary operator before token '2'", 1, 7),
    ("#if 1 = 2\n#endif\n", "token '=' is not valid in preprocessor expressions", 1, 7),
    ("#if\n#endif\n", "#if with no expression", 1, 4),
    ("#define E\n#if E\n#endif\n", "#if with no expression", 2, 6),
    ("#if 1.5\n#endif\n", "floating constant in preprocessor expression", 1, 5),
    ("#if 08\n#endif\n", "invalid integer constant '08' in #if", 1, 5),
    ("#if defined\n#endif\n", "operator 'defined' requires an identifier", 1, 5),
    ("#if 1/0\n#endif\n", "division by zero in #if", 1, 6),
    ("#if 2 %  (1 - 1)\n#endif\n", "division by zero in #if", 1, 7),
    ("#define Z 0\n#if 1 / Z\n#endif\n", "division by zero in #if", 2, 7),
    ("#ifdef\n#endif\n", "no macro name given in #ifdef directive", 1, 7),
    ("#undef\n", "no macro name given in #undef directive", 1, 7),
    ("#error  This code assumes  b6 first\n", "#error This code assumes b6 first", 1, 2),
    ("# foo bar\n", "unknown preprocessor directive '#foo'", 1, 3),
    ("#!x\n", "invalid preprocessing directive '#!x'", 1, 2),
    ("#include\n", '#include expects "FILENAME" or <FILENAME>', 1, 9),
    ('#include "nope.h"\n', 'cannot find include file "nope.h"', 1, 10),
    ("ok\n  a /* unterminated\nb\n", "unterminated comment", 2, 5),
    ("#define V __VA_ARGS__\n", "__VA_ARGS__ can only appear in the expansion of a variadic macro", 1, 11),
]


@pytest.mark.parametrize("src, message, line, col", ERRORS, ids=[e[1] for e in ERRORS])
def test_error_message_and_exact_location(src, message, line, col):
    with pytest.raises(IvtxError) as e:
        pp(src)
    assert e.value.message == message
    assert e.value.loc is not None and (e.value.loc.file, e.value.loc.line, e.value.loc.col) == ("t.S", line, col)


def test_error_inside_expansion_points_through_via():
    with pytest.raises(IvtxError) as e:
        pp("#define DIV(a) (1 / a)\n#if DIV(0)\n#endif\n")
    assert e.value.loc == Loc("t.S", 1, 19, via=Loc("t.S", 2, 5))


def test_errors_render_with_caret_for_in_memory_text():
    with pytest.raises(IvtxError) as e:
        preprocess("mem.S", text="ok\n  #error stop here\n", prelude=False)
    assert e.value.render() == "mem.S:2:4: error: #error stop here\n  #error stop here\n   ^"


def test_include_nesting_too_deep(tmp_path):
    (tmp_path / "self.h").write_text('x\n#include "self.h"\n')
    with pytest.raises(IvtxError) as e:
        preprocess(str(tmp_path / "self.h"), prelude=False)
    assert e.value.message == f"#include nested too deeply (more than {MAX_INCLUDE_DEPTH} levels)"
    assert where(e.value.loc) == ("self.h", 2, 10)


def test_missing_main_file(tmp_path):
    with pytest.raises(IvtxError) as e:
        preprocess(str(tmp_path / "absent.S"))
    assert "cannot read" in e.value.message


def test_binary_junk_is_an_error_at_the_first_bad_byte(tmp_path):
    f = tmp_path / "bin.S"
    f.write_bytes(b"mov r1=r2\n\tnop\x00\x01\x02\n")
    with pytest.raises(IvtxError) as e:
        preprocess(str(f), prelude=False)
    assert where(e.value.loc) == ("bin.S", 2, 5) and "NUL" in e.value.message
    f.write_bytes("ok\n// caf\u00e9\n x\xff\n".encode("latin-1", "replace").replace(b"\xe9", "\u00e9".encode()))
    with pytest.raises(IvtxError) as e:
        preprocess(str(f), prelude=False)
    assert where(e.value.loc) == ("bin.S", 3, 3) and "0xff" in e.value.message
    with pytest.raises(IvtxError) as e:
        preprocess("t.S", text="a\n b\0", prelude=False)
    assert where(e.value.loc) == ("t.S", 2, 3)


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(IvtxError):
        pp("#define F(x) x\n" + "F(" * 300 + "1" + ")" * 300 + "\n")
    with pytest.raises(IvtxError):
        pp("#if " + "(" * 300 + "1" + ")" * 300 + "\n#endif\n")
    chain = "".join(f"#define A{i} A{i - 1}\n" for i in range(1, 1500))
    assert out(chain + "A1499\n") == ["A0"]


# ----------------------------------------------------------------------------- speed


def _synthetic_ivt(copies: int) -> str:
    head = ("#define SAVE(a, b) mov r31=pr; \\\n\tmov a=b;; /* c */ \\\n\tld8 r18=[r17];;\n"
            "#define PRED(x) PASTE(p, x)\n#define PASTE(a, b) a##b\n#define pK PRED(2)\n")
    body = ("\tSAVE(r16, cr.ifa)  // comment\n(pK)\tadds r1=PT(CR_IPSR),r1\n\tmov r29=b0\n"
            "\t;;\n\t/* a comment\n\t   over lines */\n\tbr.sptk.many b0\n")
    return head + body * copies


# ----------------------------------------------------------------------------- against gcc


GCC_CASES = {
    "objects": "#define A 1\n#define B A + A\nB B\n",
    "functions": "#define F(x, y) [x|y]\nF(1,2) F((a,b),c) F( , ) F(F(1,2),3)\n",
    "blue_paint": "#define foo foo a\nfoo\n#define x 2*y\n#define y x+1\nx y\n",
    "rescan_with_rest": "#define f(a) a*g\n#define g(a) f(a)\nf(2)(9)\n",
    "stringify": ("#define S(x) #x\n#define XS(x) S(x)\n#define V 42\n"
                  "S(V) XS(V) S( a  \"b\\\\n\"   'c' ) S() S(a\n  b)\n"),
    "paste": ("#define C(a,b) a##b\n#define D(a) x ## a ## y\n"
              "C(,) C(x,) C(,y) C(1,2) C(a,b) D() D(1) C(+,+) C(ar.k,6)\n"),
    "variadic": ("#define V(...) <__VA_ARGS__>\n#define W(a, ...) a: __VA_ARGS__ ;\n"
                 "#define G(f, a...) f(a)\n#define E(f, ...) f(1, ## __VA_ARGS__)\n"
                 "V() V(1) V(1,2, 3) W(x) W(x,y,z) G(g) G(g,1,2) E(h) E(h,2)\n"),
    "args_over_lines": "#define F(a,b) a+b\nF(1,\n 2) after\nF\n(3,4)\nF\nnot\n",
    "conditions": ("#define A 3\n#if A == 3 && !defined B\ny1\n#elif 1\nn\n#else\nn\n#endif\n"
                   "#if (A > 2) ? 1/1 : 1/0\ny2\n#endif\n#if -1 < 0u\nn\n#else\ny3\n#endif\n"
                   "#if 0x10 == 16 && 010 == 8 && ~0 == -1 && (5 % 3) == 2 && -7 / 2 == -3\ny4\n#endif\n"
                   "#if 0\n#if 1\nn\n#endif\n#elif 1\ny5\n#endif\n"),
    "comments": "a /* c */ b // d\n#define X /* in def */ 5 // x\nX\ne/**/f\n",
    "quotes": "#define FOO bar\ndon't FOO here\nit's 'FOO' FOO\n\"a FOO /* x */\" FOO\n",
    "continuation": "#define L a \\\n  b \\\n  c\nL\nx \\\ny\n",
    "object_to_function": "#define F(x) <x>\n#define G F\nG(1) G (2) G\n#define H F(\nH 3)\n",
    "asm_style": ("#define ENTRY(name) .align 32; .proc name; name:\n"
                  "#define LP(pr, reg, obj) [1:](pr)movl reg = obj; .xdata4 \".data..patch.vtop\", 1b-.\n"
                  "ENTRY(foo)\n\tLP(p6, r19, swapper_pg_dir)\n#define K(n) ar.k##n\n\tmov r1=K(6)\n"),
    "c_standard_example_3": (
        "#define x 3\n#define f(a) f(x * (a))\n#undef x\n#define x 2\n#define g f\n#define z z[0]\n"
        "#define h g(~\n#define m(a) a(w)\n#define w 0,1\n#define t(a) a\n#define p() int\n"
        "#define q(x) x\n#define r(x,y) x ## y\nf(y+1) + f(f(z)) % t(t(g)(0) + t)(1);\n"
        "g(x+(3,4)-w) | h 5) & m\n(f)^m(m);\np() i[q()] = { q(1), r(2,3), r(4,), r(,5), r(,) };\n"),
    "c_standard_example_4": (
        "#define str(s) # s\n#define xstr(s) str(s)\n"
        "#define debug(s, t) printf(\"x\" # s \"= %d, x\" # t \"= %s\", x ## s, x ## t)\n"
        "#define INCFILE(n) vers ## n\n#define glue(a, b) a ## b\n#define xglue(a, b) glue(a, b)\n"
        "#define HIGHLOW \"hello\"\n#define LOW LOW \", world\"\ndebug(1, 2);\n"
        "fputs(str(strncmp(\"abc\\0d\", \"abc\", '\\4') == 0) str(: @\\n), s);\n"
        "xstr(INCFILE(2).h)\nglue(HIGH, LOW);\nxglue(HIGH, LOW)\n"),
    "pasted_hash": ("#define hash_hash # ## #\n#define mkstr(a) # a\n#define in_between(a) mkstr(a)\n"
                    "#define join(c, d) in_between(c hash_hash d)\njoin(x, y)\n"),
    "directive_in_args": "#define F(a) <a>\nF(1\n#ifdef F\nyes\n#else\nno\n#endif\n)\n",
    "savemin_shape": ("#define PASTE2(x,y) x##y\n#define PASTE(x,y) PASTE2(x,y)\n#define PRED_U 3\n"
                      "#define pU PASTE(p,PRED_U)\n#define PT(f) (OFF_##f##_X)\n"
                      "#define DO(__C, S, E, W) \\\n\tmov r16=r1; /* M */ \\\n\t__C; \\\n(pU)\tS; \\\n"
                      "\tadds r16=PT(CR_IPSR),r1; \\\n\tW; E\n#define SAVE DO(cover, mov r30=cr.ifs, , mov r1=r2)\n"
                      "\tSAVE\n\tDO(     , mov r30=r0, , )\n"),
}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize("name", sorted(GCC_CASES))
def test_same_tokens_as_gcc(name, tmp_path):
    src = GCC_CASES[name]
    f = tmp_path / "case.S"
    f.write_text(src)
    gcc = subprocess.run(["gcc", "-E", "-P", "-undef", "-x", "assembler-with-cpp", str(f)],
                         capture_output=True, text=True, check=True).stdout
    ours = preprocess(str(f), prelude=False).text
    squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    assert squash(ours) == squash(gcc), f"gcc:\n{gcc}\nivtx:\n{ours}"
