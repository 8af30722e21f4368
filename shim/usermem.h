/*
 * usermem.h - the host's memory, when a hook must look at it before the
 * kernel has.
 *
 * libc's connect() and accept() never touch the caller's pointers: the
 * kernel reads and writes them, and answers a bad one with EFAULT. A hook
 * that dereferenced them itself would turn that EFAULT into SIGSEGV. So a
 * hook reads the host's memory only where the kernel has shown it good (a
 * call that succeeded), or through these:
 *
 * kb_peek / kb_poke  copy through process_vm_readv/writev on our own
 *         process, which fails with EFAULT where a load or store would
 *         fault. Two system calls (getpid and the copy): slow paths only.
 *         Where a sandbox refuses them, a plausible pointer (above the
 *         first page, below the top of user space) is then used directly,
 *         and one into unmapped memory crashes the host as it would have
 *         before (README, Limits).
 *
 * kb_on_stack  no system call, for accept()'s per-connection path: does p
 *         lie above `anchor` (a variable of the hook's own frame) and
 *         within KB_STACK_WINDOW of it? Every caller's local variables do,
 *         and the stack between a thread's stack pointer and its top is
 *         mapped, so they can be read. Anything else is not read before
 *         the call. What remains: a pointer into that window that lies
 *         beyond the top of the thread's stack (no caller's variable, so
 *         never a pointer a program means) is read, and if it is not
 *         mapped, the host crashes (README, Limits).
 */
#ifndef KBFAULT_USERMEM_H
#define KBFAULT_USERMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies n bytes of the host's memory at src to dst (ours). Returns 0, or
 * -EFAULT if src..src+n is not all readable. */
int kb_peek(void *dst, const void *src, size_t n);

/* Copies n bytes from src (ours) into the host's memory at dst. Returns
 * 0, or -EFAULT if dst..dst+n is not all writable. */
int kb_poke(void *dst, const void *src, size_t n);

/* The frames between a hook's own variables and its caller's are a few
 * hundred bytes; a caller's locals lie within a few KiB above them. */
#define KB_STACK_WINDOW (64 * 1024)

static inline bool kb_on_stack(const void *p, size_t n, const void *anchor)
{
	return (uintptr_t)p - (uintptr_t)anchor <= KB_STACK_WINDOW - n;
}

#endif
