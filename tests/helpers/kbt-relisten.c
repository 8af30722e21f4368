/*
 * kbt-relisten - a server that opens its listener again and again, each
 * time on a new descriptor number (what a reload or a test harness does),
 * for the preload tests. It knows nothing of kbfault.
 *
 *   kbt-relisten N            N rounds: listen, three clients connect, one
 *                             accept, close it all, keep the old number busy;
 *                             prints "rounds N" and how many clients saw a reset
 *   kbt-relisten N unseen     the same, but each listener is closed by an
 *                             inline system call no preloaded library sees
 *                             (prints "unseen unsupported" where there is none)
 *   kbt-relisten N closing    N rounds: listen, eight clients connect, one
 *                             accept, then the listener is closed first (a
 *                             graceful stop): prints "rounds N" and how many of
 *                             the seven never accepted were left hanging (no
 *                             reset, no end of stream) - the kernel resets
 *                             what waits on a listener that closes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "unseen_close.h"

static int listener(struct sockaddr_in *at)
{
	socklen_t len = sizeof *at;
	memset(at, 0, sizeof *at);
	at->sin_family = AF_INET;
	at->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)at, sizeof *at) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)at, &len) < 0) {
		printf("error listen %s\n", strerrorname_np(errno));
		exit(1);
	}
	return fd;
}

/* Did the peer reset this client's connection? */
static int was_reset(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	if (poll(&p, 1, 500) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET;
}

/* Has this client's connection ended (reset or end of stream)? */
static int ended(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	if (poll(&p, 1, 100) != 1)
		return 0;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int closing(int rounds)
{
	int hanging = 0;

	for (int r = 0; r < rounds; r++) {
		struct sockaddr_in at;
		int l = listener(&at), c[8];
		for (int i = 0; i < 8; i++) {
			c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (c[i] < 0 || connect(c[i], (struct sockaddr *)&at, sizeof at) < 0)
				return 1;
		}
		struct timespec settle = { 0, 20 * 1000 * 1000 };
		nanosleep(&settle, NULL);
		struct sockaddr_in peer = { 0 };
		socklen_t len = sizeof peer;
		int a = accept(l, (struct sockaddr *)&peer, &len);
		close(l);
		for (int i = 0; i < 8; i++) {
			struct sockaddr_in me = { 0 };
			socklen_t ml = sizeof me;
			getsockname(c[i], (struct sockaddr *)&me, &ml);
			if (me.sin_port != peer.sin_port && !ended(c[i]))
				hanging++;
			close(c[i]);
		}
		close(a);
	}
	printf("rounds %d\nhanging %d\n", rounds, hanging);
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 0, resets = 0;
	bool unseen = argc > 2 && strcmp(argv[2], "unseen") == 0;

	if (argc > 2 && strcmp(argv[2], "closing") == 0)
		return closing(rounds);
	if (unseen && unseen_close(-1) == -ENOSYS) {
		printf("unseen unsupported\n");
		return 0;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int r = 0; r < rounds; r++) {
		struct sockaddr_in at;
		int l = listener(&at), c[3];
		for (int i = 0; i < 3; i++) {
			c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (c[i] < 0 || connect(c[i], (struct sockaddr *)&at, sizeof at) < 0)
				return 1;
		}
		struct timespec settle = { 0, 20 * 1000 * 1000 };
		nanosleep(&settle, NULL); /* every handshake in the listener's queue */
		int a = accept(l, NULL, NULL);
		for (int i = 0; i < 3; i++) {
			resets += was_reset(c[i]);
			close(c[i]);
		}
		close(a);
		if (unseen)
			unseen_close(l);
		else
			close(l);
		/* the old number stays taken: the next listener gets a new one */
		if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
			return 1;
	}
	printf("rounds %d\nresets %d\n", rounds, resets);
	return 0;
}
