/*
 * ivt_pv.S -- ivtx sample: a small IVT already annotated with pv_ops calls.
 *
 * Every privileged operation is written as a Linux-style pv_ops macro call
 * (MOV_FROM_IFA, THASH, ITC_D, BSW_1, RFI ...) whose clobber arguments name
 * registers that are dead at that call: not an operand of the call and not
 * read again on any path before being written.  `ivtx check` must accept it.
 * The macros are NOT defined here: they come from <asm/native/inst.h>, which
 * ivtx reports missing (so the calls stay pv-op sites) and which the test
 * suite supplies from tests/fixtures/native_pv (so gas sees native code).
 *
 * Clobbers chosen, and why each one is dead (p0 = unpredicated):
 *   itlb_miss	THASH(p0,r17,r16,r18)	r18 next written by the load at 1:
 *		ITC_I(p0,r18,r19)	r19 only written (SMP) before rfi
 *   dtlb_miss	ITC_D(p7,r18,r19)	r19 written (SMP) before any read
 *   alt_dtlb	THASH(p8,r17,r16,r23)	dtlb_walk never reads r23; the fall-
 *					through writes it (extr.u) first
 *		MOV_TO_IPSR(p6,r21,r22)	r22 not read after
 *		ITC_D(p7,r19,r18)	r18 last read one group earlier
 *   dirty_bit	THASH(p0,r17,r16,r18)	r18 next written by the load at 1:
 *		ITC_D(p6,r25,r26)	(SMP) r26 not read after the compare
 *		ITC_D(p0,r18,r16)	(UP) r16 not read before rfi
 *   dispatch	BSW_1(r3,r14)		r3 rewritten by adds, r14 by alloc
 *		SSM_PSR_IC_...(r3,r8)	r3 rewritten by adds, r8 in SAVE_REST
 *		SSM_PSR_I(p15,p14,r8)	p14 never read again; r8 as above
 *   speculation MOV_TO_IIP(r17,r16)	r16 not read after
 *		MOV_TO_IPSR(p0,r18,r19)	r19 not read after
 */

#include <asm/asmmacro.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>
#include <asm/native/inst.h>

#define PSR_DEFAULT_BITS	0

// Physical page-number bits of a kernel identity mapping.
#define IDMAP_PPN_MASK		(((1 << IA64_MAX_PHYS_BITS) - 1) & ~0xfff)

// sample_minstate.h performs these through pv ops in this file; BSW_1's
// clobbers are checked at the one place MINSTATE_SAVE is used below.
#define MINSTATE_GET_IPSR(reg)	MOV_FROM_IPSR(p0, reg)
#define MINSTATE_GET_IIP(reg)	MOV_FROM_IIP(reg)
#define MINSTATE_BSW_1		BSW_1(r3, r14)
#include "sample_minstate.h"

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
	ITC_I(p0, r18, r19)
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

	.org ia64_ivt+0x0800
//////////////////////////////////////////////////////////////////////////////
// 0x0800 Entry 2 (64 bundles) Data TLB
ENTRY(dtlb_miss)
	MOV_FROM_IFA(r16)
	MOV_FROM_IHA(r17)			// where the walker looked for the PTE
	mov r31=pr
	;;
dtlb_walk:					// alt_dtlb_miss comes here without a VHPT
	mov r29=b0
	movl r30=1f
	;;
1:	ld8 r18=[r17]
	;;
	tbit.nz p7,p6=r18,_PAGE_P_BIT		// p7: present
	mov b0=r29
	;;
	ITC_D(p7, r18, r19)
(p6)	br.cond.spnt page_fault
	;;
#ifdef CONFIG_SMP
	dv_serialize_data
	ld8 r20=[r17]
	mov r19=PAGE_SHIFT<<2
	;;
	cmp.ne p7,p0=r20,r18
	;;
(p7)	ptc.l r16,r19
#endif
	mov pr=r31,-1
	RFI
END(dtlb_miss)

	.org ia64_ivt+0x1000
//////////////////////////////////////////////////////////////////////////////
// 0x1000 Entry 4 (64 bundles) Alternate Data TLB
ENTRY(alt_dtlb_miss)
	// Identity mapping for regions 6/7; speculative loads defer instead.
	MOV_FROM_IFA(r16)
	MOV_FROM_ISR(r20)
	movl r18=PAGE_KERNEL
	mov r31=pr
	;;
	MOV_FROM_IPSR(p0, r21)
	movl r19=IDMAP_PPN_MASK
	tbit.z p9,p0=r16,61			// region 6: uncached
	;;
#ifdef CONFIG_DISABLE_VHPT
	shr.u r22=r16,61
	;;
	cmp.gtu p8,p0=6,r22			// a region with page tables?
	;;
	THASH(p8, r17, r16, r23)
	;;
(p8)	br.cond.dptk dtlb_walk
#endif
	extr.u r23=r21,IA64_PSR_CPL0_BIT,2	// psr.cpl at the access
	and r19=r19,r16
	tbit.nz p6,p7=r20,IA64_ISR_SP_BIT	// speculative?
