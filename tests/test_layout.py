"""ivtx.layout (regions, the bundling estimate) and ivtx.sizes (exact bytes from the object file).

Issue 3, size accounting: the estimate of every sample region is never below its exact size
(it turns out equal on all of them), every sample vector fits its slot by the exact measure,
and the exact sizes reach `ivtx parse` and `ivtx report`.  The small bundling cases are
worked out by hand from the template list (primer section 4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gas import require_gas, require_objdump
from ivtx import sizes as sizes_mod
from ivtx.cli import main
from ivtx.diag import IvtxError
from ivtx.layout import estimate_bytes, regions, slot_unit
from ivtx.parse import parse, parse_text
from ivtx.preprocess import preprocess
from ivtx.sizes import region_sizes

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
NATIVE_PV = ROOT / "tests" / "fixtures" / "native_pv"
SAMPLES = sorted(SAMPLES_DIR.glob("*.S"))
CONFIGS = {"default": [], "smp": ["CONFIG_SMP"], "hugetlb": ["CONFIG_HUGETLB_PAGE"],
           "no-vhpt": ["CONFIG_DISABLE_VHPT"]}


def _sample(path: Path, config: str = "default"):
    pp = preprocess(str(path), include_dirs=[str(SAMPLES_DIR), str(NATIVE_PV)], defines=CONFIGS[config])
    return parse(pp)


def _bytes(text: str) -> int:
    return estimate_bytes(parse_text(text).statements)


# --------------------------------------------------------------------------- units and bundles

@pytest.mark.parametrize("text, unit", [
    ("mov r16=pr", "I"), ("mov pr=r31,-1", "I"), ("mov r29=b0", "I"), ("mov b0=r30", "I"),
    ("mov r16=r17", "A"), ("mov r19=24", "A"), ("adds r3=8,r2", "A"), ("cmp.eq p6,p7=5,r17", "A"),
    ("mov r16=cr.ifa", "M"), ("mov r19=ar.k7", "M"), ("mov r26=ar.pfs", "I"), ("mov r2=psr", "M"),
    ("ld8 r18=[r17]", "M"), ("itc.d r18", "M"), ("rsm psr.dt", "M"), ("alloc r15=ar.pfs,0,0,2,0", "M"),
    ("shr.u r17=r16,61", "I"), ("tbit.z p6,p0=r18,0", "I"), ("dep r17=r18,r19,3,11", "I"),
    ("movl r30=1f", "L"), ("br.sptk.many b0", "B"), ("rfi", "B"), ("bsw.1", "B"), ("cover", "B"),
    ("nop.i 0", "I"), ("nop.m 0", "M"), ("fma.s f6=f7,f8,f9", "F"), ("mov f6=f7", "F"), ("getf.sig r2=f8", "M"),
    ("chk.s.i r16,1f", "I"), ("mov r11=cpuid[r3]", "M"),
])
def test_slot_units(text, unit):
    (insn,) = parse_text(f"\t{text}\n").statements
    assert slot_unit(insn) == unit


@pytest.mark.parametrize("name, text, size", [
    # MLX takes the mov (M slot) and the movl; the last mov opens an MII
    ("movl", "mov r16=r17\nmovl r17=5\nmov r18=r19\n", 32),
    # FAULT(n): I, A, stop, B -- no template has a stop in front of a B slot
    ("fault", "mov r31=pr\nmov r19=6\n;;\nbr.sptk.many x\n", 32),
    # an I-unit instruction first leaves only I slots after it in an MII: the M ones go on
    ("i-then-m", "mov r31=pr\nmov r16=cr.ifa\nmov r17=cr.iha\n;;\n", 32),
    # M;;MI holds a stop after slot 0; MI;;I after slot 1
    ("m-stop-m", "ld8 r18=[r17]\n;;\nld8 r19=[r17]\nmov r20=r21\n", 16),
    ("mi-stop-i", "mov r16=r17\nmov r18=pr\n;;\nmov r19=pr\n", 16),
    # itc ends its group right after its slot: only slot 0 of M;;MI, the branch goes on
    ("itc", "(p7) itc.d r18\n(p6) br.cond.spnt x\n", 32),
    # alloc starts a group: M;;MI
    ("alloc", "mov r1=r2\nalloc r15=ar.pfs,0,0,2,0\nmov r3=r4\n", 16),
    # bsw ends its group: it takes the B slot of an MIB, the next mov a new bundle
    ("bsw", "mov r1=r2\nbsw.1\nmov r3=r4\n", 32),
    ("label", "nop.m 0\nfoo:\nnop.m 0\n", 32),
    ("align", "nop.m 0\n.align 32\nnop.m 0\n", 48),
    ("explicit", "{ .mii\nnop.m 0\n;;\n}\nnop.m 0\n", 32),
    ("pv", "mov r16=r17\nITC_D(p7, r24, r25)\nmov r18=r19\n", 48),  # its native text: one itc.d
    # 16 + (two data8 and up to 7 bytes of alignment, to the next 16) + 16
    ("data", "nop.m 0\ndata8 1, 2\nnop.m 0\n", 64),
])
def test_bundling_estimate(name, text, size):
    assert _bytes(text) == size


@pytest.mark.parametrize("name, text, size", [
    ("movl", "mov r16=r17\nmovl r17=5\nmov r18=r19\n", 32),
    ("fault", "mov r31=pr\nmov r19=6\n;;\nbr.sptk.many x\n", 32),
    ("itc", "(p7) itc.d r18\n(p6) br.cond.spnt x\n", 32),
    ("alloc", "mov r1=r2\nalloc r15=ar.pfs,0,0,2,0\nmov r3=r4\n", 16),
])
def test_bundling_cases_match_the_assembler(name, text, size):
    require_gas()
    require_objdump()
    program = parse_text("\t.text\nf:\n" + text + "x:\n\tnop.m 0\n")
    (r,) = region_sizes(program).regions
    assert r.exact == r.estimate == size + 16  # plus the bundle at x


def test_data_among_code_is_counted_from_above():
    """gas puts the two data8 right after the first bundle (16 + 16) and the nop bundle after
    them: 48 bytes, below the estimate's 64."""
    require_gas()
    require_objdump()
    (r,) = region_sizes(parse_text("\t.text\nf:\n\tnop.m 0\n\tdata8 1, 2\n\tnop.m 0\n")).regions
    assert (r.exact, r.estimate) == (48, 64)


