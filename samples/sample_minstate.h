/*
 * sample_minstate.h -- ivtx sample: the state-save macros used by ivt_save.S.
 *
 * SAVE_MIN_* turn an interruption (psr.ic=0, bank 0, predicates already in
 * r31) into a C-callable context: they record the interruption CRs and the
 * ARs the kernel will change, switch to the kernel memory stack and, for an
 * entry from user level, to the kernel register backing store, spill the
 * static registers r1-r3 and r8-r15 into pt_regs and finish with bsw.1.
 * psr.ic is still 0 afterwards: the caller may still read the interruption
 * CRs, then turns collection back on and runs SAVE_REST.
 *
 * On exit from SAVE_MIN_*:
 *	r1 = kernel gp			r12 = kernel sp (pt_regs at sp+16)
 *	r2 = &pt_regs.r16		r13 = current
 *	p15 = ipsr.i			pKStk/pUStk = where we came from
 *	r3, r8-r11, r14 free (saved); r15 free except in the _R19 form,
 *	where it holds the vector number that came in bank-0 r19.
 *
 * Bank-0 use while saving (all of r16-r31, in two waves):
 *	r16/r17 current, on_ustack flag, then the two spill pointers
 *	r18 cr.ipsr then b0	r20 cr.iip	r21 cr.ifs	r22 ar.rsc
 *	r23 ar.unat		r24 ar.pfs	r25 ar.fpsr	r26 the caller's r1
 *	r27 kernel RBS base	r28 user bspstore	r29 user rnat
 *	r30 loadrs		r31 pr		(r19: the _R19 argument)
 */

/*
 * The privileged operations MINSTATE_SAVE performs besides the cover and the
 * cr.ifs read (which are arguments).  A pv-annotated includer defines these
 * first, as pv-op calls; by default they are the raw instructions.
 */
#ifndef MINSTATE_GET_IPSR
# define MINSTATE_GET_IPSR(reg)	mov reg=cr.ipsr
#endif
#ifndef MINSTATE_GET_IIP
# define MINSTATE_GET_IIP(reg)	mov reg=cr.iip
#endif
#ifndef MINSTATE_BSW_1
# define MINSTATE_BSW_1		bsw.1
#endif

#ifndef pKStk
# define pKStk	p2	/* entered from kernel stacks */
# define pUStk	p3	/* entered from user stacks */
#endif

/* PT(field) is the pt_regs offset (prelude / entry.h); PTD the step between two slots. */
#define PTD(to, from)	(PT(to) - PT(from))

#define MINSTATE_SAVE(COVER_INSN, READ_IFS, EXTRA)					\
	mov r16=IA64_KR(CURRENT);	/* current task */				\
	mov r22=ar.rsc;									\
	mov r26=r1;			/* r1 becomes our base pointer */		\
	mov r23=ar.unat;		/* before any st8.spill changes it */		\
	MINSTATE_GET_IPSR(r18);								\
	mov r24=ar.pfs;									\
	MINSTATE_GET_IIP(r20);								\
	mov r25=ar.fpsr;								\
	COVER_INSN;			/* a cover must end its group */		\
	;;										\
	READ_IFS;			/* r21 = cr.ifs, or 0 without a cover */	\
	adds r16=IA64_TASK_THREAD_ON_USTACK_OFFSET,r16;					\
	;;										\
	ld1 r17=[r16];			/* were we on the user stacks? */		\
	adds r1=-IA64_TASK_THREAD_ON_USTACK_OFFSET,r16;	/* r1 = current */		\
	;;										\
	invala;				/* the ALAT describes the old frame */		\
	cmp.eq pKStk,pUStk=r0,r17;							\
	;;										\
(pUStk)	mov ar.rsc=0;			/* enforced lazy: RSE state may be moved */	\
(pKStk)	adds r1=-IA64_PT_REGS_SIZE,r12;	/* kernel entry: pt_regs below sp */		\
(pUStk)	addl r27=IA64_RBS_OFFSET,r1;	/* user entry: current's kernel RBS */		\
	st1 [r16]=r0;			/* from now on we are on kernel stacks */	\
	;;										\
(pUStk)	mov r29=ar.rnat;								\
(pUStk)	mov r28=ar.bspstore;								\
(pUStk)	addl r1=IA64_STK_OFFSET-IA64_PT_REGS_SIZE,r1;	/* top of kernel stack */	\
	;;										\
(pUStk)	mov ar.bspstore=r27;		/* the dirty partition follows */		\
	;;										\
(pUStk)	mov r30=ar.bsp;									\
(pUStk)	mov.m ar.rsc=0x3;		/* eager again, pl 0 */				\
	adds r16=PT(CR_IPSR),r1;							\
	adds r17=PT(CR_IIP),r1;							\
	;;										\
	st8 [r16]=r18,PTD(CR_IFS, CR_IPSR);						\
	st8 [r17]=r20,PTD(AR_UNAT, CR_IIP);						\
	tbit.nz p15,p0=r18,IA64_PSR_I_BIT;	/* interrupts on when interrupted? */	\
