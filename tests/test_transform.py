"""ivtx.transform, pvops macro rendering: source-preserving edits, macro bodies edited once with
clobbers dead at every use, unresolved sites, patches, and the self-check (no assembler needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ivtx.pipeline import Options, analyse
from ivtx.transform import IvtxInternal, transform, unified_patch

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

HEAD = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
"""

# itc.i at 0x0400: after it only r31 (saved pr) is read among bank-0 registers, and r17 is the
# operand, so r16 is the first dead bank-0 register (the choice order is r16-r31 ascending).
ITLB = HEAD + """\t.org ia64_ivt+0x0400
itlb_miss:
\tmov r16=cr.ifa\t\t\t// the address
\tmov r31=pr
\t;;
\tmov r17=r16
\t;;
(p7)\titc.i r17\t\t\t// insert it
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
"""


def run(path: Path, convention="pvops", render="macro", **kw):
    opts = Options(include_dirs=[str(path.parent)], prelude=kw.pop("prelude", False), defines=kw.pop("defines", []))
    a = analyse(str(path), opts)
    return a, transform(a, convention, render, options=opts, sizes="estimate")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_site_line_becomes_the_macro_call_and_nothing_else_changes(tmp_path):
    src = write(tmp_path, "itlb.S", ITLB)
    _, res = run(src)
    assert res.ok
    old, new = ITLB.split("\n"), res.text.split("\n")
    assert new[0] == "#include <asm/native/inst.h>\t/* ivtx: defines the pv_ops macros below */"
    new = new[1:]
    changed = [(o, n) for o, n in zip(old, new) if o != n]
    # the comment keeps its column: `(p7)` 0-3, tab to 8, `itc.i r17` to 17, tabs to 24/32/40;
    # the call from 8 to 27, then tabs to 32 and 40
    assert changed == [("\tmov r16=cr.ifa\t\t\t// the address", "\tMOV_FROM_IFA(r16)\t\t// the address"),
                       ("(p7)\titc.i r17\t\t\t// insert it", "\tITC_I(p7, r17, r16)\t\t// insert it"),
                       ("\trfi", "\tRFI")]
    assert len(old) == len(new)
    assert [e.new for e in res.edits] == ["MOV_FROM_IFA(r16)", "ITC_I(p7, r17, r16)", "RFI"]


def test_macro_body_in_a_local_header_is_edited_once_with_a_clobber_dead_at_every_use(tmp_path):
    write(tmp_path, "insert.h", "#define INSERT(reg)\titc.d reg\t/* the insert */\n")
    body = """\tmov r31=pr
\tmov {a}=cr.ifa
\t;;
\tmov r18={a}
\t;;
\tINSERT(r18)
\t;;
\tmov r19={a}\t\t\t// {a} is read after the insert
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
"""
    # use 1 reads r16 after the insert, use 2 reads r17; r18 is the operand: r19 is the first
    # register dead after both (it is written, never read, after each insert)
    text = '#include "insert.h"\n' + HEAD + "\t.org ia64_ivt+0x0400\none:\n" + body.format(a="r16") \
        + "\t.org ia64_ivt+0x0800\ntwo:\n" + body.format(a="r17")
    src = write(tmp_path, "two.S", text)
    a, res = run(src)
    assert res.ok
    assert res.headers == {"insert.h": "#define INSERT(reg)\tITC_D(p0, reg, r19)\t/* the insert */\n"}
    assert res.header_sources == {"insert.h": str(tmp_path / "insert.h")}
    itc = [s for s in a.sites if s.op is not None and s.op.name == "ITC_D"]
    assert [s.free_gr[0] for s in itc] == ["r17", "r16"]  # each use alone would pick differently
    # the main file itself only gains the include
    assert res.text == '#include <asm/native/inst.h>\t/* ivtx: defines the pv_ops macros below */\n' + \
        text.replace("\tmov r16=cr.ifa", "\tMOV_FROM_IFA(r16)").replace("\tmov r17=cr.ifa", "\tMOV_FROM_IFA(r17)") \
        .replace("\trfi", "\tRFI")


def test_a_macro_body_meaning_different_ops_is_unresolved(tmp_path):
    write(tmp_path, "get.h", "#define GET(reg, cr)\tmov reg=cr\n")
    text = '#include "get.h"\n' + HEAD + """\t.org ia64_ivt+0x0400
one:
\tGET(r16, cr.ifa)
\tGET(r17, cr.iha)
\t;;
\trfi
\t;;
"""
    src = write(tmp_path, "get.S", text)
    _, res = run(src)
    assert not res.ok and res.text is None
    assert len(res.unresolved) == 1
    u = res.unresolved[0]
    assert "not all the same pv site" in u.reason and u.site.startswith(f"{src}:8:2 in one, {src}:9:2")


