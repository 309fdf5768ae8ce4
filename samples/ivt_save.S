/*
 * ivt_save.S -- ivtx sample: the state-saving half of an IA-64 IVT.
 *
 * Written for ivtx in the style of a Linux-era IVT (GNU as, -x explicit stops).
 * Vectors 0x2c00-0x7f00: the break and external-interrupt handlers go through
 * the SAVE_MIN/SAVE_REST macros of sample_minstate.h and call C; the 16-bundle
 * vectors either do a little work themselves (NaT consumption, speculation
 * recovery) or hand their number to dispatch_to_fault_handler, which is parked
 * in the slack of reserved entry 14.  Unused entries use FAULT(n).
 *
 * External symbols: page_fault, ia64_leave_kernel, ia64_bad_break,
 * ia64_handle_irq, ia64_fault, __gp.
 */

#include <asm/asmmacro.h>
#include <asm/break.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/pgtable.h>
#include <asm/processor.h>
#include <asm/ptrace.h>

// Extra psr bits switched on together with psr.ic (none in this sample).
#define PSR_DEFAULT_BITS	0

// Vector number meaning "nothing pending".
#define SPURIOUS_VECTOR		15

#include "sample_minstate.h"

// Vectors without a handler: pass the vector number to the C dispatcher.
#define FAULT(n)						\
	mov r31=pr;		/* SAVE_MIN wants pr in r31 */	\
	mov r19=n;;						\
	br.sptk.many dispatch_to_fault_handler

	.section .text..ivt,"ax"

	.align 32768
	.global ia64_ivt
ia64_ivt:
	.org ia64_ivt+0x2c00
//////////////////////////////////////////////////////////////////////////////
// 0x2c00 Entry 11 (64 bundles) Break Instruction
ENTRY(break_fault)
	// Every break lands here, system calls and debugger breakpoints alike.
	// This sample takes no fast path: save the minimal state the slow way,
	// pass cr.iim to C and let C return through ia64_leave_kernel.
	mov r31=pr				// SAVE_MIN_COVER takes pr in r31
	;;
	SAVE_MIN_COVER
	alloc r15=ar.pfs,0,0,2,0		// C arguments: iim, &pt_regs
	mov out0=cr.iim				// still readable: psr.ic is 0
	adds out1=16,sp
	;;
	ssm psr.ic | PSR_DEFAULT_BITS		// collection back on ...
	;;
	srlz.i					// ... and in effect from here
	adds r3=PTD(R17, R16),r2		// second spill pointer for SAVE_REST
	;;
(p15)	ssm psr.i				// interrupts as the interrupted code had them
	movl r14=ia64_leave_kernel
	;;
	SAVE_REST
	mov rp=r14				// C returns straight to the exit path
	;;
	br.call.sptk.many b6=ia64_bad_break
END(break_fault)

	.org ia64_ivt+0x3000
//////////////////////////////////////////////////////////////////////////////
// 0x3000 Entry 12 (64 bundles) External Interrupt
ENTRY(interrupt)
	// psr.i is off on entry and stays off: save the state, acknowledge the
	// highest-priority vector and let ivt_irq_loop serve it and whatever
	// becomes pending meanwhile.
	.prologue				// no frame to describe until pt_regs exists
	.body
	mov r31=pr
	;;
	SAVE_MIN_COVER
	ssm psr.ic | PSR_DEFAULT_BITS
	;;
	adds r3=PTD(R17, R16),r2
	srlz.i
	;;
	SAVE_REST
	INTERRUPTION_FRAME_UNWIND		// from here C can unwind through pt_regs
	mov r8=cr.ivr				// acknowledge: r8 = vector in service
	adds r9=16,sp				// &pt_regs
	;;
	srlz.d					// make the ivr side effect visible
	;;
	alloc r14=ar.pfs,0,0,2,0
	mov out0=r8
	mov out1=r9
	;;
	br.call.sptk.many rp=ivt_irq_loop	// a real call: it comes back here
	;;
	br.sptk.many ia64_leave_kernel
