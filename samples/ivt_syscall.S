/*
 * ivt_syscall.S -- ivtx sample: a system-call break handler and an
 * unaligned-reference dispatcher that leave through code ivtx cannot see.
 *
 * Written for ivtx in the style of a Linux-era IVT (GNU as, -x explicit stops).
 * break_fault calls the system-call handler through a table: `br.call b6=b6`
 * with rp preset to ia64_ret_from_syscall, so the handler (a C function)
 * returns straight to the exit path, and a traced call goes to
 * ia64_trace_syscall instead.  ivtx cannot trace the table; by default
 * everything is live at that call, and the sites before it get no register
 * (samples/linux-syscalls.toml states the claim that makes them free).
 * The unaligned-reference vector hands over to a dispatcher parked in the
 * slack of reserved entry 12, which leaves with a plain `br` to
 * ia64_prepare_handle_unaligned, rp preset to ia64_leave_kernel.
 *
 * External symbols: sys_call_table, ia64_ret_from_syscall,
 * ia64_trace_syscall, non_syscall, ia64_leave_kernel,
 * ia64_prepare_handle_unaligned, __gp.
 */

#include <asm/asmmacro.h>
#include <asm/break.h>
#include <asm/kregs.h>
#include <asm/asm-offsets.h>
#include <asm/processor.h>
#include <asm/ptrace.h>
#include <asm/thread_info.h>

// Extra psr bits switched on together with psr.ic (none in this sample).
#define PSR_DEFAULT_BITS	0

#include "sample_minstate.h"

	.section .text..ivt,"ax"

	.align 32768
	.global ia64_ivt
ia64_ivt:
	.org ia64_ivt+0x2c00
//////////////////////////////////////////////////////////////////////////////
// 0x2c00 Entry 11 (64 bundles) Break Instruction
ENTRY(break_fault)
	// A system call is `break __IA64_BREAK_SYSCALL` with the number in r15
	// (1024 + table index) and the arguments in the caller's output
	// registers: no cover, so they stay the current frame.
	mov r31=pr				// SAVE_MIN and non_syscall take pr in r31
	mov r17=cr.iim
	movl r18=__IA64_BREAK_SYSCALL
	;;
	cmp.eq p6,p7=r17,r18			// a system call?
(p7)	br.cond.spnt.many non_syscall		// no: a debugger break
	;;
	SAVE_MIN				// ends in bank 1
	ssm psr.ic | PSR_DEFAULT_BITS		// collection back on ...
	;;
	srlz.i					// ... and in effect from here
	adds r3=PTD(R17, R16),r2		// second spill pointer for SAVE_REST
	;;
	SAVE_REST				// bank-1 r16-r31 are free from here
	adds r15=-1024,r15			// the table index
	adds r17=TI_FLAGS+IA64_TASK_SIZE,r13	// current_thread_info()->flags
	movl r16=sys_call_table
	;;
	ld4 r17=[r17]				// traced or audited?
	shladd r16=r15,3,r16			// &sys_call_table[index]
	mov r19=NR_syscalls-1
	;;
	cmp.leu p14,p10=r15,r19			// a valid index (unsigned: below 1024 is not)
	tbit.nz p9,p0=r17,TIF_SYSCALL_TRACE
	movl r3=ia64_ret_from_syscall
	;;
(p14)	ld8 r16=[r16]				// the handler
(p9)	cmp.ne.and p14,p0=r0,r0			// traced: no direct call
(p10)	mov r8=-EINVAL
	mov rp=r3				// handlers return to the exit path
	;;
	mov b6=r16
(p10)	br.cond.spnt.many ia64_ret_from_syscall	// not a system-call number
	;;
(p15)	ssm psr.i				// interrupts as the caller had them
(p14)	br.call.sptk.many b6=b6			// the handler (its return address is not used)
	br.cond.spnt.many ia64_trace_syscall	// traced: entry, call and exit hooks
	// NOT REACHED after the call: the handler returns to ia64_ret_from_syscall
END(break_fault)

	.org ia64_ivt+0x3000
//////////////////////////////////////////////////////////////////////////////
// 0x3000 Entry 12 (64 bundles) Reserved
	mov r31=pr
	mov r19=12
	;;
	br.sptk.many non_syscall

	// Parked in the slack of entry 12: the unaligned-reference path.
	//	in:	r31 = pr, psr.ic = 0, bank 0
	//	C:	ia64_handle_unaligned(ifa, &pt_regs) through the
	//		ia64_prepare_handle_unaligned wrapper, which returns
	//		through rp to ia64_leave_kernel
ENTRY(dispatch_unaligned_handler)
	SAVE_MIN_COVER
	alloc r14=ar.pfs,0,0,2,0		// C arguments: ifa, &pt_regs
	mov out0=cr.ifa				// still readable: psr.ic is 0
	adds out1=16,sp
	;;
	ssm psr.ic | PSR_DEFAULT_BITS
	;;
	srlz.i
	adds r3=PTD(R17, R16),r2
	;;
(p15)	ssm psr.i
	movl r14=ia64_leave_kernel
	;;
	SAVE_REST
	mov rp=r14				// the wrapper returns to the exit path
	;;
	br.sptk.many ia64_prepare_handle_unaligned
END(dispatch_unaligned_handler)

	.org ia64_ivt+0x5a00
//////////////////////////////////////////////////////////////////////////////
// 0x5a00 Entry 30 (16 bundles) Unaligned Reference
ENTRY(unaligned_access)
	mov r31=pr				// SAVE_MIN_COVER takes pr in r31
	;;
	br.sptk.many dispatch_unaligned_handler
END(unaligned_access)

	.org ia64_ivt+0x5b00
