/*
 * ivt_tlb.S -- ivtx sample: the TLB half of an IA-64 interruption vector table.
 *
 * Written for ivtx in the style of a Linux-era IVT (GNU as, -x explicit stops).
 * It covers the vectors from 0x0000 to 0x2800: the VHPT-miss page-table walker,
 * the instruction/data TLB misses with the nested-miss continuation, the
 * alternate (identity-mapping) misses, the nested DTLB miss itself, and the
 * dirty-bit / access-bit updaters.  Everything that cannot be handled here
 * goes to page_fault (or dispatch_to_fault_handler), both outside this file.
 *
 * Register discipline: at entry psr.ic=0 and psr.bn=0; bank-0 r16-r31 are
 * ours, everything else belongs to the interrupted context.  Predicates are
 * used only after "mov r31=pr" and given back with "mov pr=r31,-1"; b0 only
 * after "mov r29=b0".  nested_dtlb_miss shares bank 0 with the handler whose
 * load it interrupts: it reads r16 (address), r29 (saved b0), r30
 * (continuation) and r31 (saved pr), and writes only b0, r17-r19, r21, r22,
 * p6 and p7 -- so those must not hold anything live across a "1:" load.
 */

#include <asm/asmmacro.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>

// Physical page-number bits a kernel identity mapping may carry (all
// implemented physical address bits, 4 KB granule).
#define IDMAP_PPN_MASK	(((1 << IA64_MAX_PHYS_BITS) - 1) & ~0xfff)

// Vectors without a handler of their own: hand the vector number to the
// generic C dispatcher (predicates travel in r31, the number in r19).
#define FAULT(n)						\
	mov r31=pr;						\
	mov r19=n;;						\
	br.sptk.many dispatch_to_fault_handler

	.section .text..ivt,"ax"

	.align 32768			// IVA ignores its 15 low bits
	.global ia64_ivt
ia64_ivt:
//////////////////////////////////////////////////////////////////////////////
// 0x0000 Entry 0 (64 bundles) VHPT Translation
ENTRY(vhpt_miss)
	// The hardware walker itself missed in the TLB while fetching the VHPT
	// entry for some other ("original") miss.  Walk the page table for the
	// original address with physical data accesses, insert its translation
	// when the PTE is present, then insert a translation for the page-table
	// page the walker wanted, so that the next miss nearby is served by the
	// hardware again.  Bad addresses and empty levels go to page_fault.
	mov r16=cr.ifa				// the original miss address
#ifdef CONFIG_HUGETLB_PAGE
	mov r25=cr.itir				// its page size is in itir.ps
	mov r24=PAGE_SHIFT
#endif
	;;
	thash r20=r16				// VHPT slot whose page has no translation
	rsm psr.dt				// data accesses are physical until rfi
	mov r31=pr				// p1-p63 belong to the interrupted context
	;;
{ .mii
	mov r19=IA64_KR(PT_BASE)		// M: root of the current user page table
	shr.u r17=r16,61			// I: region number
	extr.u r22=r16,0,61			// I: offset inside the region
	;;
}
#ifdef CONFIG_HUGETLB_PAGE
	extr.u r27=r25,2,6			// ps of the faulting region
	;;
	cmp.ne p8,p0=r24,r27			// bigger than a base page?
	sub r27=r27,r24				// log2(huge page / base page)
	;;
(p8)	shr.u r22=r22,r27			// huge PTEs live at the scaled-down offset
(p8)	dep r25=r24,r25,2,6			// while the table page is a base page
	;;
#endif
	cmp.eq p6,p7=5,r17			// region 5 has the kernel's own root
	shr.u r18=r22,PGDIR_SHIFT		// pgd index
	;;
	srlz.d					// the loads below must see psr.dt=0
	LOAD_PHYSICAL(p6, r19, swapper_pg_dir)	// kernel: patched to a physical address
(p7)	dep r17=r17,r19,(PAGE_SHIFT-3),3	// user: each region owns an eighth of the pgd
	.pred.rel "mutex", p6, p7
(p6)	shr.u r23=r22,PGDIR_SHIFT+PAGE_SHIFT-3	// offset bits beyond the table's reach
(p7)	shr.u r23=r22,PGDIR_SHIFT+PAGE_SHIFT-6	// (a user region reaches 3 bits less)
	;;
