/*
 * kbt-stall - servers that learn they must stop in the ways real servers
 * do, and one that asks about its own signal handlers, for the preload
 * tests of stalls and delays. It knows nothing of kbfault.
 *
 * Every server listens on 127.0.0.1 (a port of its own), prints
 * "listening on 127.0.0.1:PORT", and serves each connection one reply
 * ("ok\n" to the client's line), then closes it. When it has stopped it
 * prints {"served":N,"how":"..."} and exits 0.
 *
 *   kbt-stall main-handler  an acceptor thread that blocks every signal; the
 *                           main thread's SIGTERM handler sets the stop flag,
 *                           and main joins the acceptor
 *   kbt-stall sigwait       every thread blocks TERM, INT, HUP and QUIT; a
 *                           thread of its own takes them with sigwait()
 *   kbt-stall blocked       one thread, signals blocked except inside
 *                           pselect() (postgresql's postmaster): accept()
 *                           runs with SIGTERM blocked
 *   kbt-stall noisy         one thread, with a SIGALRM every 2 ms and a
 *                           SIGCHLD every 5 ms (SA_RESTART handlers), a SIGHUP
 *                           handler that does nothing (a reload), and a
 *                           SIGTERM handler that sets the stop flag
 *   kbt-stall usr1-shutdown an acceptor thread that blocks every signal; the
 *                           main thread waits for SIGUSR1 (sigwait) and then
 *                           wakes it by shutdown() of the listener
 *   kbt-stall usr1-close    the same, waking it by close() of the listener
 *   kbt-stall sigquery      installs, queries and raises handlers for the
 *                           termination signals, printing what it sees
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int lfd = -1;
static int stop;
static int served;

static void listen_here(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&in, sizeof in) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&in, &len) < 0) {
		perror("kbt-stall: listen");
		exit(1);
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(in.sin_port));
	fflush(stdout);
}

/* the client's line, then one reply and the end of the stream (poll()
 * is never restarted after a handler, and noisy's handlers run every
 * few milliseconds) */
static void serve(int c)
{
	char buf[256];
	struct pollfd p = { c, POLLIN, 0 };
	int r;
	ssize_t n;
	for (int tries = 0; (r = poll(&p, 1, 2000)) < 0 && errno == EINTR && tries < 1000; tries++)
		;
	while (r == 1 && (n = read(c, buf, sizeof buf)) < 0 && errno == EINTR)
		;
	if (r == 1 && n > 0 && write(c, "ok\n", 3) == 3)
		__atomic_add_fetch(&served, 1, __ATOMIC_RELAXED);
	close(c);
}

static void *acceptor(void *arg)
{
	bool block_all = arg != NULL;
	if (block_all) {
		sigset_t all;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
	}
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		/* a stop flag set between its test and a blocking accept()
		 * would be missed: accept only what poll() says is there */
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			break; /* the listener was shut down or closed */
		}
		serve(c);
	}
	return NULL;
}

static void on_stop(int sig)
{
	(void)sig;
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

static void on_noise(int sig)
{
	(void)sig;
}

static void handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

static void term_set(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGINT);
	sigaddset(s, SIGHUP);
	sigaddset(s, SIGQUIT);
}

static int done(const char *how)
{
	printf("{\"served\":%d,\"how\":\"%s\"}\n", __atomic_load_n(&served, __ATOMIC_RELAXED), how);
	return 0;
}

static int main_handler(void)
{
	handle(SIGTERM, on_stop, 0);
	listen_here();
	pthread_t t;
	pthread_create(&t, NULL, acceptor, &lfd); /* non-NULL: block every signal */
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	pthread_join(t, NULL);
	return done("main-handler");
}

static int with_sigwait(void)
{
	sigset_t set;
	int sig = 0;
	term_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits it */
	listen_here();
	pthread_t t;
	pthread_create(&t, NULL, acceptor, NULL);
	if (sigwait(&set, &sig) != 0)
		return 1;
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	return done(sig == SIGTERM ? "sigwait SIGTERM" : "sigwait other");
}