(p9)	dep r18=-1,r18,4,1
	;;
	cmp.ne p8,p0=r0,r23
	or r19=r19,r18				// the identity PTE
	dep r21=-1,r21,IA64_PSR_ED_BIT,1
	;;
(p8)	br.cond.spnt page_fault
	MOV_TO_IPSR(p6, r21, r22)
	ITC_D(p7, r19, r18)
	;;
	mov pr=r31,-1
	RFI
END(alt_dtlb_miss)

	.org ia64_ivt+0x2000
//////////////////////////////////////////////////////////////////////////////
// 0x2000 Entry 8 (64 bundles) Dirty-Bit
ENTRY(dirty_bit)
	MOV_FROM_IFA(r16)
	movl r30=1f
	;;
	THASH(p0, r17, r16, r18)
	mov r31=pr
	mov r29=b0
#ifdef CONFIG_SMP
	mov r28=ar.ccv
	;;
1:	ld8 r18=[r17]
	;;
	or r25=_PAGE_D|_PAGE_A,r18
	mov ar.ccv=r18
	tbit.nz p6,p7=r18,_PAGE_P_BIT
	;;
(p6)	cmpxchg8.acq r26=[r17],r25,ar.ccv
	mov r24=PAGE_SHIFT<<2
	;;
(p6)	cmp.eq p6,p7=r26,r18
	;;
	ITC_D(p6, r25, r26)
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
	or r18=_PAGE_D|_PAGE_A,r18
	mov b0=r29
	;;
	st8 [r17]=r18
	ITC_D(p0, r18, r16)
#endif
	;;
	mov pr=r31,-1
	RFI
END(dirty_bit)

	.org ia64_ivt+0x2c00
//////////////////////////////////////////////////////////////////////////////
// 0x2c00 Entry 11 (64 bundles) Break Instruction
ENTRY(break_fault)
	mov r31=pr
	mov r19=11				// C reads cr.iim from its arguments
	;;
	br.sptk.many dispatch_to_fault_handler
END(break_fault)

	.org ia64_ivt+0x3400
//////////////////////////////////////////////////////////////////////////////
// 0x3400 Entry 13 (64 bundles) Reserved
	mov r31=pr
	mov r19=13
	;;
	br.sptk.many dispatch_to_fault_handler

	// Parked in the slack of entry 13.
	//	in:	r19 = vector number, r31 = pr, psr.ic = 0, bank 0
	//	C:	ia64_fault(vector, isr, ifa, iim, itir) on pt_regs
ENTRY(dispatch_to_fault_handler)
	MINSTATE_SAVE(COVER, mov r21=cr.ifs, mov r15=r19)	// r15 = vector afterwards
	alloc r14=ar.pfs,0,0,5,0
	MOV_FROM_ISR(out1)
	MOV_FROM_IFA(out2)
	MOV_FROM_IIM(out3)
	MOV_FROM_ITIR(out4)
	;;
	SSM_PSR_IC_AND_DEFAULT_BITS_AND_SRLZ_I(r3, r8)
	;;
	mov out0=r15
	adds r3=PTD(R17, R16),r2
	;;
	SSM_PSR_I(p15, p14, r8)			// interrupts as they were
	movl r14=ia64_leave_kernel
	;;
	SAVE_REST
	mov rp=r14
	;;
	br.call.sptk.many b6=ia64_fault
END(dispatch_to_fault_handler)

	.org ia64_ivt+0x5000
//////////////////////////////////////////////////////////////////////////////
// 0x5000 Entry 20 (16 bundles) Page Not Present
ENTRY(page_not_present)
	MOV_FROM_IFA(r16)
	RSM_PSR_DT				// page_fault runs physical at first
	mov r31=pr
	;;
	srlz.d
	br.sptk.many page_fault
END(page_not_present)

	.org ia64_ivt+0x5400
//////////////////////////////////////////////////////////////////////////////
// 0x5400 Entry 24 (16 bundles) General Exception
ENTRY(general_exception)
	mov r31=pr
	mov r19=24
	;;
	br.sptk.many dispatch_to_fault_handler
END(general_exception)

	.org ia64_ivt+0x5700
//////////////////////////////////////////////////////////////////////////////
// 0x5700 Entry 27 (16 bundles) Speculation
ENTRY(speculation_vector)
	// Emulated chk recovery branch; predicates and b0 are never touched.
	MOV_FROM_IIM(r16)			// 21-bit bundle displacement
	MOV_FROM_IIP(r17)
	MOV_FROM_IPSR(p0, r18)
	;;
	extr r16=r16,0,21
	dep r18=0,r18,41,2			// restart at slot 0
	;;
	shladd r17=r16,4,r17
	;;
	MOV_TO_IIP(r17, r16)
	MOV_TO_IPSR(p0, r18, r19)
	;;
	RFI
END(speculation_vector)