(p6)	dep r17=r18,r19,3,(PAGE_SHIFT-3)	// &pgd[i], kernel
(p7)	dep r17=r18,r17,3,(PAGE_SHIFT-6)	// &pgd[i], user
	cmp.eq p7,p6=r0,r23			// from here on p6 means "give up"
	shr.u r18=r22,PMD_SHIFT			// pmd index
	;;
(p7)	ld8 r17=[r17]				// pgd entry
	;;
(p7)	cmp.eq p6,p7=r17,r0			// nothing below this pgd slot?
	dep r28=r18,r17,3,(PAGE_SHIFT-3)	// &pmd[i]
	shr.u r18=r22,PAGE_SHIFT		// pte index
	;;
(p7)	ld8 r26=[r28]				// pmd entry
	mov r19=cr.isr				// was the original miss a fetch?
	;;
(p7)	cmp.eq.or.andcm p6,p7=r26,r0		// no PTE page?
	dep r21=r18,r26,3,(PAGE_SHIFT-3)	// &pte[i]
	dep r23=0,r26,0,PAGE_SHIFT		// physical address of the PTE page
	;;
(p7)	ld8 r18=[r21]				// the PTE
	tbit.nz p10,p11=r19,IA64_ISR_X_BIT	// p10: fetch, p11: data access
	adds r24=__DIRTY_BITS_NO_ED|_PAGE_PL_0|_PAGE_AR_RW,r23	// PTE for the table page
	;;
(p7)	tbit.z p6,p7=r18,_PAGE_P_BIT		// original page not present?
	;;
(p6)	cmp.ne.and p10,p11=r0,r0		// giving up: insert nothing
	;;
	.pred.rel "mutex", p10, p11
(p10)	itc.i r18				// the original miss was a fetch ...
(p11)	itc.d r18				// ... or a data access
(p6)	br.cond.spnt page_fault
	mov cr.ifa=r20				// next insertion: the VHPT page itself
#ifdef CONFIG_HUGETLB_PAGE
(p8)	mov cr.itir=r25				// at base page size
#endif
	;;
	itc.d r24				// map the page-table page at its VHPT address
	;;
#ifdef CONFIG_SMP
	dv_serialize_data			// the inserts do not feed the loads below
	// A ptc.g from another CPU may have hit between the walk and the
	// inserts.  Look at the pmd and PTE again and purge both translations
	// if either one moved; the access then simply misses again.
	ld8 r29=[r28]				// pmd entry, second look
	ld8 r30=[r21]				// PTE, second look
	cmp.ne p7,p0=r0,r0			// p7: "purge", false so far
	;;
	cmp.ne.or p7,p0=r29,r26
	cmp.ne.or p7,p0=r30,r18
	mov r27=PAGE_SHIFT<<2			// purge size operand
	;;
(p7)	ptc.l r16,r27				// the original translation
	;;
(p7)	ptc.l r20,r27				// the page-table page translation
	;;
#endif
	mov pr=r31,-1				// give the predicates back
	rfi
END(vhpt_miss)

	.org ia64_ivt+0x0400
//////////////////////////////////////////////////////////////////////////////
// 0x0400 Entry 1 (64 bundles) Instruction TLB
ENTRY(itlb_miss)
	// An instruction fetch missed and the hardware walker could not supply
	// the entry.  Read the PTE through the linear page table (cr.iha).  If
	// that read misses too, nested_dtlb_miss walks the table, leaves the
	// PTE's physical address in r17 with psr.dt off, and resumes at 1:.
	mov r16=cr.ifa				// faulting bundle address
	mov r17=cr.iha				// linear page-table slot of its PTE
	mov r31=pr
	;;
itlb_walk:					// alt_itlb_miss enters here without a VHPT
	mov r29=b0				// the nested-miss return uses b0
	movl r30=1f				// ... and comes back to this point
	;;
1:	ld8 r18=[r17]				// the PTE; may take a nested miss
	;;
	tbit.z p6,p0=r18,_PAGE_P_BIT		// not present: the C fault path decides
	mov b0=r29
	;;
(p6)	br.cond.spnt page_fault
	itc.i r18
	;;
#ifdef CONFIG_SMP
	dv_serialize_data
	// Did a remote purge race the insert?  Then drop it and let it miss again.
	ld8 r19=[r17]; mov r20=PAGE_SHIFT<<2;; cmp.ne p7,p0=r19,r18;;
