"""ivtx.interp: instruction semantics, instruction groups, banks, frames, exits and the nested
TLB miss, each checked against the primer's rules on small handlers."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from ivtsrc import ivt, vector
from ivtx.conventions import load_policy
from ivtx.entrystate import BOF, random_entry
from ivtx.interp import Interpreter
from ivtx.interp_state import Memory, page_table_word, rse_advance, rse_count, rse_retreat
from ivtx.parse import parse_text
from ivtx.pipeline import Options, load

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MASK = (1 << 64) - 1


def interp(text: str) -> Interpreter:
    return Interpreter(parse_text(text, "t.s"), nested_summary=load_policy().nested)


def state(offset: int = 0, values: dict | None = None, nats=(), **fields):
    """A vector-entry state (seed 0) with some locations overridden; no NaT bits but those given."""
    st = random_entry(random.Random(0), offset)
    v = dict(st.values)
    v.update(values or {})
    return replace(st, values=v, nats=frozenset(nats), nat_free=True, **fields)


def run(body: str, values: dict | None = None, nats=(), offset: int = 0, extra: str = "", trace=False, **fields):
    it = interp(ivt(vector(offset, "handler", body)) + extra)
    m = state(offset, values, nats, **fields).machine(it)
    return it.run(m, it.vector_entry(offset), trace=trace)


def val(res, name: str) -> int:
    return res.machine.v[name]


# --------------------------------------------------------------------------- instruction groups


def test_a_read_in_a_group_sees_the_value_from_the_start_of_the_group():
    # WAR inside a group is allowed: r17 gets the old r16 (primer section 4)
    res = run("\tmov r17=r16\n\tmov r16=5\n\t;;\n\trfi\n", {"r16@0": 7})
    assert (val(res, "r17@0"), val(res, "r16@0")) == (7, 5)
    assert res.machine.violations == []


def test_a_same_group_raw_reads_the_old_value_and_is_logged():
    res = run("\tmov r16=5\n\tmov r17=r16\n\t;;\n\trfi\n", {"r16@0": 7})
    assert val(res, "r17@0") == 7
    assert [v[:2] for v in res.machine.violations] == [("RAW", "r16")]


def test_the_next_group_sees_the_write():
    res = run("\tmov r16=5\n\t;;\n\tmov r17=r16\n\t;;\n\trfi\n", {"r16@0": 7})
    assert val(res, "r17@0") == 5


def test_a_compare_feeds_a_branch_in_the_same_group():
    body = "\tcmp.eq p6,p7=r0,r0\n\t(p6) br.cond.sptk taken\n\t;;\n\tmov r20=1\n\t;;\n\trfi\ntaken:\n\tmov r20=2\n\t;;\n\trfi\n"
    res = run(body, {"p6": 0, "p7": 1})
    assert val(res, "r20@0") == 2
    assert res.machine.violations == []


def test_mov_b0_feeds_a_branch_in_the_same_group():
    body = "\tmovl r16=there\n\t;;\n\tmov b0=r16\n\tbr.sptk.many b0\n\t;;\n\tmov r20=1\n\trfi\nthere:\n\tmov r20=2\n\t;;\n\trfi\n"
    assert val(run(body), "r20@0") == 2


def test_a_predicate_written_in_the_group_is_not_seen_by_a_non_branch():
    body = "\tcmp.eq p6,p7=r0,r0\n\t(p6) mov r20=1\n\t;;\n\trfi\n"
    res = run(body, {"p6": 0, "r20@0": 9})
    assert val(res, "r20@0") == 9  # the qualifying predicate was read as the group started
    assert ("RAW", "p6") in [v[:2] for v in res.machine.violations]


# --------------------------------------------------------------------------- compares (primer section 5)

# ctype -> (qp=0, result 0, result 1), each (p6, p7) or None for "unchanged"; the primer's table
PRIMER_TABLE = {
    "": (None, (0, 1), (1, 0)),
    "unc": ((0, 0), (0, 1), (1, 0)),
    "or": (None, None, (1, 1)),
    "and": (None, (0, 0), None),
    "or.andcm": (None, None, (1, 0)),
    "orcm": (None, (1, 1), None),
    "andcm": (None, None, (0, 0)),
    "and.orcm": (None, (0, 1), None),
}


@pytest.mark.parametrize("ctype", list(PRIMER_TABLE))
@pytest.mark.parametrize("before", [(0, 0), (1, 1), (0, 1)])
def test_compare_types_follow_the_primer_table(ctype, before):
    mnemonic = "cmp.eq" + (f".{ctype}" if ctype else "")
    for qp, r17, column in ((0, 0, 0), (1, 1, 1), (1, 0, 2)):  # result = (r17 == 0) under qp
        body = f"\t(p8) {mnemonic} p6,p7=r17,r0\n\t;;\n\trfi\n"
        res = run(body, {"p6": before[0], "p7": before[1], "p8": qp, "r17@0": r17})
        expected = PRIMER_TABLE[ctype][column] or before
        assert (val(res, "p6"), val(res, "p7")) == expected, (ctype, qp, r17)


def test_a_nat_source_clears_normal_and_and_targets_and_leaves_or_targets():
    for mnemonic, expected in (("cmp.eq", (0, 0)), ("cmp.eq.unc", (0, 0)), ("cmp.eq.and", (0, 0)),
                               ("cmp.eq.or", (1, 1)), ("cmp.eq.or.andcm", (1, 1))):
        res = run(f"\t{mnemonic} p6,p7=r16,r0\n\t;;\n\trfi\n", {"r16@0": 0, "p6": 1, "p7": 1}, nats={"r16@0"})
        assert (val(res, "p6"), val(res, "p7")) == expected, mnemonic


def test_tbit_tnat_and_cmp4():
    res = run("\ttbit.nz p6,p7=r16,3\n\ttnat.nz p8,p9=r17\n\tcmp4.lt p10,p11=r18,r0\n\t;;\n\trfi\n",
              {"r16@0": 8, "r17@0": 0, "r18@0": 0x1_8000_0000}, nats={"r17@0"})
    assert [val(res, p) for p in ("p6", "p7", "p8", "p9")] == [1, 0, 1, 0]
    assert (val(res, "p10"), val(res, "p11")) == (1, 0)  # the low 32 bits are negative


def test_equal_targets_fault():
    res = run("\tcmp.eq p6,p6=r0,r0\n\t;;\n\trfi\n")
    assert (res.exit.kind, res.exit.target) == ("fault", "illegal-operation")


# --------------------------------------------------------------------------- ALU, NaT

def test_alu_results_and_nat_propagation():
    body = ("\tadd r20=r16,r17\n\tsub r21=r16,r17,1\n\tandcm r22=r16,r17\n\tshladd r23=r16,2,r17\n"
            "\tdep r24=r17,r16,4,8\n\textr r25=r18,4,8\n\textr.u r26=r18,4,8\n\tdep.z r27=r17,60,8\n"
            "\tadd r28=r16,r19\n\tshr r29=r18,63\n\tshr.u r30=r18,63\n\t;;\n\trfi\n")
    res = run(body, {"r16@0": 0x1234, "r17@0": 0xFF, "r18@0": 0x8000_0000_0000_0F80, "r19@0": 1}, nats={"r19@0"})
    assert val(res, "r20@0") == 0x1333
    assert val(res, "r21@0") == 0x1234 - 0xFF - 1
    assert val(res, "r22@0") == 0x1200
    assert val(res, "r23@0") == 0x1234 * 4 + 0xFF
    assert val(res, "r24@0") == 0x1FF4  # bits 4..11 of 0x1234 replaced by 0xff
    assert val(res, "r25@0") == MASK & -8  # 0xf8 sign-extended from 8 bits
    assert val(res, "r26@0") == 0xF8
    assert val(res, "r27@0") == 0xF << 60  # bits beyond 63 dropped
    assert "r28@0" in res.machine.nat and "r20@0" not in res.machine.nat
    assert (val(res, "r29@0"), val(res, "r30@0")) == (MASK, 1)


def test_mov_pr_mask_writes_only_the_masked_predicates():
    # 0x1003e: p1-p5 and all of p16-p63 (primer section 1)
    preds = {f"p{n}": 0 for n in range(1, 64)}
    res = run("\tmov pr=r16,0x1003e\n\t;;\n\trfi\n", {**preds, "r16@0": MASK})
    got = {n for n in range(1, 64) if val(res, f"p{n}")}
    assert got == set(range(1, 6)) | set(range(16, 64))


def test_mov_from_pr_has_p0_set():
    preds = {f"p{n}": int(n == 6) for n in range(1, 64)}
    res = run("\tmov r16=pr\n\t;;\n\trfi\n", preds)
    assert val(res, "r16@0") == 1 | (1 << 6)


def test_a_nat_consumed_by_a_store_or_mov_to_b_faults():
    for body in ("\tst8 [r17]=r16\n\t;;\n\trfi\n", "\tmov b6=r16\n\t;;\n\trfi\n", "\tmov pr=r16,-1\n\t;;\n\trfi\n"):
        res = run(body, {"r17@0": 0x1000}, nats={"r16@0"})
        assert (res.exit.kind, res.exit.target) == ("fault", "nat-consumption"), body


# --------------------------------------------------------------------------- banks, PSR, CRs


def test_bsw_switches_what_r16_names():
    res = run("\tmov r16=1\n\t;;\n\tbsw.1\n\t;;\n\tmov r16=2\n\t;;\n\trfi\n", {"r16@1": 9})
    assert (val(res, "r16@0"), val(res, "r16@1")) == (1, 2)


def test_interruption_crs_need_psr_ic_off():
    assert run("\tmov r16=cr.ifa\n\t;;\n\trfi\n").exit.kind == "rfi"
    res = run("\tssm psr.ic\n\t;;\n\tsrlz.d\n\t;;\n\tmov r16=cr.ifa\n\t;;\n\trfi\n")
    assert (res.exit.kind, res.exit.target) == ("fault", "illegal-operation")


def test_an_unserialized_psr_change_is_recorded_and_srlz_clears_it():
    res = run("\trsm psr.dt\n\t;;\n\tld8 r16=[r17]\n\t;;\n\trfi\n", {"r17@0": 0x1000})
    assert [h[0] for h in res.machine.hazards] == ["data access before a psr.dt change was serialized"]
    res = run("\trsm psr.dt\n\t;;\n\tsrlz.d\n\t;;\n\tld8 r16=[r17]\n\t;;\n\trfi\n", {"r17@0": 0x1000})
    assert res.machine.hazards == []


def test_itc_logs_ifa_itir_and_the_pte():
    res = run("\tmov cr.ifa=r16\n\tmov cr.itir=r17\n\t;;\n\titc.d r18\n\t;;\n\tptc.l r16,r19\n\t;;\n\trfi\n",
              {"r16@0": 0x2000, "r17@0": 14 << 2, "r18@0": 0x1234561, "r19@0": 14 << 2})
    assert res.machine.tlb == [("itc.d", 0x2000, 14 << 2, 0x1234561), ("ptc.l", 0x2000, 14)]
    assert res.machine.crlog == [("cr.ifa", 0x2000), ("cr.itir", 14 << 2)]


def test_rfi_restores_psr_from_ipsr():
    ipsr = (1 << 44) | (1 << 13) | (1 << 17)
    res = run("\trfi\n", {"cr.ipsr": ipsr})
    assert res.exit.kind == "rfi" and res.machine.psr == ipsr and res.machine.bn == 1


# --------------------------------------------------------------------------- frames and the RSE


def test_cover_and_alloc_give_a_new_frame_above_the_interrupted_one():
    sof = 3
    vals = {f"s{BOF + i}": 0x100 + i for i in range(sof)}
    body = ("\tmov r16=r34\n\tcover\n\t;;\n\tmov r17=cr.ifs\n\talloc r14=ar.pfs,0,0,2,0\n\t;;\n"
            "\tmov r32=1\n\tmov r33=2\n\t;;\n\tbr.sptk.many elsewhere\n")
    res = run(body, vals, cfm=sof | (1 << 7))
    m = res.machine
    assert val(res, "r16@0") == 0x102  # r34 of the interrupted frame
    assert [m.v[f"s{BOF + i}"] for i in range(sof)] == [0x100, 0x101, 0x102]  # untouched
    assert (m.v[f"s{BOF + 3}"], m.v[f"s{BOF + 4}"]) == (1, 2)  # the new frame
    assert val(res, "r17@0") == (1 << 63) | sof | (1 << 7)  # cr.ifs: valid + the covered CFM
    assert m.cfm & 0x7F == 2 and m.bof == BOF + sof


def test_a_register_beyond_the_frame_faults():
    res = run("\tcover\n\t;;\n\talloc r14=ar.pfs,0,0,2,0\n\t;;\n\tmov r34=r0\n\t;;\n\trfi\n")
    assert (res.exit.kind, res.exit.target) == ("fault", "illegal-operation")


def test_rse_arithmetic_skips_nat_collection_slots():
    for start in (0x1000, 0x11F0, 0x1FF0 - 8 * 3, 0x7_0000_01F0):
        if (start >> 3) & 63 == 63:
            continue
        for n in (0, 1, 5, 62, 63, 64, 200):
            end = rse_advance(start, n)
            assert rse_count(start, end) == n
            assert rse_retreat(end, n) == start
            assert (end >> 3) & 63 != 63


def test_bspstore_switch_keeps_the_dirty_registers_dirty_and_flushrs_writes_them():
    bspstore = 0x8000
    body = ("\tmov ar.rsc=r0\n\t;;\n\tmov ar.bspstore=r16\n\t;;\n\tmov r17=ar.bsp\n\t;;\n"
            "\tflushrs\n\t;;\n\tmov r18=ar.bspstore\n\t;;\n\tbr.sptk.many elsewhere\n")
    vals = {"ar.bspstore": bspstore, "ar.bsp": bspstore + 24, "r16@0": 0x20000,
            f"s{BOF - 3}": 0xA, f"s{BOF - 2}": 0xB, f"s{BOF - 1}": 0xC}
    res = run(body, vals, nats={f"s{BOF - 2}"}, cfm=0)
    m = res.machine
    assert val(res, "r17@0") == 0x20000 + 24  # bsp = new bspstore + 3 dirty registers
    assert val(res, "r18@0") == 0x20000 + 24
    assert [m.mem.read(0x20000 + 8 * i, 8) for i in range(3)] == [0xA, 0xB, 0xC]
    assert (m.v["ar.rnat"] >> 1) & 1 == 1 and (m.v["ar.rnat"] >> 0) & 1 == 0  # s(BOF-2)'s NaT


def test_in_file_call_and_return_restore_the_frame():
    body = ("\tbr.call.sptk.many b0=callee\n\t;;\n\tmov r20=r32\n\t;;\n\tbr.sptk.many elsewhere\n"
            "callee:\n\talloc r16=ar.pfs,1,2,0,0\n\t;;\n\tmov r34=7\n\t;;\n\tmov ar.pfs=r16\n\t;;\n\tbr.ret.sptk.many b0\n")
    sof, sol = 4, 3
    res = run(body, {f"s{BOF + i}": i for i in range(sof)}, cfm=sof | (sol << 7))
    m = res.machine
    assert m.cfm & 0x3FFF == sof | (sol << 7) and m.bof == BOF
    assert val(res, "r20@0") == 0  # r32 of the caller's frame again
    assert m.v[f"s{BOF + 5}"] == 7  # callee's r34 = its in0 + 2 (in0 is the caller's r35)


# --------------------------------------------------------------------------- memory


def test_memory_is_byte_addressed_over_the_generator():
    mem = Memory(seed=5)
    word = mem.read(0x1000, 8)
    assert word == page_table_word(5, 0x1000)
    mem.write(0x1001, 1, 0xAB)
    assert mem.read(0x1000, 8) == (word & ~0xFF00) | 0xAB00
    assert mem.read(0x1001, 1) == 0xAB and mem.written == {0x1000: 0b10}


def test_generated_page_tables_give_pointers_one_level_down_and_ptes():
    seen = {1: set(), 2: set(), 3: set()}
    for a in range(0, 0x4000, 8):
        for tag in (1, 2, 3):
            w = page_table_word(1, (tag << 52) | 0x40000 | a)
            seen[tag].add(w == 0 if tag < 3 else w & 1)
            if tag < 3 and w:
                assert w >> 52 == tag + 1 and w & 0x3FFF == 0
    assert seen == {1: {True, False}, 2: {True, False}, 3: {0, 1}}


def test_unaligned_access_faults():
    res = run("\tld8 r16=[r17]\n\t;;\n\trfi\n", {"r17@0": 0x1004})
    assert (res.exit.kind, res.exit.target) == ("fault", "unaligned-reference")


def test_spill_and_fill_carry_the_nat_bit_through_unat():
    body = "\tst8.spill [r17]=r16\n\t;;\n\tld8.fill r18=[r17]\n\t;;\n\trfi\n"
    res = run(body, {"r16@0": 0x55, "r17@0": 0x1018}, nats={"r16@0"})
    assert val(res, "r18@0") == 0x55 and "r18@0" in res.machine.nat
    assert (res.machine.v["ar.unat"] >> 3) & 1 == 1


# --------------------------------------------------------------------------- exits


def test_exits_name_symbols_outside_the_file_and_the_return_point_of_a_call():
    assert run("\tbr.sptk.many page_fault\n").exit.describe() == "branch page_fault"
    res = run("\tmovl r14=ia64_leave_kernel\n\t;;\n\tmov rp=r14\n\t;;\n\tbr.call.sptk.many b6=ia64_fault\n")
    assert (res.exit.kind, res.exit.target, res.exit.link) == ("call", "ia64_fault", "&ia64_leave_kernel")
    res = run("\tmov b6=r16\n\t;;\n\tbr.sptk.many b6\n", {"r16@0": 0x1230})
    assert (res.exit.kind, res.exit.target) == ("unknown", "0x1230")


def test_falling_off_a_region_is_an_exit():
    res = run("\tmov r16=1\n\t;;\n")
    assert res.exit.kind == "fall-off"


def test_an_instruction_without_semantics_stops_the_run_with_its_location():
    res = run("\tmov r16=1\n\t;;\n\tfma f6=f7,f8,f9\n\t;;\n\trfi\n")
    assert res.exit is None and res.not_modelled is not None
    text = str(res.not_modelled)
    assert "fma f6=f7,f8,f9" in text and "t.s:" in text and "fp.arith" in text


def test_a_pv_call_runs_its_native_text():
    native = run("\t(p7) itc.d r18\n\t;;\n\trfi\n", {"p7": 1, "r18@0": 0x11})
    pv = run("\tITC_D(p7, r18, r19)\n\t;;\n\tRFI\n", {"p7": 1, "r18@0": 0x11})
    assert native.machine.tlb == pv.machine.tlb == [("itc.d", native.machine.v["cr.ifa"], native.machine.v["cr.itir"], 0x11)]
    assert pv.machine.v["r19@0"] == native.machine.v["r19@0"]


def test_the_scribbling_model_overwrites_the_named_clobbers():
    from ivtx.verify import scribbling_model

    it = interp(ivt(vector(0, "handler", "\tSSM_PSR_I(p15, p14, r19)\n\t;;\n\tRFI\n")))
    st = state(0, {"r19@0": 5, "p14": 0, "p15": 1})
    m = st.machine(it)
    m.pv_model = scribbling_model
    res = it.run(m, 0)
    assert res.machine.v["r19@0"] != 5 and res.machine.v["p14"] == 1
    assert res.machine.v["p15"] == 1  # the predicate operand is only read


# --------------------------------------------------------------------------- nested TLB miss (primer section 6)


@pytest.fixture(scope="module")
def tlb_sample():
    program, _ = load(str(SAMPLES / "ivt_tlb.S"), Options(include_dirs=[str(SAMPLES)]))
    return Interpreter(program, nested_summary=load_policy().nested)


def test_a_continuation_load_can_take_the_files_nested_miss(tlb_sample):
    it = tlb_sample
    entry = it.vector_entry(0x0400)
    nested = {p for r, p0 in it.vectors() if r.offset == 0x1400 for p in range(p0, len(it.cfg.code))
              if it.cfg.region_of(p) is r}
    for miss in (False, True):
        st = random_entry(random.Random(3), 0x0400)
        m = st.machine(it)
        m.nested_choice = lambda k, miss=miss: miss
        res = it.run(m, entry, trace=True)
        ran_nested = any(s.pos in nested for s in res.trace)
        assert ran_nested == miss
        assert any(e[0] == "nested-miss" for e in res.machine.sys) == miss
        if miss and res.exit.kind == "rfi":
            loads = [s for s in res.trace if s.text == "ld8 r18=[r17]"]
            assert len(loads) == 1  # the nested handler ran instead of it; re-executed once


def test_without_a_nested_handler_the_summary_model_runs():
    body = "\tmov r29=b0\n\tmovl r30=1f\n\t;;\n1:\tld8 r18=[r17]\n\t;;\n\tmov b0=r29\n\t;;\n\tbr.sptk.many page_fault\n"
    it = interp(ivt(vector(0x0800, "dtlb", body)))
    st = state(0x0800, {"r17@0": 0x1000, "r16@0": 0x4000, "r18@0": 3})
    m = st.machine(it)
    m.nested_choice = lambda k: True
    res = it.run(m, it.vector_entry(0x0800))
    assert res.exit.describe() == "branch page_fault"
    m = res.machine
    assert m.v["r17@0"] != 0x1000 and m.v["r17@0"] % 8 == 0  # the walk's PTE address
    assert m.v["r18@0"] == m.mem.read(m.v["r17@0"], 8)
    assert (m.psr >> 17) & 1 == 0


def test_code_addresses_compare_as_points_that_survive_insertions():
    # the second program has an extra instruction, an extra label and a br.cond stub call, as a
    # transform would add: labels, numeric labels and return points still name the same points
    a = interp(ivt(vector(0, "h", "\tmovl r16=there\n\tmovl r17=1f\n\t;;\nthere:\n\tbr.call.sptk.many b0=f\n\t;;\n"
                                "\trfi\n1:\trfi\nf:\n\trfi\n")))
    b = interp(ivt(vector(0, "h", "\tnop.m 0\n\tmovl r16=there\n\tmovl r17=1f\n\t;;\nthere:\n\tbr.cond.sptk stub\n"
                                "ivtx_back:\n\tnop.i 0\n\tbr.call.sptk.many b0=f\n\t;;\n\trfi\n1:\trfi\nf:\n\trfi\nstub:\n"
                                "\tbr.cond.sptk ivtx_back\n")))
    for it in (a, b):
        assert it.layout.canonical(it.layout.symbols["there"]) == "@there"
        call = next(p for p, s in enumerate(it.cfg.code) if s.mnemonic.startswith("br.call"))
        assert it.layout.canonical(it.layout.address(call) + 16) == "@ia64_ivt+0x0000/call1"
        movl = next(s for s in it.cfg.code if s.mnemonic == "movl" and str(s.srcs[0]) == "1f")
        assert it.layout.canonical(it.layout.value(movl.srcs[0].expr, it.cfg.code.index(movl))) == "@ia64_ivt+0x0000/1#1"
    calls = [next(it.layout.address(p) for p, s in enumerate(it.cfg.code) if s.mnemonic.startswith("br.call"))
             for it in (a, b)]
    assert calls[0] != calls[1]  # the same call at different addresses


def test_only_the_interruption_vector_table_gives_handlers():
    # a transform's `.org`-spaced stub table looks like a vector table to the layout: the IVT is
    # the 32 KB-aligned one even when the stub table has more entries
    stubs = "\t.section .text..stubs,\"ax\"\n\tnop.m 0\n\t.align 64\nstubs:\n" + "".join(
        f"\t.org stubs+{i * 0x400:#x}\n\trfi\n" for i in range(4))
    it = interp(ivt(vector(0x400, "only_one", "\trfi\n")) + stubs)
    assert [(r.name, r.offset) for r, _ in it.vectors()] == [("only_one", 0x400)]
    assert it.vector_entry(0x400) == 0


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.S")), ids=lambda p: p.name)
def test_every_instruction_of_the_samples_has_semantics(path):
    # in the default configuration and with every option on (different #ifdef paths)
    from ivtx.interp import native_groups
    from ivtx.pvcatalog import default_catalog

    for defines in ([], ["CONFIG_SMP", "CONFIG_HUGETLB_PAGE", "CONFIG_DISABLE_VHPT"]):
        program, _ = load(str(path), Options(include_dirs=[str(SAMPLES)], defines=defines))
        it = Interpreter(program)
        missing = [str(s.loc) for s, op in zip(it.cfg.code, it.ops) if getattr(op, "not_modelled", False)]
        assert not missing, missing
        for call in (s for s in it.cfg.code if not hasattr(s, "mnemonic")):
            assert native_groups(call, default_catalog())  # every pv op's native text parses


def test_data_layout_aligns_data8_and_balign_like_the_assembler():
    """A pv_ops table after a `.long` (the kernel's EXPORT_SYMBOL puts 4 bytes in a data section
    first): `data8` aligns to 8 (only `data8.ua` does not) and `.balign` moves the data too. The
    interpreter once placed the table at +4, and the call rendering's table load faulted
    (unaligned) on the Linux file with real headers."""
    from ivtx.cfg import build_cfg
    from ivtx.interp_layout import Layout

    text = ("\t.section .text\nf:\n\tnop 0\n\t;;\n"
            "\t.section .data.a, \"aw\"\n\tdata1 1\n\t.balign 4\n\t.long 7\n"
            "\t.section .data.b, \"aw\"\ntable:\n\tdata8 f\nloose:\n\tdata1 2\nua:\n\tdata8.ua 3\n")
    program = parse_text(text, "layout.s")
    lay = Layout(program, build_cfg(program))
    base = lay.symbols["table"] & ~0xFFF
    assert lay.symbols["table"] % 8 == 0 and lay.symbols["table"] - base == 8
    assert lay.symbols["ua"] == lay.symbols["loose"] + 1  # data8.ua: no alignment


def test_a_fault_is_precise_inside_its_group():
    """`mov cr.iip=r17` then a NaT-consuming `mov cr.ipsr=r18` in one group: the fault is taken at
    the second, and the first has completed (IA-64 faults are precise). The interpreter once
    dropped the whole group, so a transform that put a stop between the two (a pv op ending its
    group) looked like a behaviour change to verify (found by fuzzing transform + verify)."""
    body = "\tmov cr.iip=r17\n\tmov cr.ipsr=r18\n\t;;\n\trfi\n"
    res = run(body, {"r17@0": 0x4000, "r18@0": 5}, nats=("r18@0",))
    assert res.exit.kind == "fault" and res.exit.target == "nat-consumption"
    assert val(res, "cr.iip") == 0x4000
    split = run(body.replace("\tmov cr.ipsr", "\t;;\n\tmov cr.ipsr"), {"r17@0": 0x4000, "r18@0": 5}, nats=("r18@0",))
    assert split.exit.key() == res.exit.key() and val(split, "cr.iip") == 0x4000


def test_falling_off_a_region_is_named_by_the_region_not_the_instruction():
    res = run("\tmov r16=1\n\t;;\n\tmov r17=2\n\t;;\n")
    assert res.exit.kind == "fall-off" and res.exit.target == "the end of ia64_ivt+0x0000"