END(interrupt)

	.org ia64_ivt+0x3400
//////////////////////////////////////////////////////////////////////////////
// 0x3400 Entry 13 (64 bundles) Reserved
	FAULT(13)

	// Parked in the slack of entry 13.
	// ivt_irq_loop(vector, regs): serve vectors until none is pending.  The
	// C handler acknowledges the next one itself (cr.ivr) and returns it in
	// r8.  A normal stacked-register procedure: psr.ic=1, bank 1.
ENTRY(ivt_irq_loop)
	.prologue
	.save ar.pfs, r34			// loc0 once the frame exists
	alloc loc0=ar.pfs,2,2,2,0
	.save rp, loc1
	mov loc1=rp
	.body
	;;
1:	mov out0=in0				// the C side may change its arguments:
	mov out1=in1				// set them again every time round
	br.call.sptk.many rp=ia64_handle_irq	// r8 = next pending vector
	;;
	mov in0=r8
	cmp.ne p6,p0=SPURIOUS_VECTOR,r8		// anything left?
(p6)	br.cond.sptk.many 1b
	;;
	mov rp=loc1
	mov ar.pfs=loc0
	;;
	br.ret.sptk.many rp
END(ivt_irq_loop)

	.org ia64_ivt+0x3800
//////////////////////////////////////////////////////////////////////////////
// 0x3800 Entry 14 (64 bundles) Reserved
	FAULT(14)

	// Parked in the slack of entry 14: the common path of every vector that
	// only wants C to see it.
	//	in:	r19 = vector number, r31 = pr, psr.ic = 0, bank 0
	//	C:	ia64_fault(vector, isr, ifa, iim, itir) on pt_regs
ENTRY(dispatch_to_fault_handler)
	SAVE_MIN_COVER_R19			// r15 = vector number afterwards
	alloc r14=ar.pfs,0,0,5,0
	mov out1=cr.isr				// the interruption CRs, while psr.ic=0
	mov out2=cr.ifa
	mov out3=cr.iim
	mov out4=cr.itir
	;;
	ssm psr.ic | PSR_DEFAULT_BITS
	mov out0=r15
	;;
	srlz.i
	adds r3=PTD(R17, R16),r2
	;;
(p15)	ssm psr.i
	movl r14=ia64_leave_kernel
	;;
	SAVE_REST
	mov rp=r14
	;;
	br.call.sptk.many b6=ia64_fault
END(dispatch_to_fault_handler)

	.org ia64_ivt+0x3c00
//////////////////////////////////////////////////////////////////////////////
// 0x3c00 Entry 15 (64 bundles) Reserved
	FAULT(15)

	.org ia64_ivt+0x4000
//////////////////////////////////////////////////////////////////////////////
// 0x4000 Entry 16 (64 bundles) Reserved
	FAULT(16)

	.org ia64_ivt+0x4400
//////////////////////////////////////////////////////////////////////////////
// 0x4400 Entry 17 (64 bundles) Reserved
	FAULT(17)

	.org ia64_ivt+0x4800
//////////////////////////////////////////////////////////////////////////////
// 0x4800 Entry 18 (64 bundles) Reserved
	FAULT(18)

	.org ia64_ivt+0x4c00
//////////////////////////////////////////////////////////////////////////////
// 0x4c00 Entry 19 (64 bundles) Reserved
	FAULT(19)

	.org ia64_ivt+0x5000
//////////////////////////////////////////////////////////////////////////////
// 0x5000 Entry 20 (16 bundles) Page Not Present
ENTRY(page_not_present)
	// The PTE says "not present", yet a stale translation may still sit in
	// the TLB and the C fault path assumes none does: purge it, then fault.
	mov r31=pr
	mov r16=cr.ifa
	mov r18=PAGE_SHIFT<<2
	;;
	ptc.l r16,r18
	;;
	rsm psr.dt				// page_fault expects physical data accesses
	;;
	srlz.d
	br.sptk.many page_fault
END(page_not_present)

	.org ia64_ivt+0x5100