def test_existing_pv_calls_stay_as_written(tmp_path):
    text = HEAD + """\t.org ia64_ivt+0x0400
one:
\tmov r31=pr
\tmov r18=r0
\t;;
\tITC_D(p0, r18, r16)\t// already paravirtualized
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
"""
    src = write(tmp_path, "pv.S", text)
    _, res = run(src)
    assert res.ok
    assert "\tITC_D(p0, r18, r16)\t// already paravirtualized\n" in res.text
    assert [e.new for e in res.edits] == ["RFI"]


def test_unfixable_sample_is_unresolved_and_nothing_is_emitted():
    _, res = run(SAMPLES / "ivt_unfixable.S", prelude=True)
    assert not res.ok and res.text is None and res.program is None
    [u] = res.unresolved
    assert u.op == "ITC_D" and ":80:" in u.site and "needs 1 GR clobber(s), 0 free" in u.reason


def test_cli_unresolved_exit_status_and_no_output(tmp_path, capsys):
    from ivtx.cli import EXIT_UNRESOLVED, main

    out = tmp_path / "out.S"
    status = main(["transform", "-I", str(SAMPLES), str(SAMPLES / "ivt_unfixable.S"), "-o", str(out),
                   "--support-dir", str(tmp_path / "sup")])
    err = capsys.readouterr().err
    assert status == EXIT_UNRESOLVED == 3
    assert not out.exists() and not (tmp_path / "sup").exists()
    assert "ivt_unfixable.S:80:2 in page_not_present: itc.d r31 (ITC_D)" in err


def test_cli_writes_the_output_edited_headers_and_support_files(tmp_path, capsys):
    from ivtx.cli import main

    out = tmp_path / "o" / "ivt_save.S"
    out.parent.mkdir()
    status = main(["transform", "-I", str(SAMPLES), str(SAMPLES / "ivt_save.S"), "-o", str(out),
                   "--support-dir", str(tmp_path / "sup")])
    assert status == 0, capsys.readouterr().err
    header = (out.parent / "sample_minstate.h").read_text()
    assert "# define MINSTATE_GET_IPSR(reg)\tMOV_FROM_IPSR(p0, reg)" in header
    assert "#define SAVE_MIN_COVER\t\tMINSTATE_SAVE(COVER, mov r21=cr.ifs, )" in header
    inst = (tmp_path / "sup" / "asm" / "native" / "inst.h").read_text()
    assert "#define ITC_D(pred, src, clob)\t(pred) itc.d src" in inst
    assert "#define MOV_TO_KR(kr, src, clob0, clob1)\tmov ar.k##kr=src" in inst


def test_bsw_in_a_shared_macro_gets_clobbers_dead_after_all_three_uses():
    a, res = run(SAMPLES / "ivt_save.S", prelude=True)
    uses = [s for s in a.sites if s.op is not None and s.op.name == "BSW_1"]
    assert len(uses) == 3  # SAVE_MIN_COVER in break_fault and interrupt, _R19 in the dispatcher
    common = [r for r in uses[0].free_gr if all(r in u.free_gr for u in uses)]
    line = next(ln for ln in res.headers["sample_minstate.h"].split("\n") if "MINSTATE_BSW_1\t" in ln)
    assert line == f"# define MINSTATE_BSW_1\t\tBSW_1({common[0]}, {common[1]})"


def test_no_include_is_added_when_the_source_includes_the_pv_header():
    _, res = run(SAMPLES / "ivt_pv.S", prelude=True)
    assert res.ok and "ivtx: defines the pv_ops macros" not in res.text
    assert not res.edits  # every site is a pv call already


def test_unified_patch_applies_with_patch_and_git_apply(tmp_path):
    src = write(tmp_path, "itlb.S", ITLB)
    _, res = run(src)
    work = tmp_path / "tree"
    work.mkdir()
    (work / "itlb.S").write_text(ITLB)
    diff = unified_patch("itlb.S", ITLB, res.text)
    assert diff.startswith("--- a/itlb.S\n+++ b/itlb.S\n")
    if shutil.which("git"):
        subprocess.run(["git", "apply", "--check", "-"], input=diff, text=True, cwd=work, check=True)
    if not shutil.which("patch"):
        pytest.skip("patch(1) not installed")
    subprocess.run(["patch", "-p1", "-s"], input=diff, text=True, cwd=work, check=True)
    assert (work / "itlb.S").read_text() == res.text


