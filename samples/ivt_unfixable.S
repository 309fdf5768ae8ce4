/*
 * ivt_unfixable.S -- ivtx sample: a privileged site that no restructuring can
 * give a clobber register.  ivtx must report it unresolved, not emit code.
 *
 * A constructed case (not a real kernel policy): a page-not-present handler
 * that fills the faulting page from a staging mailbox in the pinned per-CPU
 * page.  The mailbox holds eight (address, value) pairs; the last value is
 * the PTE to insert for cr.ifa and its address is where the page records it.
 * The handler maps the page, then performs the eight stores through the new
 * translation, marks the mailbox empty and returns.
 *
 * Why the "itc.d r31" site cannot be fixed (a pv ITC_D needs one GR clobber):
 *  - No free register of any kind.  All of bank-0 r16-r31 hold mailbox words
 *    loaded before the site and stored after it.  The handler never saves pr
 *    or b0 (it needs no predicate and no branch), so p1-p63 and b0-b7 still
 *    hold the interrupted context, as do r1-r15, bank-1 r16-r31 and the ARs.
 *  - Nothing to rename into: renaming needs a register free over the value's
 *    whole live range; there is none.
 *  - Nothing to rematerialize: every live value is a memory word, not a
 *    constant and not an interruption CR (the movl'd mailbox pointers are
 *    overwritten by the last loads, before the site).
 *  - The site cannot move: it reads r31, written by the last load group, and
 *    the stores after it go through the translation it inserts (a DTC RAW,
 *    hence dv_serialize_data).  No load can move below it with a net gain:
 *    the loads walk two post-incremented pointers, so delaying any of them
 *    keeps its pointer live at the site instead of its value.
 *  - No save/restore: that needs a register free on both sides, or memory;
 *    with psr.ic=0 emitted code may only touch memory the convention pins
 *    (the pv_ops table), not a spill slot of its own.
 *  - No room: the handler fills its 16-bundle slot exactly (0x5000-0x50ff),
 *    and an out-of-line stub would still need the clobber it is missing.
 */

#include <asm/asmmacro.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>

// Staging mailbox in the pinned per-CPU page: 16 words, then a busy word.
#define STAGE_MAILBOX		(PERCPU_ADDR + 0x3000)
#define STAGE_BUSY		(STAGE_MAILBOX + 128)

	.section .text..ivt,"ax"

	.align 32768
	.global ia64_ivt
ia64_ivt:
	.org ia64_ivt+0x5000
//////////////////////////////////////////////////////////////////////////////
// 0x5000 Entry 20 (16 bundles) Page Not Present
ENTRY(page_not_present)
	movl r30=STAGE_MAILBOX			// even words: addresses
	movl r31=STAGE_MAILBOX+8		// odd words: values
	;;
	ld8 r16=[r30],16
	ld8 r17=[r31],16
	;;
	ld8 r18=[r30],16
	ld8 r19=[r31],16
	;;
	ld8 r20=[r30],16
	ld8 r21=[r31],16
	;;
	ld8 r22=[r30],16
	ld8 r23=[r31],16
	;;
	ld8 r24=[r30],16
	ld8 r25=[r31],16
	;;
	ld8 r26=[r30],16
	ld8 r27=[r31],16
	;;
	ld8 r28=[r30],16
	ld8 r29=[r31],16
	;;
	ld8 r30=[r30]				// where the PTE is recorded
	ld8 r31=[r31]				// the PTE itself
	;;
	itc.d r31				// <-- unfixable: nothing is free here
	;;
	dv_serialize_data			// the stores below need this entry
	st8 [r16]=r17
	st8 [r18]=r19
	;;
	st8 [r20]=r21
	st8 [r22]=r23
	;;
	st8 [r24]=r25
	st8 [r26]=r27
	;;
	st8 [r28]=r29
	st8 [r30]=r31
	movl r16=STAGE_BUSY			// registers are free again from here
	;;
	st8 [r16]=r0				// mailbox consumed
	rfi
	;;
END(page_not_present)

	.org ia64_ivt+0x5100			// the handler must end exactly here
