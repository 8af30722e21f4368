/*
 * client.c - kbdemo-client: drives a server and says what it saw.
 *
 * Each attempt connects (non-blocking, with a deadline), sends one line,
 * and waits for the reply and the end of the stream. Every attempt ends
 * in exactly one outcome:
 *   ok               reply, then end of stream
 *   refused          connect() failed with ECONNREFUSED
 *   reset            a TCP reset at any stage (ECONNRESET, or EPIPE)
 *   connect_timeout  no connection before the deadline
 *   reply_timeout    connected, but no reply before the deadline
 *   no_eof           replied, but the server never ended the stream
 *   closed           the server ended the stream without replying
 *   dropped          the session broke after at least one reply and before
 *                    the conversation was over (the last --lines reply, or
 *                    the answer to --final): cut mid-conversation
 *   other            anything else (errno in "last_error")
 * Attempts run in --concurrency threads; all of it is bounded by --count
 * and --timeout. The summary is one JSON object on stdout, with connect
 * latency percentiles in milliseconds. The exit status is 0, or with
 * --strict 1 unless every attempt was ok: a probe for `kbfault gate`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum outcome { OK, REFUSED, RESET, CONNECT_TIMEOUT, REPLY_TIMEOUT, NO_EOF, CLOSED, DROPPED, OTHER, OUTCOMES };
static const char *const outcome_names[OUTCOMES] = {
	"ok", "refused", "reset", "connect_timeout", "reply_timeout", "no_eof", "closed", "dropped", "other",
};

static struct {
	const char *host, *bind;
	char *request, *final; /* what each exchange sends; sent after the last one */
	int port, count, concurrency, timeout_ms, hold_ms, lines, gap_ms;
} opt = { "127.0.0.1", NULL, NULL, NULL, 0, 10, 1, 2000, 0, 1, 0 };

static int next_attempt;
static int counts[OUTCOMES];
static int last_error; /* the last errno any thread saw: written atomically */
static double *connect_ms; /* per attempt; -1 when it never connected */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int wait_for(int fd, short events, double deadline)
{
	for (;;) {
		int left = (int)(deadline - now_ms());
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, events, 0 };
		int r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

static enum outcome attempt(int i)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	int family = strchr(opt.host, ':') ? AF_INET6 : AF_INET;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)opt.port);
		inet_pton(AF_INET, opt.host, &in->sin_addr);
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)opt.port);
		inet_pton(AF_INET6, opt.host, &in6->sin6_addr);
		len = sizeof *in6;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
		return OTHER;
	}
	if (opt.bind) {
		/* a distinct node on loopback: another 127.0.0.x as the source */
		struct sockaddr_in src = { .sin_family = AF_INET };
		if (inet_pton(AF_INET, opt.bind, &src.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
			__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
			close(fd);
			return OTHER;
		}
	}
	double start = now_ms(), deadline = start + opt.timeout_ms;
	enum outcome out = OTHER;
	int err = 0;
	socklen_t el = sizeof err;

	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		err = errno;
	} else if (wait_for(fd, POLLOUT, deadline) <= 0) {
		out = CONNECT_TIMEOUT;
		goto done;
	} else {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	}
	if (err) {
		out = err == ECONNREFUSED ? REFUSED : err == ECONNRESET ? RESET : OTHER;
		if (out == OTHER)
			__atomic_store_n(&last_error, err, __ATOMIC_RELAXED);
		goto done;
	}
	connect_ms[i] = now_ms() - start;

	/* the conversation: --lines exchanges, --gap apart; the deadline is
	 * per exchange, so a slow but live server is not a failure */
	char buf[256];
	for (int line = 1; line <= opt.lines; line++) {
		bool replied = false;
		size_t got = 0;
		deadline = now_ms() + opt.timeout_ms;
		if (line > 1 && opt.gap_ms)
			usleep((useconds_t)opt.gap_ms * 1000);
		if (send(fd, opt.request, strlen(opt.request), MSG_NOSIGNAL) < 0) {
			__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
			out = line > 1 ? DROPPED : errno == ECONNRESET || errno == EPIPE ? RESET : OTHER;
			goto done;
		}
		while (!replied) {
			if (wait_for(fd, POLLIN, deadline) <= 0) {
				out = REPLY_TIMEOUT;
				goto done;
			}
			ssize_t n = recv(fd, buf + got, sizeof buf - got - 1, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				if (n < 0)
					__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
				out = line > 1 ? DROPPED : n == 0 ? CLOSED : errno == ECONNRESET ? RESET : OTHER;
				goto done;
			}
			got += (size_t)n;
			buf[got] = '\0';
			replied = strchr(buf, '\n') != NULL;
			if (got >= sizeof buf - 1)
				got = 0;
		}
	}
	/* every reply in: say goodbye if the protocol wants it, then the
	 * server should end the stream */
	if (opt.final && send(fd, opt.final, strlen(opt.final), MSG_NOSIGNAL) < 0) {
		__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
		out = DROPPED;
		goto done;
	}
	deadline = now_ms() + opt.timeout_ms;
	for (;;) {
		if (wait_for(fd, POLLIN, deadline) <= 0) {
			out = NO_EOF;
			break;
		}
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			/* with a --final request outstanding the conversation
			 * was not over: it was cut; without one, the server
			 * ended a finished conversation with a reset */
			out = errno != ECONNRESET ? OTHER : opt.final ? DROPPED : RESET;
			__atomic_store_n(&last_error, errno, __ATOMIC_RELAXED);
			break;
		}
		if (n == 0) {
			out = OK;
			break;
		}
	}
