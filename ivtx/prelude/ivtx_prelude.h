/*
 * ivtx prelude: what the Linux ia64 headers give an IVT source (ivt.S, minstate.h),
 * written for ivtx from what those macros do, so that a file preprocesses with no
 * kernel tree at hand.  It runs after -D/-U and before the input; a name that is
 * already defined keeps its value, so `-DPAGE_SHIFT=16` wins over the default here.
 *
 * Deliberately NOT defined: the pv_ops privileged-operation macros (MOV_FROM_IFA,
 * MOV_TO_*, ITC_I, ITC_D, ITC_I_AND_D, THASH, SSM_PSR_*, RSM_PSR_*, BSW_0, BSW_1,
 * COVER, RFI, ...).  Without a definition they stay in the output as written,
 * and the parser turns them into pv-op call sites.
 *
 * Values marked PLACEHOLDER come from asm-offsets.h, which the kernel build
 * generates from the C structures of one configuration.  They are plausible
 * numbers for analysis (register use does not depend on them); pass the real
 * headers (include_dirs, prelude=False) when exact encodings matter.
 */

/* ---- environment (what the kernel Makefiles pass) ---------------------------- */
#define __ASSEMBLY__			1
#define __KERNEL__			1

/* ---- configuration defaults ---------------------------------------------------
 * 16 KB pages and 3-level page tables unless the command line says otherwise.
 * CONFIG_SMP, CONFIG_HUGETLB_PAGE, CONFIG_DISABLE_VHPT ... are left to -D.   */
#define CONFIG_PGTABLE_LEVELS		3
#define CONFIG_IA64_L1_CACHE_SHIFT	7

/* ---- constants in assembler spelling ---------------------------------------- */
#define __IA64_UL(x)			(x)
#define __IA64_UL_CONST(x)		x

/* ---- function entry and exit (asm/asmmacro.h) --------------------------------
 * ENTRY aligns to a 32-byte boundary (two bundles), opens the unwind region
 * with .proc and places the label; END closes it.                              */
#define ENTRY(name)			.align 32; .proc name; name:
#define ENTRY_MIN_ALIGN(name)		.align 16; .proc name; name:
#define GLOBAL_ENTRY(name)		.global name; ENTRY(name)
#define END(name)			.endp name

/* Module exports emit nothing that matters to the IVT. */
#define EXPORT_SYMBOL(name)
#define EXPORT_SYMBOL_GPL(name)
#define EXPORT_DATA_SYMBOL(name)
#define EXPORT_DATA_SYMBOL_GPL(name)

/* ---- boot-time patch lists ----------------------------------------------------
 * Each list is a section of 32-bit offsets (.xdata4 "sec", target-.) that the
 * kernel walks at boot.  The sections are declared first, as the real header
 * does, so that gas does not create them implicitly.                           */
	.section ".data..patch.vtop", "a"
	.previous
	.section "__mca_table", "a"
	.previous
	.section "__ex_table", "a"
	.previous

/* LOAD_PHYSICAL: a movl of a kernel virtual address, tagged [1:] and listed in
 * .data..patch.vtop so that boot code rewrites the immediate to the physical
 * address (primer section 6).                                                  */
#define LOAD_PHYSICAL(pr, reg, obj)	[1:](pr)movl reg = obj; .xdata4 ".data..patch.vtop", 1b-.

/* MCA_RECOVER_RANGE(start): record [start, here) as a machine-check-recoverable
 * range; the tag 99 marks "here".                                               */
#define MCA_RECOVER_RANGE(y)		.xdata4 "__mca_table", y-., 99f-.; [99:]

/* EX(fixup, insn): the instruction may fault on a user address; list it with its
 * fixup in the exception table.                                                 */
#define EX(y, x...)			.xdata4 "__ex_table", 99f-., y-.; [99:] x
#define EXCLR(y, x...)			.xdata4 "__ex_table", 99f-., y-.+4; [99:] x