def test_gas_errors_without_a_line_are_reported():
    require_gas()
    require_objdump()
    sz = region_sizes(parse_text("\t.text\nf:\n\tnop.m 0\n\tdata4 1\n\tnop.m 0\n"))
    assert sz.reason == "ia64-linux-gnu-as rejected the program: instruction address is not a multiple of 16"


# --------------------------------------------------------------------------- samples, exact

@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_estimate_is_never_below_the_exact_size_and_vectors_fit(sample, config):
    require_gas()
    require_objdump()
    program = _sample(sample, config)
    sz = region_sizes(program, mode="exact")
    assert sz.exact, sz.reason  # the marker labels left the object code unchanged
    assert len(sz.regions) == len(regions(program))
    for rs in sz.regions:
        r = rs.region
        assert rs.estimate >= rs.exact, f"{r.name}: estimate {rs.estimate} < exact {rs.exact}"
        if r.slot is not None:
            assert rs.exact <= r.slot, f"{r.name} needs {rs.exact} bytes, slot {r.slot}"
        assert rs.exact % 16 == 0


def test_the_unfixable_handler_fills_its_slot_exactly():
    """samples/ivt_unfixable.S promises 16 bundles in a 16-bundle slot (its header)."""
    require_gas()
    require_objdump()
    sz = region_sizes(_sample(SAMPLES_DIR / "ivt_unfixable.S"))
    (rs,) = [rs for rs in sz.regions if rs.region.name == "page_not_present"]
    assert (rs.exact, rs.region.slot) == (256, 256)


def test_fault_vectors_take_two_bundles():
    """FAULT(n) is I, A, stop, B: two bundles whatever the assembler (see the bundling cases)."""
    require_gas()
    require_objdump()
    sz = region_sizes(_sample(SAMPLES_DIR / "ivt_tlb.S"))
    assert {rs.region.name: rs.exact for rs in sz.regions if rs.region.name in ("ikey_miss", "dkey_miss")} == \
        {"ikey_miss": 32, "dkey_miss": 32}


def test_without_the_assembler_sizes_are_estimates_with_a_reason(monkeypatch):
    monkeypatch.setattr(sizes_mod, "tools", lambda: None)
    program = _sample(SAMPLES_DIR / "ivt_tlb.S")
    sz = region_sizes(program)
    assert not sz.exact and "not on PATH" in sz.reason
    assert all(rs.exact is None and rs.bytes == rs.estimate and rs.source == "estimate" for rs in sz.regions)