(p7)	ptc.l r16,r20
#endif
	mov pr=r31,-1
	rfi
END(itlb_miss)

	.org ia64_ivt+0x0800
//////////////////////////////////////////////////////////////////////////////
// 0x0800 Entry 2 (64 bundles) Data TLB
ENTRY(dtlb_miss)
	// The data-side twin of itlb_miss, with the same continuation contract.
	mov r31=pr
	mov r16=cr.ifa				// faulting data address
	mov r17=cr.iha				// where the walker looked for the PTE
	;;
dtlb_walk:					// alt_dtlb_miss enters here without a VHPT
	movl r30=1f				// resume point after a nested miss
	mov r29=b0
	;;
1:	ld8 r18=[r17]
	;;
	tbit.nz p7,p6=r18,_PAGE_P_BIT		// p7: present
	mov b0=r29				// no nested miss can happen past 1:
	;;
(p7)	itc.d r18
(p6)	br.cond.spnt page_fault
	;;
#ifdef CONFIG_SMP
	dv_serialize_data
	ld8 r20=[r17]				// PTE once more
	mov r19=PAGE_SHIFT<<2
	;;
	cmp.ne p7,p0=r20,r18			// changed under us?
	;;
(p7)	ptc.l r16,r19
#endif
	mov pr=r31,-1
	;;
	rfi
END(dtlb_miss)

	.org ia64_ivt+0x0c00
//////////////////////////////////////////////////////////////////////////////
// 0x0c00 Entry 3 (64 bundles) Alternate Instruction TLB
ENTRY(alt_itlb_miss)
	// A fetch from a region whose VHPT walk is disabled: the identity-mapped
	// kernel regions 6 (uncached) and 7 (cached).  Build the PTE from the
	// address itself.  Only privilege level 0 may fetch from there.
	mov r16=cr.ifa
	mov r31=pr
	movl r18=PAGE_KERNEL			// attributes of a kernel identity mapping
	;;
	mov r20=cr.ipsr				// privilege level of the fetch
	movl r19=IDMAP_PPN_MASK
	tbit.z p9,p0=r16,61			// region 6 has bit 61 clear
	;;
#ifdef CONFIG_DISABLE_VHPT
	// Without a VHPT every region comes here: regions 0-5 still have page
	// tables, so hand them to the ITLB path with a computed PTE address.
	shr.u r21=r16,61
	;;
	cmp.gtu p8,p0=6,r21			// a page-table region?
	;;
(p8)	thash r17=r16				// the linear page-table slot
	;;
(p8)	br.cond.dptk itlb_walk
#endif
	extr.u r21=r20,IA64_PSR_CPL0_BIT,2	// psr.cpl at the fetch
	and r19=r19,r16				// physical page number = the address bits
(p9)	dep r18=-1,r18,4,1			// region 6: memory attribute UC
	;;
	cmp.ne p8,p0=r0,r21			// user code fetching kernel space?
	or r19=r19,r18				// the identity PTE
	;;
(p8)	br.cond.spnt page_fault
	itc.i r19
	;;
	mov pr=r31,-1
	rfi
END(alt_itlb_miss)

	.org ia64_ivt+0x1000
//////////////////////////////////////////////////////////////////////////////
// 0x1000 Entry 4 (64 bundles) Alternate Data TLB
ENTRY(alt_dtlb_miss)
	// Data-side identity mapping.  A speculative load (isr.sp) gets no
	// translation: set ipsr.ed so that it defers, and return.
	mov r16=cr.ifa
	mov r20=cr.isr
	movl r18=PAGE_KERNEL
	mov r31=pr
	;;
	mov r21=cr.ipsr
	movl r19=IDMAP_PPN_MASK
	tbit.z p9,p0=r16,61			// region 6: uncached
	;;
#ifdef CONFIG_DISABLE_VHPT
	shr.u r22=r16,61
	;;
	cmp.gtu p8,p0=6,r22			// a page-table region?
	;;
(p8)	thash r17=r16
	;;
(p8)	br.cond.dptk dtlb_walk
#endif
	extr.u r23=r21,IA64_PSR_CPL0_BIT,2	// psr.cpl at the access
	and r19=r19,r16
	tbit.nz p6,p7=r20,IA64_ISR_SP_BIT	// speculative?
