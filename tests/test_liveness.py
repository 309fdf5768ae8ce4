"""Focused liveness tests: each builds a tiny handler and derives the expected free set by hand."""

from ivtsrc import Analysed, ivt, vector

RFI_TAIL = "\trfi\n\t;;\n"


def test_bank_switch_separates_bank0_from_bank1():
    # r17 is written in bank 0 and never read there; after bsw.1 the name r17 means
    # bank-1 r17 (the interrupted context's), so bank-0 r17 is dead at the THASH site.
    body = "\tmov r17=r0\n\t;;\n\tthash r18=r16\n\t;;\n\tbsw.1\n\t;;\n\tadd r19=r17,r0\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x2C00, "break_fault", body)))
    site = a.site("thash")
    assert "r17" in site.free_gr
    # r16 (source) and r18 (destination) are operands of the site; everything else of bank 0 is dead
    assert site.free_gr[:3] == ["r17", "r19", "r20"]
    assert "r17@1" in a.live_after("thash")


def test_without_bank_switch_the_read_keeps_r17_live():
    body = "\tmov r17=r0\n\t;;\n\tthash r18=r16\n\t;;\n\tnop.m 0\n\t;;\n\tadd r19=r17,r0\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x2C00, "break_fault", body)))
    assert "r17" not in a.site("thash").free_gr
    assert "r17@0" in a.live_after("thash")


def test_predicated_write_is_a_may_def():
    # (p6) mov r20=r0 may not execute: the old r20 reaches the add, so r20 is live at the site;
    # the predicated instruction also reads p6.
    body = "\tthash r18=r16\n\t;;\n(p6)\tmov r20=r0\n\t;;\n\tadd r21=r20,r0\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    site = a.site("thash")
    assert "r20" not in site.free_gr
    assert "p6" not in site.free_pr
    assert "r21" in site.free_gr  # written by the add, never read


def test_unpredicated_write_kills():
    body = "\tthash r18=r16\n\t;;\n\tmov r20=r0\n\t;;\n\tadd r21=r20,r0\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r20" in a.site("thash").free_gr


def test_mov_pr_mask_writes_exactly_the_masked_predicates():
    # mask 0x40 selects p6 only (bit i = pi): p6 is overwritten before any read, p7 reaches rfi.
    body = "\tmov r31=pr\n\t;;\n\tthash r18=r16\n\t;;\n\tmov pr=r31,0x40\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    site = a.site("thash")
    assert "p6" in site.free_pr
    assert "p7" not in site.free_pr
    assert "r31" not in site.free_gr  # read by mov pr=


def test_mov_pr_minus_one_restores_p1_to_p63():
    body = "\tmov r31=pr\n\t;;\n\tthash r18=r16\n\t;;\n\tmov pr=r31,-1\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    free = a.site("thash").free_pr
    assert {"p1", "p6", "p7", "p15", "p16", "p63"} <= set(free)


def test_mov_pr_mask_bit16_selects_all_rotating_predicates():
    # mask17 bit 16 is sign-extended over p16-p63 (primer section 1)
    body = "\tmov r31=pr\n\t;;\n\tthash r18=r16\n\t;;\n\tmov pr=r31,0x10000\n\t;;\n" + RFI_TAIL
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    free = set(a.site("thash").free_pr)
    assert {"p16", "p40", "p63"} <= free
    assert not ({"p1", "p6", "p15"} & free)


NESTED_BODY = """\
	mov r16=cr.ifa
	mov r29=b0
	;;
	thash r17=r16
	{ABOVE}
	;;
1:	ld8 r18=[r17]
	;;
	mov b0=r29
	;;
	itc.i r18
	;;
	rfi
	;;
"""


def test_nested_tlb_miss_reads_r31_at_a_continuation_load():
    # The handler never reads r31, but a nested TLB miss on the load at 1: does (saved pr):
    # bank-0 r31 must stay live above the load.
    a = Analysed(ivt(vector(0x0400, "itlb_miss", NESTED_BODY.replace("{ABOVE}", "movl r30=1f"))))
    assert "r31" not in a.site("thash").free_gr
    assert "r31@0" in a.live_after("thash")


def test_without_continuation_r31_is_free():
    a = Analysed(ivt(vector(0x0400, "itlb_miss", NESTED_BODY.replace("{ABOVE}", "mov r30=r0"))))
    assert "r31" in a.site("thash").free_gr


def test_unknown_target_makes_everything_live():
    body = "\tthash r18=r16\n\t;;\n\tbr.sptk.many b6\n\t;;\n"
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    site = a.site("thash")
    assert site.free_gr == [] and site.free_pr == []
    assert not site.resolved
    assert "everything is live" in site.unresolved
    assert a.cfg.unresolved and "b6" in a.cfg.unresolved[0].reason


CONV = """
context = ["r1-r15", "r32-r127", "r16-r31@1", "p1-p63", "b0-b7"]
[rfi]
live_in = ["@context"]
[nested]
live_in = ["r16@0", "r29@0", "r30@0", "r31@0"]
[symbol.my_helper]
live_in = ["@context", "r20@0"]
"""


def test_summary_from_convention_file():
    body = "\tthash r18=r16\n\t;;\n\tbr.sptk.many my_helper\n\t;;\n"
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)), conventions=CONV)
    site = a.site("thash")
    assert "r20" not in site.free_gr  # my_helper reads bank-0 r20
    assert "r21" in site.free_gr
    assert site.resolved


