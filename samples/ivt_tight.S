/*
 * ivt_tight.S -- ivtx sample: a privileged site with no free bank-0 register.
 *
 * An alternate-DTLB handler that, besides inserting the identity mapping,
 * appends a record of the miss to a small ring in the per-CPU page (pinned
 * by a translation register, so it cannot miss with psr.ic=0).  It is laid
 * out so that at the "itc.d r21" below every bank-0 register r16-r31 holds a
 * value that was produced before it and is read after it:
 *
 *	r16 ifa   r17 isr   r18 ipsr  r19 itir  r20 iip   r21 the PTE
 *	r22 interrupted sp  r23/r24 record pointers       r25 interrupted gp
 *	r26 ring header     r27 next head index           r28 sequence number
 *	r29 interrupted tp  r30 miss count                r31 saved pr
 *
 * so a pv ITC_D at that site has no dead register to offer as its clobber.
 * The site is fixable by restructuring: the CR copies (r16-r20) can be read
 * again after it, and the insert could move below the record stores, which
 * do not depend on it.  Predicates are free (pr is saved in r31).
 */

#include <asm/asmmacro.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>

#define IDMAP_PPN_MASK		(((1 << IA64_MAX_PHYS_BITS) - 1) & ~0xfff)

// The miss ring, inside the pinned per-CPU page: a header (head index,
// sequence number, miss count) and 16 records of 16 slots.
#define MISS_RING		(PERCPU_ADDR + 0x2000)
#define RING_SEQ		8
#define RING_COUNT		16
#define RING_RECORDS		128
#define RING_RECORD_SHIFT	7
#define RING_MASK		15

	.section .text..ivt,"ax"

	.align 32768
	.global ia64_ivt
ia64_ivt:
	.org ia64_ivt+0x1000
//////////////////////////////////////////////////////////////////////////////
// 0x1000 Entry 4 (64 bundles) Alternate Data TLB
ENTRY(alt_dtlb_miss)
	mov r16=cr.ifa				// faulting address
	mov r17=cr.isr
	mov r31=pr
	movl r23=PAGE_KERNEL			// (r23/r24 are temporaries until the
	;;					//  record pointers are computed)
	mov r18=cr.ipsr
	movl r24=IDMAP_PPN_MASK
	;;
	mov r19=cr.itir
	mov r20=cr.iip
	and r24=r24,r16				// physical page number
	extr.u r27=r18,IA64_PSR_CPL0_BIT,2	// psr.cpl (temporary)
	tbit.z p9,p0=r16,61			// region 6: uncached
	;;
(p9)	dep r23=-1,r23,4,1
	cmp.ne p8,p0=r0,r27			// only the kernel may touch regions 6/7
	movl r26=MISS_RING
	;;
	or r21=r23,r24				// the identity PTE
(p8)	br.cond.spnt page_fault
	;;
	ld8 r27=[r26]				// ring head index
	adds r24=RING_SEQ,r26
	adds r29=RING_COUNT,r26
	mov r22=r12				// the interrupted sp ...
	mov r25=r1				// ... and gp, for the record
	;;
	ld8 r28=[r24]				// sequence number
	ld8 r30=[r29]				// misses so far
	shl r23=r27,RING_RECORD_SHIFT
	adds r27=1,r27
	mov r29=r13				// the interrupted tp
	;;
	add r23=r23,r26
	and r27=RING_MASK,r27			// the head after this record
	;;
	adds r23=RING_RECORDS,r23		// &record[head], even slots
	;;
	adds r24=8,r23				// odd slots
	;;
	itc.d r21				// <-- every bank-0 register is live here
	;;
	dv_serialize_data			// the record page is pinned: not this entry
	st8 [r23]=r16,16
	st8 [r24]=r17,16
	;;
	st8 [r23]=r18,16
	st8 [r24]=r19,16
	;;
	st8 [r23]=r20,16
	st8 [r24]=r21,16
	;;
	st8 [r23]=r22,16
	st8 [r24]=r25,16
	;;
	st8 [r23]=r29
	st8 [r24]=r28
	adds r28=1,r28
	adds r30=1,r30
	;;
	st8 [r26]=r27,RING_SEQ			// publish the new head ...
	;;
	st8 [r26]=r28,RING_COUNT-RING_SEQ	// ... the next sequence number ...
	;;
	st8 [r26]=r30				// ... and the count
	mov pr=r31,-1
	;;
	rfi
END(alt_dtlb_miss)
