"""samples/: every sample assembles cleanly with `ia64-linux-gnu-as -x` in every configuration,
and the pv samples keep the promises their comments make (see samples/README.md)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gas import assemble, require_objdump

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
NATIVE_PV = ROOT / "tests" / "fixtures" / "native_pv"
NATIVE_INST_H = NATIVE_PV / "asm" / "native" / "inst.h"

SAMPLES = sorted(SAMPLES_DIR.glob("*.S"))
CONFIGS = {
    "default": [],
    "smp": ["CONFIG_SMP"],
    "hugetlb": ["CONFIG_HUGETLB_PAGE"],
    "no-vhpt": ["CONFIG_DISABLE_VHPT"],
    "all": ["CONFIG_SMP", "CONFIG_HUGETLB_PAGE", "CONFIG_DISABLE_VHPT"],
}


def preprocess(path: Path, defines=(), include_dirs=(SAMPLES_DIR, NATIVE_PV)):
    """ivtx's own preprocessor (its prelude stands in for the kernel headers)."""
    try:
        from ivtx.preprocess import preprocess as ivtx_preprocess
    except ImportError as exc:  # pragma: no cover - only while the preprocessor is missing
        pytest.skip(f"ivtx.preprocess not importable: {exc}")
    return ivtx_preprocess(str(path), include_dirs=[str(d) for d in include_dirs], defines=list(defines))


def test_samples_exist():
    names = {p.name for p in SAMPLES}
    assert {"ivt_tlb.S", "ivt_save.S", "ivt_pv.S", "ivt_pv_bad.S", "ivt_tight.S", "ivt_unfixable.S"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_assembles_without_warnings(sample, config):
    text = preprocess(sample, CONFIGS[config]).text
    _, stderr = assemble(text)
    assert stderr == "", f"{sample.name} [{config}]:\n{stderr}"


# ---------------------------------------------------------------- the pv samples and their header

def _native_defines() -> dict[str, tuple[list[str] | None, str]]:
    """name -> (parameters or None for an object-like macro, body) from the fixture inst.h."""
    out = {}
    for line in NATIVE_INST_H.read_text().splitlines():
        m = re.match(r"#define\s+([A-Z_0-9]+)(\(([^)]*)\))?\s+(.*)$", line)
        if m and not m.group(1).startswith("IVTX_"):
            params = [p.strip() for p in m.group(3).split(",")] if m.group(2) else None
            out[m.group(1)] = (params, m.group(4).strip())
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_native_inst_h_matches_the_catalog():
    from ivtx.pvcatalog import default_catalog

    defines = _native_defines()
    catalog = default_catalog()
    assert set(defines) == set(catalog.ops)
    for name, op in catalog.ops.items():
        params, body = defines[name]
        assert params == (list(op.args) if op.parens else None), name
        native = re.sub(r"\$\{(\w+)\}", r"\1", op.native)
        assert _norm(body.replace("##", "")) == _norm(native), name


def test_samples_do_not_define_pv_ops():
    from ivtx.pvcatalog import default_catalog

    ops = set(default_catalog().ops)
    for path in sorted(SAMPLES_DIR.glob("*.[Sh]")):
        defined = set(re.findall(r"^\s*#\s*define\s+(\w+)", path.read_text(), re.M))
        assert not defined & ops, f"{path.name} defines pv ops {sorted(defined & ops)}"


@pytest.mark.parametrize("name", ["ivt_pv.S", "ivt_pv_bad.S"])
def test_pv_samples_stay_pv_calls_without_the_native_header(name):
    pp = preprocess(SAMPLES_DIR / name, include_dirs=(SAMPLES_DIR,))
    assert any("asm/native/inst.h" in w.message for w in pp.warnings)
    assert "ITC_I(p0, r18," in pp.text and "itc.i" not in pp.text


def _handler(path: Path, name: str) -> list[str]:
    text = path.read_text()
    start = text.index(f"ENTRY({name})")
    return text[start:text.index(f"END({name})", start)].splitlines()


def test_pv_bad_differs_from_pv_in_exactly_one_clobber():
    good = _handler(SAMPLES_DIR / "ivt_pv.S", "itlb_miss")
    bad = _handler(SAMPLES_DIR / "ivt_pv_bad.S", "itlb_miss")
    assert len(good) == len(bad)
    diff = [(g, b) for g, b in zip(good, bad) if g != b]
    assert diff == [("\tITC_I(p0, r18, r19)", "\tITC_I(p0, r18, r31)")]


def test_pv_bad_header_names_the_right_lines():
    lines = (SAMPLES_DIR / "ivt_pv_bad.S").read_text().splitlines()
    head = "\n".join(lines[:12])
    site, read = (int(n) for n in re.findall(r"\bline (\d+)", head)[:2])
    assert lines[site - 1].strip() == "ITC_I(p0, r18, r31)"
    assert lines[read - 1].strip() == "mov pr=r31,-1"


def _check_json(capsys, name: str, defines=()) -> tuple[int, dict]:
    try:
        from ivtx.cli import main
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"ivtx.cli not importable: {exc}")
    argv = ["check", "--format", "json", "-I", str(SAMPLES_DIR)]
    for d in defines:
        argv += ["-D", d]
    capsys.readouterr()
    status = main(argv + [str(SAMPLES_DIR / name)])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_ivtx_check_accepts_pv_and_rejects_pv_bad(capsys, config):
    status, report = _check_json(capsys, "ivt_pv.S", CONFIGS[config])
    assert status == 0 and not [f for f in report["findings"] if f["severity"] == "error"]
    status, report = _check_json(capsys, "ivt_pv_bad.S", CONFIGS[config])
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert status != 0
    assert [(f["line"], "r31" in f["message"]) for f in errors] == [(43, True)]


# ---------------------------------------------------------------- layout promises

def _bundles(obj: str, symbol: str) -> list[int]:
    dump = subprocess.run([require_objdump(), "-d", obj], capture_output=True, text=True, check=True).stdout
    body = dump.split(f"<{symbol}>:", 1)[1].split("\n\n", 1)[0]
    return [int(a, 16) for a in re.findall(r"^\s*([0-9a-f]+):\s", body, re.M) if int(a, 16) % 16 == 0]


def test_unfixable_handler_fills_its_slot_exactly():
    obj, stderr = assemble(preprocess(SAMPLES_DIR / "ivt_unfixable.S").text)
    assert stderr == ""
    assert _bundles(obj, "page_not_present") == list(range(0x5000, 0x5100, 16))


def test_readme_describes_every_sample():
    readme = (SAMPLES_DIR / "README.md").read_text()
    for path in sorted(SAMPLES_DIR.glob("*.[Sh]")):
        assert f"`{path.name}`" in readme, path.name
