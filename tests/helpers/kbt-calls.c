/*
 * kbt-calls - hosts that make the intercepted calls in unusual ways, for
 * tests/preload/test_calls_hostile.c. It knows nothing of kbfault (but
 * for `dlopen`, which loads it by name); it says what it saw on stdout,
 * one line per thing tried, so a test can compare a run under the shim
 * with a run without it.
 *
 *   kbt-calls dlopen LIB [global]   dlopen() LIB and call the libc functions
 *                                   it exports through the handle
 *   kbt-calls badconnect            connect() (and syscall(SYS_connect)) with
 *                                   addresses libc answers with EFAULT
 *   kbt-calls badaccept             accept(), accept4() and syscall(SYS_accept4)
 *                                   with bad address and length pointers, one
 *                                   waiting connection per try
 *   kbt-calls vfork                 a vfork child closes and dup2()s the
 *                                   parent's tracked sockets, then the parent
 *                                   closes and accepts as usual
 *   kbt-calls udp connect|abort|listen
 *                                   connect() or listen() on UDP sockets, then
 *                                   the same on TCP ones
 *   kbt-calls mptcp                 listen() on an MPTCP socket (a stream socket
 *                                   that is not TCP), accept and close a
 *                                   connection to it
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "?";
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return in;
}

static int tcp_listener(int *port)
{
	struct sockaddr_in in = loopback(0);
	socklen_t len = sizeof in;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, 64) < 0) {
		printf("error listen %s\n", ename(errno));
		exit(1);
	}
	getsockname(fd, (struct sockaddr *)&in, &len);
	*port = ntohs(in.sin_port);
	return fd;
}

/* A client connection to port, left for the listener to accept. */
static int client(int port)
{
	struct sockaddr_in in = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof in) < 0) {
		printf("error connect %s\n", ename(errno));
		exit(1);
	}
	return fd;
}

/* Did the peer of fd end the stream (or reset it) within ms? */
static bool ended(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	if (poll(&p, 1, ms) != 1)
		return false;
	return read(fd, &c, 1) <= 0;
}

/* ---- dlopen ------------------------------------------------------------ */

static int failures;

static void expect(const char *what, long got, long want, int err)
{
	if (got == want) {
		printf("%s ok\n", what);
	} else {
		printf("%s FAILED: %ld (%s), expected %ld\n", what, got, got < 0 ? ename(err) : "-", want);
		failures++;
	}
}

#define SYM(h, name, type) ((type)dlsym(h, name))