def test_estimate_mode_never_runs_the_assembler(monkeypatch):
    def boom():
        raise AssertionError("assembler looked up")

    monkeypatch.setattr(sizes_mod, "tools", boom)
    sz = region_sizes(_sample(SAMPLES_DIR / "ivt_tight.S"), mode="estimate")
    assert not sz.exact and "--sizes estimate" in sz.reason


def test_a_program_gas_rejects_falls_back_naming_the_place():
    require_gas()
    require_objdump()
    pp = preprocess(str(SAMPLES_DIR / "ivt_pv.S"), include_dirs=[str(SAMPLES_DIR)])  # pv calls stay calls
    sz = region_sizes(parse(pp))
    assert not sz.exact
    assert sz.reason.startswith("ia64-linux-gnu-as rejected the program at ")
    assert str(SAMPLES_DIR / "ivt_pv.S") in sz.reason


# --------------------------------------------------------------------------- the CLI

def test_parse_shows_exact_bytes(capsys):
    require_gas()
    require_objdump()
    capsys.readouterr()
    assert main(["parse", "--json", str(SAMPLES_DIR / "ivt_unfixable.S")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sizes"] == {"source": "exact", "reason": None}
    (h,) = [h for h in data["handlers"] if h["name"] == "page_not_present"]
    assert (h["bytes"], h["bytes_source"], h["slot"]) == (256, "exact", 256)
    assert main(["parse", str(SAMPLES_DIR / "ivt_unfixable.S"), "--color", "never"]) == 0
    table = capsys.readouterr().out
    assert "bytes: exact, from the object file" in table
    assert any("page_not_present" in row and "│   256 │" in row for row in table.splitlines())


def test_parse_estimates_are_marked(capsys):
    capsys.readouterr()
    assert main(["parse", "--sizes", "estimate", str(SAMPLES_DIR / "ivt_unfixable.S"), "--color", "never"]) == 0
    table = capsys.readouterr().out
    assert "bytes: estimates (estimates asked for (--sizes estimate))" in table
    assert any("page_not_present" in row and "│  ~256 │" in row for row in table.splitlines())


def test_report_headers_carry_the_exact_slot_use(capsys):
    require_gas()
    require_objdump()
    capsys.readouterr()
    assert main(["report", str(SAMPLES_DIR / "ivt_unfixable.S"), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "entry 20 at 0x5000, slot use 256/256 bytes" in out
    assert main(["report", "--sizes", "estimate", str(SAMPLES_DIR / "ivt_unfixable.S"), "--color", "never"]) == 0
    assert "slot use ~256/256 bytes (estimate)" in capsys.readouterr().out


def test_sizes_exact_is_an_error_when_gas_rejects_the_file(capsys):
    require_gas()
    require_objdump()
    capsys.readouterr()
    status = main(["parse", "--sizes", "exact", "-I", str(SAMPLES_DIR), str(SAMPLES_DIR / "ivt_pv.S")])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert err[0].startswith("ivtx: error: exact sizes unavailable (--sizes exact): ia64-linux-gnu-as rejected")


# --------------------------------------------------------------------------- .org

@pytest.mark.parametrize("org, message", [
    ("t+foo", "'.org' expression uses 'foo', which is not a label of this file"),
    ("-5", "'.org' to a negative offset (-5)"),
])
def test_bad_org_is_an_error(org, message):
    program = parse_text(f"\t.text\nt:\n\tnop.m 0\n\t.org {org}\n\tnop.m 0\n", "o.s")
    with pytest.raises(IvtxError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        regions(program)
    assert (err.value.loc.line, err.value.loc.col) == (4, 2)


def test_org_relative_to_here_or_a_symbol_and_odd_shifts_are_not_errors():
    """`.org .+32` and `.org t+N` (N set in the file) are fine; `(1<<-1)` used to raise
    ValueError (a negative shift count) inside the layout: now it simply does not fold."""
    program = parse_text("\t.text\nt:\n\tnop.m 0\n\t.org .+32\n\tnop.m 0\nN = 64\n\t.org t+N\n\tnop.m 0\n"
                         "\t.org t+(1<<-1)\n\tnop.m 0\n", "o.s")
    assert len(regions(program)) == 4  # (1<<-1) does not fold: not a vector, and no crash
