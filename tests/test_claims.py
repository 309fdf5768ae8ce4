"""The optional `[unresolved_calls]` claim of a convention file (ivtx/conventions.py, ivtx/claims.py):
absent from the shipped default (an untraced br.call makes everything live), and when a user makes
it, the site before such a call gets exactly what the C software conventions leave free, each
register named with the claim in the report, in check and in transform."""

from __future__ import annotations

from pathlib import Path

from ivtx.conventions import expand_set, load_policy
from ivtx.pipeline import Options, analyse
from ivtx.sites import BR_ORDER, GR_ORDER, PR_ORDER

ROOT = Path(__file__).resolve().parent.parent
CLAIM = 'extends = "default"\n\n[unresolved_calls]\nconvention = "c"\n'

# In bank 1 the handler loads a function pointer, calls it with `br.call b0=b6` (ivtx cannot trace
# the target) and then leaves through `done`, which reads only r1, r12 and r13 (a subset of what a
# C function reads). `ssm psr.i` is the site right before the call.
SYSCALL = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
\t.org ia64_ivt+0x5000
syscall:
\tbsw.1
\t;;
\tld8 r16=[r12]
\t;;
\tmov b6=r16
\t;;
\tssm psr.i
\tbr.call.sptk.many b0=b6
\t;;
\tbr.sptk.many done\t\t// ivtx: summary done live_in=[r1, r12, r13]
\t;;
"""


def run(tmp_path: Path, text: str, claim: bool, name: str = "sys.S"):
    src = tmp_path / name
    src.write_text(text)
    conv = None
    if claim:
        conv = tmp_path / "claim.toml"
        conv.write_text(CLAIM)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False, conventions=str(conv) if conv else None)
    return analyse(str(src), opts), opts, conv


def ssm(a):
    return next(s for s in a.sites if s.op is not None and s.op.name == "SSM_PSR_I")


def test_the_shipped_default_makes_no_claim():
    assert load_policy().unresolved_calls is None
    text = (ROOT / "ivtx" / "data" / "conventions.toml").read_text()
    assert "\n[unresolved_calls]" not in text  # documented in a comment only


def test_without_the_claim_everything_is_live_before_an_untraced_call(tmp_path):
    a, _, _ = run(tmp_path, SYSCALL, claim=False)
    site = ssm(a)
    # only b0: the br.call itself overwrites it before anything runs
    assert site.free_gr == [] and site.free_pr == [] and site.free_br == ["b0"]
    assert any("br.call target not traced" in p for p in site.unknown_paths)
    assert site.claims == {}


def test_with_the_claim_the_site_gets_exactly_the_c_convention_free_set(tmp_path):
    a, _, conv = run(tmp_path, SYSCALL, claim=True)
    site = ssm(a)
    c = load_policy().c_functions["ia64_fault"].live_in  # [calling_convention.c] of the default
    # After the site: the call reads b6 and everything a C function reads; `done` reads r1, r12,
    # r13 (already in that set); br.call writes b0 before the callee runs. In bank 1 a banked
    # name means its bank-1 register; r32-r127 count only in a frame the code allocated (none).
    want_gr = [r for r in GR_ORDER if int(r[1:]) < 32 and
               not (set(expand_set([r + "@1" if 16 <= int(r[1:]) <= 31 else r], None, "t")) & c)]
    want_pr = [p for p in PR_ORDER if p not in c]
    # b0: a C function reads it to return, but this br.call writes it (the link) first
    want_br = [b for b in BR_ORDER if (b not in c or b == "b0") and b != "b6"]
    assert want_gr == [f"r{n}" for n in range(16, 32)] + ["r2", "r3", "r8", "r9", "r10", "r11", "r14", "r15"]
    assert want_pr == [f"p{n}" for n in range(6, 16)] and want_br == ["b7", "b0"]
    assert (site.free_gr, site.free_pr, site.free_br) == (want_gr, want_pr, want_br)
    # every one of them but b0 (which the br.call writes) is free only because of the claim, and says so
    assert set(site.claims) == set(want_gr + want_pr + want_br) - {"b0"}
    why = site.claims["r2"]
    assert why == f"free because the untraced call at {tmp_path / 'sys.S'}:14:2 follows the C conventions " \
                  f"(your claim in {conv})"


def test_the_report_and_check_name_the_claim(tmp_path):
    from ivtx.check import run_check
    from ivtx.report import report_data

    a, _, conv = run(tmp_path, SYSCALL, claim=True)
    rec = next(s for s in report_data(a)["sites"] if s["op"] == "SSM_PSR_I")
    assert len(rec["claims"]) == 1 and rec["claims"][0].startswith("r2, r3, r8-r11, r14-r31, p6-p15, b7 free "
                                                                    "because the untraced call at")
    flow = report_data(a)["unresolved_control_flow"]
    assert flow and flow[0]["treated_as"] == f"the call follows the C conventions (your claim in {conv})"
    # a pv-annotated source whose clobbers are dead only by the claim: check passes them with a note
    pv = SYSCALL.replace("\tssm psr.i\n", "\tSSM_PSR_I(p0, p6, r2)\n").replace("\tbsw.1\n", "\tBSW_1(r26, r27)\n")
    a, _, _ = run(tmp_path, pv, claim=True, name="pv.S")
    res = run_check(a)
    assert res.errors == 0 and res.verified_dead == 4
    notes = [f.message for f in res.findings if f.code == "claimed-free"]
    assert len(notes) == 4 and all("follows the C conventions (your claim in" in n for n in notes)
    a, _, _ = run(tmp_path, pv, claim=False, name="pv.S")
    assert run_check(a).errors == 4  # without the claim all four clobbers are live (everything is)


def test_transform_names_the_claim_where_it_chose_a_claimed_register(tmp_path):
    from ivtx.transform import transform

    a, opts, conv = run(tmp_path, SYSCALL, claim=True)
    res = transform(a, "pvops", options=opts, sizes="estimate")
    assert res.ok
    edit = next(e for e in res.edits if e.op == "SSM_PSR_I")
    assert edit.new == "SSM_PSR_I(p0, p6, r16)"
    assert "r16, p6 free because the untraced call at" in edit.reason and str(conv) in edit.reason
    a, opts, _ = run(tmp_path, SYSCALL, claim=False)
    assert not transform(a, "pvops", options=opts, sizes="estimate").ok