def test_self_check_fails_loudly_when_a_clobber_is_live(tmp_path):
    src = write(tmp_path, "itlb.S", ITLB)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False)
    a = analyse(str(src), opts)
    site = next(s for s in a.sites if s.op is not None and s.op.name == "ITC_I")
    site.free_gr = ["r31"] + site.free_gr  # pretend r31 (the saved pr, restored later) were dead
    with pytest.raises(IvtxInternal, match=r"r31 is live in the output \(read at .*mov pr=r31"):
        transform(a, "pvops", options=opts, sizes="estimate")


# ---------------------------------------------------------------- restructuring


def test_tight_sample_is_restructured_by_reading_cr_ifa_again(tmp_path):
    """ivt_tight.S: every bank-0 register is live at `itc.d r21` (line 87). r16 holds cr.ifa,
    read at line 47 with psr.ic=0 and nothing writing cr.ifa or missing in between, so r16 can
    be ITC_D's clobber and be read again right after it."""
    from ivtx.sites import why_live

    src = SAMPLES / "ivt_tight.S"
    a, res = run(src, prelude=True)
    assert res.ok
    [r] = res.restructurings
    assert (r.kind, r.region) == ("rematerialize", "alt_dtlb_miss")
    assert r.moved.startswith("r16 (cr.ifa, read at ") and ":47:2)" in r.moved
    lines = res.text.split("\n")
    i = lines.index("\tITC_D(p0, r21, r16)\t\t\t// <-- every bank-0 register is live here")
    assert lines[i + 1:i + 4] == ["\t;;", "\tMOV_FROM_IFA(r16)\t\t// ivtx: recomputed, ITC_D may clobber r16", "\t;;"]
    # the output analysed on its own: r16 is dead after ITC_D (the self-check, done here again)
    (tmp_path / "sup" / "asm" / "native").mkdir(parents=True)
    (tmp_path / "sup" / "asm" / "native" / "inst.h").write_text(res.support["asm/native/inst.h"])
    out = tmp_path / "ivt_tight.S"
    out.write_text(res.text)
    b = analyse(str(out), Options(include_dirs=[str(tmp_path / "sup"), str(SAMPLES)]))
    [itc] = [s for s in b.sites if s.op is not None and s.op.name == "ITC_D"]
    assert itc.kind == "pvcall" and why_live(b.cfg, b.liveness, itc.pos, "r16@0") is None
    before = next(s.pos for s in a.sites if s.op is not None and s.op.name == "ITC_D")
    assert why_live(a.cfg, a.liveness, before, "r16@0") is not None  # in the input it was live


# Predicates are all live (never saved: the interrupted context's); r16-r31 are free. SSM_PSR_I
# needs a predicate clobber: r16 (the first free GR) is its GR clobber and the predicates are
# saved in the next one, r17, around it.
SSM = HEAD + """\t.org ia64_ivt+0x5000
one:
\tmov r18=cr.ipsr
\t;;
\ttbit.nz p15,p0=r18,14
\t;;
(p15)\tssm psr.i
\t;;
\trfi
\t;;
"""


def test_missing_predicate_clobber_is_made_by_saving_the_predicates(tmp_path):
    src = write(tmp_path, "ssm.S", SSM)
    _, res = run(src)
    assert res.ok
    [r] = res.restructurings
    assert r.kind == "save-restore" and "saved in r17" in r.moved
    body = res.text.split("one:\n", 1)[1].split("\n")
    assert body[4:10] == ["\tmov r17=pr", "\tSSM_PSR_I(p15, p6, r16)", "\t;;",
                          "\tmov pr=r17,-1\t\t\t// ivtx: predicates restored", "\t;;", "\tRFI"]


# r16-r31 all hold loaded values read after the thash (no constant, no recomputable value), so
# THASH has no clobber where it is. The stores after it do not depend on it (a thash writes no
# TLB entry and only r18, which they read later), and after `st8 [r1]=r16` r16 is dead: moving
# down is tried first, so the thash goes below that store, with r16 as its clobber.
MOVE = HEAD + """\t.org ia64_ivt+0x0400
one:
""" + "".join(f"\tld8 r{n}=[r{n}]\n" for n in range(16, 32)) + """\t;;
\tld8 r17=[r20]
\t;;
\tthash r18=r19
\t;;
""" + "".join(f"\tst8 [r1]=r{n}\n\t;;\n" for n in range(16, 32)) + """\trfi
\t;;
"""


