/*
 * server.c - kbdemo-server: a small, honest TCP server to point recipes at.
 *
 * It knows nothing of kbfault. Each connection is a session of --lines
 * exchanges (default 1): a line read, "ok N i" written. Then the
 * connection is closed the way --close says, so every
 * entry point a real server uses to end a connection can be exercised:
 * close, shutdown+close (Python), syscall(SYS_close) (node), fclose on an
 * fdopen()ed stream, close_range, or none at all (shutdown, then the
 * process's exit closes it, as socat's children do). It prints "listening
 * on ADDR:PORT" once ready, and a JSON summary on stdout when it stops
 * (after --max connections, --idle-exit seconds without one, or
 * SIGTERM/SIGINT).
 *
 * Process models: threads (--threads N accepting threads, the default
 * one), --fork (a child per connection: the parent accepts, forks and
 * closes its copy at once, as socat and postgresql do; the child serves
 * and leaves with exit() or, with --child-exit _exit, _exit()), and
 * --prefork N (N worker processes accepting from one listener, as apache's
 * prefork pool does).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum close_how { CLOSE_PLAIN, CLOSE_SHUTDOWN, CLOSE_SYSCALL, CLOSE_FCLOSE, CLOSE_RANGE, CLOSE_NONE };

static struct {
	const char *host;
	int port, backlog, threads, max, idle_exit_s, slow_ms, lines, prefork;
	bool use_accept4, nonblock, fork, child_underscore_exit;
	enum close_how close_how;
} opt = { "127.0.0.1", 0, 128, 1, 0, 0, 0, 1, 0, true, false, false, false, CLOSE_PLAIN };

/* set by the signal handler and by the main thread, read by every
 * accepting thread: atomics (lock-free, so safe in a handler too) */
static int stopping;
static int accept_errors, last_errno;
/* sessions served, counted across every process of the server (--fork,
 * --prefork): one shared page */
static int *served;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int sig)
{
	(void)sig;
	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
}

static void usage(FILE *to)
{
	fputs("Usage: kbdemo-server [--host ADDR] [--port N] [--backlog N]\n"
	      "                     [--threads N | --fork [--child-exit exit|_exit] | --prefork N]\n"
	      "                     [--accept accept|accept4] [--nonblock]  (accepted sockets)\n"
	      "                     [--close close|shutdown|syscall|fclose|close-range|none]\n"
	      "                     [--max N] [--idle-exit SECONDS] [--slow MS] [--lines N]\n",
	      to);
}

static void end_connection(int c)
{
	switch (opt.close_how) {
	case CLOSE_PLAIN:
		close(c);
		break;
	case CLOSE_SHUTDOWN:
		shutdown(c, SHUT_WR);
		close(c);
		break;
	case CLOSE_SYSCALL:
		syscall(SYS_close, c);
		break;
	case CLOSE_FCLOSE: {
		FILE *f = fdopen(c, "r+");
		if (f)
			fclose(f);
		else
			close(c);
		break;
	}
	case CLOSE_RANGE:
		close_range((unsigned)c, (unsigned)c, 0);
		break;
	case CLOSE_NONE:
		shutdown(c, SHUT_WR); /* the process's exit closes it */
		break;
	}
}

/* One session: up to --lines request lines, each answered "ok N i". A
 * session ends early when the client goes away or the connection breaks
 * (a cut session): the server then closes its end, as any server would. */
static void serve(int c)
{
	char buf[256];
	int number = 0;

	for (int i = 1; i <= opt.lines; i++) {
		struct pollfd p = { c, POLLIN, 0 };
		/* the accepted socket may inherit O_NONBLOCK (accept4 flags): wait */
		if (poll(&p, 1, 5000) != 1)
			break;
		ssize_t n = read(c, buf, sizeof buf);
		if (n <= 0)
			break;
		if (number == 0)
			number = __atomic_add_fetch(served, 1, __ATOMIC_RELAXED);
		int len = snprintf(buf, sizeof buf, "ok %d %d\n", number, i);
		if (write(c, buf, (size_t)len) < 0)
			break;
	}
	end_connection(c);
}

/* --fork: the child serves the connection and leaves; the parent drops
 * its copy at once and reaps children that have finished. */
static void serve_in_child(int lfd, int c)
{
	pid_t pid = fork();
	if (pid == 0) {
		close(lfd);
		serve(c);
		if (opt.child_underscore_exit)
			_exit(0);
		exit(0);
	}
	if (pid < 0)
		serve(c);
	else
		close(c);
}

static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void *accept_loop(void *arg)
{
	int lfd = *(int *)arg;
	time_t last = time(NULL);

	while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED)) {
		if (opt.fork)
			reap();
		if (opt.max && __atomic_load_n(served, __ATOMIC_RELAXED) >= opt.max)
			break;
		if (opt.idle_exit_s && time(NULL) - last >= opt.idle_exit_s)
			break;
		if (opt.slow_ms)
			usleep((useconds_t)opt.slow_ms * 1000);
		struct pollfd p = { lfd, POLLIN, 0 };
		int r = poll(&p, 1, 200);
		if (r <= 0)
			continue;
		int c = opt.use_accept4 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC | (opt.nonblock ? SOCK_NONBLOCK : 0))
					: accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				pthread_mutex_lock(&stats_lock);
				accept_errors++;
				last_errno = errno;
				pthread_mutex_unlock(&stats_lock);
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000); /* what nginx does: back off, don't spin */
			}
			continue;
		}
		last = time(NULL);
		if (opt.fork)
			serve_in_child(lfd, c);
		else
			serve(c);
	}
	return NULL;
}

