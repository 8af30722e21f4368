/*
 * hook_vfork.c - vfork(): a child that runs on its parent's memory.
 *
 * Between vfork() and exec, the child shares its parent's memory - the
 * descriptor table, the counters, the guard of the thread that called
 * vfork - but has a copy of its descriptors. Any hook it ran would act on
 * the parent's state for descriptors that are the child's: CPython's
 * subprocess calls close_range() in the child, and the parent's listener
 * was forgotten and its connections marked as leaked. So the child runs
 * with that thread's guard raised (guard.h): every hook is a pass-through
 * and writes nothing. The parent gets back the guard's depth from before
 * the call once it resumes, which is only after the child has exec'd or
 * exited.
 *
 * This cannot be written in C: the child returns from vfork() first, and
 * everything it then does overwrites the stack below its caller's frame,
 * where a C function would keep its return address and saved registers.
 * Like glibc's own vfork, the assembly keeps nothing on the stack across
 * the call: the return address and the depth wait in two thread-local
 * words (initial-exec, like the guard, so the child finds them where the
 * parent left them). It calls the next vfork() (the C library's, or a
 * sanitizer's wrapper, which must see the call), or makes the system call
 * itself if none has been resolved yet.
 *
 * The two words are the calling thread's, and only one vfork() of that
 * thread can be in them at a time: a vfork() made by the child itself
 * before it execs, or by a signal handler that interrupted this one,
 * would overwrite them - neither is allowed of a program (POSIX lets a
 * vfork child only exec or _exit, and vfork() is not async-signal-safe).
 *
 * x86_64 only. Elsewhere vfork() is not interposed, and a vfork child's
 * hooks still act on its parent's state (README, Limits).
 */
#include <errno.h>
#include <stddef.h>

#include "guard.h"
#include "real.h"
#include "shim.h"

#if defined(__x86_64__)

/* Read by the assembly below (by name), written by nothing else. */
struct kb_vfork_save {
	void *ret;   /* the caller's return address */
	int depth;   /* kb_guard_depth before the call */
};
__thread struct kb_vfork_save kb_vfork_saved
	__attribute__((tls_model("initial-exec"), visibility("hidden"), used));

/* The system call failed (no child): errno, as libc's vfork sets it. */
__attribute__((used, visibility("hidden"))) void kb_vfork_failed(int e);
void kb_vfork_failed(int e)
{
	errno = e;
}

_Static_assert(offsetof(struct kb_vfork_save, depth) == 8, "the assembly reads the depth at 8");

#if defined(__CET__)
#define KB_ENDBR "endbr64\n"
#else
#define KB_ENDBR ""
#endif

__asm__(
	".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	".p2align 4\n"
	"vfork:\n"
	".cfi_startproc\n"
	KB_ENDBR
	/* the depth now, for the parent; then raise it, for the child */
	"	movq kb_guard_depth@gottpoff(%rip), %rdx\n"
	"	movq kb_vfork_saved@gottpoff(%rip), %rcx\n"
	"	movl %fs:(%rdx), %eax\n"
	"	movl %eax, %fs:8(%rcx)\n"
	"	addl $1, %fs:(%rdx)\n"
	/* the return address off the stack, into its thread-local word */
	"	popq %rsi\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_register %rip, %rsi\n"
	"	movq %rsi, %fs:(%rcx)\n"
	".cfi_undefined %rip\n"
	"	movq kb_real_vfork(%rip), %rax\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	call *%rax\n"
	"	jmp 2f\n"
	"1:	movl $58, %eax\n" /* SYS_vfork */
	"	syscall\n"
	"	cmpq $-4095, %rax\n"
	"	jb 2f\n"
	"	negl %eax\n"
	"	movl %eax, %edi\n"
	"	call kb_vfork_failed\n"
	"	movq $-1, %rax\n"
	/* in the child (0) and in the parent (a pid, or -1): the return
	 * address back; the parent's depth back, the child's stays raised */
	"2:	movq kb_vfork_saved@gottpoff(%rip), %rcx\n"
	"	pushq %fs:(%rcx)\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_offset %rip, -8\n"
	"	testl %eax, %eax\n"
	"	jz 3f\n"
	"	movl %fs:8(%rcx), %edx\n"
	"	movq kb_guard_depth@gottpoff(%rip), %rcx\n"
	"	movl %edx, %fs:(%rcx)\n"
	"3:	ret\n"
	".cfi_endproc\n"
	".size vfork, .-vfork\n");

#endif
