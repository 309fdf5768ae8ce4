"""Golden free sets at privileged sites of the bundled samples, each derived by hand.

How every expected set below was derived (and how to re-derive one):
- A register is free at a site when it is dead right after the site: on every path, it is
  written before it is read, or never read again, and it is not an operand of the site.
- What the exits read comes from ivtx/data/conventions.toml:
    rfi            the interrupted context: r1-r15, r32-r127, bank-1 r16-r31, p1-p63, b0-b7,
                   the ARs (never bank-0 r16-r31);
    page_fault     the same minus p1-p63 (the caller saved pr in bank-0 r31), plus bank-0 r31;
    nested miss    a load at a `movl r30=1f` continuation may run nested_dtlb_miss first,
                   which reads bank-0 r16, r29, r30, r31 and returns to the load;
    C functions    r1, r4-r7, r12, r13, r32-r127, b1-b5, p1-p5, p16-p63 (and the ARs);
    ia64_leave_kernel  r1, r4-r7, r8-r11, r12, r13, b1-b5, p1-p5, p16-p63.
- "other GRs" are r1-r15 and r32-r127: r1-r15 are context (read by rfi / page_fault), and
  r32-r127 are free only inside a frame the handler made itself with `cover` + `alloc`.
- Predicated writes `(pX) x=` do not kill unless every later read runs under pX too.

Where the analysis is less precise than the hand derivation, the test names the registers
(IMPRECISE) and says why; it always asserts soundness: nothing free that the derivation
shows live. Line numbers are those of the sample files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivtx.pipeline import Options, analyse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

ALL_P = {f"p{n}" for n in range(1, 64)}
BANK0 = {f"r{n}" for n in range(16, 32)}


def regs(spec: str) -> set[str]:
    """'r16-r19 r21' -> {r16, r17, r18, r19, r21}."""
    out: set[str] = set()
    for item in spec.split():
        if "-" in item:
            lo, hi = item.split("-")
            kind = lo.rstrip("0123456789")
            out |= {f"{kind}{n}" for n in range(int(lo[len(kind):]), int(hi[len(kind):]) + 1)}
        else:
            out.add(item)
    return out


_CACHE: dict = {}


def sample_site(name: str, line: int, text: str, defines=()):
    """The site at `line` of samples/`name` whose instruction contains `text`."""
    key = (name, tuple(defines))
    if key not in _CACHE:
        _CACHE[key] = analyse(str(SAMPLES / name), Options(include_dirs=[str(SAMPLES)], defines=list(defines)))
    a = _CACHE[key]
    from ivtx.printer import statement_text

    hits = [s for s in a.sites if a.cfg.code[s.pos].loc.use_site.line == line
            and text in "; ".join(statement_text(a.cfg.code[s.pos + j]) for j in range(s.length))]
    assert len(hits) == 1, f"{name}:{line} {text!r}: {len(hits)} sites"
    return hits[0]


def free(site) -> dict[str, set[str]]:
    banked = {r for r in site.free_gr if r in BANK0}
    return {"banked": banked, "other": set(site.free_gr) - banked, "pr": set(site.free_pr), "br": set(site.free_br)}


def assert_free(site, banked: set, other: set, pr: set, br: set, imprecise: set = frozenset()):
    """The analysis' free sets equal the hand-derived ones, except registers in `imprecise`
    (free by the derivation, kept live by the analysis: allowed, never the other way round)."""
    got = free(site)
    want = {"banked": banked, "other": other, "pr": pr, "br": br}
    for cls in want:
        extra = got[cls] - want[cls]
        assert not extra, f"{cls}: reported free but live by the derivation (unsound): {sorted(extra)}"
        missing = want[cls] - got[cls] - set(imprecise)
        assert not missing, f"{cls}: dead by the derivation but not reported free: {sorted(missing)}"


# ---------------------------------------------------------------- ivt_tlb.S, default configuration


def test_vhpt_miss_isr_read_under_rsm_psr_dt():
    # Line 99 `mov r19=cr.isr` runs after `rsm psr.dt` (line 58): physical data accesses.
    # After it (no CONFIG_*): 101 (p7) cmp.eq.or.andcm p6,p7=r26,r0; 102 dep r21=r18,r26;
    # 103 dep r23=0,r26; 105 (p7) ld8 r18=[r21]; 106 tbit.nz p10,p11=r19; 107 adds r24=..,r23;
    # 109 (p7) tbit.z p6,p7=r18; 111 (p6) cmp.ne.and p10,p11; 114/115 (p10)/(p11) itc r18;
    # 116 (p6) br page_fault; 117 mov cr.ifa=r20; 122 itc.d r24; 142 mov pr=r31,-1; rfi.
    # Read before written: r18 (102), r20 (117), r26 (101-103), r31 (142, page_fault).
    # Written first: r21 (102), r23 (103), r24 (107). Never read again: r16, r17, r22, r25,
    # r27-r30 (the ptc.l re-check that reads r16 is CONFIG_SMP only). r19 is the operand.
    # Predicates: p6 and p7 flow into the parallel compare at 101 (qp p7, p6 kept when it
    # does not fire) and are read at 109/111/116; p10/p11 are written by the normal tbit at
    # 106 before their reads; everything else dies at `mov pr=r31,-1`, and page_fault does
    # not read predicates. b0-b7 are context (rfi, page_fault).
    s = sample_site("ivt_tlb.S", 99, "mov r19=cr.isr")
    assert s.op.name == "MOV_FROM_ISR"
    assert s.state == "bank 0, psr.ic=0, psr.dt=0"
    assert_free(s, regs("r16 r17 r21-r25 r27-r30"), set(), ALL_P - {"p6", "p7"}, set())


def test_vhpt_miss_inserts_before_the_branch_to_page_fault():
    # Lines 114/115 `(p10) itc.i r18; (p11) itc.d r18` are one ITC_I_AND_D site; in the same
    # group follows 116 `(p6) br.cond.spnt page_fault`. page_fault reads bank-0 r31 (saved
    # pr) and the context but no predicate; the fall-through reads r20 (117), r24 (122) and
    # r31 (142). Operands: r18, p10, p11. So every other bank-0 register is free, and every
    # predicate but p6 (the branch's guard) and the operands.
    s = sample_site("ivt_tlb.S", 114, "itc.i r18")
    assert s.op.name == "ITC_I_AND_D"
    assert_free(s, BANK0 - regs("r18 r20 r24 r31"), set(), ALL_P - regs("p6 p10 p11"), set())
    assert s.chosen == ["r16"]  # lowest free bank-0 register (README "Clobber choice")


def test_vhpt_miss_last_insert_before_mov_pr():
    # Line 122 `itc.d r24`; without CONFIG_SMP the next instructions are 142 `mov pr=r31,-1`
    # and `rfi`. Only r31 is read (r24 is the operand); `mov pr=r31,-1` overwrites p1-p63
    # before rfi can see them, so every predicate is free.
    s = sample_site("ivt_tlb.S", 122, "itc.d r24")
    assert_free(s, BANK0 - {"r24", "r31"}, set(), ALL_P, set())


def test_vhpt_miss_last_insert_with_the_smp_recheck():
    # CONFIG_SMP adds, after 122: 129 ld8 r29=[r28]; 130 ld8 r30=[r21]; 131 cmp.ne p7,p0=r0,r0;
    # 133/134 cmp.ne.or p7 with r29,r26 / r30,r18; 135 mov r27=..; 137 (p7) ptc.l r16,r27;
    # 139 (p7) ptc.l r20,r27; then mov pr=r31,-1. Read first: r16, r18, r20, r21, r26, r28,
    # r31. Written first: r27, r29, r30. Untouched: r17, r19, r22, r23, r25. p7 is written by
    # the normal compare at 131 before the parallel ones read it: all predicates stay free.
    s = sample_site("ivt_tlb.S", 122, "itc.d r24", defines=["CONFIG_SMP"])
    assert_free(s, regs("r17 r19 r22 r23 r25 r27 r29 r30"), set(), ALL_P, set())


def test_itlb_miss_insert_after_the_continuation_load():
    # Line 168 `itc.i r18` (default): then 176 `mov pr=r31,-1`, rfi. Only r31 is read. psr.dt
    # is unknown here: the nested miss (which leaves psr.dt off) may have run before the load.
    s = sample_site("ivt_tlb.S", 168, "itc.i r18")
    assert s.state == "bank 0, psr.ic=0, psr.dt=?"
    assert_free(s, BANK0 - {"r18", "r31"}, set(), ALL_P, set())


def test_dirty_bit_thash_is_shaped_by_the_nested_tlb_edge():
    # Line 369 `thash r17=r16`; then 370 mov r31=pr, 371 mov r29=b0, and (default) the load
    # `1: ld8 r18=[r17]` at 398, which `movl r30=1f` (367) makes a continuation: a nested
    # TLB miss may run there first and read bank-0 r16, r29, r30, r31. The handler itself
    # never reads r30 again, yet r30 is live: only the implicit edge keeps it. r29 and r31
    # are written (370, 371) before the load, so they are free; r18 is written by the load.
    # `mov r31=pr` reads every predicate; b0 is read by `mov r29=b0`.
    s = sample_site("ivt_tlb.S", 369, "thash r17=r16")
    assert_free(s, BANK0 - regs("r16 r17 r30"), set(), set(), set())


def test_nested_dtlb_miss_free_set_comes_from_every_continuation():
    # Line 308 `rsm psr.dt`, first instruction of the nested handler. Ahead: it writes r19
    # (309), r17 (310), r22 (311), p6/p7 (313), r18 (314) before reading them; reads r16; at
    # 339 (p6) br page_fault (reads r31, context incl. b0); at 340/341 `mov b0=r30; br b0`
    # returns to the continuation loads of itlb_miss (162), dtlb_miss (193), dirty_bit (398),
    # iaccess_bit (448), daccess_bit (498), which (default config) read r17, r29, r31 and
    # write everything else they use first. Never touched: r20, r23-r28.
    # r21: `(p6) shr.u r21=..` / `(p7) shr.u r21=..` (320/321) with p6/p7 from the normal
    # compare at 313 always write r21 before `cmp.eq p7,p6=r0,r21` (325) reads it, so r21 is
    # dead; the analysis keeps it live (complementary predicated writes before an unguarded
    # read are not combined into a kill): imprecise, not unsound.
    s = sample_site("ivt_tlb.S", 308, "rsm psr.dt")
    assert_free(s, regs("r17-r28"), set(), ALL_P, set(), imprecise={"r21"})


def test_nested_dtlb_miss_under_smp_keeps_the_saved_ccv():
    # With CONFIG_SMP, dirty_bit/iaccess_bit/daccess_bit keep ar.ccv in r28 across their
    # continuation load (`mov r28=ar.ccv` before, `mov ar.ccv=r28` after): r28 is live at
    # every nested miss and so in the nested handler. Their r24-r26 are written after the
    # load before any read (the (p6) cmpxchg8/cmp on r26 are guarded by the same p6).
    s = sample_site("ivt_tlb.S", 308, "rsm psr.dt", defines=["CONFIG_SMP"])
    assert_free(s, regs("r17-r27"), set(), ALL_P, set(), imprecise={"r21"})


def test_alt_itlb_miss_ipsr_read_ahead_of_the_page_fault_branch():
    # Line 226 `mov r20=cr.ipsr`: then 227 movl r19 (write), 228 tbit.z p9,p0=r16; 241 extr.u
    # r21=r20 (write r21); 242 and r19=r19,r16; 243 (p9) dep r18=..,r18; 245 cmp.ne p8,p0=r0,r21;
    # 246 or r19=r19,r18; 248 (p8) br page_fault; 249 itc.i r19; 251 mov pr=r31,-1. Read
    # first: r16, r18 (set at 224), r31. p8/p9 are written by normal compares before use.
    s = sample_site("ivt_tlb.S", 226, "mov r20=cr.ipsr")
    assert_free(s, BANK0 - regs("r16 r18 r20 r31"), set(), ALL_P, set())


def test_alt_dtlb_miss_predicated_ipsr_write():
    # Line 289 `(p6) mov cr.ipsr=r21` (MOV_TO_IPSR, operands p6 and r21); then 290
    # `(p7) itc.d r19` reads p7 and r19, 292 `mov pr=r31,-1` reads r31.
    s = sample_site("ivt_tlb.S", 289, "mov cr.ipsr=r21")
    assert s.op.name == "MOV_TO_IPSR" and s.args["pred"] == "p6"
    assert_free(s, BANK0 - regs("r19 r21 r31"), set(), ALL_P - {"p6", "p7"}, set())


# ---------------------------------------------------------------- ivt_save.S: banks, frames, C calls


def test_break_fault_after_bsw1_names_bank1_and_its_own_frame():
    # Line 53 `mov out0=cr.iim` (= r32) runs after SAVE_MIN_COVER's `bsw.1`: r16-r31 now
    # name bank 1, the interrupted values that SAVE_REST (64) spills, so none is free.
    # After it: 54 adds out1(r33); 59 adds r3=..,r2; 62 movl r14; SAVE_REST writes r8-r11
    # before reading them, reads r2/r3, b6/b7; 65 mov rp=r14 (writes b0); 67 br.call
    # b6=ia64_bad_break (C: r1, r4-r7, r12, r13, r32-r127, b1-b5, p1-p5, p16-p63) returning
    # to ia64_leave_kernel (adds r8-r11). So r3, r8-r11, r14 are written first; r15 (set by
    # the alloc at 52) is never read again; r33 is written at 54 and lies in the frame the
    # handler made (`cover` in SAVE_MIN_COVER, then `alloc r15=ar.pfs,0,0,2,0`). p15 is read
    # at 61; p6-p14 are never read; b0 is rewritten at 65 (its old value is in pt_regs).
    s = sample_site("ivt_save.S", 53, "cr.iim")
    assert s.bank == 1
    assert_free(s, set(), regs("r3 r8-r11 r14 r15 r33"), regs("p6-p14"), {"b0"})


def test_break_fault_bsw1_site_needs_dead_registers_in_both_banks():
    # The `bsw.1` of SAVE_MIN_COVER (reported at line 51) is a BSW_1 site. Its replacement
    # switches banks, so a banked clobber must be dead in bank 0 and in bank 1; bank-1
    # r16-r31 are spilled by SAVE_REST, so no banked register qualifies (before the fix the
    # report offered bank-0 r16/r17). After the cover the frame is empty: no r32+ either.
    # Others as at line 53, except r33 (not yet allocated).
    s = sample_site("ivt_save.S", 51, "bsw.1")
    assert s.op.name == "BSW_1"
    assert_free(s, set(), regs("r3 r8-r11 r14 r15"), regs("p6-p14"), {"b0"})
    assert s.chosen == ["r3", "r8"]


def test_stacked_registers_of_the_interrupted_frame_are_never_free():
    # Line 254 `rsm psr.dfh` (sensitive, no pv op) at the entry of disabled_fp_reg, which
    # branches to dispatch_to_fault_handler; that one covers and allocates 5 outputs and
    # writes out0-out4 (r32-r36) before reading them. The r32-r36 it writes are a new
    # frame: at 254 those names are the interrupted context's stacked registers (kept by
    # `cover` and the RSE), so they are not free (before the fix the report said they were).
    # Bank 0: 255 mov r31=pr and 258 mov r19=25 write before reading; SAVE_MIN writes
    # r16-r29 before reading them; it reads r31 (pr) and r19 (the vector number). r30:
    # `(pUStk) mov r30=ar.bsp` / `(pKStk) mov r30=r0` (complementary) then `shl r30=r30,16`
    # - dead, but the analysis keeps it live (imprecise, as in the nested handler).
    # `mov r31=pr` reads every predicate.
    s = sample_site("ivt_save.S", 254, "rsm psr.dfh")
    assert s.op is None  # reported as a sensitive instruction outside the catalog
    assert_free(s, BANK0, set(), set(), set(), imprecise={"r30"})


def test_nat_consumption_predicated_write_before_a_predicated_branch():
    # Line 279 `(p6) mov cr.ipsr=r16`: 280 `(p7) mov r19=26`, 281 `(p7) br.cond
    # dispatch_to_fault_handler` (reads r19 via SAVE_MIN_COVER_R19, and r31), else 283
    # `mov pr=r31,-1`, rfi. r19 is written under p7 and read only where p7 held: dead.
    # On the dispatch path SAVE_MIN writes r16-r29 first (r30 as above: imprecise); the C
    # call and ia64_leave_kernel read p1-p5 and p16-p63; SAVE_MIN rewrites p2/p3 (pKStk/
    # pUStk) and p15 first. p7 is read at 280/281; p6 is the operand. b0 is read by SAVE_MIN.
    s = sample_site("ivt_save.S", 279, "mov cr.ipsr=r16")
    assert_free(s, BANK0 - {"r16", "r31"}, set(), regs("p2 p3 p8-p15"), set(), imprecise={"r30"})


# ---------------------------------------------------------------- ivt_tight.S


def test_tight_itc_has_no_free_general_register():
    # Line 87 `itc.d r21`: the record stores after it read r16-r20, r22-r25, r29 (90-102),
    # r28/r30 (103-105), r26/r27 (107-111) and r31 (112); r21 is the operand. No predicate is
    # read before `mov pr=r31,-1`. The site is unresolved and says so.
    s = sample_site("ivt_tight.S", 87, "itc.d r21")
    assert_free(s, set(), set(), ALL_P, set())
    assert not s.resolved and "1 GR clobber(s), 0 free" in s.unresolved


def test_tight_iip_read():
    # Line 56 `mov r20=cr.iip`: later reads of r16 (57, 59), r17 (91), r18 (58), r19 (94),
    # r23 (61, 65), r24 (57), r31 (page_fault, 112); written first: r21 (65), r22 (71),
    # r25 (72), r26 (63), r27 (58), r28 (74), r29 (70), r30 (75).
    s = sample_site("ivt_tight.S", 56, "mov r20=cr.iip")
    assert_free(s, regs("r21 r22 r25-r30"), set(), ALL_P, set())


# ---------------------------------------------------------------- the two fixes, on small programs


@pytest.fixture
def small():
    import ivtsrc

    return ivtsrc


def test_bank_switch_site_offers_no_banked_register_live_in_the_other_bank(small):
    # bank-0 r20 is dead after bsw.1 but bank-1 r20 (the interrupted value) reaches rfi: a
    # BSW_1 replacement that wrote "r20" could hit either, so r20 is not free. r2 is written
    # after the switch before any read: free.
    body = "\tmov r31=pr\n\t;;\n\tbsw.1\n\t;;\n\tmov r2=r0\n\t;;\n\tmov pr=r31,-1\n\t;;\n\trfi\n\t;;\n"
    a = small.Analysed(small.ivt(small.vector(0x2C00, "break_fault", body)))
    s = a.site("bsw.1")
    assert not {f"r{n}" for n in range(16, 32)} & set(s.free_gr)
    assert "r2" in s.free_gr


def test_stacked_register_free_only_in_the_handlers_own_frame(small):
    # r32 is written before it is read in both programs; only after cover + alloc does the
    # name mean a register the handler owns.
    own = ("\tcover\n\t;;\n\talloc r2=ar.pfs,0,0,1,0\n\t;;\n\tmov r16=cr.ifa\n\t;;\n"
           "\tmov r32=r0\n\t;;\n\tmov r3=r32\n\t;;\n\trfi\n\t;;\n")
    a = small.Analysed(small.ivt(small.vector(0x2C00, "break_fault", own)))
    assert "r32" in a.site("mov r16=cr.ifa").free_gr
    assert "r33" not in a.site("mov r16=cr.ifa").free_gr  # beyond the allocated frame
    theirs = "\tmov r16=cr.ifa\n\t;;\n\tmov r32=r0\n\t;;\n\tmov r3=r32\n\t;;\n\trfi\n\t;;\n"
    b = small.Analysed(small.ivt(small.vector(0x2C00, "break_fault", theirs)))
    assert "r32" not in b.site("mov r16=cr.ifa").free_gr