static int blocked(void)
{
	sigset_t set, none;
	term_set(&set);
	sigemptyset(&none);
	handle(SIGTERM, on_stop, 0);
	sigprocmask(SIG_BLOCK, &set, NULL);
	listen_here();
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		fd_set r;
		FD_ZERO(&r);
		FD_SET(lfd, &r);
		/* signals are let in only while waiting here */
		if (pselect(lfd + 1, &r, NULL, NULL, NULL, &none) <= 0)
			continue;
		int c = accept(lfd, NULL, NULL);
		if (c >= 0)
			serve(c);
	}
	return done("blocked");
}

static void *noise(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* so the signals go to main */
	for (;;) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		kill(getpid(), SIGCHLD);
	}
	return NULL;
}

static int noisy(void)
{
	handle(SIGTERM, on_stop, 0);
	handle(SIGALRM, on_noise, SA_RESTART);
	handle(SIGCHLD, on_noise, SA_RESTART);
	handle(SIGHUP, on_noise, SA_RESTART); /* a reload, say: no stop */
	listen_here();
	pthread_t t;
	pthread_create(&t, NULL, noise, NULL);
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	acceptor(NULL);
	return done("noisy");
}

static int usr1_wake(bool by_close)
{
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	listen_here();
	pthread_t t;
	pthread_create(&t, NULL, acceptor, &lfd); /* non-NULL: block every signal */
	if (sigwait(&set, &sig) != 0)
		return 1;
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	if (by_close)
		close(lfd);
	else
		shutdown(lfd, SHUT_RDWR);
	pthread_join(t, NULL);
	return done(by_close ? "close" : "shutdown");
}

/* sigquery: what a host learns about its own handlers. Each line is the
 * same with and without kbfault, but for "raw", which says whether the
 * kernel's handler is the one the host installed. */
static volatile sig_atomic_t seen_sig, seen_errno, seen_code, seen_value, seen_pid, seen_uc, hits;

static void h_plain(int sig)
{
	seen_errno = errno;
	seen_sig = sig;
	hits++;
	errno = ERANGE; /* a handler may clobber errno; that is the host's own business */
}

static void h_other(int sig)
{
	(void)sig;
}

static void h_info(int sig, siginfo_t *si, void *uc)
{
	seen_errno = errno;
	seen_sig = sig;
	seen_code = si->si_code;
	seen_value = si->si_value.sival_int;
	seen_pid = si->si_pid == getpid();
	seen_uc = uc != NULL;
	hits++;
}

static const char *name(void *h)
{
	if (h == (void *)SIG_DFL)
		return "SIG_DFL";
	if (h == (void *)SIG_IGN)
		return "SIG_IGN";
	if (h == (void *)SIG_HOLD)
		return "SIG_HOLD";
	if (h == (void *)h_plain)
		return "h_plain";
	if (h == (void *)h_info)
		return "h_info";
	if (h == (void *)h_other)
		return "h_other";
	return "something-else";
}

/* the kernel's own view, past libc and anything preloaded */
static void *raw_handler(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} k;
	if (syscall(SYS_rt_sigaction, sig, NULL, &k, 8) != 0)
		return NULL;
	return k.handler;
}

static void query(const char *what, int sig)
{
	struct sigaction cur;
	sigaction(sig, NULL, &cur);
	void *h = (cur.sa_flags & SA_SIGINFO) ? (void *)cur.sa_sigaction : (void *)cur.sa_handler;
	printf("%s: %s flags=%#x usr2-masked=%d\n", what, name(h), (unsigned)cur.sa_flags,
	       sigismember(&cur.sa_mask, SIGUSR2));
}

