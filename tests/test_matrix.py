"""`ivtx report --config-matrix` (ivtx/matrix.py): sites exist only in the configurations whose
#ifdefs keep them, and the table, markdown and JSON renderings say the same thing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ivtx.cli import main
from ivtx.matrix import run_matrix
from ivtx.pipeline import Options
from ivtx.report import matrix_cell_text, render_matrix

ROOT = Path(__file__).resolve().parent.parent
TLB = ROOT / "samples" / "ivt_tlb.S"

# Read off samples/ivt_tlb.S by hand: the privileged sites inside `#ifdef CONFIG_SMP` blocks
# (the ptc.l purges of the SMP re-check, and the cmpxchg paths' inserts), the ones inside
# their `#else` parts (the UP inserts), and those under CONFIG_HUGETLB_PAGE / CONFIG_DISABLE_VHPT.
SMP_ONLY = {137: "ptc.l r16,r27", 139: "ptc.l r20,r27", 174: "ptc.l r16,r20", 208: "ptc.l r16,r19",
            386: "itc.d r25", 394: "ptc.l r16,r24", 436: "itc.i r25", 444: "ptc.l r16,r24",
            486: "itc.d r25", 494: "ptc.l r16,r24"}
UP_ONLY = {404: "itc.d r18", 454: "itc.i r18", 504: "itc.d r18"}
HUGETLB_ONLY = {53: "mov r25=cr.itir", 119: "mov cr.itir=r25"}
NO_VHPT_ONLY = {237: "thash r17=r16", 275: "thash r17=r16"}


@pytest.fixture(scope="module")
def matrix():
    import os

    old = os.getcwd()
    os.chdir(ROOT)
    try:
        return run_matrix("samples/ivt_tlb.S", Options(include_dirs=["samples"]), "samples/configs.toml")
    finally:
        os.chdir(old)


def _ifdef_of_line() -> dict[int, str]:
    """line -> the innermost #ifdef/#else it sits in ('CONFIG_SMP', '!CONFIG_SMP', ...)."""
    out, stack = {}, []
    for n, line in enumerate(TLB.read_text().splitlines(), 1):
        m = re.match(r"#\s*(ifdef|else|endif)\s*(\w*)", line)
        if m and m.group(1) == "ifdef":
            stack.append(m.group(2))
        elif m and m.group(1) == "else":
            stack[-1] = "!" + stack[-1]
        elif m:
            stack.pop()
        elif stack:
            out[n] = stack[-1]
    return out


def test_the_hand_lists_match_the_ifdef_structure():
    where = _ifdef_of_line()
    lines = TLB.read_text().splitlines()
    for table, cond in ((SMP_ONLY, "CONFIG_SMP"), (UP_ONLY, "!CONFIG_SMP"), (HUGETLB_ONLY, "CONFIG_HUGETLB_PAGE"),
                        (NO_VHPT_ONLY, "CONFIG_DISABLE_VHPT")):
        for line, text in table.items():
            assert where.get(line) == cond and text in lines[line - 1], (line, text)


def test_sites_exist_only_in_the_configurations_that_keep_them(matrix):
    data = matrix.to_dict()
    assert data["configs"] == ["default", "smp", "hugetlb", "no-vhpt"]
    assert data["defines"]["smp"] == ["CONFIG_SMP"]
    rows = {r["line"]: r for r in data["sites"]}
    for table, configs in ((SMP_ONLY, {"smp"}), (UP_ONLY, {"default", "hugetlb", "no-vhpt"}),
                           (HUGETLB_ONLY, {"hugetlb"}), (NO_VHPT_ONLY, {"no-vhpt"})):
        for line, text in table.items():
            assert text in rows[line]["instruction"]
            assert set(rows[line]["configs"]) == configs, line
    conditional = set(SMP_ONLY) | set(UP_ONLY) | set(HUGETLB_ONLY) | set(NO_VHPT_ONLY)
    for line, row in rows.items():
        if line not in conditional:
            assert set(row["configs"]) == set(data["configs"]), line  # unconditional code
    # the purges have no pv op; the SMP inserts do
    assert rows[137]["configs"]["smp"]["status"] == "uncatalogued"
    assert rows[386]["configs"]["smp"]["status"] == "ok"