/* Hints for gas' dependency-violation checker (primer section 4). */
#define dv_serialize_data		.serialize.data
#define dv_serialize_instruction	.serialize.instruction
#define TEXT_ALIGN(n)			.align n

/* ---- kernel registers ar.k0-ar.k7 (asm/kregs.h) --------------------------------
 * IA64_KR(CURRENT) names the application register that holds "current".       */
#define IA64_KR_IO_BASE			0	/* legacy I/O port space base */
#define IA64_KR_TSSD			1	/* IA-32 TSS descriptor */
#define IA64_KR_PER_CPU_DATA		3	/* physical address of this CPU's data */
#define IA64_KR_CURRENT_STACK		4	/* stack mapped by the current-stack TR */
#define IA64_KR_FPU_OWNER		5	/* task owning the high FP partition */
#define IA64_KR_CURRENT			6	/* the running task_struct */
#define IA64_KR_PT_BASE			7	/* physical page-table base */
#define __IVTX_PASTE(a, b)		a##b
#define __IVTX_KR(n)			__IVTX_PASTE(ar.k, n)
#define IA64_KR(n)			__IVTX_KR(IA64_KR_##n)

/* ---- processor status register bits (SDM vol 2, PSR) ------------------------- */
#define IA64_PSR_BE_BIT		1
#define IA64_PSR_UP_BIT		2
#define IA64_PSR_AC_BIT		3
#define IA64_PSR_MFL_BIT	4
#define IA64_PSR_MFH_BIT	5
#define IA64_PSR_IC_BIT		13
#define IA64_PSR_I_BIT		14
#define IA64_PSR_PK_BIT		15
#define IA64_PSR_DT_BIT		17
#define IA64_PSR_DFL_BIT	18
#define IA64_PSR_DFH_BIT	19
#define IA64_PSR_SP_BIT		20
#define IA64_PSR_PP_BIT		21
#define IA64_PSR_DI_BIT		22
#define IA64_PSR_SI_BIT		23
#define IA64_PSR_DB_BIT		24
#define IA64_PSR_LP_BIT		25
#define IA64_PSR_TB_BIT		26
#define IA64_PSR_RT_BIT		27
#define IA64_PSR_CPL0_BIT	32
#define IA64_PSR_CPL1_BIT	33
#define IA64_PSR_IS_BIT		34
#define IA64_PSR_MC_BIT		35
#define IA64_PSR_IT_BIT		36
#define IA64_PSR_ID_BIT		37
#define IA64_PSR_DA_BIT		38
#define IA64_PSR_DD_BIT		39
#define IA64_PSR_SS_BIT		40
#define IA64_PSR_RI_BIT		41
#define IA64_PSR_ED_BIT		43
#define IA64_PSR_BN_BIT		44
#define IA64_PSR_IA_BIT		45

