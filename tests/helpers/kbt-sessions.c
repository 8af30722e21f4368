/*
 * kbt-sessions - small programs around the session model, for the preload
 * tests. It knows nothing of kbfault; it says what it saw on stdout.
 *
 *   kbt-sessions sigaccept N    accept N connections from its own clients,
 *                               keeping a few waiting, while a 1 ms SIGALRM
 *                               handler accepts from the same (non-blocking)
 *                               listener; prints "done BY-MAIN BY-HANDLER"
 *   kbt-sessions cuts           three sessions, the first closed, then a
 *                               fourth: says which clients saw a reset
 *   kbt-sessions clone [clone3] listen, make a child with a raw clone() (or
 *                               clone3()) system call, so that no fork
 *                               handler runs, which listens once and leaves;
 *                               then listen again
 *   kbt-sessions forkconnect PORT
 *                               a child connects to 127.0.0.1:PORT, has one
 *                               exchange, shuts down and exit()s without
 *                               close(); then this process connects there:
 *                               "second ok" or "second refused"
 *   kbt-sessions reused         a session's number closed behind kbfault's
 *                               back and given to another connection, which
 *                               its peer then resets; a third session's
 *                               close makes the model cut: prints the two
 *                               clients' ports, "first P" and "second P"
 *   kbt-sessions clonesession   two sessions; a child made by a raw clone()
 *                               closes its copy of the first and leaves;
 *                               then says whether the second's client is
 *                               still connected ("second open")
 *   kbt-sessions overflow N     N sessions held open at once (its descriptor
 *                               limit raised for them): prints "held N", or
 *                               "unsupported" if the limit cannot be raised
 *   kbt-sessions holders K      a connection accepted, K children forked that
 *                               hold it (killed before they ever run, where
 *                               it may use SCHED_FIFO), its own copy closed,
 *                               the children killed and reaped; then a second connection
 *                               from the same address: "second accepted" or
 *                               "second refused" (accept failed: reset)
 *   kbt-sessions forkrace MS    for MS milliseconds one thread accepts (and
 *                               keeps every connection open) while another
 *                               forks children that close descriptors 3 to
 *                               1023 and _exit(), a third connects 40
 *                               clients, and a fourth keeps malloc busy;
 *                               prints "accepted N forks F"
 *   kbt-sessions clients PORT N CONCURRENCY
 *                               N sessions of three exchanges against
 *                               127.0.0.1:PORT; one line per session: its
 *                               local port and "ok" (three replies, then the
 *                               end of the stream) or "broken"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unseen_close.h"

static int listener(struct sockaddr_in *at, bool nonblocking)
{
	socklen_t len = sizeof *at;
	memset(at, 0, sizeof *at);
	at->sin_family = AF_INET;
	at->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)at, sizeof *at) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)at, &len) < 0) {
		printf("error listen %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

static int dial(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)to, sizeof *to) < 0) {
		printf("error connect %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

static int lfd;
static int by_handler;

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c >= 0) {
		__atomic_add_fetch(&by_handler, 1, __ATOMIC_RELAXED);
		close(c);
	}
	errno = saved;
}

static int do_sigaccept(int n)
{
	struct sockaddr_in at;
	struct sigaction sa;
	struct itimerval every_ms = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };

	lfd = listener(&at, true);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/* a few clients are always waiting, so that the handler finds one
	 * to accept while the main thread is busy with its own; the oldest
	 * of the last 64 (long accepted) makes room for each new one */
	int clients[64], nclients = 0;
	for (int i = 0; i < 16; i++)
		clients[nclients++] = dial(&at);
	setitimer(ITIMER_REAL, &every_ms, NULL);
	int by_main = 0;
	for (int i = 0; i < n; i++) {
		if (nclients == 64) {
			close(clients[0]);
			memmove(clients, clients + 1, sizeof clients - sizeof clients[0]);
			nclients--;
		}
		clients[nclients++] = dial(&at);
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c >= 0) {
			by_main++;
			close(c);
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	for (int i = 0; i < nclients; i++)
		close(clients[i]);
	printf("done %d %d\n", by_main, __atomic_load_n(&by_handler, __ATOMIC_RELAXED));
	return 0;
}

/* Has the peer reset the connection (as a cut does)? */
static const char *state_of(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	if (poll(&p, 1, 2000) != 1)
		return "open";
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	return n < 0 && errno == ECONNRESET ? "reset" : n == 0 ? "eof" : "open";
}

static int do_cuts(void)
{
	struct sockaddr_in at;
	int l = listener(&at, false), c[5], a[5];

	for (int i = 1; i <= 3; i++) {
		c[i] = dial(&at);
		a[i] = accept(l, NULL, NULL);
	}
	close(a[1]); /* a session ends: the count reaches zero, session 2 is cut */
	printf("c2 %s\n", state_of(c[2]));
	c[4] = dial(&at);
	a[4] = accept(l, NULL, NULL); /* admitted at zero: session 3 is cut */
	printf("c3 %s\n", state_of(c[3]));
	struct pollfd p = { c[4], POLLIN, 0 };
	printf("c4 %s\n", poll(&p, 1, 200) == 0 ? "open" : "broken");
	return 0;
}

