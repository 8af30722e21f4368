/*
 * kbt-select - a server that waits in select() and then calls accept() on
 * a blocking listener, as postgresql's postmaster does, for the preload
 * tests. It knows nothing of kbfault.
 *
 *   kbt-select N [WAIT_MS]
 *
 * Listens on 127.0.0.1 (prints "listening on 127.0.0.1:PORT"), waits
 * WAIT_MS (default 0) so that clients can queue, then until N connections
 * are served: select() on the listener (at most 10 s), accept(), print
 * "accept ok" or "accept -1 ERRNO" at once, and serve an accepted one with
 * one reply ("ok\n" to the client's line).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int want = argc > 1 ? atoi(argv[1]) : 1, served = 0;
	int wait_ms = argc > 2 ? atoi(argv[2]) : 0;
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;

	signal(SIGPIPE, SIG_IGN);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&in, sizeof in) < 0 || listen(l, 16) < 0 ||
	    getsockname(l, (struct sockaddr *)&in, &len) < 0) {
		perror("kbt-select: listen");
		return 1;
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(in.sin_port));
	fflush(stdout);
	usleep((useconds_t)wait_ms * 1000);
	while (served < want) {
		fd_set r;
		struct timeval tv = { 10, 0 };
		FD_ZERO(&r);
		FD_SET(l, &r);
		int n = select(l + 1, &r, NULL, NULL, &tv);
		if (n == 0) {
			printf("select timed out\n");
			return 1;
		}
		if (n < 0)
			continue;
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			printf("accept -1 %s\n", strerrorname_np(errno));
			fflush(stdout);
			continue;
		}
		printf("accept ok\n");
		fflush(stdout);
		char buf[256];
		struct pollfd p = { c, POLLIN, 0 };
		if (poll(&p, 1, 2000) == 1 && read(c, buf, sizeof buf) > 0 && write(c, "ok\n", 3) == 3)
			served++;
		close(c);
	}
	return 0;
}