/* --prefork N: workers accept; the parent waits until it is told to stop
 * (or a worker has ended the run), then stops the others. */
static void run_prefork(int lfd)
{
	pid_t workers[64];

	for (int i = 0; i < opt.prefork; i++) {
		workers[i] = fork();
		if (workers[i] == 0) {
			accept_loop(&lfd);
			exit(0);
		}
	}
	close(lfd);
	int left = opt.prefork;
	while (left > 0 && !__atomic_load_n(&stopping, __ATOMIC_RELAXED)) {
		pid_t done = waitpid(-1, NULL, 0);
		if (done > 0) {
			left--;
			break; /* one worker ended the run (--max, --idle-exit) */
		}
	}
	for (int i = 0; i < opt.prefork; i++)
		kill(workers[i], SIGTERM);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },  { "port", required_argument, NULL, 'p' },
		{ "backlog", required_argument, NULL, 'b' }, { "threads", required_argument, NULL, 't' },
		{ "accept", required_argument, NULL, 'a' }, { "close", required_argument, NULL, 'c' },
		{ "nonblock", no_argument, NULL, 'n' },      { "max", required_argument, NULL, 'm' },
		{ "idle-exit", required_argument, NULL, 'i' }, { "slow", required_argument, NULL, 's' },
		{ "lines", required_argument, NULL, 'l' },
		{ "fork", no_argument, NULL, 'f' },          { "prefork", required_argument, NULL, 'P' },
		{ "child-exit", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'b': opt.backlog = atoi(optarg); break;
		case 't': opt.threads = atoi(optarg); break;
		case 'm': opt.max = atoi(optarg); break;
		case 'i': opt.idle_exit_s = atoi(optarg); break;
		case 's': opt.slow_ms = atoi(optarg); break;
		case 'l': opt.lines = atoi(optarg); break;
		case 'n': opt.nonblock = true; break;
		case 'f': opt.fork = true; break;
		case 'P': opt.prefork = atoi(optarg); break;
		case 'x':
			if (strcmp(optarg, "exit") == 0)
				opt.child_underscore_exit = false;
			else if (strcmp(optarg, "_exit") == 0)
				opt.child_underscore_exit = true;
			else
				goto bad;
			break;
		case 'a':
			if (strcmp(optarg, "accept") == 0)
				opt.use_accept4 = false;
			else if (strcmp(optarg, "accept4") == 0)
				opt.use_accept4 = true;
			else
				goto bad;
			break;
		case 'c': {
			static const char *const names[] = { "close", "shutdown", "syscall", "fclose", "close-range",
							      "none" };
			int k;
			for (k = 0; k < 6 && strcmp(optarg, names[k]) != 0; k++)
				;
			if (k == 6)
				goto bad;
			opt.close_how = (enum close_how)k;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (opt.threads < 1 || opt.threads > 64 || opt.lines < 1 || opt.prefork < 0 || opt.prefork > 64 ||
	    ((opt.fork || opt.prefork) && opt.threads != 1) || (opt.fork && opt.prefork))
		goto bad;
	served = mmap(NULL, sizeof *served, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (served == MAP_FAILED)
		return 1;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls see EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	int family = strchr(opt.host, ':') ? AF_INET6 : AF_INET;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)opt.port);
		if (inet_pton(AF_INET, opt.host, &in->sin_addr) != 1)
			goto bad;
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)opt.port);
		if (inet_pton(AF_INET6, opt.host, &in6->sin6_addr) != 1)
			goto bad;
		len = sizeof *in6;
	}
	/* non-blocking whatever --nonblock says: with several threads polling
	 * one listener, the losers of each race must get EAGAIN, not block
	 * in accept() until the next connection */
	int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) < 0 || listen(lfd, opt.backlog) < 0) {
		fprintf(stderr, "kbdemo-server: cannot listen on %s:%d: %s\n", opt.host, opt.port, strerror(errno));
		return 1;
	}
	len = sizeof ss;
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	int port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				     : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	printf("listening on %s:%d\n", opt.host, port);
	fflush(stdout);

	pthread_t tids[64];
	if (opt.prefork) {
		run_prefork(lfd);
	} else {
		for (int i = 1; i < opt.threads; i++)
			pthread_create(&tids[i], NULL, accept_loop, &lfd);
		accept_loop(&lfd);
		__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
		for (int i = 1; i < opt.threads; i++)
			pthread_join(tids[i], NULL);
		if (opt.fork)
			while (waitpid(-1, NULL, 0) > 0)
				;
	}
	printf("{\"served\":%d,\"accept_errors\":%d,\"last_errno\":\"%s\"}\n", __atomic_load_n(served, __ATOMIC_RELAXED), accept_errors,
	       last_errno ? strerrorname_np(last_errno) : "");
	return 0;
bad:
	usage(stderr);
	return 2;
}
