"""`ivtx check` (ivtx/check.py): hand clobbers in pv-annotated source are proved dead or rejected
with the later read as the proof; operand kinds, raw privileged instructions, uncatalogued
sensitive instructions; text, JSON and SARIF outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivtx.cli import main
from test_report import sarif_problems

ROOT = Path(__file__).resolve().parent.parent

HEAD = "\t.section .text..ivt,\"ax\"\n\t.align 32768\n\t.global ia64_ivt\nia64_ivt:\n"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def source(tmp_path: Path, body: str, offset: int = 0x0400, name: str = "itlb_miss") -> str:
    """A one-vector IVT file written in the pv-macro style; returns its path."""
    p = tmp_path / "pv.S"
    p.write_text(HEAD + f"\t.org ia64_ivt+{offset:#06x}\n{name}:\n" + body)
    return str(p)


FIRST_BODY_LINE = 7  # HEAD is 4 lines, then .org and the label


# ---------------------------------------------------------------- the bundled pv samples


def test_pv_bad_is_rejected_naming_the_clobber_its_site_and_the_later_read(capsys):
    # samples/ivt_pv_bad.S line 43 `ITC_I(p0, r18, r31)`: r31 holds the saved predicates
    # (`mov r31=pr`, line 31) until `mov pr=r31,-1` at line 54 reads them back; no write to
    # r31 lies between, on any path (the SMP re-check between them does not touch r31).
    status, out, err = run(capsys, "check", "-I", "samples", "samples/ivt_pv_bad.S")
    assert status == 1
    assert "samples/ivt_pv_bad.S:43:2: error: ITC_I: clobber r31 (clob) is live after this site" in out
    assert "  proof: r31 is read at samples/ivt_pv_bad.S:54:2 (mov pr=r31,-1)" in out
    assert "\tITC_I(p0, r18, r31)".expandtabs(8) in out and "\n        ^\n" in out  # source line and caret
    # 4 pv sites (MOV_FROM_IFA, THASH, ITC_I, RFI), 2 clobbers (THASH's r18, ITC_I's r31)
    assert out.rstrip().endswith("samples/ivt_pv_bad.S: 4 pv sites, 2 clobbers written, 1 proved dead, 1 error(s)")
    assert "Traceback" not in err


def test_pv_sample_is_accepted(capsys):
    status, out, _ = run(capsys, "check", "-I", "samples", "samples/ivt_pv.S")
    assert status == 0
    assert " 0 error(s)" in out and ": error:" not in out
    # the one sensitive instruction outside the catalog (cr.ifs read in MINSTATE_SAVE) warns
    assert ": warning: sensitive instruction 'mov r21=cr.ifs' has no pv op in the catalog" in out


def test_pv_bad_json(capsys):
    status, out, _ = run(capsys, "check", "--format", "json", "-I", "samples", "samples/ivt_pv_bad.S")
    assert status == 1
    data = json.loads(out)
    assert data["schema"] == "ivtx-check/1" and data["file"] == "samples/ivt_pv_bad.S"
    assert (data["pv_sites"], data["clobbers"], data["clobbers_verified_dead"], data["errors"]) == (4, 2, 1, 1)
    (f,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert (f["code"], f["file"], f["line"], f["col"], f["role"]) == ("live-clobber", "samples/ivt_pv_bad.S", 43, 2, "clob")
    assert f["read_at"] == {"file": "samples/ivt_pv_bad.S", "line": 54, "col": 2}
    assert "r31" in f["message"] and "54" in f["proof"]


def test_pv_bad_sarif_points_at_the_site_and_relates_the_read(capsys):
    status, out, _ = run(capsys, "check", "--format", "sarif", "-I", "samples", "samples/ivt_pv_bad.S")
    assert status == 1
    log = json.loads(out)
    assert sarif_problems(log) == []
    (res,) = [r for r in log["runs"][0]["results"] if r["level"] == "error"]
    assert res["ruleId"] == "live-clobber"
    loc = res["locations"][0]["physicalLocation"]
    assert (loc["artifactLocation"]["uri"], loc["region"]["startLine"]) == ("samples/ivt_pv_bad.S", 43)
    rel = res["relatedLocations"][0]["physicalLocation"]
    assert (rel["artifactLocation"]["uri"], rel["region"]["startLine"]) == ("samples/ivt_pv_bad.S", 54)


def test_output_file_is_written_even_with_findings_and_never_over_the_input(capsys, tmp_path):
    out = tmp_path / "check.json"
    status, _, _ = run(capsys, "check", "--format", "json", "-I", "samples", "-o", str(out), "samples/ivt_pv_bad.S")
    assert status == 1 and json.loads(out.read_text())["errors"] == 1
    status, _, err = run(capsys, "check", "-o", "samples/ivt_pv_bad.S", "samples/ivt_pv_bad.S")
    assert status == 2 and "refusing to overwrite" in err


# ---------------------------------------------------------------- clobber rules on small sources


LIVE_BODY = """\
	MOV_FROM_IFA(r16)
	mov r31=pr
	;;
	THASH(p0, r17, r16, r20)
	;;
	add r21=r20,r17
	;;
	mov pr=r31,-1
	;;
	RFI