def test_unknown_symbol_without_summary_is_everything_live():
    body = "\tthash r18=r16\n\t;;\n\tbr.sptk.many not_described\n\t;;\n"
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)), conventions=CONV)
    site = a.site("thash")
    assert site.free_gr == []
    assert "not_described" in site.everything_live


def test_default_page_fault_summary_keeps_saved_predicates_in_r31():
    body = "\tmov r31=pr\n\t;;\n\tthash r18=r16\n\t;;\n\tbr.sptk.many page_fault\n\t;;\n"
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    site = a.site("thash")
    assert "r31" not in site.free_gr
    assert "r30" in site.free_gr
    # the predicates are saved in r31, so page_fault does not read them
    assert "p6" in site.free_pr


def test_read_guarded_by_the_predicate_of_an_earlier_write_is_not_upward_exposed():
    # (p3) writes r24 and (p3) reads it with p3 unchanged between: the read never sees the
    # value r24 had at the site, so r24 is free there.
    body = ("\tthash r18=r16\n\t;;\n(p3)\tmov r24=ar.rnat\n\t;;\n\tnop.m 0\n\t;;\n"
            "(p3)\tst8 [r17]=r24\n\t;;\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r24" in a.site("thash").free_gr


def test_between_the_guarded_write_and_its_read_the_value_is_live():
    # the site sits after (p3) mov r24 and before (p3) st8 ...=r24: r24 holds a value that
    # will be read, so it is not free there (the guard only hides the value from BEFORE the write)
    body = ("(p3)\tmov r24=ar.rnat\n\t;;\n\tthash r18=r16\n\t;;\n\tnop.m 0\n\t;;\n"
            "(p3)\tst8 [r17]=r24\n\t;;\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r24" not in a.site("thash").free_gr


def test_branch_on_the_complement_proves_the_guard():
    # cmp.eq p2,p3 makes p3 == !p2; falling through (p2) br proves p3, so the unpredicated read
    # of r22 only sees the (p3) write: r22 is free at the site before that write.
    body = ("\tcmp.eq p2,p3=r0,r17\n\t;;\n\tthash r18=r16\n\t;;\n(p3)\tmov r22=r1\n\t;;\n"
            "(p2)\tbr.cond.sptk.many 1f\n\t;;\n\tmov ar.bspstore=r22\n\t;;\n1:\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r22" in a.site("thash").free_gr


def test_without_the_complement_pair_the_unpredicated_read_keeps_r22():
    body = ("\tcmp.eq.or p2,p3=r0,r17\n\t;;\n\tthash r18=r16\n\t;;\n(p3)\tmov r22=r1\n\t;;\n"
            "(p2)\tbr.cond.sptk.many 1f\n\t;;\n\tmov ar.bspstore=r22\n\t;;\n1:\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r22" not in a.site("thash").free_gr


def test_guard_broken_by_a_predicate_write_keeps_the_read():
    body = ("\tthash r18=r16\n\t;;\n(p3)\tmov r24=ar.rnat\n\t;;\n\tcmp.eq p3,p4=r0,r0\n\t;;\n"
            "(p3)\tst8 [r17]=r24\n\t;;\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r24" not in a.site("thash").free_gr


def test_complementary_predicated_writes_together_kill():
    # primer section 5: (p6) x= / (p7) x= with p6/p7 from one unpredicated normal compare and
    # no write between form a must-def, so the later unpredicated read never sees the old r21
    body = ("\tcmp.eq p6,p7=r0,r17\n\t;;\n\tthash r18=r16\n\t;;\n(p6)\tmov r21=r1\n(p7)\tmov r21=r2\n\t;;\n"
            "\tadd r20=r21,r0\n\t;;\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r21" in a.site("thash").free_gr


def test_non_complementary_predicated_writes_do_not_kill():
    body = ("\tcmp.eq p6,p7=r0,r17\n\tcmp.eq p8,p9=r0,r18\n\t;;\n\tthash r18=r16\n\t;;\n"
            "(p6)\tmov r21=r1\n(p8)\tmov r21=r2\n\t;;\n\tadd r20=r21,r0\n\t;;\n" + RFI_TAIL)
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r21" not in a.site("thash").free_gr


def test_a_taken_branch_on_the_guard_stays_proof_after_the_predicate_is_rewritten():
    # (p7) mov r19=26; (p7) br L: at L, r19 was written (p7 was true at the write). Rewriting p7
    # at L (here a compare; in a transform output the pv calls of a state-save macro) does not
    # undo that, so the unpredicated read at L never sees the value r19 had at the site. Found
    # by fuzzing transform: the input proved r19 free, the output's self-check did not.
    body = ("\tmov r31=pr\n\ttbit.nz p6,p7=r16,3\n\t;;\n\tthash r18=r16\n\t;;\n(p7)\tmov r19=26\n"
            "(p7)\tbr.cond.spnt 2f\n\t;;\n\tmov pr=r31,-1\n\t;;\n\trfi\n\t;;\n"
            "2:\tcmp.eq p7,p0=r0,r0\n\t;;\n\tmov r15=r19\n\tbr.sptk.many page_fault\n\t;;\n")
    a = Analysed(ivt(vector(0x0000, "vhpt_miss", body)))
    assert "r19" in a.site("thash").free_gr
    # without the branch the rewritten guard proves nothing: the read may see the old r19
    unguarded = body.replace("(p7)\tbr.cond.spnt 2f\n\t;;\n\tmov pr=r31,-1\n\t;;\n\trfi\n\t;;\n2:", "\t;;\n")
    assert "r19" not in Analysed(ivt(vector(0x0000, "vhpt_miss", unguarded))).site("thash").free_gr