(p9)	dep r18=-1,r18,4,1
	;;
	cmp.ne p8,p0=r0,r23			// user access to kernel space?
	or r19=r19,r18				// the identity PTE
	dep r21=-1,r21,IA64_PSR_ED_BIT,1	// ipsr with ed set, for the deferral
	;;
(p8)	br.cond.spnt page_fault
(p6)	mov cr.ipsr=r21				// speculation: defer instead of mapping
(p7)	itc.d r19
	;;
	mov pr=r31,-1
	rfi
END(alt_dtlb_miss)

	.org ia64_ivt+0x1400
//////////////////////////////////////////////////////////////////////////////
// 0x1400 Entry 5 (64 bundles) Data Nested TLB
ENTRY(nested_dtlb_miss)
	// We get here (psr.ic=0) when a handler's load through the linear page
	// table missed.  Bank 0 is shared with that handler, so the contract is
	// strict:
	//	in:	r16 = address whose PTE is wanted
	//		r29 = the handler's saved b0, r31 = its saved pr (kept)
	//		r30 = continuation (the "1:" of the interrupted load)
	//	out:	r17 = physical address of the PTE, psr.dt left off
	//	writes:	b0, r17, r18, r19, r21, r22, p6, p7 -- nothing else
	rsm psr.dt				// walk with physical data accesses
	mov r19=IA64_KR(PT_BASE)
	shr.u r17=r16,61			// region number
	extr.u r22=r16,0,61			// offset inside the region
	;;
	cmp.eq p6,p7=5,r17			// kernel region?
	shr.u r18=r22,PGDIR_SHIFT		// pgd index
	;;
	srlz.d
	LOAD_PHYSICAL(p6, r19, swapper_pg_dir)
(p7)	dep r17=r17,r19,(PAGE_SHIFT-3),3
	.pred.rel "mutex", p6, p7
(p6)	shr.u r21=r22,PGDIR_SHIFT+PAGE_SHIFT-3	// must be 0 for a mappable address
(p7)	shr.u r21=r22,PGDIR_SHIFT+PAGE_SHIFT-6
	;;
(p6)	dep r17=r18,r19,3,(PAGE_SHIFT-3)	// &pgd[i]
(p7)	dep r17=r18,r17,3,(PAGE_SHIFT-6)
	cmp.eq p7,p6=r0,r21			// p6 from here on: no PTE to be had
	shr.u r18=r22,PMD_SHIFT
	;;
(p7)	ld8 r17=[r17]				// pgd entry
	shr.u r19=r22,PAGE_SHIFT		// pte index
	;;
(p7)	cmp.eq p6,p7=r17,r0
	dep r17=r18,r17,3,(PAGE_SHIFT-3)	// &pmd[i]
	;;
(p7)	ld8 r17=[r17]				// pmd entry
	;;
(p7)	cmp.eq.or.andcm p6,p7=r17,r0
	dep r17=r19,r17,3,(PAGE_SHIFT-3)	// &pte[i], physical
	;;
(p6)	br.cond.spnt page_fault			// r16/r31 are what page_fault expects
	mov b0=r30
	br.sptk.many b0				// back to the interrupted load
END(nested_dtlb_miss)

	.org ia64_ivt+0x1800
//////////////////////////////////////////////////////////////////////////////
// 0x1800 Entry 6 (64 bundles) Instruction Key Miss
ENTRY(ikey_miss)
	FAULT(6)
END(ikey_miss)

	.org ia64_ivt+0x1c00
//////////////////////////////////////////////////////////////////////////////
// 0x1c00 Entry 7 (64 bundles) Data Key Miss
ENTRY(dkey_miss)
	FAULT(7)
END(dkey_miss)

	.org ia64_ivt+0x2000
//////////////////////////////////////////////////////////////////////////////
// 0x2000 Entry 8 (64 bundles) Dirty-Bit
ENTRY(dirty_bit)
	// A store hit a page whose translation has D clear.  Set D (and A) in
	// the PTE, reached through the linear page table (a nested miss there
	// resumes at 1:), and insert the updated entry.  On SMP another CPU may
	// update the same PTE, so publish with cmpxchg against the value read.
	mov r16=cr.ifa				// the store's address
	movl r30=1f				// nested-miss continuation
	;;
	thash r17=r16				// linear page-table address of the PTE
	mov r31=pr
	mov r29=b0				// b0 is lent to a nested miss
