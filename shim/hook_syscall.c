/*
 * hook_syscall.c - syscall(): node's libuv, among others, closes sockets
 * with syscall(SYS_close, fd), which no close() hook ever sees. The
 * system calls kbfault intercepts are routed to the same slow paths as
 * their libc wrappers; every other number goes straight through.
 *
 * syscall() is variadic: it always reads six arguments, as glibc's own
 * implementation does, since the kernel ABI passes them in registers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "real.h"
#include "shim.h"

/* The system calls this hook routes to kbfault. Every other number -
 * futex, open, read, mmap from whatever library calls syscall() directly -
 * goes straight through, and never so much as starts kbfault: jemalloc
 * calls syscall(SYS_open) while holding its initialisation lock. */
static bool intercepted(long nr)
{
	switch (nr) {
	case SYS_close:
	case SYS_shutdown:
	case SYS_listen:
#ifdef SYS_accept
	case SYS_accept:
#endif
	case SYS_accept4:
	case SYS_connect:
	case SYS_close_range:
#ifdef SYS_dup2
	case SYS_dup2:
#endif
	case SYS_dup3:
		return true;
	default:
		return false;
	}
}

static long slow(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	if (!kb_armed() || kb_guarded()) {
		return kb_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	}
	switch (nr) {
	case SYS_close:
		return kb_close_hook((int)a1, "syscall");
	case SYS_shutdown:
		return kb_shutdown_hook((int)a1, (int)a2, "syscall");
	case SYS_listen:
		return kb_listen_hook((int)a1, (int)a2, "syscall");
#ifdef SYS_accept
	case SYS_accept:
		return kb_accept_hook((int)a1, (struct sockaddr *)a2, (socklen_t *)a3, 0, false, "syscall");
#endif
	case SYS_accept4:
		return kb_accept_hook((int)a1, (struct sockaddr *)a2, (socklen_t *)a3, (int)a4, true,
				      "syscall");
	case SYS_connect:
		return kb_connect_hook((int)a1, (const struct sockaddr *)a2, (socklen_t)a3, "syscall");
	case SYS_close_range:
		return kb_close_range_hook((unsigned)a1, (unsigned)a2, (int)a3, "syscall");
#ifdef SYS_dup2
	case SYS_dup2:
		return kb_dup_hook((int)a1, (int)a2, 0, false, "syscall");
#endif
	case SYS_dup3:
		return kb_dup_hook((int)a1, (int)a2, (int)a3, true, "syscall");
	default:
		return kb_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	}
}

/* Out of line: the exported function keeps no stack frame. */
__attribute__((noinline)) static long syscall_armed(long nr, long a1, long a2, long a3, long a4, long a5,
						    long a6)
{
	/* a close of a descriptor that is none of ours, like any number we
	 * do not intercept, goes straight through */
	if (!intercepted(nr) || (nr == SYS_close && kb_mode_get() == KB_MODE_ARMED && kb_fd_untracked((int)a1))) {
		return kb_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	}
	return slow(nr, a1, a2, a3, a4, a5, a6);
}

#if defined(__x86_64__) || defined(__aarch64__)
/* On these machines a call to the variadic syscall() passes its arguments
 * exactly as it would pass seven longs (registers, then one stack slot
 * that may be unused), which is how glibc's own assembly reads them.
 * Defined so, the hook needs no va_start - which would spill every
 * argument register on every call - and its pass-through stays short. */
KB_API long kb_syscall_entry(long nr, long a1, long a2, long a3, long a4, long a5, long a6) __asm__("syscall");

KB_API long kb_syscall_entry(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
#else
KB_API long syscall(long nr, ...)
{
	va_list ap;

	va_start(ap, nr);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
#endif
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1))
		return kb_real.syscall(nr, a1, a2, a3, a4, a5, a6);
	return syscall_armed(nr, a1, a2, a3, a4, a5, a6);
}
