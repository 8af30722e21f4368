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
 *   kbt-probe spawn            run `kbt-probe listen 100` by posix_spawn, vfork+exec and fork+exec
 *   kbt-probe daemon FILE      double-fork, setsid, close everything, write the port to FILE,
 *                              serve one connection
 *   kbt-probe forkstall        fork while another thread is inside accept()
 *   kbt-probe sigclose         a signal handler calls close() while close() is in progress
 *   kbt-probe storm N M        N processes, each calling listen() and close() M times
 *   kbt-probe dupclose         dup2/dup3 a listener onto 100 and 101, close it, accept a
 *                              connection through each copy, then close 100 and put a
 *                              non-socket there by F_DUPFD (which kbfault does not see)
 *   kbt-probe dupleaked        accept4 a connection, close it, then dup2/dup3 and close
 *                              it again (all three EBADF for a closed descriptor), and
 *                              say whether the peer saw the end of the stream
 *   kbt-probe stale KIND       accept a connection, close it behind kbfault's back (a
 *                              system call made inline), put KIND on its number (file,
 *                              socket: connected to the listener, unbound: a new socket),
 *                              close that, and say whether it was really closed; KIND
 *                              reset instead keeps the connection, lets the peer reset
 *                              it, and closes it; KIND session puts a connected socket
 *                              there, accepts its connection, and says whether that
 *                              socket is still connected
 */
#include <arpa/inet.h>
#include <dlfcn.h>
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
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unseen_close.h"

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
	/* say whether the shim is in this process at all, so a test can tell
	 * "not loaded" from "loaded and off" */
	if (dlsym(RTLD_DEFAULT, "kbfault_version"))
		printf("kbfault loaded\n");
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
	/* connections taken (with and without the peer's address) and
	 * closed: the accept and close hooks' paths for tracked connections,
	 * counted or decided by the recipe's rules */
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int cl[2];
	for (int i = 0; i < 2; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (cl[i] < 0 || connect(cl[i], (struct sockaddr *)&to, sizeof to) != 0)
			return 1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	errno = 555;
	int c4 = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (c4 < 0 || errno != 555) {
		printf("accept4-clobbered %d\n", errno);
		bad = 1;
	}
	errno = 556;
	int c = accept(fd, NULL, NULL);
	if (c < 0 || errno != 556) {
		printf("accept-clobbered %d\n", errno);
		bad = 1;
	}
	errno = 557;
	if (close(c4) != 0 || close(c) != 0 || errno != 557) {
		printf("close-accepted-clobbered %d\n", errno);
		bad = 1;
	}
	close(cl[0]);
	close(cl[1]);
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

extern char **environ;

static int child_status(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int do_spawn(const char *self)
{
	char *args[] = { (char *)self, (char *)"listen", (char *)"100", NULL };
	pid_t pid;

	fflush(stdout);
	if (posix_spawn(&pid, self, NULL, NULL, args, environ) != 0)
		return 1;
	printf("posix_spawn %d\n", child_status(pid));
	fflush(stdout);
	pid = vfork();
	if (pid == 0) {
		execve(self, args, environ);
		_exit(127);
	}
	printf("vfork %d\n", child_status(pid));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execve(self, args, environ);
		_exit(127);
	}
	printf("fork-exec %d\n", child_status(pid));
	return 0;
}

static int do_daemon(const char *file)
{
	fflush(stdout);
	if (fork() != 0)
		return 0; /* the parent returns at once, as a daemon's does */
	setsid();
	if (fork() != 0)
		_exit(0);
	if (chdir("/") < 0)
		_exit(1);
	umask(0);
	for (int fd = 0; fd < 1024; fd++)
		close(fd);
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	int port;
	int lfd = listener(16, &port);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", file);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		_exit(1);
	fprintf(f, "%d %d\n", port, (int)getpid());
	fclose(f);
	rename(tmp, file);
	serve_one(lfd);
	_exit(0);
}

/* Thread 1 is inside accept() - stalled by the recipe's delay - when
 * the main thread forks; the child uses the shim at once. */
static void *accept_in_thread(void *arg)
{
	int lfd = *(int *)arg;
	int c = accept(lfd, NULL, NULL);
	if (c >= 0)
		close(c);
	return NULL;
}

static int do_forkstall(void)
{
	int port;
	int lfd = listener(16, &port);
	printf("port %d\n", port);
	fflush(stdout);
	pthread_t t;
	pthread_create(&t, NULL, accept_in_thread, &lfd);
	/* the test connects now; give the thread time to enter the hook */
	struct timespec pause = { 0, 300 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int p2;
		int fd = listener(8, &p2);
		close(fd);
		_exit(0);
	}
	printf("child %d\n", child_status(pid));
	pthread_join(t, NULL);
	return 0;
}

static int other_fd = -1;

static void close_in_handler(int sig)
{
	(void)sig;
	close(other_fd); /* async-signal-safe, and a hooked call */
}

static int do_sigclose(void)
{
	int p1, p2;
	int a = listener(8, &p1);
	other_fd = listener(8, &p2);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = close_in_handler;
	sigaction(SIGALRM, &sa, NULL);
	/* the recipe delays every close of a listener: the alarm lands while
	 * the first close is inside the hook, and its handler closes again */
	struct itimerval it = { { 0, 0 }, { 0, 100 * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	int rc = close(a);
	printf("close %d, in handler %s\n", rc, fcntl(other_fd, F_GETFD) < 0 ? "closed" : "open");
	return 0;
}

static int do_storm(int procs, int times)
{
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			for (int i = 0; i < times; i++) {
				int port;
				close(listener(4, &port));
			}
			_exit(0);
		}
	}
	int failed = 0;
	while (procs-- > 0) {
		int status;
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	printf("storm %s\n", failed ? "failed" : "done");
	return failed != 0;
}

/* accept() on fd with a connection waiting: "ok" or the errno's name. */
static const char *accept_one(int fd, int port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&in, sizeof in) < 0)
		return "connect-failed";
	int a = accept(fd, NULL, NULL);
	const char *what = a >= 0 ? "ok" : strerrorname_np(errno);
	if (a >= 0)
		close(a);
	close(c);
	return what;
}