def test_a_site_gets_different_clobbers_per_configuration(matrix):
    # vhpt_miss `itc.d r24` (line 122): default picks r16 (nothing reads it again), but the SMP
    # re-check purges the original translation with `ptc.l r16,r27`, so SMP picks r17.
    row = next(r for r in matrix.to_dict()["sites"] if r["line"] == 122)
    assert row["configs"]["default"]["chosen"] == ["r16"]
    assert row["configs"]["smp"]["chosen"] == ["r17"]
    assert row["configs"]["hugetlb"]["chosen"] == ["r16"]


def _markdown_rows(text: str) -> dict[tuple[int, str], list[str]]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\| (\w+) \| (\d+) \| `(.*)` \| (.*) \|$", line)
        if m:
            cells = [c.replace("\\|", "|") for c in re.split(r" (?<!\\)\| ", m.group(4))]
            out[(int(m.group(2)), m.group(3).replace("\\|", "|"))] = cells
    return out


def test_table_markdown_and_json_agree(matrix):
    data = json.loads(render_matrix(matrix, "json"))
    md = _markdown_rows(render_matrix(matrix, "markdown"))
    table = render_matrix(matrix, "table", color=False, width=400)
    assert len(md) == len(data["sites"])
    for row in data["sites"]:
        cells = [matrix_cell_text(row["configs"].get(c)) for c in data["configs"]]
        assert md[(row["line"], row["instruction"])] == cells
        line = next(t for t in table.splitlines()
                    if re.match(rf"^│ {re.escape(row['handler'])}\s+│\s+{row['line']} │ {re.escape(row['instruction'])}\s+│", t))
        got = [c.strip() for c in line.strip("│").split("│")[3:]]
        assert got == cells, row["line"]
    for c in data["configs"]:
        sm = data["summaries"][c]
        assert f"{c}: {sm['sites']} sites, {sm['resolved']} resolved, {sm['unresolved']} unresolved" in table
        assert re.search(rf"^\| {c} \| .* \| {sm['sites']} \| {sm['resolved']} \| {sm['unresolved']} \|", 
                         render_matrix(matrix, "markdown"), re.M)


def test_rows_from_one_macro_line_do_not_merge(tmp_path):
    # SAVE_MIN_COVER at ivt_save.S line 51 expands to several sites on that one line; with two
    # identical configurations every site is one row with both cells.
    m = tmp_path / "m.toml"
    m.write_text('[config.a]\ndefines = []\n[config.b]\ndefines = []\n')
    import os

    old = os.getcwd()
    os.chdir(ROOT)
    try:
        res = run_matrix("samples/ivt_save.S", Options(include_dirs=["samples"]), str(m))
    finally:
        os.chdir(old)
    data = res.to_dict()
    assert len(data["sites"]) == len(res.reports["a"]["sites"])
    assert all(set(r["configs"]) == {"a", "b"} for r in data["sites"])
    assert sum(1 for r in data["sites"] if r["line"] == 51) >= 4


def test_config_matrix_on_the_command_line(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    status = main(["report", "--config-matrix", "samples/configs.toml", "--format", "markdown", "-I", "samples",
                   "samples/ivt_tlb.S"])
    out = capsys.readouterr().out
    assert status == 0 and out == (ROOT / "reports" / "ivt_tlb.matrix.md").read_text()
    status = main(["report", "--config-matrix", "samples/configs.toml", "--handler", "dirty_bit", "--format", "json",
                   "-I", "samples", "samples/ivt_tlb.S"])
    rows = json.loads(capsys.readouterr().out)["sites"]
    assert status == 0 and rows and {r["handler"] for r in rows} == {"dirty_bit"}


@pytest.mark.parametrize("text, message", [
    ("[config.a]\ndefines = 'CONFIG_SMP'\n", "config 'a': defines must be a list of strings"),
    ("title = 1\n", "config matrix needs [config.NAME] tables"),
    ("[config.a\n", "bad config matrix"),
])
def test_bad_matrix_file_is_an_input_error(capsys, tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(ROOT)
    m = tmp_path / "m.toml"
    m.write_text(text)
    capsys.readouterr()
    status = main(["report", "--config-matrix", str(m), "samples/ivt_tlb.S"])
    err = capsys.readouterr().err
    assert status == 2 and message in err and str(m) in err and "Traceback" not in err
