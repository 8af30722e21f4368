/*
 * kbt-probe - small programs in one binary, each exercising one thing a
 * host does, for the preload tests. It knows nothing of kbfault; it says
 * what it saw on stdout, one "key value" line at a time.
 *
 *   kbt-probe listen BACKLOG   listen, then report the kernel's backlog
 *   kbt-probe errno            errno left as the real calls leave it
 *   kbt-probe connect PORT     connect to 127.0.0.1:PORT, non-blocking and blocking
 *   kbt-probe fork             accept one connection, fork, the child accepts one
 *   kbt-probe closeall         close every descriptor and dup2 over them, then serve one
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int listener(int backlog, int *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, backlog) < 0) {
		printf("error listen %s\n", strerrorname_np(errno));
		exit(1);
	}
	getsockname(fd, (struct sockaddr *)&in, &len);
	*port = ntohs(in.sin_port);
	return fd;
}

static void serve_one(int lfd)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0) {
		printf("accept-error %s\n", strerrorname_np(errno));
		return;
	}
	ssize_t n = write(c, "ok\n", 3);
	(void)n;
	close(c);
}

static int do_listen(int backlog)
{
	int port;
	int fd = listener(backlog, &port);
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	/* on a listening socket tcpi_sacked is the backlog the kernel uses */
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return 1;
	printf("backlog %u\n", ti.tcpi_sacked);
	return 0;
}

static int do_errno(void)
{
	int port, bad = 0;
	errno = 1234;
	int fd = listener(5, &port);
	if (errno != 1234) {
		printf("listen-clobbered %d\n", errno);
		bad = 1;
	}
	errno = 0;
	if (close(-1) != -1 || errno != EBADF) {
		printf("close-bad %d\n", errno);
		bad = 1;
	}
	errno = 4321;
	if (close(fd) != 0 || errno != 4321) {
		printf("close-clobbered %d\n", errno);
		bad = 1;
	}
	errno = 77;
	if (shutdown(999, SHUT_RDWR) != -1 || errno != EBADF) {
		printf("shutdown-bad %d\n", errno);
		bad = 1;
	}
	printf("%s\n", bad ? "errno-bad" : "errno-ok");
	return bad;
}

static const char *connect_once(int port, bool nonblock)
{
	static char out[128];
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int rc = connect(fd, (struct sockaddr *)&in, sizeof in);
	int e = rc < 0 ? errno : 0;
	int soerr = 0;
	if (rc < 0 && e == EINPROGRESS) {
		struct pollfd p = { fd, POLLOUT, 0 };
		socklen_t l = sizeof soerr;
		poll(&p, 1, 2000);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
	}
	snprintf(out, sizeof out, "rc=%d errno=%s so_error=%s", rc, e ? strerrorname_np(e) : "0",
		 soerr ? strerrorname_np(soerr) : "0");
	close(fd);
	return out;
}

static int do_connect(int port)
{
	printf("nonblocking %s\n", connect_once(port, true));
	printf("blocking %s\n", connect_once(port, false));
	return 0;
}

static int do_fork(void)
{
	int port;
	int lfd = listener(16, &port);
	printf("port %d\n", port);
	fflush(stdout);
	serve_one(lfd);
	pid_t child = fork();
	if (child == 0) {
		serve_one(lfd);
		_exit(0);
	}
	int status;
	waitpid(child, &status, 0);
	printf("child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

static int do_closeall(void)
{
	/* what a daemon does on start-up: nothing inherited survives */
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
	close_range(3, ~0U, 0);
	int devnull = open("/dev/null", O_RDWR);
	for (int fd = 3; fd < 1100; fd++)
		if (fd != devnull)
			dup2(devnull, fd);
	for (int fd = 3; fd < 1100; fd++)
		close(fd);
	closefrom(3);
	int port;
	int lfd = listener(16, &port);
	printf("port %d\n", port);
	fflush(stdout);
	serve_one(lfd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("main\n");
	if (argc >= 3 && strcmp(argv[1], "listen") == 0)
		return do_listen(atoi(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "errno") == 0)
		return do_errno();
	if (argc >= 3 && strcmp(argv[1], "connect") == 0)
		return do_connect(atoi(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "fork") == 0)
		return do_fork();
	if (argc >= 2 && strcmp(argv[1], "closeall") == 0)
		return do_closeall();
	fprintf(stderr, "usage: kbt-probe listen N | errno | connect PORT | fork | closeall\n");
	return 2;
}
