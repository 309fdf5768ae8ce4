/*
 * ivt_pv_bad.S -- ivtx sample that `ivtx check` must REJECT.
 *
 * itlb_miss copied from ivt_pv.S with exactly one clobber changed:
 *
 *	ITC_I(p0, r18, r31)	(line 43; ivt_pv.S passes r19)
 *
 * r31 holds the interrupted context's predicates (saved by "mov r31=pr") and
 * is read again by "mov pr=r31,-1" at line 54, so a pv replacement allowed to
 * clobber r31 would corrupt p1-p63 of the interrupted context on return.
 */

#include <asm/asmmacro.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>
#include <asm/native/inst.h>

	.section .text..ivt,"ax"

	.align 32768
	.global ia64_ivt
ia64_ivt:
	.org ia64_ivt+0x0400
//////////////////////////////////////////////////////////////////////////////
// 0x0400 Entry 1 (64 bundles) Instruction TLB
ENTRY(itlb_miss)
	// PTE through the linear page table; a nested miss resumes at 1:.
	MOV_FROM_IFA(r16)			// faulting bundle address
	mov r31=pr
	;;
	THASH(p0, r17, r16, r18)		// linear page-table slot of its PTE
	mov r29=b0				// lent to nested_dtlb_miss
	movl r30=1f
	;;
1:	ld8 r18=[r17]
	;;
	tbit.z p6,p0=r18,_PAGE_P_BIT
	mov b0=r29
	;;
(p6)	br.cond.spnt page_fault
	ITC_I(p0, r18, r31)
	;;
#ifdef CONFIG_SMP
	dv_serialize_data
	ld8 r19=[r17]				// did a remote purge race the insert?
	mov r20=PAGE_SHIFT<<2
	;;
	cmp.ne p7,p0=r18,r19
	;;
(p7)	ptc.l r16,r20
#endif
	mov pr=r31,-1
	RFI
END(itlb_miss)