extern __sighandler_t bsd_signal(int, __sighandler_t);
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static int sigquery(void)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h_plain;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaction(SIGTERM, &sa, &old);
	printf("term before: %s\n", name((void *)old.sa_handler));
	query("term", SIGTERM);
	printf("raw term is the host's: %d\n", raw_handler(SIGTERM) == (void *)h_plain);
	errno = EDOM;
	raise(SIGTERM);
	printf("term handled: sig=%d hits=%d errno-at-entry=%s\n", seen_sig, hits, seen_errno == EDOM ? "EDOM" : "changed");

	/* save and restore, as a library does around its own work */
	struct sigaction saved;
	sigaction(SIGTERM, NULL, &saved);
	signal(SIGTERM, SIG_DFL);
	sigaction(SIGTERM, &saved, NULL);
	query("term restored", SIGTERM);

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = h_info;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGINT, &sa, NULL);
	query("int", SIGINT);
	printf("raw int is the host's: %d\n", raw_handler(SIGINT) == (void *)h_info);
	errno = EDOM;
	sigqueue(getpid(), SIGINT, (union sigval){ .sival_int = 42 });
	printf("int handled: sig=%d code=%s value=%d own-pid=%d ucontext=%d errno-at-entry=%s\n", seen_sig,
	       seen_code == SI_QUEUE ? "SI_QUEUE" : "other", seen_value, seen_pid, seen_uc,
	       seen_errno == EDOM ? "EDOM" : "changed");

	/* SA_RESETHAND: handled once, then the default again */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h_plain;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGHUP, &sa, NULL);
	hits = 0;
	raise(SIGHUP);
	printf("hup handled %d time(s)\n", hits);
	query("hup after one", SIGHUP);

	/* SIG_IGN and the handlers signal() and friends return */
	printf("quit ign, before: %s\n", name((void *)signal(SIGQUIT, SIG_IGN)));
	raise(SIGQUIT);
	printf("quit ignored: alive\n");
	printf("quit plain, before: %s\n", name((void *)signal(SIGQUIT, h_plain)));
	printf("quit other, before: %s\n", name((void *)bsd_signal(SIGQUIT, h_other)));
	printf("quit sysv, before: %s\n", name((void *)sysv_signal(SIGQUIT, h_plain)));
	query("quit sysv", SIGQUIT);
	printf("quit sigset, before: %s\n", name((void *)sigset(SIGQUIT, h_other)));
	printf("quit hold, before: %s\n", name((void *)sigset(SIGQUIT, SIG_HOLD)));
	printf("quit again, before: %s\n", name((void *)sigset(SIGQUIT, h_plain)));
	query("quit", SIGQUIT);
	printf("raw quit is the host's: %d\n", raw_handler(SIGQUIT) == (void *)h_plain);
	hits = 0;
	raise(SIGQUIT);
	printf("quit handled %d time(s)\n", hits);
	printf("int over sigaction, before: %s\n", name((void *)signal(SIGINT, SIG_DFL)));

	/* not a termination signal: left alone */
	signal(SIGUSR1, h_other);
	printf("raw usr1 is the host's: %d\n", raw_handler(SIGUSR1) == (void *)h_other);
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* whatever the test runner blocks */
	signal(SIGPIPE, SIG_IGN);
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "main-handler") == 0)
		return main_handler();
	if (strcmp(mode, "sigwait") == 0)
		return with_sigwait();
	if (strcmp(mode, "blocked") == 0)
		return blocked();
	if (strcmp(mode, "noisy") == 0)
		return noisy();
	if (strcmp(mode, "usr1-shutdown") == 0)
		return usr1_wake(false);
	if (strcmp(mode, "usr1-close") == 0)
		return usr1_wake(true);
	if (strcmp(mode, "sigquery") == 0)
		return sigquery();
	fprintf(stderr, "usage: kbt-stall main-handler|sigwait|blocked|noisy|usr1-shutdown|usr1-close|sigquery\n");
	return 2;
}