//////////////////////////////////////////////////////////////////////////////
// 0x5100 Entry 21 (16 bundles) Key Permission
ENTRY(key_permission)
	mov r16=cr.ifa				// page_fault wants the address in r16 ...
	mov r31=pr				// ... and the predicates in r31
	;;
	br.sptk.many page_fault
END(key_permission)

	.org ia64_ivt+0x5200
//////////////////////////////////////////////////////////////////////////////
// 0x5200 Entry 22 (16 bundles) Instruction Access Rights
ENTRY(iaccess_rights)
	mov r16=cr.ifa				// page_fault wants the address in r16 ...
	mov r31=pr				// ... and the predicates in r31
	;;
	br.sptk.many page_fault
END(iaccess_rights)

	.org ia64_ivt+0x5300
//////////////////////////////////////////////////////////////////////////////
// 0x5300 Entry 23 (16 bundles) Data Access Rights
ENTRY(daccess_rights)
	mov r16=cr.ifa				// page_fault wants the address in r16 ...
	mov r31=pr				// ... and the predicates in r31
	;;
	br.sptk.many page_fault
END(daccess_rights)

	.org ia64_ivt+0x5400
//////////////////////////////////////////////////////////////////////////////
// 0x5400 Entry 24 (16 bundles) General Exception
ENTRY(general_exception)
	mov r31=pr
	mov r19=24				// vector number for the C dispatcher
	;;
	br.sptk.many dispatch_to_fault_handler
END(general_exception)

	.org ia64_ivt+0x5500
//////////////////////////////////////////////////////////////////////////////
// 0x5500 Entry 25 (16 bundles) Disabled FP-Register
ENTRY(disabled_fp_reg)
	// C will want to save the high FP partition: unlock it first.
	rsm psr.dfh
	mov r31=pr
	;;
	srlz.d
	mov r19=25
	br.sptk.many dispatch_to_fault_handler
END(disabled_fp_reg)

	.org ia64_ivt+0x5600
//////////////////////////////////////////////////////////////////////////////
// 0x5600 Entry 26 (16 bundles) NaT Consumption
ENTRY(nat_consumption)
	// An lfetch.fault through a NaT address is only a hint gone wrong: set
	// ipsr.ed so that it is dropped when re-executed.  Any other NaT
	// consumption is for the C side.
	mov r16=cr.ipsr
	mov r17=cr.isr
	mov r31=pr
	;;
	and r18=IA64_ISR_CODE_MASK,r17		// isr.code
	tbit.nz p6,p7=r17,IA64_ISR_NA_BIT	// non-access form?
	dep r16=-1,r16,IA64_PSR_ED_BIT,1
	;;
(p6)	cmp.ne.or.andcm p7,p6=IA64_ISR_CODE_LFETCH,r18	// but not an lfetch
	;;
(p6)	mov cr.ipsr=r16
(p7)	mov r19=26
(p7)	br.cond.spnt dispatch_to_fault_handler
	;;
	mov pr=r31,-1
	;;
	rfi
END(nat_consumption)

	.org ia64_ivt+0x5700
//////////////////////////////////////////////////////////////////////////////
// 0x5700 Entry 27 (16 bundles) Speculation
ENTRY(speculation_vector)
	// chk.s/chk.a recovery without hardware support: cr.iim holds the
	// 21-bit bundle displacement of the recovery code.  Resume there, at
	// slot 0.  No predicate or branch register is touched.
	mov r16=cr.iim
	mov r17=cr.iip
	mov r18=cr.ipsr
	;;
	extr r16=r16,0,21			// sign-extended displacement, in bundles
	dep r18=0,r18,41,2			// ipsr.ri = 0
	;;
	shladd r17=r16,4,r17			// iip + 16 * displacement
	;;
	mov cr.iip=r17
	mov cr.ipsr=r18
	;;
	rfi
END(speculation_vector)

	.org ia64_ivt+0x5800
//////////////////////////////////////////////////////////////////////////////
// 0x5800 Entry 28 (16 bundles) Reserved
	FAULT(28)

	.org ia64_ivt+0x5900