done:
	if (opt.hold_ms)
		usleep((useconds_t)opt.hold_ms * 1000);
	close(fd);
	return out;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		int i = __atomic_fetch_add(&next_attempt, 1, __ATOMIC_RELAXED);
		if (i >= opt.count)
			return NULL;
		enum outcome o = attempt(i);
		pthread_mutex_lock(&lock);
		counts[o]++;
		pthread_mutex_unlock(&lock);
	}
}

/* "\r\n" and "\n" in a command-line string become the characters, so a
 * request can be written as 'PING\r\n'. */
static char *unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	for (; *s; s++) {
		if (s[0] == '\\' && (s[1] == 'r' || s[1] == 'n' || s[1] == '\\')) {
			*o++ = s[1] == 'r' ? '\r' : s[1] == 'n' ? '\n' : '\\';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },        { "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },       { "concurrency", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },     { "hold", required_argument, NULL, 'o' },
		{ "lines", required_argument, NULL, 'l' },       { "gap", required_argument, NULL, 'g' },
		{ "bind", required_argument, NULL, 'b' },
		{ "request", required_argument, NULL, 'r' },     { "final", required_argument, NULL, 'f' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },              { NULL, 0, NULL, 0 },
	};
	int c;
	bool strict = false;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'n': opt.count = atoi(optarg); break;
		case 'c': opt.concurrency = atoi(optarg); break;
		case 't': opt.timeout_ms = atoi(optarg); break;
		case 'o': opt.hold_ms = atoi(optarg); break;
		case 'l': opt.lines = atoi(optarg); break;
		case 'g': opt.gap_ms = atoi(optarg); break;
		case 'b': opt.bind = optarg; break;
		case 'r': opt.request = unescape(optarg); break;
		case 'f': opt.final = unescape(optarg); break;
		case 's': strict = true; break;
		case 'h':
		default:
			fputs("Usage: kbdemo-client --port N [--host ADDR] [--count N] [--concurrency N]\n"
			      "                     [--timeout MS] [--hold MS] [--lines N] [--gap MS]\n"
			      "                     [--bind IPV4] [--request STRING] [--final STRING] [--strict]\n"
			      "  --request  sent for each exchange (default \"hello\\n\"); \\r and \\n are understood\n"
			      "  --final    sent after the last exchange (e.g. \"QUIT\\r\\n\" for redis)\n"
			      "  --strict   exit 1 unless every attempt was ok (a probe for kbfault gate)\n",
			      c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (opt.port <= 0 || opt.count < 1 || opt.count > 100000 || opt.concurrency < 1 ||
	    opt.concurrency > 512 || opt.timeout_ms < 1 || opt.timeout_ms > 600000 || opt.lines < 1 ||
	    opt.lines > 1000 || opt.gap_ms < 0 || opt.gap_ms > 60000) {
		fputs("kbdemo-client: --port is required; --count 1..100000, --concurrency 1..512, --timeout 1..600000\n",
		      stderr);
		return 2;
	}
	if (opt.request == NULL)
		opt.request = unescape("hello\\n");
	connect_ms = malloc(sizeof(double) * (size_t)opt.count);
	for (int i = 0; i < opt.count; i++)
		connect_ms[i] = -1;

	pthread_t tids[512];
	double start = now_ms();
	for (int i = 0; i < opt.concurrency; i++)
		pthread_create(&tids[i], NULL, worker, NULL);
	for (int i = 0; i < opt.concurrency; i++)
		pthread_join(tids[i], NULL);
	double elapsed = now_ms() - start;

	double *lat = malloc(sizeof(double) * (size_t)opt.count);
	int n = 0;
	for (int i = 0; i < opt.count; i++)
		if (connect_ms[i] >= 0)
			lat[n++] = connect_ms[i];
	qsort(lat, (size_t)n, sizeof lat[0], by_value);

	printf("{\"attempts\":%d", opt.count);
	for (int o = 0; o < OUTCOMES; o++)
		printf(",\"%s\":%d", outcome_names[o], counts[o]);
	printf(",\"elapsed_ms\":%.1f", elapsed);
	if (n) {
		printf(",\"connect_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", lat[(n - 1) * 50 / 100],
		       lat[(n - 1) * 90 / 100], lat[(n - 1) * 99 / 100], lat[n - 1]);
	}
	int e = __atomic_load_n(&last_error, __ATOMIC_RELAXED);
	if (e)
		printf(",\"last_error\":\"%s\"", strerrorname_np(e));
	printf("}\n");
	free(lat);
	free(connect_ms);
	return strict && counts[OK] != opt.count ? 1 : 0;
}