static int do_dlopen(const char *lib, bool global)
{
	void *h = dlopen(lib, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	if (h == NULL) {
		printf("dlopen FAILED: %s\n", dlerror());
		return 1;
	}
	int (*k_close)(int) = SYM(h, "close", int (*)(int));
	int (*k_listen)(int, int) = SYM(h, "listen", int (*)(int, int));
	int (*k_connect)(int, const struct sockaddr *, socklen_t) =
		SYM(h, "connect", int (*)(int, const struct sockaddr *, socklen_t));
	int (*k_accept)(int, struct sockaddr *, socklen_t *) =
		SYM(h, "accept", int (*)(int, struct sockaddr *, socklen_t *));
	int (*k_accept4)(int, struct sockaddr *, socklen_t *, int) =
		SYM(h, "accept4", int (*)(int, struct sockaddr *, socklen_t *, int));
	int (*k_shutdown)(int, int) = SYM(h, "shutdown", int (*)(int, int));
	int (*k_dup2)(int, int) = SYM(h, "dup2", int (*)(int, int));
	int (*k_dup3)(int, int, int) = SYM(h, "dup3", int (*)(int, int, int));
	int (*k_close_range)(unsigned, unsigned, int) = SYM(h, "close_range", int (*)(unsigned, unsigned, int));
	void (*k_closefrom)(int) = SYM(h, "closefrom", void (*)(int));
	int (*k_fclose)(FILE *) = SYM(h, "fclose", int (*)(FILE *));
	long (*k_syscall)(long, ...) = SYM(h, "syscall", long (*)(long, ...));
	pid_t (*k_vfork)(void) = SYM(h, "vfork", pid_t (*)(void));
	const char *(*k_version)(void) = SYM(h, "kbfault_version", const char *(*)(void));

	if (!k_close || !k_listen || !k_connect || !k_accept || !k_accept4 || !k_shutdown || !k_dup2 ||
	    !k_dup3 || !k_close_range || !k_closefrom || !k_fclose || !k_syscall || !k_version) {
		printf("dlsym FAILED\n");
		return 1;
	}
	errno = 0;
	expect("close(-1)", k_close(-1), -1, errno);
	expect("close(-1) errno", errno, EBADF, 0);

	struct sockaddr_in in = loopback(0);
	socklen_t len = sizeof in;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bind(l, (struct sockaddr *)&in, sizeof in);
	expect("listen", k_listen(l, 8), 0, errno);
	getsockname(l, (struct sockaddr *)&in, &len);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	expect("connect", k_connect(c, (struct sockaddr *)&in, sizeof in), 0, errno);
	int a = k_accept4(l, NULL, NULL, SOCK_CLOEXEC);
	expect("accept4", a >= 0, 1, errno);
	int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	k_connect(c2, (struct sockaddr *)&in, sizeof in);
	int a2 = k_accept(l, NULL, NULL);
	expect("accept", a2 >= 0, 1, errno);
	expect("dup2", k_dup2(a, 150), 150, errno);
	expect("dup3", k_dup3(150, 151, O_CLOEXEC), 151, errno);
	expect("shutdown", k_shutdown(151, SHUT_WR), 0, errno);
	expect("close", k_close(150), 0, errno);
	expect("close_range", k_close_range(151, 151, 0), 0, errno);
	FILE *f = fdopen(a, "r+");
	expect("fclose", f ? k_fclose(f) : -2, 0, errno);
	expect("end of stream seen by the peer", ended(c, 2000), 1, 0);
	expect("syscall(SYS_getpid)", k_syscall(SYS_getpid), getpid(), errno);
	if (k_vfork) {
		pid_t pid = k_vfork();
		if (pid == 0)
			_exit(7);
		int st = 0;
		waitpid(pid, &st, 0);
		expect("vfork", WIFEXITED(st) ? WEXITSTATUS(st) : -1, 7, 0);
	}
	k_closefrom(200);
	printf("version %s\n", k_version());
	close(a2);
	close(c);
	close(c2);
	close(l);
	dlclose(h);
	return failures ? 1 : 0;
}

/* ---- bad pointers ------------------------------------------------------ */

/* A page that is certainly not mapped: the middle one of three, unmapped.
 * Checked before each use (mincore() says ENOMEM for a hole), so that a
 * mapping made since in the hole shows as such rather than as a pass. */
static void *hole(void)
{
	static char *page;
	unsigned char vec;
	if (page == NULL) {
		char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			exit(2);
		munmap(p + 4096, 4096);
		page = p + 4096;
	}
	if (mincore(page, 4096, &vec) == 0 || errno != ENOMEM) {
		printf("error the unmapped page is mapped again\n");
		exit(2);
	}
	return page;
}

struct bad {
	const char *name;
	void *p;
};

static void bad_pointers(struct bad out[3])
{
	out[0] = (struct bad){ "eight", (void *)8 };
	out[1] = (struct bad){ "top", (void *)(intptr_t)-4096 };
	out[2] = (struct bad){ "unmapped", hole() };
}

static void report(const char *what, const char *name, long rc)
{
	int e = errno;
	if (rc < 0)
		printf("%s %s rc=-1 errno=%s\n", what, name, ename(e));
	else
		printf("%s %s rc=ok\n", what, name);
}

static int do_badconnect(void)
{
	struct bad b[3];
	bad_pointers(b);
	for (int i = 0; i < 3; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		report("connect", b[i].name, connect(fd, b[i].p, sizeof(struct sockaddr_in)));
		report("syscall-connect", b[i].name, syscall(SYS_connect, fd, b[i].p, sizeof(struct sockaddr_in)));
		close(fd);
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		report("udp-connect", b[i].name, connect(u, b[i].p, sizeof(struct sockaddr_in)));
		close(u);
	}
	/* and the shim still does its work on a good one */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in in = loopback(9);
	report("connect", "good", connect(fd, (struct sockaddr *)&in, sizeof in));
	close(fd);
	return 0;
}

enum how { ACCEPT, ACCEPT4, SYSCALL };

static long accept_as(enum how how, int l, void *addr, socklen_t *len)
{
	switch (how) {
	case ACCEPT:
		return accept(l, addr, len);
	case ACCEPT4:
		return accept4(l, addr, len, SOCK_CLOEXEC);
	default:
		return syscall(SYS_accept4, l, addr, len, SOCK_CLOEXEC);
	}
}

/* A listener, one waiting connection, one accept with the given
 * pointers: what it returned, and (when it succeeded) all closed again.
 * A listener each, so that what an emulated queue does to one (pause,
 * resume) stays with it. */
static void accept_case(enum how how, const char *what, const char *name, void *addr, socklen_t *len)
{
	int port;
	int l = tcp_listener(&port);
	int c = client(port);
	long a = accept_as(how, l, addr, len);
	report(what, name, a);
	if (a >= 0)
		close((int)a);
	close(c);
	close(l);
}

static int do_badaccept(void)
{
	static const char *const names[] = { "accept", "accept4", "syscall-accept4" };
	struct bad b[3];

	bad_pointers(b);
	for (enum how how = ACCEPT; how <= SYSCALL; how++) {
		char what[64];
		for (int i = 0; i < 3; i++) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss, zero = 0;
			snprintf(what, sizeof what, "%s-len", names[how]);
			accept_case(how, what, b[i].name, &ss, b[i].p);
			snprintf(what, sizeof what, "%s-addr", names[how]);
			accept_case(how, what, b[i].name, b[i].p, &len);
			/* nothing to write: the kernel never looks at the address */
			snprintf(what, sizeof what, "%s-addr-len0", names[how]);
			accept_case(how, what, b[i].name, b[i].p, &zero);
		}
	}
	/* a length kept where a host may keep it, in a heap object: its
	 * peer is still known */
	struct conn {
		struct sockaddr_storage ss;
		socklen_t len;
	} *heap = malloc(sizeof *heap);
	heap->len = sizeof heap->ss;
	accept_case(ACCEPT4, "accept4-heap", "good", &heap->ss, &heap->len);
	for (int i = 0; i < 3; i++) {
		heap->len = 0;
		accept_case(ACCEPT4, "accept4-heap-addr-len0", b[i].name, b[i].p, &heap->len);
	}
	free(heap);
	return 0;
}