(pUStk)	sub r30=r30,r27;		/* bytes to reload on the way out */		\
(pKStk)	mov r30=r0;									\
	mov r18=b0;									\
	;;										\
	st8 [r16]=r21,PTD(AR_PFS, CR_IFS);						\
	st8 [r17]=r23,PTD(AR_RSC, AR_UNAT);						\
	shl r30=r30,16;			/* as ar.rsc.loadrs */				\
	;;										\
	st8 [r16]=r24,PTD(AR_RNAT, AR_PFS);						\
	st8 [r17]=r22,PTD(AR_BSPSTORE, AR_RSC);						\
	;;										\
(pUStk)	st8 [r16]=r29;			/* user rnat and bspstore only */		\
(pUStk)	st8 [r17]=r28;									\
	adds r16=PT(PR),r1;								\
	adds r17=PT(B0),r1;								\
	;;										\
	st8 [r16]=r31,PTD(LOADRS, PR);							\
	st8 [r17]=r18,PTD(R1, B0);							\
	;;										\
	st8 [r16]=r30,PTD(R12, LOADRS);							\
.mem.offset PT(R1),0; st8.spill [r17]=r26,PTD(R13, R1);				\
	;;										\
.mem.offset PT(R12),0; st8.spill [r16]=r12,PTD(AR_FPSR, R12);				\
.mem.offset PT(R13),0; st8.spill [r17]=r13,PTD(R15, R13);				\
	adds r12=-16,r1;		/* kernel sp, 16 bytes of scratch */		\
	;;										\
	st8 [r16]=r25,PTD(R14, AR_FPSR);						\
.mem.offset PT(R15),0; st8.spill [r17]=r15,PTD(R2, R15);				\
	mov r13=IA64_KR(CURRENT);							\
	;;										\
.mem.offset PT(R14),0; st8.spill [r16]=r14,PTD(R3, R14);				\
.mem.offset PT(R2),0; st8.spill [r17]=r2;						\
	;;										\
.mem.offset PT(R3),0; st8.spill [r16]=r3;						\
	adds r17=PT(R8),r1;								\
	;;										\
	adds r16=PT(R9),r1;								\
.mem.offset PT(R8),0; st8.spill [r17]=r8,PTD(R10, R8);				\
	;;										\
.mem.offset PT(R9),0; st8.spill [r16]=r9,PTD(R11, R9);				\
.mem.offset PT(R10),0; st8.spill [r17]=r10;						\
	adds r2=PT(R16),r1;								\
	;;										\
.mem.offset PT(R11),0; st8.spill [r16]=r11;						\
	EXTRA;										\
	movl r1=__gp;			/* kernel global pointer */			\
	;;										\
	MINSTATE_BSW_1;			/* r16-r31 now name the interrupted values */	\
	;;

#define SAVE_MIN_COVER		MINSTATE_SAVE(cover, mov r21=cr.ifs, )
#define SAVE_MIN_COVER_R19	MINSTATE_SAVE(cover, mov r21=cr.ifs, mov r15=r19)
#define SAVE_MIN		MINSTATE_SAVE(, mov r21=r0, )

/*
 * SAVE_REST: the rest of pt_regs, with psr.ic=1 and bank 1 selected.
 * In: r2 = &pt_regs.r16, r3 = &pt_regs.r17, r12 = sp.  Uses r2, r3, r8-r11;
 * r14 and r15 are left alone for the caller.
 */
#define SPILL_PAIR(even, odd)					\
.mem.offset 0,0; st8.spill [r2]=even,16;			\
.mem.offset 8,0; st8.spill [r3]=odd,16;				\
	;;

#define SAVE_REST						\
	SPILL_PAIR(r16, r17)					\
	SPILL_PAIR(r18, r19)					\
	SPILL_PAIR(r20, r21)					\
	SPILL_PAIR(r22, r23)					\
	SPILL_PAIR(r24, r25)					\
	SPILL_PAIR(r26, r27)					\
	SPILL_PAIR(r28, r29)					\
	SPILL_PAIR(r30, r31)					\
	mov r8=ar.ccv;						\
	mov r9=b6;						\
	mov r10=b7;						\
	adds r11=PT(B6)+16,r12;				\
	;;							\
	st8 [r11]=r9,PTD(B7, B6);				\
	adds r2=PT(AR_CCV)+16,r12;				\
	adds r3=PT(F6)+16,r12;					\
	;;							\
	st8 [r11]=r10;						\
	st8 [r2]=r8;						\
	adds r2=PT(F7)+16,r12;					\
	;;							\
	stf.spill [r3]=f6,32;					\
	stf.spill [r2]=f7,32;					\
	;;							\
	stf.spill [r3]=f8,32;					\
	stf.spill [r2]=f9,32;					\
	;;							\
	stf.spill [r3]=f10;					\
	stf.spill [r2]=f11;					\
	;;

/*
 * Unwind description of the interruption frame SAVE_MIN/SAVE_REST built:
 * pt_regs sits 16 bytes above sp, the interrupted ip/pfs/pr in its slots.
 */
#define INTERRUPTION_FRAME_UNWIND				\
	.prologue;						\
	.unwabi 3, 'i';						\
	.fframe IA64_PT_REGS_SIZE+16;				\
	.spillsp rp, PT(CR_IIP)+16;				\
	.spillsp ar.pfs, PT(CR_IFS)+16;			\
	.spillsp ar.unat, PT(AR_UNAT)+16;			\
	.spillsp pr, PT(PR)+16;				\
	.body