//////////////////////////////////////////////////////////////////////////////
// 0x5900 Entry 29 (16 bundles) Debug
ENTRY(debug_vector)
	FAULT(29)
END(debug_vector)

	.org ia64_ivt+0x5a00
//////////////////////////////////////////////////////////////////////////////
// 0x5a00 Entry 30 (16 bundles) Unaligned Reference
ENTRY(unaligned_access)
	mov r31=pr
	mov r19=30				// the C side emulates the access
	;;
	br.sptk.many dispatch_to_fault_handler
END(unaligned_access)

	.org ia64_ivt+0x5b00
//////////////////////////////////////////////////////////////////////////////
// 0x5b00 Entry 31 (16 bundles) Unsupported Data Reference
ENTRY(unsupported_data_reference)
	FAULT(31)
END(unsupported_data_reference)

	.org ia64_ivt+0x5c00
//////////////////////////////////////////////////////////////////////////////
// 0x5c00 Entry 32 (16 bundles) Floating-Point Fault
ENTRY(floating_point_fault)
	FAULT(32)
END(floating_point_fault)

	.org ia64_ivt+0x5d00
//////////////////////////////////////////////////////////////////////////////
// 0x5d00 Entry 33 (16 bundles) Floating-Point Trap
ENTRY(floating_point_trap)
	FAULT(33)
END(floating_point_trap)

	.org ia64_ivt+0x5e00
//////////////////////////////////////////////////////////////////////////////
// 0x5e00 Entry 34 (16 bundles) Lower-Privilege Transfer Trap
ENTRY(lower_privilege_trap)
	FAULT(34)
END(lower_privilege_trap)

	.org ia64_ivt+0x5f00
//////////////////////////////////////////////////////////////////////////////
// 0x5f00 Entry 35 (16 bundles) Taken Branch Trap
ENTRY(taken_branch_trap)
	FAULT(35)
END(taken_branch_trap)

	.org ia64_ivt+0x6000
//////////////////////////////////////////////////////////////////////////////
// 0x6000 Entry 36 (16 bundles) Single Step Trap
ENTRY(single_step_trap)
	FAULT(36)
END(single_step_trap)

	.org ia64_ivt+0x6100
//////////////////////////////////////////////////////////////////////////////
// 0x6100 Entry 37 (16 bundles) Virtualization
ENTRY(virtualization_fault)
	FAULT(37)
END(virtualization_fault)

	.org ia64_ivt+0x6200
//////////////////////////////////////////////////////////////////////////////
// 0x6200 Entry 38 (16 bundles) Reserved
	FAULT(38)

	.org ia64_ivt+0x6300
//////////////////////////////////////////////////////////////////////////////
// 0x6300 Entry 39 (16 bundles) Reserved
	FAULT(39)

	.org ia64_ivt+0x6400
//////////////////////////////////////////////////////////////////////////////
// 0x6400 Entry 40 (16 bundles) Reserved
	FAULT(40)

	.org ia64_ivt+0x6500
//////////////////////////////////////////////////////////////////////////////
// 0x6500 Entry 41 (16 bundles) Reserved
	FAULT(41)

	.org ia64_ivt+0x6600
//////////////////////////////////////////////////////////////////////////////
// 0x6600 Entry 42 (16 bundles) Reserved
	FAULT(42)

	.org ia64_ivt+0x6700
//////////////////////////////////////////////////////////////////////////////
// 0x6700 Entry 43 (16 bundles) Reserved
	FAULT(43)

	.org ia64_ivt+0x6800
//////////////////////////////////////////////////////////////////////////////
// 0x6800 Entry 44 (16 bundles) Reserved
	FAULT(44)

	.org ia64_ivt+0x6900
//////////////////////////////////////////////////////////////////////////////
// 0x6900 Entry 45 (16 bundles) IA-32 Exception
ENTRY(ia32_exception)
	FAULT(45)
END(ia32_exception)

	.org ia64_ivt+0x6a00
