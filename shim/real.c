/*
 * real.c - resolving the real libc functions; see real.h.
 *
 * Our own hooks must never be taken for the real functions. Comparing a
 * lookup's result with `close` as this library sees it is not enough: in
 * a library loaded by dlopen(), `close` names the C library's function
 * (the program's lookup scope comes first), so a correct RTLD_NEXT result
 * looked like our own hook. What identifies ours is the object it lies in,
 * which dladdr() tells.
 */
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/lib-names.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guard.h"

struct kb_real kb_real;
void *kb_real_vfork;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* This library's load address, to tell our own functions from others. */
static void *self_base;

static bool ours(const void *p)
{
	Dl_info info;
	return p != NULL && dladdr(p, &info) != 0 && info.dli_fbase == self_base;
}

/* ---- stand-ins: the system call itself, should no libc function be
 * found (a C library that is not glibc's, a lookup scope that has none) */

static int raw_listen(int fd, int backlog)
{
	return (int)kb_raw_syscall(SYS_listen, fd, backlog, 0, 0, 0, 0);
}

static int raw_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return (int)kb_raw_syscall(SYS_accept4, fd, (long)addr, (long)len, 0, 0, 0);
}

static int raw_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return (int)kb_raw_syscall(SYS_accept4, fd, (long)addr, (long)len, flags, 0, 0);
}

static int raw_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)kb_raw_syscall(SYS_connect, fd, (long)addr, (long)len, 0, 0, 0);
}

static int raw_close(int fd)
{
	return (int)kb_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
}

static int raw_shutdown(int fd, int how)
{
	return (int)kb_raw_syscall(SYS_shutdown, fd, how, 0, 0, 0, 0);
}

static int raw_dup3(int oldfd, int newfd, int flags)
{
	return (int)kb_raw_syscall(SYS_dup3, oldfd, newfd, flags, 0, 0, 0);
}

static int raw_dup2(int oldfd, int newfd)
{
	/* dup3 refuses oldfd == newfd; dup2 just checks oldfd is valid */
	if (oldfd == newfd)
		return (int)kb_raw_syscall(SYS_fcntl, oldfd, F_GETFD, 0, 0, 0, 0) < 0 ? -1 : newfd;
	return raw_dup3(oldfd, newfd, 0);
}

static int raw_close_range(unsigned first, unsigned last, int flags)
{
	return (int)kb_raw_syscall(SYS_close_range, first, last, flags, 0, 0, 0);
}

static void raw_closefrom(int lowfd)
{
	int saved = errno;
	if (raw_close_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0) < 0) {
		/* a kernel before 5.9 */
		long max = sysconf(_SC_OPEN_MAX);
		for (long fd = lowfd < 0 ? 0 : lowfd; fd < max; fd++)
			raw_close((int)fd);
	}
	errno = saved;
}

/* Without the C library's fclose() the FILE cannot be freed: what is
 * buffered is written and the descriptor closed, and the FILE's memory is
 * lost. Only reachable with a C library whose fclose() cannot be found. */
static int raw_fclose(FILE *fp)
{
	int flushed = fflush(fp);
	int closed = raw_close(fileno(fp));
	return flushed == 0 && closed == 0 ? 0 : EOF;
}

/* Without the C library's fork() its handlers cannot run: the child is
 * made all the same, as a fork would make it. */
static pid_t raw_fork(void)
{
	return (pid_t)kb_raw_syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
}

static long raw_syscall(long nr, ...)
{
	va_list ap;

	va_start(ap, nr);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
	return kb_raw_syscall(nr, a1, a2, a3, a4, a5, a6);
}

/* The table starts out with the stand-ins, so that a hook called before
 * or during resolution (by what dlsym() itself calls) makes the system
 * call, and no caller ever meets a NULL; resolution puts the C library's
 * functions in their place. The signal functions have no stand-in: the
 * C library has them all (hook_signal.c asks before using one). */
struct kb_real kb_real = {
	.listen = raw_listen,
	.accept = raw_accept,
	.accept4 = raw_accept4,
	.connect = raw_connect,
	.close = raw_close,
	.shutdown = raw_shutdown,
	.dup2 = raw_dup2,
	.dup3 = raw_dup3,
	.close_range = raw_close_range,
	.closefrom = raw_closefrom,
	.fclose = raw_fclose,
	.fork = raw_fork,
	.syscall = raw_syscall,
};

