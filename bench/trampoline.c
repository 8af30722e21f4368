/*
 * trampoline.c - libkbb-trampoline.so, the floor for any preload shim.
 *
 * Interposes the same socket calls as kbfault and does nothing but jump
 * to the next definition, resolved once with dlsym(RTLD_NEXT) in the
 * constructor. What it adds per call (a load and an indirect jump) is the
 * least an interposing library can cost; the benchmark shows kbfault's
 * pass-through next to it.
 *
 * Deliberately without kbfault's care for hooks that run before our
 * constructor: the benchmark loop only calls them from main().
 */
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static int (*next_close)(int);
static int (*next_listen)(int, int);
static int (*next_accept)(int, struct sockaddr *, socklen_t *);
static int (*next_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*next_connect)(int, const struct sockaddr *, socklen_t);
static int (*next_shutdown)(int, int);
static int (*next_dup2)(int, int);

__attribute__((constructor)) static void resolve(void)
{
	next_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	next_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	next_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	next_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	next_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	next_shutdown = (int (*)(int, int))dlsym(RTLD_NEXT, "shutdown");
	next_dup2 = (int (*)(int, int))dlsym(RTLD_NEXT, "dup2");
}

EXPORT int close(int fd)
{
	return next_close(fd);
}

EXPORT int listen(int fd, int backlog)
{
	return next_listen(fd, backlog);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return next_accept(fd, addr, len);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return next_accept4(fd, addr, len, flags);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return next_connect(fd, addr, len);
}

EXPORT int shutdown(int fd, int how)
{
	return next_shutdown(fd, how);
}

EXPORT int dup2(int oldfd, int newfd)
{
	return next_dup2(oldfd, newfd);
}
