/*
 * kbt-prefork - a prefork server in the manner of apache's prefork MPM,
 * for the preload tests. It knows nothing of kbfault.
 *
 *   kbt-prefork WORKERS MAX reap|noreap [WAIT_MS]
 *
 * The parent listens on 127.0.0.1 (a blocking listener; prints "listening
 * on 127.0.0.1:PORT") and forks WORKERS workers. Each worker accepts in a
 * loop, serves each connection one reply ("ok\n" to the client's line),
 * and exits after MAX connections (apache's MaxConnectionsPerChild). The
 * first WORKERS workers wait WAIT_MS (default 0) before they start, so
 * that clients can queue up.
 * With `reap` the parent reaps a worker that exits and forks another in
 * its place; with `noreap` it reaps none, so they stay zombies, until it
 * is told to stop. On SIGTERM the parent stops its workers and prints
 * {"forked":N}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS_MAX 16

static int lfd;
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_child(int sig)
{
	(void)sig;
}

static void worker(int max, int wait_ms)
{
	usleep((useconds_t)wait_ms * 1000);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int served = 0; served < max;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			_exit(3);
		}
		char buf[256];
		struct pollfd p = { c, POLLIN, 0 };
		if (poll(&p, 1, 2000) == 1 && read(c, buf, sizeof buf) > 0 && write(c, "ok\n", 3) == 3)
			served++;
		close(c);
	}
	_exit(0); /* as a worker does at its connection limit */
}

static pid_t spawn(int max, int wait_ms)
{
	pid_t pid = fork();
	if (pid == 0)
		worker(max, wait_ms);
	return pid;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		return 2;
	int n = atoi(argv[1]), max = atoi(argv[2]), wait_ms = argc == 5 ? atoi(argv[4]) : 0;
	bool reap = strcmp(argv[3], "reap") == 0;
	if (n < 1 || n > WORKERS_MAX || max < 1)
		return 2;

	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&in, sizeof in) < 0 || listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&in, &len) < 0) {
		perror("kbt-prefork: listen");
		return 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, none;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &block, NULL);

	pid_t pids[WORKERS_MAX];
	int forked = 0;
	for (int i = 0; i < n; i++, forked++)
		pids[i] = spawn(max, wait_ms);
	printf("listening on 127.0.0.1:%d\n", ntohs(in.sin_port));
	fflush(stdout);

	while (!stop) {
		sigsuspend(&none);
		if (!reap)
			continue;
		pid_t gone;
		while ((gone = waitpid(-1, NULL, WNOHANG)) > 0)
			for (int i = 0; i < n; i++)
				if (pids[i] == gone && !stop) {
					pids[i] = spawn(max, 0);
					forked++;
				}
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	printf("{\"forked\":%d}\n", forked);
	return 0;
}
