/*
 * loop.c - kbb-loop, the program every benchmark preloads things into.
 *
 * It knows nothing of kbfault. Each mode makes one cheap call (or one
 * pair) in a tight loop, on something that costs the kernel little, so
 * that what a preloaded library adds per call stands out:
 *
 *   kbb-loop MODE N [--open K] [--port P]
 *
 *   close-bad        close(-1)                      EBADF, rejected before any table
 *   close-untracked  close(90), a number never open  EBADF, after a table lookup
 *   close-tracked    dup2(L, 64); close(64)         a tracked listening socket, 2 calls
 *   listen-nonsock   listen(pipe, 8)                ENOTSOCK
 *   accept-eagain    accept(L) on an idle listener  EAGAIN, an event loop's usual accept
 *   connect-bad      connect(-1, 127.0.0.1:9)       EBADF
 *   shutdown-bad     shutdown(-1, SHUT_RDWR)        EBADF
 *   hold             connect and accept N connections on 127.0.0.1, then
 *                    report VmRSS before and after (the memory benchmark)
 *   http             N HTTP/1.0 GETs of / to 127.0.0.1:P (--port), one
 *                    connection each, one after the other: a client whose
 *                    request count is exact, for a server run under
 *                    callgrind (the per-request benchmark)
 *
 * --open K first dup2()s the listener onto K descriptors from 100 up, so
 * the scale benchmark can show the cost of a call with K descriptors open
 * (and tracked, when kbfault is loaded). The calls on a number of their
 * own (close-tracked, close-untracked) then use the lowest free numbers
 * above those K, where a busy server's newest descriptors are: a preloaded
 * library's own descriptors sit somewhere among the host's, and a call on
 * a number above them must cost no more than one below.
 *
 * --port P puts the listener on 127.0.0.1:P (SO_REUSEPORT, so parallel
 * runs can share it) instead of an ephemeral port. The cost of a call on
 * a tracked socket can depend on its port (rules are indexed by port), so
 * the two runs whose difference is taken must use the same one.
 *
 * Output, one "key value" per line: calls (intercepted calls made in the
 * loop), ns_per_call (wall time, meaningful natively only), unexpected
 * (calls whose outcome differed from the real call's: a rule fired).
 *
 * The callgrind benchmark runs each mode at two values of N and divides
 * the difference in instructions by the difference in calls, so that
 * start-up, set-up and exit cancel out; everything outside the loop must
 * therefore be the same whatever N is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TARGET_FD 64     /* close-tracked: the number dup2()ed onto and closed */
#define UNUSED_FD 90     /* close-untracked: never open (both without --open) */
#define OPEN_BASE 100    /* --open K: descriptors OPEN_BASE .. OPEN_BASE+K-1 */

static void die(const char *what)
{
	fprintf(stderr, "kbb-loop: %s: %s\n", what, strerror(errno));
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "kbb-loop: not a count: %s\n", s);
		exit(2);
	}
	return v;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A listening TCP socket on 127.0.0.1 and *port (0: an ephemeral one):
 * tracked by kbfault (listen() goes through the hook), never connected to
 * here. */
static int listener(int backlog, int nonblock, int *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)*port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, backlog) < 0)
		die("listener");
	if (getsockname(fd, (struct sockaddr *)&in, &len) < 0)
		die("getsockname");
	*port = ntohs(in.sin_port);
	return fd;
}

static long vmrss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		die("/proc/self/status");
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Memory per tracked descriptor: n connections made and accepted here.
 * Clients connect in batches no larger than the listen backlog, and each
 * batch is accepted before the next, so the accepted descriptors come in
 * long runs of consecutive numbers, as in a server holding many clients.
 */
static int hold(long n)
{
	int port = 0;
	int lfd = listener(4096, 0, &port);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	long before = vmrss_kib();

	for (long done = 0; done < n;) {
		long batch = n - done < 1000 ? n - done : 1000;
		for (long i = 0; i < batch; i++) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			if (c < 0 || connect(c, (struct sockaddr *)&to, sizeof to) < 0)
				die("connect");
		}
		for (long i = 0; i < batch; i++)
			if (accept(lfd, NULL, NULL) < 0)
				die("accept");
		done += batch;
	}
	printf("rss_before_kib %ld\nrss_after_kib %ld\nheld %ld\n", before, vmrss_kib(), n);
	return 0;
}

/* One GET on a new connection: true if a response came and the server
 * closed the connection. Each wait is bounded by a receive timeout. */
