"""Issue 2, must-show 4: bad input at the command line.

Every kind of bad input gets `file:line:col: error: message` (or `ivtx: error: message` where
no location exists), the source line and a caret under the column, exit status 2, no
traceback, no output file, and the input left as it was.  Lines and columns below are
counted by hand from the inputs (a tab is one column; the caret line expands tabs to 8).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivtx.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
HEAD = "\t.text\nf:\n"

# name -> (file content, command line options, line, col, message); line None: no location
CASES = {
    "unknown mnemonic": (HEAD + "\tmovx r16=r17\n", [], 3, 2, "unknown mnemonic 'movx'"),
    "register r128": (HEAD + "\tmov r128=r17\n", [], 3, 6,
                      "register 'r128' out of range (general registers are r0-r127)"),
    "bad predicate": (HEAD + "(r6)\tmov r16=r17\n", [], 3, 2,
                      "bad qualifying predicate '(r6)': expected a predicate register p0-p63"),
    "unterminated #if": ("\t.text\n#if 1\nf:\n\tmov r16=r17\n", [], 2, 2, "unterminated #if"),
    "#endif without #if": ("\t.text\n#endif\nf:\n\tmov r16=r17\n", [], 2, 2, "#endif without #if"),
    "missing operand": (HEAD + "\tmov r16=\n", [], 3, 10, "unexpected end of statement: expected an operand"),
    "missing source": (HEAD + "\tadd r16=r17\n", [], 3, 2,
                       "unknown instruction 'add' with operands 'r16 = r17' "
                       "(add takes: r = r, r | r = r, r, imm | r = imm, r)"),
    "unclosed bundle": (HEAD + "{ .mii\n\tmov r16=r17\n\tnop.i 0\n", [], 3, 1, "bundle '{' is not closed"),
    "bad .org syntax": (HEAD + "\tmov r16=r17\n\t.org f+)\n", [], 4, 9, "unexpected ')': expected an operand"),
    "bad .org symbol": (HEAD + "\tmov r16=r17\n\t.org f+foo\n", [], 4, 2,
                        "'.org' expression uses 'foo', which is not a label of this file "
                        "(gas would place the code at an unknown address)"),
    "negative .org": (HEAD + "\tmov r16=r17\n\t.org -5\n", [], 4, 2, "'.org' to a negative offset (-5)"),
    "pv macro arity": (HEAD + "\tITC_D(p7, r24)\n", [], 3, 2,
                       "pv op 'ITC_D' takes 3 operands (pred, src, clob), got 2"),
    "C macro arity": ("#define M(a,b) mov a=b\n" + HEAD + "\tM(r16)\n", [], 4, 2,
                      "macro 'M' requires 2 arguments, but 1 given"),
    "NUL bytes": ((HEAD + "\tmov r16=r17\0\1\n").encode(), [], 3, 13, "NUL byte (binary file?) in source file"),
    "invalid UTF-8": (HEAD.encode() + b"\tmov r16=r17 // \xff\xfe\n", [], 3, 17,
                      "invalid UTF-8 byte 0xff in source file"),
    "unterminated comment": (HEAD + "/* open\n\tmov r16=r17\n", [], 3, 1, "unterminated comment"),
    "#error": ("\t.text\n#error stop here\n", [], 2, 2, "#error stop here"),
    "unknown directive": ("\t.text\n#frobnicate 1\n", [], 2, 2, "unknown preprocessor directive '#frobnicate'"),
    "no code left": ("// a comment\n#if 0\n\tmov r16=r17\n#endif\n", [], 1, 1,
                     "no code: no instruction or pv-op call is left after preprocessing (see #if/#ifdef, -D, -U)"),
}


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "bad.S"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _run(capsys, argv: list[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err.splitlines()


def _caret_for(source_line: str, col: int) -> str:
    return " " * len(source_line[: col - 1].expandtabs(8)) + "^"


@pytest.mark.parametrize("command", ["report", "parse", "cfg"])
@pytest.mark.parametrize("kind", CASES)
def test_bad_input_is_located_with_line_and_caret(tmp_path, capsys, kind, command):
    content, options, line, col, message = CASES[kind]
    path = _write(tmp_path, content)
    before = path.read_bytes()
    out = tmp_path / "out.txt"
    status, err = _run(capsys, [command, *options, str(path), "-o", str(out)])
    assert status == 2
    assert err[0] == f"{path}:{line}:{col}: error: {message}"
    source_line = before.decode("utf-8", "replace").splitlines()[line - 1]
    assert err[1] == source_line.expandtabs(8)
    assert err[2] == _caret_for(source_line, col)
    assert not out.exists()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.S"]  # no temporary output left behind


def test_empty_file_is_an_error_without_a_source_line(tmp_path, capsys):
    path = _write(tmp_path, "")
    status, err = _run(capsys, ["report", str(path)])
    assert status == 2
    assert err == [f"{path}:1:1: error: no code: the file is empty"]


def test_empty_file_written_as_dot_s_too(tmp_path, capsys):
    path = tmp_path / "empty.s"
    path.write_text("\n  \n")
    status, err = _run(capsys, ["parse", str(path)])
    assert (status, err[0]) == (2, f"{path}:1:1: error: no code: the file is empty")


def test_binary_junk_in_a_dot_s_file_is_located(tmp_path, capsys):
    path = tmp_path / "junk.s"
    path.write_bytes(b"\t.text\nf:\n\tnop.m 0\n\tmov r1=\xc3(r2\n")
    status, err = _run(capsys, ["report", str(path)])
    assert status == 2
    assert err[0] == f"{path}:4:9: error: invalid UTF-8 byte 0xc3 in source file"


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nosuch.S"
    status, err = _run(capsys, ["report", str(path)])
    assert (status, err) == (2, [f"ivtx: error: no such file: {path}"])


def test_directory_given_as_file(tmp_path, capsys):
    status, err = _run(capsys, ["parse", str(tmp_path)])
    assert (status, err) == (2, [f"ivtx: error: is a directory: {tmp_path}"])


@pytest.mark.parametrize("define, col, shown", [("1X", 9, "#define 1X 1"), ("=3", 10, "#define  3")])
def test_bad_define_syntax(tmp_path, capsys, define, col, shown):
    path = _write(tmp_path, HEAD + "\tmov r16=r17\n")
    status, err = _run(capsys, ["report", "-D", define, str(path)])
    assert status == 2
    assert err[0] == f"<command-line>:1:{col}: error: macro names must be identifiers"
    assert err[1:3] == [shown, _caret_for(shown, col)]


def test_bad_undefine_syntax(tmp_path, capsys):
    path = _write(tmp_path, HEAD + "\tmov r16=r17\n")
    status, err = _run(capsys, ["parse", "-U", "3", str(path)])
    assert (status, err[0]) == (2, "<command-line>:1:8: error: macro names must be identifiers")


@pytest.mark.parametrize("command", ["report", "parse", "cfg", "pp", "check"])
def test_output_over_the_input_is_refused(tmp_path, capsys, command):
    path = _write(tmp_path, HEAD + "\tmov r16=r17\n\trfi\n\t;;\n")
    before = path.read_bytes()
    status, err = _run(capsys, [command, str(path), "-o", str(path)])
    assert (status, err) == (2, [f"ivtx: error: refusing to overwrite the input file {path}"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bad.S"]


@pytest.mark.parametrize("command", ["parse", "cfg", "pp"])
def test_output_over_an_included_header_is_refused(tmp_path, capsys, command):
    header = tmp_path / "inc.h"
    header.write_text("#define SCRATCH r16\n")
    path = _write(tmp_path, '#include "inc.h"\n' + HEAD + "\tmov SCRATCH=r17\n")
    status, err = _run(capsys, [command, str(path), "-o", str(header)])
    assert (status, err) == (2, [f"ivtx: error: refusing to overwrite the input file {header}"])
    assert header.read_text() == "#define SCRATCH r16\n"


@pytest.mark.parametrize("command", ["report", "parse", "cfg", "pp"])
def test_output_into_a_missing_directory(tmp_path, capsys, command):
    path = _write(tmp_path, HEAD + "\tmov r16=r17\n\trfi\n\t;;\n")
    target = tmp_path / "nodir" / "out.txt"
    status, err = _run(capsys, [command, str(path), "-o", str(target)])
    assert (status, err) == (2, [f"ivtx: error: output directory does not exist: {target.parent}"])
    assert not target.parent.exists()


def test_unknown_handler_for_cfg(capsys):
    status, err = _run(capsys, ["cfg", str(SAMPLES_DIR / "ivt_tlb.S"), "--handler", "nosuch"])
    assert status == 2
    assert re.fullmatch(r"ivtx: error: no handler named 'nosuch' \(known: vhpt_miss, itlb_miss, .*daccess_bit\)", err[0])


def test_the_installed_entry_point_exits_2_without_a_traceback(tmp_path):
    path = _write(tmp_path, CASES["unknown mnemonic"][0])
    run = subprocess.run([sys.executable, "-m", "ivtx.cli", "report", str(path)], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"{path}:3:2: error: unknown mnemonic 'movx'", "        movx r16=r17",
                                       "        ^"]
    assert run.stdout == ""


def test_a_good_file_still_succeeds(tmp_path, capsys):
    """The negative control: the same head with a valid body is not an error."""
    path = _write(tmp_path, HEAD + "\tmov r16=r17\n\trfi\n\t;;\n")
    out = tmp_path / "out.txt"
    status, err = _run(capsys, ["report", str(path), "-o", str(out)])
    assert status == 0 and out.exists()