/* ---- resolution -------------------------------------------------------- */

/* Only when RTLD_NEXT found nothing that is not ours: dlopen() allocates,
 * which start-up otherwise never does (docs/design.md). */
static void *libc_handle(void)
{
	static void *h;
	if (h == NULL)
		h = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
	return h;
}

/* The next definition of name that is not ours: after this library in
 * the lookup order, else the C library's own; NULL if neither has one. */
static void *lookup(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL || ours(p)) {
		void *h = libc_handle();
		p = h ? dlsym(h, name) : NULL;
	}
	return p == NULL || ours(p) ? NULL : p;
}

/* dlsym() returns void *; converting it to a function pointer is what
 * POSIX requires to work, but ISO C does not say so: go through memcpy. */
#define RESOLVE(field)                                                                   \
	do {                                                                             \
		void *p_ = lookup(#field);                                               \
		if (p_ != NULL)                                                          \
			memcpy(&kb_real.field, &p_, sizeof p_);                          \
	} while (0)

/* The same for the signal functions (hook_signal.c), which have no
 * stand-in of their own: the C library has them all, and a missing one of
 * the older names falls back to signal() below. */
#define RESOLVE_AS(field, name)                                                          \
	do {                                                                             \
		void *p_ = lookup(name);                                                 \
		memcpy(&kb_real.field, &p_, sizeof p_);                                  \
	} while (0)

static void resolve(void)
{
	Dl_info info;

	kb_guard_enter();
	if (dladdr((void *)&kb_real_resolve, &info) != 0)
		self_base = info.dli_fbase;
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(connect);
	RESOLVE(close);
	RESOLVE(shutdown);
	RESOLVE(dup2);
	RESOLVE(dup3);
	/* glibc < 2.34 has neither */
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(fclose);
	RESOLVE(fork);
	RESOLVE(syscall);
	/* no stand-in: hook_vfork.c makes the system call itself */
	__atomic_store_n(&kb_real_vfork, lookup("vfork"), __ATOMIC_RELEASE);
	RESOLVE_AS(sigaction, "sigaction");
	RESOLVE_AS(signal, "signal");
	RESOLVE_AS(bsd_signal, "bsd_signal");
	RESOLVE_AS(sysv_signal, "sysv_signal");
	RESOLVE_AS(sysv_signal_, "__sysv_signal");
	RESOLVE_AS(sigset, "sigset"); /* deprecated, and still used */
	RESOLVE_AS(sigwait, "sigwait");
	RESOLVE_AS(sigwaitinfo, "sigwaitinfo");
	RESOLVE_AS(sigtimedwait, "sigtimedwait");
	/* the exported functions' fast paths need something to jump to */
	if (!kb_real.bsd_signal)
		kb_real.bsd_signal = kb_real.signal;
	if (!kb_real.sysv_signal)
		kb_real.sysv_signal = kb_real.signal;
	if (!kb_real.sysv_signal_)
		kb_real.sysv_signal_ = kb_real.sysv_signal;
	if (!kb_real.sigset)
		kb_real.sigset = kb_real.signal;
	kb_guard_leave();
}

void kb_real_resolve(void)
{
	int saved = errno;
	pthread_once(&resolve_once, resolve);
	errno = saved;
}

/*
 * The link map lists the loaded objects in load order, which is also the
 * order the program's symbol lookups follow: the program, what it
 * preloads, its dependencies (libc among them), then whatever dlopen()
 * added. So our hooks are the program's `close` exactly when our object
 * comes before the C library's in that list. The C library's entry is
 * the one holding gnu_get_libc_version(), which only it defines (asked
 * with dladdr1(), which, unlike dlopen(), allocates nothing). Should either
 * entry not be found, assume we were preloaded, as before.
 */
bool kb_real_interposes(void)
{
	struct link_map *self = NULL, *libc = NULL;
	Dl_info info;

	if (dladdr1((void *)&gnu_get_libc_version, &info, (void **)&libc, RTLD_DL_LINKMAP) == 0 || libc == NULL)
		return true;
	if (dladdr1((void *)&kb_real_interposes, &info, (void **)&self, RTLD_DL_LINKMAP) == 0 || self == NULL)
		return true;
	for (const struct link_map *m = self; m != NULL; m = m->l_next)
		if (m == libc)
			return true;
	return false;
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