/* ---- vfork ------------------------------------------------------------- */

static int do_vfork(void)
{
	int port;
	int l = tcp_listener(&port);
	int peer1 = client(port);
	int c1 = accept(l, NULL, NULL);

	pid_t pid = vfork();
	if (pid == 0) {
		/* what CPython's subprocess does between vfork and exec, and a
		 * socket handed to a child as its stdin; the child's descriptor
		 * table is its own, its memory is its parent's */
		dup2(c1, 0);
		close(c1);
		close(l);
		close_range(3, ~0U, 0);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	/* stdin is the parent's own: whatever the child put on its 0 */
	report("close-stdin", "parent", close(0));
	report("close-conn", "parent", close(c1));
	printf("peer1 ended %s\n", ended(peer1, 300) ? "yes" : "no");
	int peer2 = client(port);
	int c2 = accept(l, NULL, NULL);
	report("accept", "second", c2);
	report("close-conn", "second", close(c2));
	printf("peer2 ended %s\n", ended(peer2, 300) ? "yes" : "no");
	return 0;
}

/* ---- UDP --------------------------------------------------------------- */

static void udp_connect(void)
{
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in in = loopback(9), got;
	socklen_t len = sizeof got;
	long long t0 = now_ms();
	report("udp-connect", "rc", connect(u, (struct sockaddr *)&in, sizeof in));
	printf("udp-connect ms %lld\n", now_ms() - t0);
	if (getpeername(u, (struct sockaddr *)&got, &len) == 0)
		printf("udp-connect peer-port %d\n", ntohs(got.sin_port));
	close(u);
}

static int do_udp(const char *mode)
{
	if (strcmp(mode, "listen") == 0) {
		struct sockaddr_in in = loopback(0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		bind(u, (struct sockaddr *)&in, sizeof in);
		report("udp-listen", "rc", listen(u, 5));
		close(u);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bind(t, (struct sockaddr *)&in, sizeof in);
		report("tcp-listen", "rc", listen(t, 5));
		close(t);
		return 0;
	}
	udp_connect();
	if (strcmp(mode, "abort") == 0)
		return 0;
	int port;
	int l = tcp_listener(&port);
	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in in = loopback(port);
	long long t0 = now_ms();
	report("tcp-connect", "rc", connect(t, (struct sockaddr *)&in, sizeof in));
	printf("tcp-connect ms %lld\n", now_ms() - t0);
	close(t);
	close(l);
	return 0;
}

static int do_mptcp(void)
{
	struct sockaddr_in in = loopback(0);
	socklen_t len = sizeof in;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262 /* IPPROTO_MPTCP */);
	if (l < 0) {
		printf("mptcp unsupported %s\n", ename(errno));
		return 0;
	}
	bind(l, (struct sockaddr *)&in, sizeof in);
	report("mptcp-listen", "rc", listen(l, 5));
	getsockname(l, (struct sockaddr *)&in, &len);
	int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262);
	report("mptcp-connect", "rc", connect(peer, (struct sockaddr *)&in, sizeof in));
	int c = accept(l, NULL, NULL);
	report("mptcp-close", "rc", close(c));
	printf("peer ended %s\n", ended(peer, 1000) ? "yes" : "no");
	/* and the other way round: the client's close */
	int peer2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262);
	connect(peer2, (struct sockaddr *)&in, sizeof in);
	int c2 = accept(l, NULL, NULL);
	report("mptcp-close", "client", close(peer2));
	printf("client's peer ended %s\n", ended(c2, 1000) ? "yes" : "no");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "dlopen") == 0)
		return do_dlopen(argv[2], argc >= 4 && strcmp(argv[3], "global") == 0);
	if (argc >= 2 && strcmp(argv[1], "badconnect") == 0)
		return do_badconnect();
	if (argc >= 2 && strcmp(argv[1], "badaccept") == 0)
		return do_badaccept();
	if (argc >= 2 && strcmp(argv[1], "vfork") == 0)
		return do_vfork();
	if (argc >= 3 && strcmp(argv[1], "udp") == 0)
		return do_udp(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "mptcp") == 0)
		return do_mptcp();
	fprintf(stderr, "usage: kbt-calls dlopen LIB [global] | badconnect | badaccept | vfork | udp connect|abort|listen | mptcp\n");
	return 2;
}
