/*
 * kbt-kills - the hosts behind tests/preload/test_mutant_kills.c: each
 * mode does one thing whose outcome a planted bug in the shim would
 * change (tests/mutants/core.mut). It knows nothing of kbfault; it says
 * what it saw on stdout, one line at a time.
 *
 *   kbt-kills leaked-twice   accept a connection, close it, close it again,
 *                            and say whether the peer saw the end of the stream
 *   kbt-kills dup-session    accept session A, dup2 it onto 100 and close the
 *                            copy, accept session B, then close A; say which
 *                            client saw a reset after each step
 *   kbt-kills cut-order      connect five clients A..E; accept A and B, close
 *                            A, accept C (on A's old number), D and E; say
 *                            each client's address and which saw a reset
 *   kbt-kills appenders N M  start N copies of itself by posix_spawn (each
 *                            opens the log itself), each listening and
 *                            closing M times, all at once
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int listener(int backlog, struct sockaddr_in *in)
{
	socklen_t len = sizeof *in;
	*in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)in, sizeof *in) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)in, &len) < 0) {
		printf("error listen %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

static int client(const struct sockaddr_in *to)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (const struct sockaddr *)to, sizeof *to) < 0) {
		printf("error connect %s\n", strerrorname_np(errno));
		exit(1);
	}
	return c;
}

static int take(int l)
{
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		printf("error accept %s\n", strerrorname_np(errno));
		exit(1);
	}
	return a;
}

static const char *outcome(int rc)
{
	return rc >= 0 ? "ok" : strerrorname_np(errno);
}

/* What client c has seen of its connection within timeout_ms: "reset",
 * "eof", "data" or, when nothing came, "open". */
static const char *seen(int c, int timeout_ms)
{
	struct pollfd p = { .fd = c, .events = POLLIN };
	char b;

	if (poll(&p, 1, timeout_ms) != 1)
		return "open";
	ssize_t n = recv(c, &b, 1, MSG_DONTWAIT | MSG_PEEK);
	if (n > 0)
		return "data";
	if (n == 0)
		return "eof";
	return errno == ECONNRESET ? "reset" : strerrorname_np(errno);
}

/* The clients (of n) that have seen a reset, waiting up to a second for
 * the first to show, then a little for any other: "none", or their
 * letters. A cut is made inside the accept() or close() that triggers it,
 * so its reset is on its way when that call returns. */
static const char *resets(const int *c, int n)
{
	static char who[16];
	size_t k = 0;
	int wait_ms = 1000;

	for (int round = 0; round < 2; round++, wait_ms = 100) {
		struct pollfd p[8];
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = c[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, wait_ms) > 0)
			break;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(seen(c[i], 0), "reset") == 0)
			who[k++] = (char)('A' + i);
	who[k] = '\0';
	return k ? who : "none";
}

/* A connection closed by the host and kept open by a rule is closed as
 * far as the host knows: its second close is EBADF, and releases nothing. */
static int do_leaked_twice(void)
{
	struct sockaddr_in in;
	int l = listener(4, &in), c = client(&in), a = take(l);

	printf("close %s\n", outcome(close(a)));
	printf("again %s\n", outcome(close(a)));
	printf("peer %s\n", seen(c, 300));
	return 0;
}

static int do_dup_session(void)
{
	struct sockaddr_in in;
	int l = listener(4, &in);
	int c[2] = { client(&in), client(&in) };
	int a = take(l);

	if (dup2(a, 100) != 100)
		return 1;
	printf("close copy %s\n", outcome(close(100)));
	int b = take(l);
	printf("after B: %s\n", resets(c, 2));
	printf("close A %s\n", outcome(close(a)));
	printf("after closing A: %s\n", resets(c, 2));
	printf("A %s\n", seen(c[0], 0));
	(void)b;
	return 0;
}

static int do_cut_order(void)
{
	struct sockaddr_in in, me;
	int l = listener(8, &in), c[5], s[5];

	/* every client first, so that the accepted connections' numbers
	 * come one after another, and C's is A's again */
	for (int i = 0; i < 5; i++) {
		socklen_t len = sizeof me;
		c[i] = client(&in);
		if (getsockname(c[i], (struct sockaddr *)&me, &len) < 0)
			return 1;
		printf("%c 127.0.0.1:%d\n", 'A' + i, ntohs(me.sin_port));
	}
	s[0] = take(l);
	s[1] = take(l);
	close(s[0]);
	for (int i = 2; i < 5; i++)
		s[i] = take(l);
	printf("fds %d %d %d %d %d\n", s[0], s[1], s[2], s[3], s[4]);
	printf("reset %s\n", resets(c, 5));
	return 0;
}

static int do_listens(int times)
{
	for (int i = 0; i < times; i++) {
		struct sockaddr_in in;
		close(listener(4, &in));
	}
	return 0;
}

/* Each copy is a new program, which opens the log itself: with its own
 * open file description, only O_APPEND keeps it from writing over the
 * others' lines. (Forked children share their parent's description, and
 * its offset, so they cannot show this.) */
static int do_appenders(const char *self, int procs, const char *times)
{
	char *args[] = { (char *)self, (char *)"listens", (char *)times, NULL };
	pid_t pid[64];
	int failed = 0;

	if (procs < 1 || procs > 64)
		return 2;
	fflush(stdout);
	for (int i = 0; i < procs; i++)
		if (posix_spawn(&pid[i], self, NULL, NULL, args, environ) != 0)
			return 1;
	for (int i = 0; i < procs; i++) {
		int status;
		if (waitpid(pid[i], &status, 0) != pid[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	printf("appenders %s\n", failed ? "failed" : "done");
	return failed != 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "leaked-twice") == 0)
		return do_leaked_twice();
	if (argc >= 2 && strcmp(argv[1], "dup-session") == 0)
		return do_dup_session();
	if (argc >= 2 && strcmp(argv[1], "cut-order") == 0)
		return do_cut_order();
	if (argc >= 3 && strcmp(argv[1], "listens") == 0)
		return do_listens(atoi(argv[2]));
	if (argc >= 4 && strcmp(argv[1], "appenders") == 0)
		return do_appenders(argv[0], atoi(argv[2]), argv[3]);
	fprintf(stderr, "usage: kbt-kills leaked-twice | dup-session | cut-order | appenders N M\n");
	return 2;
}
