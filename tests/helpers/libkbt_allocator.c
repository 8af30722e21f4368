/*
 * libkbt_allocator.so - an allocator that behaves like jemalloc at start:
 * the first allocation initialises it, and while it does (holding its
 * lock) it makes raw system calls through syscall(), one of them a close.
 * If anything it calls allocates again, that would deadlock on the lock;
 * here it exits with status 99 instead, so a test can see it.
 *
 * Its constructor allocates, so its initialisation runs before kbfault's
 * constructor when it is preloaded after libkbfault.so (constructors run
 * in reverse order of LD_PRELOAD): the order in which redis, whose
 * libgpg-error allocates from a constructor, met jemalloc.
 *
 * It forwards to glibc's allocator (__libc_malloc and friends) otherwise.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

/* the build hides symbols by default; these must interpose */
#define EXPORT __attribute__((visibility("default")))

static int initialised, initialising;

static void init_once(void)
{
	static const char msg[] = "libkbt_allocator: re-entered while initialising\n";
	if (initialising) {
		ssize_t ignored = write(2, msg, sizeof msg - 1);
		(void)ignored;
		_exit(99);
	}
	if (initialised)
		return;
	initialising = 1;
	/* what jemalloc does: read a /proc file with raw system calls */
	long fd = syscall(SYS_open, "/proc/sys/vm/overcommit_memory", 0);
	if (fd >= 0) {
		char c;
		syscall(SYS_read, fd, &c, 1);
		syscall(SYS_close, fd);
	}
	initialised = 1;
	initialising = 0;
}

EXPORT void *malloc(size_t n)
{
	init_once();
	return __libc_malloc(n);
}

EXPORT void *calloc(size_t n, size_t m)
{
	init_once();
	return __libc_calloc(n, m);
}

EXPORT void *realloc(void *p, size_t n)
{
	init_once();
	return __libc_realloc(p, n);
}

EXPORT void free(void *p)
{
	__libc_free(p);
}

__attribute__((constructor)) static void allocate_early(void)
{
	/* volatile: the compiler would drop a malloc that is only freed */
	void *volatile p = malloc(16);
	free(p);
}