"""


def test_live_clobber_on_a_small_source(capsys, tmp_path):
    # r20 is read by the add two lines below the THASH (line 7 + 5 = 12)
    path = source(tmp_path, LIVE_BODY.replace("THASH(p0, r17, r16, r20)", "THASH(p0, r17, r16, r20)"))
    status, out, _ = run(capsys, "check", path)
    assert status == 1
    assert f"{path}:{FIRST_BODY_LINE + 3}:2: error: THASH: clobber r20 (clob) is live after this site" in out
    assert f"r20 is read at {path}:{FIRST_BODY_LINE + 5}:2 (add r21=r20,r17)" in out
    fixed = source(tmp_path, LIVE_BODY.replace("THASH(p0, r17, r16, r20)", "THASH(p0, r17, r16, r22)"))
    status, out, _ = run(capsys, "check", fixed)
    assert status == 0, out


@pytest.mark.parametrize("call, code, words", [
    ("THASH(p0, r17, r16, r0)", "clobber-constant", "r0 is a constant register"),
    ("THASH(p0, r17, r16, r17)", "clobber-operand", "also the dst operand"),
    ("SSM_PSR_I(p0, p0, r22)", "clobber-constant", "p0 is a constant register"),
    ("MOV_TO_KR(6, r16, r22, r22)", "clobber-duplicate", "already clobber clob0"),
    ("RSM_PSR_I(p0, r40, r22)", "clobber-frame", "r40 is not provably in a register frame"),
], ids=["r0", "operand", "p0", "duplicate", "stacked"])
def test_clobbers_that_are_no_usable_scratch_register(capsys, tmp_path, call, code, words):
    body = f"\tMOV_FROM_IFA(r16)\n\tmov r31=pr\n\t;;\n\tTHASH(p0, r17, r16, r18)\n\t;;\n\t{call}\n\t;;\n" \
           "\tmov pr=r31,-1\n\t;;\n\tRFI\n"
    status, out, _ = run(capsys, "check", "--format", "json", source(tmp_path, body))
    assert status == 1
    errors = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == [code]
    assert words in errors[0]["message"] and errors[0]["line"] == FIRST_BODY_LINE + 5


def test_bank_switch_clobber_must_be_dead_in_both_banks(capsys, tmp_path):
    # After BSW_1 the interrupted bank-1 r16/r17 reach RFI: BSW_1(r16, r17) could destroy them
    # whichever bank the replacement writes in. r2/r3 are rewritten after the switch: fine.
    body = "\tmov r31=pr\n\t;;\n\tBSW_1(r16, r17)\n\t;;\n\tmov r2=r0\n\tmov r3=r0\n\t;;\n\tmov pr=r31,-1\n\t;;\n\tRFI\n"
    status, out, _ = run(capsys, "check", "--format", "json", source(tmp_path, body, 0x2C00, "break_fault"))
    errors = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert status == 1 and [(f["code"], f["role"]) for f in errors] == [("live-clobber", "clob0"), ("live-clobber", "clob1")]
    assert "r16@1" in errors[0]["message"] and "rfi" in errors[0]["proof"]
    ok = body.replace("BSW_1(r16, r17)", "BSW_1(r2, r3)")
    status, out, _ = run(capsys, "check", source(tmp_path, ok, 0x2C00, "break_fault"))
    assert status == 0, out


# ---------------------------------------------------------------- operand kinds (the parser's job)


@pytest.mark.parametrize("call, col, message", [
    ("SSM_PSR_I(p15, r3, r8)", 17, "operand 'pclob' of pv op 'SSM_PSR_I' must be a predicate register, not 'r3'"),
    ("ITC_D(r5, r18, r19)", 8, "operand 'pred' of pv op 'ITC_D' must be a predicate register, not 'r5'"),
    ("ITC_D(p0, r18, p6)", 17, "operand 'clob' of pv op 'ITC_D' must be a general register, not 'p6'"),
    ("MOV_TO_IFA(p6, r19)", 13, "operand 'src' of pv op 'MOV_TO_IFA' must be a general register, not 'p6'"),
    ("ITC_D(p0, r18)", 2, "pv op 'ITC_D' takes 3 operands (pred, src, clob), got 2"),
], ids=["gr-as-pclob", "gr-as-pred", "pr-as-clob", "pr-as-src", "arity"])
def test_operand_kinds_are_rejected_with_file_line_col(capsys, tmp_path, call, col, message):
    body = f"\tmov r31=pr\n\t;;\n\t{call}\n\t;;\n\tmov pr=r31,-1\n\t;;\n\tRFI\n"
    path = source(tmp_path, body)
    out_file = tmp_path / "out.json"
    status, out, err = run(capsys, "check", "--format", "json", "-o", str(out_file), path)
    assert status == 2 and out == ""
    assert f"{path}:{FIRST_BODY_LINE + 2}:{col}: error: {message}" in err
    assert f"\t{call}".expandtabs(8) in err and "^" in err and "Traceback" not in err
    assert not out_file.exists()  # no partial output


# ---------------------------------------------------------------- raw and uncatalogued instructions


RAW_BODY = """\
	MOV_FROM_IFA(r16)
	mov r31=pr
	;;
	THASH(p0, r17, r16, r18)
	;;
	ld8 r18=[r17]
	;;
	itc.i r18
	;;
	{extra}
	mov pr=r31,-1
	;;
	RFI
