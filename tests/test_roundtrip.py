"""Issue 2, must-show 2: every sample round-trips.

For each `samples/*.S` in each configuration: ivtx preprocesses it (its prelude for the kernel
headers, `tests/fixtures/native_pv` so that the pv samples' macros expand natively), parses,
prints (ivtx.printer), and parses the printed text again: the two IRs are equal.  With the
assembler present, the preprocessed text and the printed text assemble (`-x`) to the same
bytes, compared section by section (contents and relocations).  The pv samples without the
native header keep their `ITC_I(...)` calls as PvCall statements, and those round-trip too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gas import assemble, require_objdump
from ivtx.ir import Instruction, PvCall
from ivtx.parse import parse, parse_text
from ivtx.preprocess import preprocess
from ivtx.printer import first_difference, ir_equal, print_program

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
NATIVE_PV = ROOT / "tests" / "fixtures" / "native_pv"
SAMPLES = sorted(SAMPLES_DIR.glob("*.S"))
PV_SAMPLES = [p for p in SAMPLES if p.name.startswith("ivt_pv")]
CONFIGS = {
    "default": [],
    "smp": ["CONFIG_SMP"],
    "hugetlb": ["CONFIG_HUGETLB_PAGE"],
    "no-vhpt": ["CONFIG_DISABLE_VHPT"],
}


def _preprocessed(sample: Path, config: str, native: bool = True):
    dirs = [SAMPLES_DIR, NATIVE_PV] if native else [SAMPLES_DIR]
    return preprocess(str(sample), include_dirs=[str(d) for d in dirs], defines=CONFIGS[config])


def sections(obj: str) -> dict[str, dict[str, list[str]]]:
    """`objdump -s -r` of an object file as {section: {"contents": lines, "relocs": lines}}."""
    dump = subprocess.run([require_objdump(), "-s", "-r", obj], capture_output=True, text=True, check=True).stdout
    out: dict[str, dict[str, list[str]]] = {}
    cur: list[str] | None = None
    for line in dump.splitlines():
        if line.startswith("RELOCATION RECORDS FOR ["):
            cur = out.setdefault(line[len("RELOCATION RECORDS FOR ["):].rstrip(":]"), {}).setdefault("relocs", [])
        elif line.startswith("Contents of section "):
            cur = out.setdefault(line[len("Contents of section "):].rstrip(":"), {}).setdefault("contents", [])
        elif cur is not None and line.strip() and not line.startswith("OFFSET "):
            cur.append(line)
    return out


def _object_sections(text: str, what: str) -> dict:
    obj, stderr = assemble(text)
    assert stderr == "", f"{what}:\n{stderr}"
    return sections(obj)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_parse_print_parse_gives_the_same_ir(sample, config):
    program = parse(_preprocessed(sample, config))
    assert sum(isinstance(s, Instruction) for s in program.statements) >= 10
    text = print_program(program)
    again = parse_text(text, "printed.s")
    assert ir_equal(program, again), first_difference(program, again)
    assert print_program(again) == text  # printing is a fixed point


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("sample", PV_SAMPLES, ids=[p.name for p in PV_SAMPLES])
def test_pv_samples_round_trip_with_their_pv_calls(sample, config):
    program = parse(_preprocessed(sample, config, native=False))
    calls = [s for s in program.statements if isinstance(s, PvCall)]
    assert {c.name for c in calls} >= {"ITC_I", "MOV_FROM_IFA"}  # kept as pv-op sites, not expanded
    again = parse_text(print_program(program), "printed.s")
    assert ir_equal(program, again), first_difference(program, again)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_printed_text_assembles_to_the_same_bytes_per_section(sample, config):
    pp = _preprocessed(sample, config)
    original = _object_sections(pp.text, f"{sample.name} [{config}] as preprocessed")
    printed = _object_sections(print_program(parse(pp)), f"{sample.name} [{config}] as printed")
    code = original[".text..ivt"]["contents"]
    assert any(set(row.split()[1:5]) - {"00000000"} for row in code), "no code in .text..ivt"
    assert printed.keys() == original.keys()
    for name in original:
        assert printed[name] == original[name], f"{sample.name} [{config}]: section {name} differs"


def test_section_comparison_sees_one_changed_instruction_and_relocation():
    base = "\t.text\nf:\n\tmov r16=r17\n\tbr.call.sptk.many b0=g\n\t;;\n"
    a = _object_sections(base, "a")
    b = _object_sections(base.replace("r17", "r18"), "b")
    c = _object_sections(base.replace("=g", "=h"), "c")
    assert a[".text"]["contents"] != b[".text"]["contents"]
    assert a[".text"]["contents"] == c[".text"]["contents"]
    assert a[".text"]["relocs"] and a[".text"]["relocs"] != c[".text"]["relocs"]