static bool get_once(const struct sockaddr_in *to)
{
	static const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	struct timeval tv = { 10, 0 };
	char buf[4096];
	ssize_t r;
	size_t got = 0;
	int c = socket(AF_INET, SOCK_STREAM, 0);

	if (c < 0)
		return false;
	bool ok = setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
		  connect(c, (const struct sockaddr *)to, sizeof *to) == 0 &&
		  write(c, req, sizeof req - 1) == (ssize_t)(sizeof req - 1);
	while (ok && (r = read(c, buf, sizeof buf)) > 0)
		got += (size_t)r;
	ok = ok && r == 0 && got > 0;
	close(c);
	return ok;
}

static int http(long n, long port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	long failed = 0;

	if (port == 0) {
		fprintf(stderr, "kbb-loop: http needs --port\n");
		return 2;
	}
	for (long i = 0; i < n; i++)
		failed += !get_once(&to);
	printf("requests %ld\nfailed %ld\n", n, failed);
	return failed ? 1 : 0;
}

/* The lowest descriptor number at or above `from` that is not open. */
static int free_from(int open_fd, int from)
{
	int fd = fcntl(open_fd, F_DUPFD, from);
	if (fd < 0)
		die("F_DUPFD");
	close(fd);
	return fd;
}

int main(int argc, char **argv)
{
	long open_k = 0, port = 0;

	if (argc < 3 || argc % 2 == 0) {
	usage:
		fprintf(stderr, "usage: kbb-loop MODE N [--open K] [--port P]\n");
		return 2;
	}
	for (int i = 3; i < argc; i += 2) {
		if (strcmp(argv[i], "--open") == 0)
			open_k = parse_count(argv[i + 1]);
		else if (strcmp(argv[i], "--port") == 0 && (port = parse_count(argv[i + 1])) < 65536)
			continue;
		else
			goto usage;
	}
	const char *mode = argv[1];
	long n = parse_count(argv[2]);
	long calls_per_iter = 1, unexpected = 0;
	int lfd = -1, pfd[2], lport = (int)port;

	if (strcmp(mode, "hold") == 0)
		return hold(n);
	if (strcmp(mode, "http") == 0)
		return http(n, port);

	if (open_k || strcmp(mode, "close-tracked") == 0 || strcmp(mode, "accept-eagain") == 0)
		lfd = listener(64, 1, &lport);
	for (long i = 0; i < open_k; i++)
		if (dup2(lfd, OPEN_BASE + (int)i) < 0)
			die("dup2 --open");
	if (pipe(pfd) < 0)
		die("pipe");
	int target = TARGET_FD, unused = UNUSED_FD;
	if (open_k) {
		target = free_from(pfd[0], OPEN_BASE + (int)open_k);
		unused = free_from(pfd[0], target + 1);
	}

	struct sockaddr_in discard = { .sin_family = AF_INET, .sin_port = htons(9),
				       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	double t0 = now_ns();

	/* One loop per mode, each checking the outcome the real call gives,
	 * so that a rule that fires shows up as "unexpected". */
	if (strcmp(mode, "close-bad") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(close(-1) == -1 && errno == EBADF);
	} else if (strcmp(mode, "close-untracked") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(close(unused) == -1 && errno == EBADF);
	} else if (strcmp(mode, "close-tracked") == 0) {
		calls_per_iter = 2;
		for (long i = 0; i < n; i++) {
			unexpected += dup2(lfd, target) != target;
			unexpected += close(target) != 0;
		}
	} else if (strcmp(mode, "listen-nonsock") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(listen(pfd[0], 8) == -1 && errno == ENOTSOCK);
	} else if (strcmp(mode, "accept-eagain") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(accept(lfd, NULL, NULL) == -1 && errno == EAGAIN);
	} else if (strcmp(mode, "connect-bad") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(connect(-1, (struct sockaddr *)&discard, sizeof discard) == -1 &&
					errno == EBADF);
	} else if (strcmp(mode, "shutdown-bad") == 0) {
		for (long i = 0; i < n; i++)
			unexpected += !(shutdown(-1, SHUT_RDWR) == -1 && errno == EBADF);
	} else {
		fprintf(stderr, "kbb-loop: unknown mode %s\n", mode);
		return 2;
	}

	double t1 = now_ns();
	long calls = n * calls_per_iter;
	printf("calls %ld\nns_per_call %.2f\nunexpected %ld\n", calls,
	       calls ? (t1 - t0) / (double)calls : 0.0, unexpected);
	return 0;
}