def test_site_moves_past_independent_instructions_to_free_a_register(tmp_path):
    src = write(tmp_path, "move.S", MOVE)
    _, res = run(src)
    assert res.ok
    [r] = res.restructurings
    assert r.kind == "move" and "below 'st8 [r1]=r16'" in r.moved
    body = res.text.split("one:\n", 1)[1].split("\n")
    at = body.index("\tst8 [r1]=r16")
    assert body[at + 1:at + 4] == ["\t;;", "\tTHASH(p0, r18, r19, r16)", "\t;;"]
    assert "\tthash r18=r19" not in body


def test_cli_patch_covers_the_edited_header_and_applies(tmp_path, monkeypatch, capsys):
    from ivtx.cli import main

    monkeypatch.chdir(ROOT)
    patch = tmp_path / "pv.diff"
    assert main(["transform", "-I", "samples", "samples/ivt_save.S", "--patch", "-o", str(patch),
                 "--sizes", "estimate"]) == 0
    diff = patch.read_text()
    assert "--- a/samples/ivt_save.S\n+++ b/samples/ivt_save.S\n" in diff
    assert "--- a/samples/sample_minstate.h\n+++ b/samples/sample_minstate.h\n" in diff
    if not shutil.which("patch"):
        pytest.skip("patch(1) not installed")
    tree = tmp_path / "tree"
    shutil.copytree(SAMPLES, tree / "samples")
    subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=tree, check=True)
    out = tmp_path / "out" / "ivt_save.S"
    out.parent.mkdir()
    assert main(["transform", "-I", "samples", "samples/ivt_save.S", "-o", str(out), "--sizes", "estimate"]) == 0
    assert (tree / "samples" / "ivt_save.S").read_text() == out.read_text()
    assert (tree / "samples" / "sample_minstate.h").read_text() == (out.parent / "sample_minstate.h").read_text()


# A header defining catalog macros natively (like asm/native/inst.h), read with --expand-pv: the
# source's MOV_FROM_IFA(r16) is already a pv call; only the native `mov r17=cr.ifa` is a new site.
NATIVE_DEFS = """#define MOV_FROM_IFA(dst)\tmov dst=cr.ifa
#define ITC_I(pred, src, clob)\t(pred) itc.i src
#define RFI\trfi
"""
EXPANDED = '#include "defs.h"\n' + HEAD + """\t.org ia64_ivt+0x0400
itlb_miss:
\tMOV_FROM_IFA(r16)\t\t// already a pv call
\tmov r31=pr
\t;;
\tmov r17=cr.ifa
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
"""


@pytest.mark.parametrize("render", ["macro", "call"])
@pytest.mark.parametrize("partial", [False, True])
def test_a_pv_macro_expanded_through_its_native_definition_is_a_pv_call_and_the_header_is_not_edited(
        tmp_path, render, partial):
    write(tmp_path, "defs.h", NATIVE_DEFS)
    src = write(tmp_path, "exp.S", EXPANDED)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False, expand_pv=True)
    a = analyse(str(src), opts)
    res = transform(a, "pvops", render, options=opts, sizes="estimate", partial=partial)
    assert res.ok and res.headers == {}
    assert all("defs.h" not in e.where for e in res.edits)
    if render == "macro":  # the call stays as written; the native site and rfi become calls
        assert "\tMOV_FROM_IFA(r16)\t\t// already a pv call\n" in res.text
        assert [e.new for e in res.edits] == ["MOV_FROM_IFA(r17)", "RFI"]
    else:  # all three sites become table calls, the written one included
        assert "MOV_FROM_IFA(r16)" not in res.text
        assert [e.op for e in res.edits] == ["MOV_FROM_IFA", "MOV_FROM_IFA", "RFI"]