#ifdef CONFIG_SMP
	mov r28=ar.ccv				// ar.ccv belongs to the interrupted context
	;;
1:	ld8 r18=[r17]
	;;
	or r25=_PAGE_D|_PAGE_A,r18		// the entry we want
	mov ar.ccv=r18				// ... provided it still reads like this
	tbit.nz p6,p7=r18,_PAGE_P_BIT		// only a present PTE is updated
	;;
(p6)	cmpxchg8.acq r26=[r17],r25,ar.ccv
	mov r24=PAGE_SHIFT<<2
	;;
(p6)	cmp.eq p6,p7=r26,r18			// did our update land?
	;;
(p6)	itc.d r25
	;;
	dv_serialize_data
	ld8 r19=[r17]				// still what we inserted?
	;;
(p6)	cmp.ne.unc p7,p0=r19,r25		// p7 only if we inserted and it moved
	mov b0=r29
	;;
(p7)	ptc.l r16,r24
	mov ar.ccv=r28
#else
	;;
1:	ld8 r18=[r17]
	;;
	or r18=_PAGE_D|_PAGE_A,r18
	mov b0=r29
	;;
	st8 [r17]=r18				// no other CPU: a plain store will do
	itc.d r18
#endif
	;;
	mov pr=r31,-1
	rfi
END(dirty_bit)

	.org ia64_ivt+0x2400
//////////////////////////////////////////////////////////////////////////////
// 0x2400 Entry 9 (64 bundles) Instruction Access-Bit
ENTRY(iaccess_bit)
	// Same as dirty_bit, for a fetch from a page whose A bit is clear.
	mov r16=cr.ifa
	mov r31=pr
	movl r30=1f
	;;
	thash r17=r16
	mov r29=b0
#ifdef CONFIG_SMP
	mov r28=ar.ccv
	;;
1:	ld8 r18=[r17]
	;;
	mov ar.ccv=r18
	or r25=_PAGE_A,r18			// A on, everything else as read
	tbit.nz p6,p7=r18,_PAGE_P_BIT
	;;
(p6)	cmpxchg8.acq r26=[r17],r25,ar.ccv
	mov r24=PAGE_SHIFT<<2
	;;
(p6)	cmp.eq p6,p7=r26,r18
	;;
(p6)	itc.i r25
	;;
	dv_serialize_data
	ld8 r19=[r17]
	;;
(p6)	cmp.ne.unc p7,p0=r19,r25
	mov b0=r29
	;;
(p7)	ptc.l r16,r24
	mov ar.ccv=r28
#else
	;;
1:	ld8 r18=[r17]
	;;
	or r18=_PAGE_A,r18
	mov b0=r29
	;;
	st8 [r17]=r18
	itc.i r18
#endif
	;;
	mov pr=r31,-1
	rfi
END(iaccess_bit)

	.org ia64_ivt+0x2800
//////////////////////////////////////////////////////////////////////////////
// 0x2800 Entry 10 (64 bundles) Data Access-Bit
ENTRY(daccess_bit)
	// Same again for a data access to a page whose A bit is clear.
	mov r16=cr.ifa
	movl r30=1f
	;;
	thash r17=r16
	mov r29=b0
	mov r31=pr
#ifdef CONFIG_SMP
	mov r28=ar.ccv
	;;
1:	ld8 r18=[r17]
	;;
	tbit.nz p6,p7=r18,_PAGE_P_BIT
	or r25=_PAGE_A,r18
	mov ar.ccv=r18
	;;
(p6)	cmpxchg8.acq r26=[r17],r25,ar.ccv
	mov r24=PAGE_SHIFT<<2
	;;
(p6)	cmp.eq p6,p7=r26,r18
	;;
(p6)	itc.d r25
	;;
	dv_serialize_data
	ld8 r19=[r17]
	;;
(p6)	cmp.ne.unc p7,p0=r19,r25
	mov b0=r29
	;;
(p7)	ptc.l r16,r24
	mov ar.ccv=r28
#else
	;;
1:	ld8 r18=[r17]
	;;
	or r18=_PAGE_A,r18
	mov b0=r29
	;;
	st8 [r17]=r18
	itc.d r18
#endif
	;;
	mov pr=r31,-1
	rfi
END(daccess_bit)