/* A child with fork's semantics (no CLONE_VM, a copy of this stack), but
 * not glibc's fork(): no atfork handler runs in it. */
static long raw_fork(bool three)
{
	if (three) {
		struct clone_args {
			uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
		} args = { .exit_signal = SIGCHLD };
		return syscall(SYS_clone3, &args, sizeof args);
	}
	return syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
}

static int do_clone(bool three)
{
	struct sockaddr_in at;
	close(listener(&at, false));
	long pid = raw_fork(three);
	if (pid < 0 && errno == ENOSYS) {
		printf("unsupported\n"); /* valgrind has no clone3() */
		return 0;
	}
	if (pid == 0) {
		close(listener(&at, false));
		_exit(0);
	}
	if (pid < 0 || waitpid((pid_t)pid, NULL, 0) != pid)
		return 1;
	close(listener(&at, false));
	printf("parent and child listened\n");
	return 0;
}

static int exchange(int port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) < 0)
		return -1;
	if (send(fd, "x\n", 2, MSG_NOSIGNAL) != 2 || recv(fd, buf, sizeof buf, 0) <= 0)
		return -1;
	return fd;
}

static int do_forkconnect(int port)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = exchange(port);
		if (fd < 0)
			_exit(1);
		shutdown(fd, SHUT_WR);
		exit(0); /* the connection ends with the process, unclosed */
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) {
		printf("child failed\n");
		return 1;
	}
	int fd = exchange(port);
	printf("second %s\n", fd >= 0 ? "ok" : errno == ECONNREFUSED ? "refused" : strerrorname_np(errno));
	return 0;
}

static int local_port(int fd)
{
	struct sockaddr_in me;
	socklen_t len = sizeof me;
	getsockname(fd, (struct sockaddr *)&me, &len);
	return ntohs(me.sin_port);
}

static int do_reused(void)
{
	struct sockaddr_in at;
	int l = listener(&at, false);
	int c1 = dial(&at), s = accept(l, NULL, NULL);  /* session 1 */
	int cy = dial(&at), y = accept(l, NULL, NULL);  /* session 2 */
	int c2 = dial(&at); /* before the number is free: it is for the accept */
	if (unseen_close(s) != 0) {
		printf("unsupported\n");
		return 0;
	}
	int x = accept(l, NULL, NULL); /* session 3, on session 1's number */
	if (x != s) {
		printf("error got %d, not %d\n", x, s);
		return 1;
	}
	struct linger lg = { 1, 0 };
	setsockopt(c2, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	printf("first %d\nsecond %d\n", local_port(c1), local_port(c2));
	close(c2); /* its peer resets session 3 */
	struct pollfd p = { x, POLLIN, 0 };
	poll(&p, 1, 2000);
	close(y); /* session 2 ends: the count reaches zero, and a session is cut */
	(void)cy;
	return 0;
}

static int do_clonesession(void)
{
	struct sockaddr_in at;
	int l = listener(&at, false);
	int c1 = dial(&at), a1 = accept(l, NULL, NULL);
	int c2 = dial(&at), a2 = accept(l, NULL, NULL);
	long pid = raw_fork(false);
	if (pid == 0) {
		close(a1); /* the child's copy: the parent still has the session */
		_exit(0);
	}
	if (pid < 0 || waitpid((pid_t)pid, NULL, 0) != pid)
		return 1;
	struct pollfd p = { c2, POLLIN, 0 };
	printf("second %s\n", poll(&p, 1, 300) == 0 ? "open" : "broken");
	(void)c1;
	(void)a2;
	return 0;
}

static int do_overflow(int n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < (rlim_t)(2 * n + 64)) {
		printf("unsupported\n");
		return 0;
	}
	rl.rlim_cur = (rlim_t)(2 * n + 64);
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		printf("unsupported\n");
		return 0;
	}
	struct sockaddr_in at;
	int l = listener(&at, false);
	for (int i = 0; i < n; i++) {
		int c = dial(&at);
		if (accept(l, NULL, NULL) < 0) {
			printf("error accept %s\n", strerrorname_np(errno));
			return 1;
		}
		(void)c; /* held: every session stays open */
	}
	printf("held %d\n", n);
	return 0;
}

static int do_holders(int k)
{
	struct sockaddr_in at;
	pid_t kids[64];
	int l = listener(&at, false);
	int c1 = dial(&at), x = accept(l, NULL, NULL);

	if (x < 0 || k < 1 || k > 64)
		return 1;
	/* Children killed before they run a single instruction of their
	 * own: holders only their parent can have named. On one CPU under
	 * SCHED_FIFO (root), a child waits behind its parent until the
	 * parent blocks, in waitpid() after the kills; without the
	 * privilege, one CPU alone makes it likely, not certain. */
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	sched_setaffinity(0, sizeof one, &one);
	sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){ .sched_priority = 1 });
	for (int i = 0; i < k; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			for (;;)
				pause(); /* holds its copy of the connection */
		}
	}
	close(x);
	for (int i = 0; i < k; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < k; i++)
		waitpid(kids[i], NULL, 0);
	close(c1);
	int c2 = dial(&at), y = accept(l, NULL, NULL);
	printf("second %s\n", y >= 0 ? "accepted" : "refused");
	(void)c2;
	return 0;
}