def test_a_live_written_clobber_is_re_chosen_and_the_output_verifies():
    """ivt_pv_bad.S line 43: ITC_I(p0, r18, r31) while `mov pr=r31,-1` (line 54) reads r31.
    Only that argument changes, to a register dead after the call; the scribbling hypervisor
    model (it writes every clobber) then agrees with the native run on every trial."""
    from ivtx.sites import why_live
    from ivtx.verify import scribbling_model, verify

    src = SAMPLES / "ivt_pv_bad.S"
    a, res = run(src, prelude=True)
    assert res.ok
    [e] = res.edits
    new = e.new.split(", ")[-1].rstrip(")")
    assert e.old == "ITC_I(p0, r18, r31)" and e.new == f"ITC_I(p0, r18, {new})" and new not in ("r18", "r31")
    assert e.reason.startswith(f"written clobber r31 is live (read at {src}:54:") and \
        e.reason.endswith(f"replaced by {new}, proved dead")
    site = next(s for s in a.sites if s.op is not None and s.op.name == "ITC_I")
    assert why_live(a.cfg, a.liveness, site.pos, new) is None
    old_lines, new_lines = src.read_text().split("\n"), res.text.split("\n")
    assert [(o, n) for o, n in zip(old_lines, new_lines) if o != n] == \
        [("\tITC_I(p0, r18, r31)", f"\tITC_I(p0, r18, {new})")] and len(old_lines) == len(new_lines)
    result = verify(a.program, res.program, trials=200, pv_model=scribbling_model, policy=a.policy)
    assert result.handlers and result.ok, [h.mismatch.describe() for h in result.mismatches]
    assert [(h.name, h.agreed) for h in result.handlers] == [("itlb_miss", 200)]


def test_dead_written_clobbers_stay_byte_for_byte():
    _, res = run(SAMPLES / "ivt_pv.S", prelude=True)
    assert res.ok and res.text == (SAMPLES / "ivt_pv.S").read_text()


def test_a_live_written_clobber_with_nothing_free_is_unresolved(tmp_path):
    # every bank-0 GR r16-r31 and r2-r15 (and r1, r8-r11 ...) is read after the call: nothing to re-choose
    reads = "".join(f"\tst8 [r1]=r{n}\n" for n in range(2, 32) if n != 12 and n != 13)
    text = HEAD + "\t.org ia64_ivt+0x0400\none:\n\tITC_D(p0, r18, r16)\n\t;;\n" + reads + \
        "\tst8 [r1]=r12\n\tst8 [r1]=r13\n\t;;\n\trfi\n\t;;\n"
    src = write(tmp_path, "full.S", text)
    _, res = run(src)
    assert not res.ok and res.text is None
    [u] = res.unresolved
    assert u.op == "ITC_D" and u.reason.startswith(f"written clobber r16 is live (read at {src}:") \
        and u.reason.endswith("no GR is free to replace it")


# --------------------------------------------------------------------------- code ivtx cannot see

SYSCALL = SAMPLES / "ivt_syscall.S"
CLAIM_FILE = str(SAMPLES / "linux-syscalls.toml")


@pytest.mark.parametrize("convention,render", [("pvops", "macro"), ("pvops", "call"), ("pal-static", "call")])
def test_a_site_before_an_untraced_table_call_is_unresolved_unless_the_user_claims_c_targets(convention, render):
    """break_fault's `(p15) ssm psr.i` sits right before `br.call b6=b6` through the system-call
    table: ivtx cannot see the target, so nothing is free there and nothing is emitted. With the
    [unresolved_calls] claim of samples/linux-syscalls.toml every convention resolves, and the
    report names the claim."""
    opts = Options(include_dirs=[str(SAMPLES)])
    a = analyse(str(SYSCALL), opts)
    res = transform(a, convention, render, options=opts, sizes="estimate")
    assert not res.ok and res.text is None
    lines = [u.site for u in res.unresolved]
    assert any(":80:" in s and "break_fault" in s for s in lines), lines
    assert all("br.call target not traced" in u.reason for u in res.unresolved if ":80:" in u.site)
    claimed = Options(include_dirs=[str(SAMPLES)], conventions=CLAIM_FILE)
    b = analyse(str(SYSCALL), claimed)
    res = transform(b, convention, render, options=claimed, sizes="estimate")
    assert res.ok and not res.unresolved
    edit = next(e for e in res.edits if ":80:" in e.site)
    assert "your claim" in edit.reason