//////////////////////////////////////////////////////////////////////////////
// 0x6a00 Entry 46 (16 bundles) IA-32 Intercept
ENTRY(ia32_intercept)
	FAULT(46)
END(ia32_intercept)

	.org ia64_ivt+0x6b00
//////////////////////////////////////////////////////////////////////////////
// 0x6b00 Entry 47 (16 bundles) IA-32 Interrupt
ENTRY(ia32_interrupt)
	FAULT(47)
END(ia32_interrupt)

	.org ia64_ivt+0x6c00
//////////////////////////////////////////////////////////////////////////////
// 0x6c00 Entry 48 (16 bundles) Reserved
	FAULT(48)

	.org ia64_ivt+0x6d00
//////////////////////////////////////////////////////////////////////////////
// 0x6d00 Entry 49 (16 bundles) Reserved
	FAULT(49)

	.org ia64_ivt+0x6e00
//////////////////////////////////////////////////////////////////////////////
// 0x6e00 Entry 50 (16 bundles) Reserved
	FAULT(50)

	.org ia64_ivt+0x6f00
//////////////////////////////////////////////////////////////////////////////
// 0x6f00 Entry 51 (16 bundles) Reserved
	FAULT(51)

	.org ia64_ivt+0x7000
//////////////////////////////////////////////////////////////////////////////
// 0x7000 Entry 52 (16 bundles) Reserved
	FAULT(52)

	.org ia64_ivt+0x7100
//////////////////////////////////////////////////////////////////////////////
// 0x7100 Entry 53 (16 bundles) Reserved
	FAULT(53)

	.org ia64_ivt+0x7200
//////////////////////////////////////////////////////////////////////////////
// 0x7200 Entry 54 (16 bundles) Reserved
	FAULT(54)

	.org ia64_ivt+0x7300
//////////////////////////////////////////////////////////////////////////////
// 0x7300 Entry 55 (16 bundles) Reserved
	FAULT(55)

	.org ia64_ivt+0x7400
//////////////////////////////////////////////////////////////////////////////
// 0x7400 Entry 56 (16 bundles) Reserved
	FAULT(56)

	.org ia64_ivt+0x7500
//////////////////////////////////////////////////////////////////////////////
// 0x7500 Entry 57 (16 bundles) Reserved
	FAULT(57)

	.org ia64_ivt+0x7600
//////////////////////////////////////////////////////////////////////////////
// 0x7600 Entry 58 (16 bundles) Reserved
	FAULT(58)

	.org ia64_ivt+0x7700
//////////////////////////////////////////////////////////////////////////////
// 0x7700 Entry 59 (16 bundles) Reserved
	FAULT(59)

	.org ia64_ivt+0x7800
//////////////////////////////////////////////////////////////////////////////
// 0x7800 Entry 60 (16 bundles) Reserved
	FAULT(60)

	.org ia64_ivt+0x7900
//////////////////////////////////////////////////////////////////////////////
// 0x7900 Entry 61 (16 bundles) Reserved
	FAULT(61)

	.org ia64_ivt+0x7a00
//////////////////////////////////////////////////////////////////////////////
// 0x7a00 Entry 62 (16 bundles) Reserved
	FAULT(62)

	.org ia64_ivt+0x7b00
//////////////////////////////////////////////////////////////////////////////
// 0x7b00 Entry 63 (16 bundles) Reserved
	FAULT(63)

	.org ia64_ivt+0x7c00
//////////////////////////////////////////////////////////////////////////////
// 0x7c00 Entry 64 (16 bundles) Reserved
	FAULT(64)

	.org ia64_ivt+0x7d00
//////////////////////////////////////////////////////////////////////////////
// 0x7d00 Entry 65 (16 bundles) Reserved
	FAULT(65)

	.org ia64_ivt+0x7e00
//////////////////////////////////////////////////////////////////////////////
// 0x7e00 Entry 66 (16 bundles) Reserved
	FAULT(66)

	.org ia64_ivt+0x7f00
//////////////////////////////////////////////////////////////////////////////
// 0x7f00 Entry 67 (16 bundles) Reserved
	FAULT(67)
