/*
 * kbt-acceptors - four threads accepting on one blocking listener, for
 * the preload tests. It knows nothing of kbfault.
 *
 *   kbt-acceptors ROUNDS
 *
 * Each round connects 64 clients at once and, a moment later (while the
 * acceptors are at work), cancels one acceptor (deferred cancellation),
 * which must then be joined within 3 s; the others must go on taking
 * connections (within 3 s), and a new acceptor takes its place. At the
 * end every acceptor is cancelled and must be joined within 3 s. Prints
 * what failed ("round R: ...") and exits 1, or "rounds ok" and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPTORS 4
#ifndef BURST
#define BURST 64
#endif

static int lfd;
static int port;
static int taken;

static void *acceptor(void *arg)
{
	(void)arg;
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			return NULL;
		}
		__atomic_add_fetch(&taken, 1, __ATOMIC_RELAXED);
		close(c);
		/* a little work per connection: the queue builds up meanwhile,
		 * and the next accept() finds it to drain */
		struct timespec work = { 0, 200 * 1000 };
		nanosleep(&work, NULL);
	}
}

/* connects BURST clients at once (non-blocking: the handshakes complete
 * in the kernel), or closes them */
static void burst(int *fds, bool open_them)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	in.sin_port = htons((uint16_t)port);
	for (int i = 0; i < BURST; i++) {
		if (!open_them) {
			if (fds[i] >= 0)
				close(fds[i]);
			continue;
		}
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[i] >= 0)
			connect(fds[i], (struct sockaddr *)&in, sizeof in);
	}
}

static bool join_within(pthread_t t, int seconds)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	return pthread_timedjoin_np(t, NULL, &until) == 0;
}

static void ms(int n)
{
	struct timespec ts = { n / 1000, (long)(n % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	int fds[BURST], more_fds[BURST];

	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&in, sizeof in) < 0 || listen(lfd, 2 * BURST) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&in, &len) < 0) {
		perror("kbt-acceptors: listen");
		return 2;
	}
	port = ntohs(in.sin_port);
	pthread_t t[ACCEPTORS];
	for (int i = 0; i < ACCEPTORS; i++)
		pthread_create(&t[i], NULL, acceptor, NULL);
	for (int r = 1; r <= rounds; r++) {
		int i = r % ACCEPTORS;
		/* a burst keeps the acceptors busy in accept(): the cancel
		 * lands a little later each round, while they work */
		burst(fds, true);
		struct timespec ts = { 0, (long)(r % 10) * 100 * 1000 };
		nanosleep(&ts, NULL);
		pthread_cancel(t[i]);
		if (!join_within(t[i], 3)) {
			printf("round %d: the cancelled acceptor did not end\n", r);
			return 1;
		}
		/* the others go on taking connections */
		int before = __atomic_load_n(&taken, __ATOMIC_RELAXED);
		burst(more_fds, true);
		bool more = false;
		for (int k = 0; k < 3000 && !more; k++) {
			more = __atomic_load_n(&taken, __ATOMIC_RELAXED) > before;
			if (!more)
				ms(1);
		}
		burst(fds, false);
		burst(more_fds, false);
		if (!more) {
			printf("round %d: the other acceptors stopped taking connections\n", r);
			return 1;
		}
		pthread_create(&t[i], NULL, acceptor, NULL);
	}
	for (int i = 0; i < ACCEPTORS; i++) {
		pthread_cancel(t[i]);
		if (!join_within(t[i], 3)) {
			printf("end: acceptor %d could not be joined\n", i);
			return 1;
		}
	}
	printf("rounds ok, %d connections taken\n", __atomic_load_n(&taken, __ATOMIC_RELAXED));
	return 0;
}