"""


def test_raw_privileged_instruction_in_pv_source_is_an_error(capsys, tmp_path):
    path = source(tmp_path, RAW_BODY.format(extra=""))
    status, out, _ = run(capsys, "check", path)
    assert status == 1
    assert f"{path}:{FIRST_BODY_LINE + 7}:2: error: raw privileged instruction 'itc.i r18' is not wrapped: use ITC_I" in out


@pytest.mark.parametrize("insn", ["ptc.e r16", "fc r16", "ttag r20=r16"])
def test_uncatalogued_sensitive_instruction_warns_unless_strict(capsys, tmp_path, insn):
    body = RAW_BODY.format(extra=f"{insn}\n\t;;").replace("\titc.i r18\n", "\tITC_I(p0, r18, r19)\n")
    path = source(tmp_path, body)
    status, out, _ = run(capsys, "check", path)
    line = FIRST_BODY_LINE + 9
    assert status == 0, out
    assert f"{path}:{line}:2: warning: sensitive instruction '{insn}' has no pv op in the catalog" in out
    status, out, _ = run(capsys, "check", "--strict", path)
    assert status == 1
    assert f"{path}:{line}:2: error: sensitive instruction '{insn}' has no pv op in the catalog" in out


def test_check_rule_table_covers_every_finding_code():
    import re

    from ivtx.check import RULES

    text = (ROOT / "ivtx" / "check.py").read_text()
    used = set(re.findall(r'Finding\([^,]+, "([a-z-]+)"', text))
    assert used and used <= set(RULES)


def test_raw_instruction_passed_as_argument_of_a_switched_macro_is_a_note(tmp_path):
    # DO_SAVE_MIN is replaced as a whole per hypervisor (catalog [[switched]]): an instruction
    # written as its argument is part of that native implementation, not an unwrapped site
    src = tmp_path / "sw.S"
    src.write_text(
        "#define DO_SAVE_MIN(SAVE_IFS) SAVE_IFS;;\n"
        "\t.section .text..ivt,\"ax\"\n\t.align 32768\nia64_ivt:\n"
        "\t.org ia64_ivt+0x2c00\nbreak_fault:\n\tDO_SAVE_MIN(mov r30=cr.ifs)\n\trfi\n\t;;\n")
    from ivtx.check import check
    from ivtx.pipeline import Options, analyse

    findings = check(analyse(str(src), Options()))
    notes = [f for f in findings if f.code == "switched"]
    assert notes and "DO_SAVE_MIN" in notes[0].message
    assert not [f for f in findings if f.code == "uncatalogued"]
