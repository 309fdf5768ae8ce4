"""ivtx.diff and ivtx.explain: why a clobber is free (hand-built programs, reasons derived by
hand), the instruction alignment, the rendered side-by-side view (snapshots in tests/snapshots,
reviewed before they were committed), terminals and pipes, and the unified patch applied with
`patch -p1` / `git apply`.

Snapshots: after a deliberate change to the view, regenerate with
    IVTX_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_diff.py
then read every changed file (`git diff tests/snapshots`) before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ivtsrc import Analysed, ivt, vector
from ivtx.cli import main
from ivtx.diff import build_diff, render
from ivtx.explain import NotDead, explain_clobbers, why_dead
from ivtx.parse import parse_text
from ivtx.pipeline import Analysis, Options, analyse
from ivtx.transform import EditRecord, Restructuring, TransformResult, site_name, transform

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def line_of(src: str, needle: str) -> int:
    """1-based line of the (only) source line containing `needle`."""
    hits = [i for i, line in enumerate(src.split("\n"), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# --------------------------------------------------------------------------- explain.why_dead

# The site is `itc.i r18`. After it: r20 is written (unconditionally) before its only read;
# r22 is never touched again and bank-0 r22 is not part of the interrupted context that rfi
# returns to; r31 is read by `mov pr=r31,-1`; r1 belongs to the interrupted context.
STRAIGHT = ivt(vector(0x400, "h", """\tmov r31=pr
\t;;
\titc.i r18
\t;;
\tmov r20=r0
\t;;
\tadd r21=r20,r0
\tmov pr=r31,-1
\t;;
\trfi"""))


def test_an_unconditional_write_before_any_read_is_the_reason():
    t = Analysed(STRAIGHT)
    site = t.pos("itc.i")
    assert why_dead(t.cfg, t.live, site, "r20") == \
        f"overwritten at t.s:{line_of(STRAIGHT, 'mov r20=r0')} (mov r20=r0) before any read"
    # the location name with its bank says the same
    assert why_dead(t.cfg, t.live, site, "r20@0") == why_dead(t.cfg, t.live, site, "r20")


def test_a_bank0_register_nobody_touches_ends_at_rfi():
    t = Analysed(STRAIGHT)
    assert why_dead(t.cfg, t.live, t.pos("itc.i"), "r22") == \
        "not read again: not part of the interrupted context at rfi"


@pytest.mark.parametrize("reg", ["r31", "r1", "r31@0"])
def test_a_live_register_has_no_reason(reg):
    t = Analysed(STRAIGHT)
    with pytest.raises(NotDead):
        why_dead(t.cfg, t.live, t.pos("itc.i"), reg)


# A conditional branch to page_fault after the site: on that path page_fault does not read
# bank-0 r20 (conventions.toml: the context without the predicates, r31@0 and the CRs); on the
# fall-through path r20 is overwritten first. The predicates: page_fault does not read them,
# and on the other path `mov pr=r31,-1` writes p1-p63 before any read.
BRANCHY = ivt(vector(0x400, "h", """\tmov r31=pr
\tcmp.eq p6,p7=r0,r16
\t;;
\titc.i r18
(p6)\tbr.cond.spnt page_fault
\t;;
\tmov r20=r0
\t;;
\tadd r21=r20,r0
\tmov pr=r31,-1
\t;;
\trfi"""))


def test_paths_that_end_differently_each_give_their_reason():
    t = Analysed(BRANCHY)
    site = t.pos("itc.i")
    got = why_dead(t.cfg, t.live, site, "r20")
    assert got.startswith("one per path: ")
    assert sorted(got.removeprefix("one per path: ").split("; ")) == sorted([
        "not read by page_fault (conventions.toml [symbol.page_fault])",
        f"overwritten at t.s:{line_of(BRANCHY, 'mov r20=r0')} (mov r20=r0) before any read"])
    got = why_dead(t.cfg, t.live, site, "p8")
    assert sorted(got.removeprefix("one per path: ").split("; ")) == sorted([
        "not read by page_fault (conventions.toml [symbol.page_fault])",
        f"overwritten at t.s:{line_of(BRANCHY, 'mov pr=r31,-1')} (mov pr=r31,-1) before any read"])
    with pytest.raises(NotDead):  # page_fault reads the predicates saved in bank-0 r31
        why_dead(t.cfg, t.live, site, "r31")


# A load at a `movl r30=1f` continuation may take the nested TLB miss, which reads bank-0 r16,
# r29, r30, r31 and returns: the path goes through it to rfi, so r20 ends at rfi, and r16 is live.
NESTED = ivt(vector(0x400, "h", """\tmov r31=pr
\tmov r29=b0
\tmovl r30=1f
\t;;
\titc.i r18
\t;;
1:\tld8 r19=[r17]
\t;;
\tmov b0=r29
\tmov pr=r31,-1
\t;;
\trfi"""))


def test_the_nested_miss_returns_and_is_walked_through():
    t = Analysed(NESTED)
    site = t.pos("itc.i")
    assert any(d["kind"] == "nested" for _a, _b, d in t.cfg.graph.edges(data=True))
    assert why_dead(t.cfg, t.live, site, "r20") == "not read again: not part of the interrupted context at rfi"
    with pytest.raises(NotDead):
        why_dead(t.cfg, t.live, site, "r16")


# `(p6) mov r20=r0` can only be a kill with a proof (primer section 5, predkill.py): no read of
# the old r20 can follow it, since `mov r20=r1` overwrites r20 before any read. The reason names
# that predicated write and says it was proved.
PREDICATED = ivt(vector(0x400, "h", """\tmov r31=pr
\tcmp.eq p6,p7=r0,r16
\t;;
\titc.i r18
\t;;
(p6)\tmov r20=r0
\t;;
\tmov r20=r1
\t;;
\tmov pr=r31,-1
\t;;
\trfi"""))


def test_a_predicated_kill_says_it_was_proved():
    t = Analysed(PREDICATED)
    assert why_dead(t.cfg, t.live, t.pos("itc.i"), "r20") == (
        f"overwritten at t.s:{line_of(PREDICATED, '(p6)')} ((p6) mov r20=r0, a predicated write proved a kill) "
        "before any read")


def test_clobbers_with_the_same_reason_are_grouped_and_live_ones_flagged():
    t = Analysed(STRAIGHT)
    site = t.site("itc.i")
    got = explain_clobbers(t.cfg, t.live, site, ["r22", "r20", "r23", "r31"])
    by = {tuple(c.regs): (c.reason, c.dead) for c in got}
    assert by[("r22", "r23")] == ("not read again: not part of the interrupted context at rfi", True)
    assert by[("r20",)][1] is True
    reason, dead = by[("r31",)]
    assert not dead and reason == f"read at t.s:{line_of(STRAIGHT, 'mov pr=r31')} (mov pr=r31,-1)"


# --------------------------------------------------------------------------- alignment

NATIVE = ivt(vector(0x400, "h", """\tmov r16=cr.ifa
\t;;
\tmov r17=r16
\tadd r18=r16,r0
\t;;
\trfi"""))

# what a transform could have made of it: the site became its macro, `add` moved up, a `mov`
# was inserted, rfi became RFI
OUTPUT = ivt(vector(0x400, "h", """\tMOV_FROM_IFA(r16)
\t;;
\tadd r18=r16,r0
\tmov r17=r16
\tmov r19=r0
\t;;
\tRFI"""))


def _hand_made_diff():
    t = Analysed(NATIVE)
    a = Analysis("t.s", t.program, t.cfg, t.policy, t.live, t.sites, {}, [])
    res = TransformResult("pvops", "macro", "native", OUTPUT, parse_text(OUTPUT, "out.s"), source_path="t.s",
                          source_text=NATIVE)
    ifa, rfi = (t.site(x) for x in ("cr.ifa", "rfi"))
    res.edits = [EditRecord(site_name(a, ifa), "t.s:7", "MOV_FROM_IFA", "mov r16=cr.ifa", "MOV_FROM_IFA(r16)", "-"),
                 EditRecord(site_name(a, rfi), "t.s:12", "RFI", "rfi", "RFI", "-")]
    res.restructurings = [Restructuring("move", site_name(a, ifa), "add r18=r16,r0 moves up", "a test", "h")]
    return build_diff(a, res)


def test_sites_stand_next_to_their_pv_op_and_moves_are_found():
    d = _hand_made_diff()
    (h,) = d.handlers
    rows = [((r.left.mark, r.left.lines) if r.left else None, (r.right.mark, r.right.lines) if r.right else None)
            for r in h.rows]
    assert rows == [
        ((" ", ["h:"]), (" ", ["h:"])),
        (("!", ["mov r16=cr.ifa ;;"]), ("!", ["MOV_FROM_IFA(r16) ;;"])),
        (None, ("~", ["add r18=r16,r0"])),
        ((" ", ["mov r17=r16"]), (" ", ["mov r17=r16"])),
        (("~", ["add r18=r16,r0 ;;"]), None),
        (None, ("+", ["mov r19=r0 ;;"])),
        (("!", ["rfi"]), ("!", ["RFI"])),
    ]
    notes = [n.text for n in h.rows[1].notes]
    assert notes == ["MOV_FROM_IFA: no clobber needed", "move: add r18=r16,r0 moves up (a test)"]
    assert h.counts == {"replaced": 2, "kept": 0, "unresolved": 0, "restructurings": 1}


def test_every_line_fits_and_the_columns_line_up_at_any_width():
    d = _hand_made_diff()
    for width in (20, 40, 60, 80, 161):
        for plain in (False, True):
            text = render(d, width=width, plain=plain)
            lines = text.splitlines()
            assert all(len(line) <= width for line in lines), width
            sep = " | " if plain else " │ "
            cols = {line.index(sep) for line in lines if sep in line}
            assert len(cols) <= 1, (width, cols)  # one column boundary, or none when stacked
            if plain:
                assert all(ch.isascii() for ch in text)


# --------------------------------------------------------------------------- the samples (CLI)


def run_cli(capsys, monkeypatch, *argv) -> tuple[int, str, str]:
    monkeypatch.chdir(ROOT)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SNAPSHOT_CASES = [("ivt_tlb.S", "vhpt_miss"), ("ivt_tlb.S", "itlb_miss"), ("ivt_tight.S", "alt_dtlb_miss")]


@pytest.mark.parametrize("width", [80, 160])
@pytest.mark.parametrize("color", ["never", "always"])
@pytest.mark.parametrize("sample,handler", SNAPSHOT_CASES)
def test_side_by_side_snapshots(capsys, monkeypatch, sample, handler, width, color):
    code, out, _ = run_cli(capsys, monkeypatch, "diff", f"samples/{sample}", "-I", "samples", "--handler", handler,
                           "--width", str(width), "--color", color, "--sizes", "estimate")
    assert code == 0
    name = f"diff_{sample.removesuffix('.S')}_{handler}_{width}_{'color' if color == 'always' else 'nocolor'}.txt"
    check_snapshot(name, out)
    assert ("\x1b[" in out) == (color == "always")
    assert all(len(line) <= width for line in ANSI.sub("", out).splitlines())


@pytest.mark.parametrize("sample,handler", SNAPSHOT_CASES)
@pytest.mark.parametrize("width", [80, 160])
def test_colour_changes_nothing_but_the_escapes(sample, handler, width):
    stem = f"diff_{sample.removesuffix('.S')}_{handler}_{width}"
    color = (SNAPSHOTS / f"{stem}_color.txt").read_text(encoding="utf-8")
    assert ANSI.sub("", color) == (SNAPSHOTS / f"{stem}_nocolor.txt").read_text(encoding="utf-8")


def test_pager_mode_snapshot(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, monkeypatch, "diff", "samples/ivt_tlb.S", "-I", "samples", "--handler", "vhpt_miss",
                           "--width", "80", "--plain", "--sizes", "estimate")
    assert code == 0 and out.isascii()
    check_snapshot("diff_ivt_tlb_vhpt_miss_80_pager.txt", out)


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("IVTX_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {name}: run IVTX_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_diff.py and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs (IVTX_UPDATE_SNAPSHOTS=1 regenerates it)"


def test_no_colour_in_a_pipe_or_with_no_color(capsys, monkeypatch):
    args = ("diff", "samples/ivt_tight.S", "-I", "samples", "--width", "80", "--sizes", "estimate")
    _, out, _ = run_cli(capsys, monkeypatch, *args)  # pytest's stdout is not a terminal
    assert "\x1b[" not in out
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run_cli(capsys, monkeypatch, *args)
    assert "\x1b[" not in out
    monkeypatch.delenv("NO_COLOR")
    _, out, _ = run_cli(capsys, monkeypatch, *args)
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run_cli(capsys, monkeypatch, *args, "--color", "always")
    assert "\x1b[" in out


def test_width_comes_from_columns_when_not_given(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "64")
    _, out, _ = run_cli(capsys, monkeypatch, "diff", "samples/ivt_tight.S", "-I", "samples", "--sizes", "estimate")
    lines = out.splitlines()
    assert max(len(line) for line in lines) == 64


def test_call_rendering_puts_each_site_next_to_its_call(capsys, monkeypatch):
    """itlb_miss starts with two sites in a row: each call sequence (table entry loaded into a free
    GR, b6 saved around `br.cond b6`) is inserted code, and each site stands at its own branch."""
    monkeypatch.chdir(ROOT)
    opts = Options(include_dirs=["samples"])
    a = analyse("samples/ivt_tlb.S", opts)
    res = transform(a, "pvops", "call", options=opts, sizes="estimate")
    (h,) = build_diff(a, res, handler="itlb_miss").handlers
    sites = [r for r in h.rows if r.left is not None and r.left.mark == "!"]
    assert [r.left.lines[0] for r in sites] == ["mov r16=cr.ifa", "mov r17=cr.iha", "itc.i r18 ;;", "rfi"]
    for r in sites:
        assert r.right.mark == "!" and r.right.lines[0].startswith("br.cond.sptk.many ")
    first, second = (h.rows.index(r) for r in sites[:2])
    between = h.rows[first + 1:second]
    assert between and all(r.left is None and r.right.mark == "+" for r in between)
    assert any(r.right.lines[0].startswith("movl r18=ivtx_pv_ops+") for r in between)  # the second call's entry


@pytest.mark.parametrize("convention,rendering", [("pvops", "macro"), ("pvops", "call"), ("pal-static", "call")])
def test_both_sides_keep_their_order_and_every_site_is_shown_once(monkeypatch, convention, rendering):
    monkeypatch.chdir(ROOT)
    opts = Options(include_dirs=["samples"])
    a = analyse("samples/ivt_tlb.S", opts)
    res = transform(a, convention, rendering, options=opts, sizes="estimate")
    d = build_diff(a, res)
    site_rows = 0
    for h in d.handlers:
        for side in ("left", "right"):
            lines = [getattr(r, side).line for r in h.rows if getattr(r, side) is not None]
            assert lines == sorted(lines), (h.name, side)
        site_rows += sum(1 for r in h.rows if r.left is not None and r.left.mark in "!=?~" and r.notes)
    assert site_rows == len([s for s in a.sites if a.cfg.region_of(s.pos) is not None])


def test_unresolved_sites_are_shown_and_exit_3(capsys, monkeypatch):
    code, out, err = run_cli(capsys, monkeypatch, "diff", "samples/ivt_unfixable.S", "-I", "samples", "--width", "120",
                             "--sizes", "estimate")
    assert code == 3
    assert "1 site(s) unresolved" in out and "unresolved (marked ?)" in err
    # the site the sample's header explains: itc.d r31, left as written on both sides
    assert re.search(r"^\? +\d+ itc\.d r31 ;; +│ \? +\d+ itc\.d r31 ;;$", out, re.M)
    assert "UNRESOLVED ITC_D, left as written:" in out


def test_bad_uses_exit_2(capsys, monkeypatch):
    code, out, err = run_cli(capsys, monkeypatch, "diff", "samples/ivt_tlb.S", "-I", "samples", "--handler", "nosuch")
    assert code == 2 and out == "" and "no handler named 'nosuch'" in err
    code, out, err = run_cli(capsys, monkeypatch, "diff", "samples/ivt_tlb.S", "--unified", "--handler", "itlb_miss")
    assert code == 2 and out == ""


def test_bad_input_is_located_and_nothing_is_printed(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.S"
    bad.write_text(ivt(vector(0x400, "h", "\tfrobnicate r1=r2\n\trfi")))
    code, out, err = run_cli(capsys, monkeypatch, "diff", str(bad))
    assert code == 2 and out == ""
    assert err.startswith(f"{bad}:{line_of(bad.read_text(), 'frobnicate')}:2: error:")


# --------------------------------------------------------------------------- the unified patch


@pytest.mark.parametrize("sample,edited", [("ivt_tight.S", []), ("ivt_save.S", ["sample_minstate.h"])])
@pytest.mark.parametrize("tool", ["patch", "git"])
def test_the_patch_applies_and_gives_the_transform_output(tmp_path, capsys, monkeypatch, sample, edited, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    opts = Options(include_dirs=["samples"])
    res = transform(analyse(f"samples/{sample}", opts), "pvops", options=opts, sizes="estimate")
    assert res.ok and sorted(res.headers) == edited
    code = main(["diff", f"samples/{sample}", "-I", "samples", "--unified", "--sizes", "estimate"])
    patch, _ = capsys.readouterr()
    assert code == 0 and patch.startswith(f"--- a/samples/{sample}\n")
    (tmp_path / "p.diff").write_text(patch)
    if tool == "git":
        subprocess.run(["git", "apply", "--check", "p.diff"], check=True, capture_output=True)
        subprocess.run(["git", "apply", "p.diff"], check=True, capture_output=True)
    else:
        subprocess.run(["patch", "-p1", "-s", "-i", "p.diff"], check=True, capture_output=True)
    assert (tmp_path / "samples" / sample).read_bytes() == res.text.encode()
    for rel in edited:
        assert (tmp_path / "samples" / rel).read_bytes() == res.headers[rel].encode()


def test_no_patch_when_a_site_is_unresolved(capsys, monkeypatch):
    code, out, err = run_cli(capsys, monkeypatch, "diff", "samples/ivt_unfixable.S", "-I", "samples", "--unified",
                             "--sizes", "estimate")
    assert code == 3 and out == "" and "unresolved" in err
