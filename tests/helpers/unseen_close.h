/*
 * unseen_close.h - close() as an inline system call, which no preloaded
 * library sees: what a program that makes its own system calls (or glibc
 * internally) does. For the test helpers; -ENOSYS where there is none.
 */
#ifndef KBT_UNSEEN_CLOSE_H
#define KBT_UNSEEN_CLOSE_H

#include <errno.h>
#include <sys/syscall.h>

static inline long unseen_close(int fd)
{
#if defined(__x86_64__)
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_close), "D"((long)fd) : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_close;
	register long x0 __asm__("x0") = fd;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
	return x0;
#else
	(void)fd;
	return -ENOSYS;
#endif
}

#endif
