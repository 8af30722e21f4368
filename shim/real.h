/*
 * real.h - the libc functions behind our hooks.
 *
 * Resolved once under pthread_once, from whichever comes first: our
 * constructor or a hook called before it (another library's constructor
 * may close() before ours runs). Each name is looked up with
 * dlsym(RTLD_NEXT), and if that finds nothing, or finds a function of this
 * very library (calling it would recurse for ever), in the C library's own
 * handle; failing both, a socket function (listen to syscall below) has a
 * stand-in that makes the system call itself. The table starts out
 * holding those stand-ins, so none of those pointers is ever NULL - before
 * resolution, while it runs (a hook called by what dlsym() calls), or
 * after it, whatever the host did: every hook calls through them
 * unchecked. The signal functions have no stand-in: the C library must
 * have them (the older names fall back to signal()). kb_real_vfork may
 * stay NULL, which hook_vfork.c allows for.
 */
#ifndef KBFAULT_REAL_H
#define KBFAULT_REAL_H

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

struct kb_real {
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*shutdown)(int, int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*fclose)(FILE *);
	pid_t (*fork)(void);
	long (*syscall)(long, ...);
	/* hook_signal.c */
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	__sighandler_t (*signal)(int, __sighandler_t);
	__sighandler_t (*bsd_signal)(int, __sighandler_t);
	__sighandler_t (*sysv_signal)(int, __sighandler_t);
	__sighandler_t (*sysv_signal_)(int, __sighandler_t); /* __sysv_signal */
	__sighandler_t (*sigset)(int, __sighandler_t);
	int (*sigwait)(const sigset_t *, int *);
	int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
	int (*sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
};

/* Not declared under _GNU_SOURCE (POSIX 2008 dropped it), but exported
 * by glibc, and by us. */
__sighandler_t bsd_signal(int sig, __sighandler_t handler);

/* hidden: the hooks reach it with one RIP-relative load, no GOT */
extern struct kb_real kb_real __attribute__((visibility("hidden")));

/* The next vfork() (the C library's, or a sanitizer's): apart, because
 * the assembly of hook_vfork.c reads it by name. NULL until resolved,
 * which that assembly allows for. */
extern void *kb_real_vfork __attribute__((visibility("hidden")));

void kb_real_resolve(void);

/* Does this library come before the C library in the order symbols are
 * looked up - preloaded, or a dependency of the program loaded ahead of
 * libc - so that the program's calls reach our hooks at all? False when
 * it was loaded later (dlopen(), Python's ctypes.CDLL): then the hooks
 * see only calls made through its handle, and the shim stays off. */
bool kb_real_interposes(void);

/* A system call without libc and without our hooks; returns -1 and sets
 * errno on failure, like syscall(2). */
long kb_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* The same, inline and leaving errno alone: returns what the kernel
 * returns, -errno on failure. For a hook's question to the kernel on a
 * fast path, which then has no errno to save and restore. KB_HAVE_SYS
 * says whether this architecture has it; elsewhere it returns -ENOSYS,
 * and a caller must ask libc instead. */
#if defined(__x86_64__) || defined(__aarch64__)
#define KB_HAVE_SYS 1
#else
#define KB_HAVE_SYS 0
#endif
static inline long kb_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	ret = x0;
#else
	(void)nr; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6;
	ret = -ENOSYS;
#endif
	return ret;
}

#endif