static int race_l, race_stop;
static long race_accepted, race_forks;
static struct sockaddr_in race_at;

static void *race_acceptor(void *arg)
{
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { race_l, POLLIN, 0 };
		if (poll(&p, 1, 20) == 1 && accept(race_l, NULL, NULL) >= 0)
			__atomic_add_fetch(&race_accepted, 1, __ATOMIC_RELAXED); /* kept open */
	}
	return arg;
}

static void *race_forker(void *arg)
{
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		pid_t p = fork();
		if (p == 0) {
			for (int fd = 3; fd < 1024; fd++)
				close(fd); /* what a helper does with what it inherited */
			_exit(0);
		}
		if (p > 0 && waitpid(p, NULL, 0) == p)
			__atomic_add_fetch(&race_forks, 1, __ATOMIC_RELAXED);
	}
	return arg;
}

static void *race_clients(void *arg)
{
	for (int i = 0; i < 40 && !__atomic_load_n(&race_stop, __ATOMIC_RELAXED); i++) {
		dial(&race_at); /* kept open */
		usleep(20000);
	}
	return arg;
}

/* malloc and free without a pause: fork() takes malloc's locks after the
 * fork handlers have run, so this widens the moment between the handlers'
 * count and the fork itself, which an accept can fall into */
static void *race_churn(void *arg)
{
	void *v[64] = { 0 };
	for (unsigned i = 0; !__atomic_load_n(&race_stop, __ATOMIC_RELAXED); i++) {
		free(v[i & 63]);
		v[i & 63] = malloc(100 + (i * 7919) % 20000);
	}
	for (int i = 0; i < 64; i++)
		free(v[i]);
	return arg;
}

static int do_forkrace(int ms)
{
	pthread_t t[4];
	race_l = listener(&race_at, true);
	pthread_create(&t[0], NULL, race_acceptor, NULL);
	pthread_create(&t[1], NULL, race_forker, NULL);
	pthread_create(&t[2], NULL, race_clients, NULL);
	pthread_create(&t[3], NULL, race_churn, NULL);
	usleep((useconds_t)ms * 1000);
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("accepted %ld forks %ld\n", race_accepted, race_forks);
	return 0;
}

static struct sockaddr_in target;
static int next_session, sessions;

static void *client(void *arg)
{
	(void)arg;
	while (__atomic_fetch_add(&next_session, 1, __ATOMIC_RELAXED) < sessions) {
		int fd = dial(&target);
		struct sockaddr_in me;
		socklen_t len = sizeof me;
		struct timeval tv = { 3, 0 };
		char buf[256];
		bool ok = true;
		getsockname(fd, (struct sockaddr *)&me, &len);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		for (int i = 0; i < 3 && ok; i++) {
			ok = send(fd, "x\n", 2, MSG_NOSIGNAL) == 2;
			ssize_t got = 0, n = 0;
			while (ok && !memchr(buf, '\n', (size_t)got) && (n = recv(fd, buf + got, sizeof buf - (size_t)got, 0)) > 0)
				got += n;
			ok = ok && n > 0;
		}
		ok = ok && recv(fd, buf, sizeof buf, 0) == 0;
		printf("%d %s\n", ntohs(me.sin_port), ok ? "ok" : "broken");
		close(fd);
	}
	return NULL;
}

static int do_clients(int port, int n, int concurrency)
{
	pthread_t t[64];

	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)port);
	target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sessions = n;
	if (concurrency < 1 || concurrency > 64)
		return 2;
	for (int i = 0; i < concurrency; i++)
		pthread_create(&t[i], NULL, client, NULL);
	for (int i = 0; i < concurrency; i++)
		pthread_join(t[i], NULL);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "sigaccept") == 0)
		return do_sigaccept(atoi(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "cuts") == 0)
		return do_cuts();
	if (argc >= 2 && strcmp(argv[1], "clone") == 0)
		return do_clone(argc >= 3 && strcmp(argv[2], "clone3") == 0);
	if (argc >= 2 && strcmp(argv[1], "reused") == 0)
		return do_reused();
	if (argc >= 3 && strcmp(argv[1], "forkrace") == 0)
		return do_forkrace(atoi(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "holders") == 0)
		return do_holders(atoi(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "overflow") == 0)
		return do_overflow(atoi(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "clonesession") == 0)
		return do_clonesession();
	if (argc >= 3 && strcmp(argv[1], "forkconnect") == 0)
		return do_forkconnect(atoi(argv[2]));
	if (argc >= 5 && strcmp(argv[1], "clients") == 0)
		return do_clients(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: kbt-sessions sigaccept N | cuts | clone | clonesession | reused | overflow N | holders K | forkrace MS | forkconnect PORT |"
			" clients PORT N CONCURRENCY\n");
	return 2;
}
