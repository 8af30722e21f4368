/*
 * real.c - resolving the real libc functions; see real.h.
 */
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard.h"

struct kb_real kb_real;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void die(const char *what, const char *name)
{
	/* write(2) directly: stdio may not be usable this early */
	static const char prefix[] = "kbfault: fatal: ";
	ssize_t ignored;
	ignored = write(2, prefix, sizeof prefix - 1);
	ignored = write(2, what, strlen(what));
	ignored = write(2, name, strlen(name));
	ignored = write(2, "\n", 1);
	(void)ignored;
	abort();
}

/* dlsym() returns void *; converting it to a function pointer is what
 * POSIX requires to work, but ISO C does not say so: go through memcpy. */
static void *lookup(const char *name, const void *ours, int required)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL && required)
		die("cannot find the real ", name);
	if (p != NULL && p == ours)
		die("the real function resolves to kbfault's own hook: ", name);
	return p;
}

#define RESOLVE(field, required)                                                         \
	do {                                                                             \
		void *p_ = lookup(#field, (const void *)(field), required);              \
		memcpy(&kb_real.field, &p_, sizeof p_);                                  \
	} while (0)

static void resolve(void)
{
	kb_guard_enter();
	RESOLVE(listen, 1);
	RESOLVE(accept, 1);
	RESOLVE(accept4, 1);
	RESOLVE(connect, 1);
	RESOLVE(close, 1);
	RESOLVE(shutdown, 1);
	RESOLVE(dup2, 1);
	RESOLVE(dup3, 1);
	/* glibc < 2.34 has neither: their hooks then fall back to raw calls */
	RESOLVE(close_range, 0);
	RESOLVE(closefrom, 0);
	RESOLVE(fclose, 1);
	RESOLVE(syscall, 1);
	kb_guard_leave();
}

void kb_real_resolve(void)
{
	int saved = errno;
	pthread_once(&resolve_once, resolve);
	errno = saved;
}

long kb_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret = kb_sys(nr, a1, a2, a3, a4, a5, a6);
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