#define IA64_PSR_BE	(1 << IA64_PSR_BE_BIT)
#define IA64_PSR_UP	(1 << IA64_PSR_UP_BIT)
#define IA64_PSR_AC	(1 << IA64_PSR_AC_BIT)
#define IA64_PSR_MFL	(1 << IA64_PSR_MFL_BIT)
#define IA64_PSR_MFH	(1 << IA64_PSR_MFH_BIT)
#define IA64_PSR_IC	(1 << IA64_PSR_IC_BIT)
#define IA64_PSR_I	(1 << IA64_PSR_I_BIT)
#define IA64_PSR_PK	(1 << IA64_PSR_PK_BIT)
#define IA64_PSR_DT	(1 << IA64_PSR_DT_BIT)
#define IA64_PSR_DFL	(1 << IA64_PSR_DFL_BIT)
#define IA64_PSR_DFH	(1 << IA64_PSR_DFH_BIT)
#define IA64_PSR_SP	(1 << IA64_PSR_SP_BIT)
#define IA64_PSR_PP	(1 << IA64_PSR_PP_BIT)
#define IA64_PSR_DI	(1 << IA64_PSR_DI_BIT)
#define IA64_PSR_SI	(1 << IA64_PSR_SI_BIT)
#define IA64_PSR_DB	(1 << IA64_PSR_DB_BIT)
#define IA64_PSR_LP	(1 << IA64_PSR_LP_BIT)
#define IA64_PSR_TB	(1 << IA64_PSR_TB_BIT)
#define IA64_PSR_RT	(1 << IA64_PSR_RT_BIT)
#define IA64_PSR_CPL	(3 << IA64_PSR_CPL0_BIT)
#define IA64_PSR_IS	(1 << IA64_PSR_IS_BIT)
#define IA64_PSR_MC	(1 << IA64_PSR_MC_BIT)
#define IA64_PSR_IT	(1 << IA64_PSR_IT_BIT)
#define IA64_PSR_ID	(1 << IA64_PSR_ID_BIT)
#define IA64_PSR_DA	(1 << IA64_PSR_DA_BIT)
#define IA64_PSR_DD	(1 << IA64_PSR_DD_BIT)
#define IA64_PSR_SS	(1 << IA64_PSR_SS_BIT)
#define IA64_PSR_RI	(3 << IA64_PSR_RI_BIT)
#define IA64_PSR_ED	(1 << IA64_PSR_ED_BIT)
#define IA64_PSR_BN	(1 << IA64_PSR_BN_BIT)
#define IA64_PSR_IA	(1 << IA64_PSR_IA_BIT)

/* ---- interruption status register (SDM vol 2, ISR) --------------------------- */
#define IA64_ISR_X_BIT		32	/* execute access */
#define IA64_ISR_W_BIT		33	/* write access */
#define IA64_ISR_R_BIT		34	/* read access */
#define IA64_ISR_NA_BIT		35	/* non-access (probe, fc, lfetch, tpa, tak) */
#define IA64_ISR_SP_BIT		36	/* speculative load */
#define IA64_ISR_RS_BIT		37	/* register stack (RSE) access */
#define IA64_ISR_IR_BIT		38	/* invalid register frame */
#define IA64_ISR_NI_BIT		39	/* nested interruption (psr.ic was 0) */
#define IA64_ISR_SO_BIT		40	/* IA-32 supervisor override */
#define IA64_ISR_ED_BIT		43	/* exception deferral */
#define IA64_ISR_X		(1 << IA64_ISR_X_BIT)
#define IA64_ISR_W		(1 << IA64_ISR_W_BIT)
#define IA64_ISR_R		(1 << IA64_ISR_R_BIT)
#define IA64_ISR_NA		(1 << IA64_ISR_NA_BIT)
#define IA64_ISR_SP		(1 << IA64_ISR_SP_BIT)
#define IA64_ISR_RS		(1 << IA64_ISR_RS_BIT)
#define IA64_ISR_IR		(1 << IA64_ISR_IR_BIT)
#define IA64_ISR_NI		(1 << IA64_ISR_NI_BIT)
#define IA64_ISR_SO		(1 << IA64_ISR_SO_BIT)
#define IA64_ISR_ED		(1 << IA64_ISR_ED_BIT)
/* isr.code of a non-access operation (low 4 bits when isr.na is set) */
#define IA64_ISR_CODE_MASK	0xf
#define IA64_ISR_CODE_TPA	0
#define IA64_ISR_CODE_FC	1
#define IA64_ISR_CODE_PROBE	2
#define IA64_ISR_CODE_TAK	3
#define IA64_ISR_CODE_LFETCH	4
#define IA64_ISR_CODE_PROBEF	5

/* ---- break immediates (asm/break.h) ------------------------------------------- */
#define __IA64_BREAK_KDB		0x80100
#define __IA64_BREAK_SYSCALL		0x100000

/* ---- pages and page tables (asm/page.h, asm/pgtable.h) -------------------------
 * Every level of the page table is one page of 8-byte entries, so each level
 * resolves PAGE_SHIFT-3 bits of the address.                                    */