static int do_dupclose(void)
{
	int port, l = listener(16, &port);
	if (dup2(l, 100) != 100 || dup3(l, 101, O_CLOEXEC) != 101)
		return 1;
	close(l);
	printf("dup2 %s\n", accept_one(100, port));
	printf("dup3 %s\n", accept_one(101, port));
	close(101);
	close(100);
	int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n < 0 || fcntl(n, F_DUPFD_CLOEXEC, 100) != 100)
		return 1;
	printf("closed %s\n", accept(100, NULL, NULL) >= 0 ? "ok" : strerrorname_np(errno));
	return 0;
}

static const char *outcome(int rc)
{
	return rc >= 0 ? "ok" : strerrorname_np(errno);
}

/* A listener *l at *in, a client *c connected to it, and *a, the
 * connection accept4() took for it. False if any step failed. */
static bool accepted_pair(int *l, struct sockaddr_in *in, int *c, int *a)
{
	int port;
	*l = listener(16, &port);
	*in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)in, sizeof *in) < 0)
		return false;
	*a = accept4(*l, NULL, NULL, SOCK_CLOEXEC);
	return *a >= 0;
}

static int do_dupleaked(void)
{
	int l, c, a;
	struct sockaddr_in in;
	if (!accepted_pair(&l, &in, &c, &a))
		return 1;
	printf("close %s\n", outcome(close(a)));
	printf("dup2 %s\n", outcome(dup2(a, 110)));
	printf("dup3 %s\n", outcome(dup3(a, 111, O_CLOEXEC)));
	printf("again %s\n", outcome(close(a)));
	struct pollfd p = { .fd = c, .events = POLLIN };
	char b;
	bool eof = poll(&p, 1, 300) == 1 && read(c, &b, 1) == 0;
	printf("peer %s\n", eof ? "eof" : "waits");
	return 0;
}

static int do_stale(const char *kind)
{
	int l, c, a;
	struct sockaddr_in in;
	if (!accepted_pair(&l, &in, &c, &a))
		return 1;
	if (strcmp(kind, "reset") == 0) {
		struct linger lg = { 1, 0 };
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(c);
		struct pollfd p = { .fd = a, .events = POLLIN };
		poll(&p, 1, 2000); /* the reset has arrived */
	} else {
		if (unseen_close(a) != 0) {
			printf("unsupported\n");
			return 0;
		}
		int b = -1;
		if (strcmp(kind, "file") == 0)
			b = open("/dev/null", O_RDONLY | O_CLOEXEC);
		else if (strcmp(kind, "unbound") == 0)
			b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		else if ((strcmp(kind, "socket") == 0 || strcmp(kind, "session") == 0) &&
			 (b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
			 connect(b, (struct sockaddr *)&in, sizeof in) < 0)
			return 1;
		if (b != a) {
			printf("error %s got %d, not %d\n", kind, b, a);
			return 1;
		}
		if (strcmp(kind, "session") == 0) {
			if (accept4(l, NULL, NULL, SOCK_CLOEXEC) < 0)
				return 1;
			struct sockaddr_in peer;
			socklen_t len = sizeof peer;
			printf("%s\n", getpeername(b, (struct sockaddr *)&peer, &len) == 0 ? "connected" : "disconnected");
			return 0;
		}
	}
	printf("close %s\n", outcome(close(a)));
	printf("%s\n", fcntl(a, F_GETFD) < 0 && errno == EBADF ? "closed" : "open");
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
	if (argc >= 2 && strcmp(argv[1], "spawn") == 0)
		return do_spawn(argv[0]);
	if (argc >= 3 && strcmp(argv[1], "daemon") == 0)
		return do_daemon(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "forkstall") == 0)
		return do_forkstall();
	if (argc >= 2 && strcmp(argv[1], "sigclose") == 0)
		return do_sigclose();
	if (argc >= 4 && strcmp(argv[1], "storm") == 0)
		return do_storm(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 2 && strcmp(argv[1], "dupclose") == 0)
		return do_dupclose();
	if (argc >= 2 && strcmp(argv[1], "dupleaked") == 0)
		return do_dupleaked();
	if (argc >= 3 && strcmp(argv[1], "stale") == 0)
		return do_stale(argv[2]);
	fprintf(stderr, "usage: kbt-probe listen N | errno | connect PORT | fork | closeall | spawn | daemon FILE"
			" | forkstall | sigclose | storm N M | dupclose | dupleaked | stale KIND\n");
	return 2;
}