def test_the_unaligned_dispatcher_gets_registers_from_the_summary_of_its_c_wrapper():
    """dispatch_unaligned_handler leaves with `br ia64_prepare_handle_unaligned`, rp preset; the
    shipped conventions describe that wrapper (entry.S) as a C function, so the scratch registers
    predicates are free at its `(p15) ssm psr.i` (it needs one); without the summary everything
    would be live there."""
    from ivtx.conventions import load_policy

    assert "ia64_prepare_handle_unaligned" in load_policy().c_functions
    opts = Options(include_dirs=[str(SAMPLES)])
    a = analyse(str(SYSCALL), opts)
    site = next(s for s in a.sites if a.cfg.code[s.pos].loc.use_site.line == 110)
    assert site.op.name == "SSM_PSR_I" and site.free_gr and site.free_pr
    toml = (ROOT / "ivtx" / "data" / "conventions.toml").read_text()
    stripped = toml.replace(',\n             "ia64_prepare_handle_unaligned"]', "]")
    assert stripped != toml
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(stripped)
    try:
        b = analyse(str(SYSCALL), Options(include_dirs=[str(SAMPLES)], conventions=f.name))
    finally:
        Path(f.name).unlink()
    site = next(s for s in b.sites if b.cfg.code[s.pos].loc.use_site.line == 110)
    # (SAVE_REST writes r8-r11 after the site, so GRs stay free; the predicates do not)
    assert not site.free_pr and any("ia64_prepare_handle_unaligned" in p for p in site.unknown_paths)


def test_the_generated_native_header_defers_to_a_kernel_header_of_the_same_name(tmp_path):
    """In a kernel tree asm/native/inst.h exists and defines more than the pv_ops macros (Linux:
    DO_SAVE_MIN). The support directory comes first on the include path, so ivtx's header includes
    the next one of that name first and defines only the ops it left out (with real Linux headers
    the transform's own self-check once failed on an undefined DO_SAVE_MIN)."""
    from ivtx.cli import main

    kernel = tmp_path / "kernel"
    (kernel / "asm" / "native").mkdir(parents=True)
    (kernel / "asm" / "native" / "inst.h").write_text(
        "#define MY_SAVE\tmov r20=r21\n#define MOV_FROM_IFA(reg)\tmov reg=cr.ifa\n")
    src = write(tmp_path, "k.S", "#include <asm/native/inst.h>\n" + ITLB.replace(
        "\tmov r31=pr\n", "\tmov r31=pr\n\tMY_SAVE\n"))
    out, sup = tmp_path / "out", tmp_path / "sup"
    out.mkdir()
    assert main(["transform", "--no-prelude", "-I", str(kernel), "--sizes", "estimate", str(src),
                 "-o", str(out / "k.S"), "--support-dir", str(sup)]) == 0
    header = (sup / "asm" / "native" / "inst.h").read_text()
    assert "#include_next <asm/native/inst.h>" in header and "#ifndef ITC_I\n" in header
    pp = tmp_path / "k.s"
    assert main(["pp", "--no-prelude", "--expand-pv", "-I", str(sup), "-I", str(out), "-I", str(kernel),
                 str(out / "k.S"), "-o", str(pp)]) == 0
    text = pp.read_text()
    assert "mov r20=r21" in text and "mov r16=cr.ifa" in text and "itc.i r17" in text


def test_transform_defaults_to_the_options_of_the_analysis():
    """`ivtx bench` calls transform(analysis, ...) with no options: the self-check must analyse the
    output with the same conventions (here the syscall claim), or it finds registers live that the
    plan proved dead and stops with an internal error."""
    claimed = Options(include_dirs=[str(SAMPLES)], conventions=CLAIM_FILE)
    a = analyse(str(SYSCALL), claimed)
    for convention, render in (("pvops", "call"), ("pal-static", "call")):
        assert transform(a, convention, render, sizes="estimate").ok


def test_a_recomputation_after_a_site_with_no_stop_after_it_does_not_collide_with_the_site_edit(tmp_path):
    """Found by fuzzing transform: ivt_tight.S with the stop after `itc.d r21` moved below the
    dv_serialize_data. The recomputation of r16 then goes right after the site on its own line,
    while the site's own edit takes the spaces before its comment: the two edits overlapped."""
    text = (SAMPLES / "ivt_tight.S").read_text()
    old = "\titc.d r21\t\t\t\t// <-- every bank-0 register is live here\n\t;;\n\tdv_serialize_data"
    assert old in text
    src = write(tmp_path, "tight.S", text.replace(old, old.replace("\n\t;;\n\tdv_serialize_data",
                                                                   "\n\tdv_serialize_data") .replace(
        "dv_serialize_data", "dv_serialize_data\t\t\t// pinned\n\t;;", 1)))
    _, res = run(src, prelude=True)
    assert res.ok
    lines = res.text.split("\n")
    k = next(i for i, ln in enumerate(lines) if ln.strip().startswith("ITC_D(p0, r21, r16)"))
    assert [ln.strip().split("\t")[0] for ln in lines[k + 1:k + 4]] == [";;", "MOV_FROM_IFA(r16)", ";;"]