#ifndef PAGE_SHIFT
# if defined(CONFIG_IA64_PAGE_SIZE_4KB)
#  define PAGE_SHIFT		12
# elif defined(CONFIG_IA64_PAGE_SIZE_8KB)
#  define PAGE_SHIFT		13
# elif defined(CONFIG_IA64_PAGE_SIZE_64KB)
#  define PAGE_SHIFT		16
# else
#  define PAGE_SHIFT		14	/* CONFIG_IA64_PAGE_SIZE_16KB, the usual choice */
# endif
#endif
#define PAGE_SIZE		(1 << PAGE_SHIFT)
#define PERCPU_PAGE_SHIFT	18	/* per-CPU area: one 256 KB translation */
#define PERCPU_PAGE_SIZE	(1 << PERCPU_PAGE_SHIFT)
#define PERCPU_ADDR		(-PERCPU_PAGE_SIZE)	/* at the top of region 7 */
#define IA64_MAX_PHYS_BITS	50	/* implemented physical address bits */

#define PTRS_PER_PTD_SHIFT	(PAGE_SHIFT - 3)
#define PTRS_PER_PGD_SHIFT	PTRS_PER_PTD_SHIFT
#define PMD_SHIFT		(PAGE_SHIFT + PTRS_PER_PTD_SHIFT)
#if CONFIG_PGTABLE_LEVELS == 4
# define PUD_SHIFT		(PMD_SHIFT + PTRS_PER_PTD_SHIFT)
# define PGDIR_SHIFT		(PUD_SHIFT + PTRS_PER_PTD_SHIFT)
#else
# define PGDIR_SHIFT		(PMD_SHIFT + PTRS_PER_PTD_SHIFT)
#endif

/* Page-table entry fields (SDM vol 2, TLB insertion format). */
#define _PAGE_P_BIT		0	/* present */
#define _PAGE_A_BIT		5	/* accessed */
#define _PAGE_D_BIT		6	/* dirty */
#define _PAGE_P			(1 << _PAGE_P_BIT)
#define _PAGE_MA_WB		(0 << 2)	/* memory attribute: write-back */
#define _PAGE_MA_UC		(4 << 2)	/* uncacheable */
#define _PAGE_MA_UCE		(5 << 2)	/* uncacheable, exported */
#define _PAGE_MA_WC		(6 << 2)	/* write-coalescing */
#define _PAGE_MA_NAT		(7 << 2)	/* NaTPage */
#define _PAGE_MA_MASK		(7 << 2)
#define _PAGE_A			(1 << _PAGE_A_BIT)
#define _PAGE_D			(1 << _PAGE_D_BIT)
#define _PAGE_PL_0		(0 << 7)	/* privilege level */
#define _PAGE_PL_1		(1 << 7)
#define _PAGE_PL_2		(2 << 7)
#define _PAGE_PL_3		(3 << 7)
#define _PAGE_PL_MASK		(3 << 7)
#define _PAGE_AR_R		(0 << 9)	/* access rights */
#define _PAGE_AR_RX		(1 << 9)
#define _PAGE_AR_RW		(2 << 9)
#define _PAGE_AR_RWX		(3 << 9)
#define _PAGE_AR_R_RW		(4 << 9)
#define _PAGE_AR_RX_RWX		(5 << 9)
#define _PAGE_AR_RWX_RW		(6 << 9)
#define _PAGE_AR_X_RX		(7 << 9)
#define _PAGE_AR_MASK		(7 << 9)
#define _PAGE_AR_SHIFT		9
#define _PAGE_ED		(1 << 52)	/* exception deferral */
#define _PAGE_PROTNONE		(1 << 63)	/* software bit: page exists, no access */
/* log2 of the translation sizes that cr.itir.ps can hold */
#define _PAGE_SIZE_4K		12
#define _PAGE_SIZE_8K		13
#define _PAGE_SIZE_16K		14
#define _PAGE_SIZE_64K		16
#define _PAGE_SIZE_256K		18
#define _PAGE_SIZE_1M		20
#define _PAGE_SIZE_4M		22
#define _PAGE_SIZE_16M		24
#define _PAGE_SIZE_64M		26
#define _PAGE_SIZE_256M		28
#define _PAGE_SIZE_1G		30
#define _PAGE_SIZE_4G		32
/* bits set in a kernel translation: accessed, present, dirty, write-back */
#define __DIRTY_BITS_NO_ED	_PAGE_A | _PAGE_P | _PAGE_D | _PAGE_MA_WB
#define __DIRTY_BITS		_PAGE_ED | __DIRTY_BITS_NO_ED
#define __pgprot(x)		(x)
#define PAGE_KERNEL		__pgprot(__DIRTY_BITS | _PAGE_PL_0 | _PAGE_AR_RWX)

/* ---- caches (asm/cache.h) ----------------------------------------------------- */
#define L1_CACHE_SHIFT		CONFIG_IA64_L1_CACHE_SHIFT
#define L1_CACHE_BYTES		(1 << L1_CACHE_SHIFT)

/* ---- per-CPU variables (asm/percpu.h): in assembler just the symbol ---------- */
#define THIS_CPU(var)		(var)

/* ---- floating-point status (asm/fpu.h) ------------------------------------------
 * All six traps disabled (bits 0-5); status field sf0 (bit 6): pc=3 (64-bit
 * precision), rc=0 (nearest) = 0xc; sf1 (bit 19): sf0 + td + wre = 0x4e;
 * sf2 (bit 32), sf3 (bit 45): sf0 + td = 0x4c.
 * = 0x3f | 0xc << 6 | 0x4e << 19 | 0x4c << 32 | 0x4c << 45                     */
#define FPSR_DEFAULT		0x9804c0270033f

/* ---- thread flags (asm/thread_info.h) and errno ------------------------------- */
#define TIF_SIGPENDING		0
#define TIF_NEED_RESCHED	1
#define TIF_SYSCALL_TRACE	2
#define TIF_SYSCALL_AUDIT	3
#define TIF_SINGLESTEP		4
#define _TIF_SIGPENDING		(1 << TIF_SIGPENDING)
#define _TIF_NEED_RESCHED	(1 << TIF_NEED_RESCHED)
#define _TIF_SYSCALL_TRACE	(1 << TIF_SYSCALL_TRACE)
#define _TIF_SYSCALL_AUDIT	(1 << TIF_SYSCALL_AUDIT)
#define _TIF_SINGLESTEP		(1 << TIF_SINGLESTEP)
#define _TIF_SYSCALL_TRACEAUDIT	(_TIF_SYSCALL_TRACE | _TIF_SYSCALL_AUDIT | _TIF_SINGLESTEP)
#define EINVAL			22
#define NR_syscalls		454	/* PLACEHOLDER: generated per kernel version */

/* ---- kernel stacks (asm/ptrace.h) ------------------------------------------------
 * task_struct, thread_info, the register backing store and the memory stack share
 * one 2^KERNEL_STACK_SIZE_ORDER-page block: RBS just above the two structures,
 * memory stack growing down from the top.                                      */
#define KERNEL_STACK_SIZE_ORDER	1
#define IA64_STK_OFFSET		((1 << KERNEL_STACK_SIZE_ORDER) * PAGE_SIZE)
#define IA64_RBS_OFFSET		((IA64_TASK_SIZE + IA64_THREAD_INFO_SIZE + 31) & ~31)

/* ---- asm-offsets.h: PLACEHOLDERS for analysis ---------------------------------- */
#define IA64_TASK_SIZE				4096
#define IA64_THREAD_INFO_SIZE			64
#define IA64_TASK_THREAD_ON_USTACK_OFFSET	2048
#define IA64_TASK_THREAD_KSP_OFFSET		2056
#define TI_FLAGS				8
#define TI_CPU					16
#define TI_PRE_COUNT				20
#define TI_AC_STAMP				24
#define TI_AC_LEAVE				32
#define TI_AC_STIME				40
#define TI_AC_UTIME				48

/* struct pt_regs: 8-byte slots in the order SAVE_MIN and SAVE_REST store them
 * (their post-increments rely on this order), then f6-f11 as 16-byte spills.
 * These follow from the structure's field order, not from one build.           */
#define IA64_PT_REGS_B6_OFFSET		0
#define IA64_PT_REGS_B7_OFFSET		8
#define IA64_PT_REGS_AR_CSD_OFFSET	16
#define IA64_PT_REGS_AR_SSD_OFFSET	24
#define IA64_PT_REGS_R8_OFFSET		32
#define IA64_PT_REGS_R9_OFFSET		40
#define IA64_PT_REGS_R10_OFFSET		48
#define IA64_PT_REGS_R11_OFFSET		56
#define IA64_PT_REGS_CR_IPSR_OFFSET	64
#define IA64_PT_REGS_CR_IIP_OFFSET	72
#define IA64_PT_REGS_CR_IFS_OFFSET	80
#define IA64_PT_REGS_AR_UNAT_OFFSET	88
#define IA64_PT_REGS_AR_PFS_OFFSET	96
#define IA64_PT_REGS_AR_RSC_OFFSET	104
#define IA64_PT_REGS_AR_RNAT_OFFSET	112
#define IA64_PT_REGS_AR_BSPSTORE_OFFSET	120
#define IA64_PT_REGS_PR_OFFSET		128
#define IA64_PT_REGS_B0_OFFSET		136
#define IA64_PT_REGS_LOADRS_OFFSET	144
#define IA64_PT_REGS_R1_OFFSET		152
#define IA64_PT_REGS_R12_OFFSET		160
#define IA64_PT_REGS_R13_OFFSET		168
#define IA64_PT_REGS_AR_FPSR_OFFSET	176
#define IA64_PT_REGS_R15_OFFSET		184
#define IA64_PT_REGS_R14_OFFSET		192
#define IA64_PT_REGS_R2_OFFSET		200
#define IA64_PT_REGS_R3_OFFSET		208
#define IA64_PT_REGS_R16_OFFSET		216
#define IA64_PT_REGS_R17_OFFSET		224
#define IA64_PT_REGS_R18_OFFSET		232
#define IA64_PT_REGS_R19_OFFSET		240
#define IA64_PT_REGS_R20_OFFSET		248
#define IA64_PT_REGS_R21_OFFSET		256
#define IA64_PT_REGS_R22_OFFSET		264
#define IA64_PT_REGS_R23_OFFSET		272
#define IA64_PT_REGS_R24_OFFSET		280
#define IA64_PT_REGS_R25_OFFSET		288
#define IA64_PT_REGS_R26_OFFSET		296
#define IA64_PT_REGS_R27_OFFSET		304
#define IA64_PT_REGS_R28_OFFSET		312
#define IA64_PT_REGS_R29_OFFSET		320
#define IA64_PT_REGS_R30_OFFSET		328
#define IA64_PT_REGS_R31_OFFSET		336
#define IA64_PT_REGS_AR_CCV_OFFSET	344
#define IA64_PT_REGS_F6_OFFSET		352
#define IA64_PT_REGS_F7_OFFSET		368
#define IA64_PT_REGS_F8_OFFSET		384
#define IA64_PT_REGS_F9_OFFSET		400
#define IA64_PT_REGS_F10_OFFSET		416
#define IA64_PT_REGS_F11_OFFSET		432
#define IA64_PT_REGS_SIZE		448

/* PT(field): offset of a pt_regs field, e.g. PT(CR_IPSR); same as entry.h. */
#define PT(f)		(IA64_PT_REGS_##f##_OFFSET)

/* ---- SAVE_MIN: minstate.h defines IA64_NATIVE_DO_SAVE_MIN and asm/native/inst.h
 * selects it.  Its body keeps its privileged operations as pv-op call sites
 * (MOV_FROM_IPSR, MOV_FROM_IIP, COVER ...).                                     */
#define DO_SAVE_MIN		IA64_NATIVE_DO_SAVE_MIN
