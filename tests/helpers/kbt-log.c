/*
 * kbt-log - hosts that are hard on the shim's injection log and on its
 * own descriptors, for tests/preload/test_log.c. Every injection it asks
 * for is a listen() on a fresh socket, which a recipe with a listen rule
 * (`action backlog N`) logs as one line. It knows nothing of kbfault but
 * the log's path (KBFAULT_LOG), which `dupstorm` looks for among its
 * descriptors; it says what it saw on stdout.
 *
 *   kbt-log inject N             N injections
 *   kbt-log threads T            T threads past a barrier, each one injection
 *                                at once: the process's first lines
 *   kbt-log stdin-inject N [block|pending]
 *                                wait for a line on stdin, then N injections, and
 *                                say whether SIGPIPE is pending ("sigpipe pending 0");
 *                                block: SIGPIPE blocked by the host first; pending:
 *                                blocked and already pending (its own raise())
 *   kbt-log file-inject FILE N [block|pending]
 *                                the same, once FILE exists
 *   kbt-log nonblock N           O_NONBLOCK on descriptor 2 (as node does), then N
 *                                injections as fast as it can
 *   kbt-log nonblock-phases N1 FILE N2
 *                                the same: N1 injections, "phase1 MS", wait until FILE
 *                                exists, N2 injections, "phase2 MS"
 *   kbt-log broken KIND [VAR=VALUE...] -- ARGV...
 *                                runs ARGV with descriptor 2 a pipe (KIND pipe) or a
 *                                socket (socket) whose reader is gone; pipe-late and
 *                                socket-late close the reader only after the child's
 *                                first line, then send it a line on stdin; says
 *                                "status N" (128+signal when killed)
 *   kbt-log strict FILE N        as systemd's safe_close: closes every descriptor
 *                                /proc/self/fd lists, asserting none says EBADF; then N
 *                                injections; then closes what is still listed again;
 *                                writes "ebadf K", "again E" and "injected N" to FILE
 *   kbt-log dupstorm ITER K      ITER times: 8 threads past a barrier dup2() a file of
 *                                its own onto the log's number, then it closes 3..1099,
 *                                opens 1,100 files, makes K injections, and looks for
 *                                log lines in those files; says "polluted P"
 *   kbt-log fill N FILE M        N injections, remove FILE, M injections
 *   kbt-log fsize BYTES N M      limits its files (RLIMIT_FSIZE) to BYTES more than the
 *                                log has, makes N injections, lifts the limit, makes M
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* One listen() on a fresh loopback socket: one log line under a listen
 * rule. Returns 0, or -1 if the socket could not be made. */
static int inject(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rc = bind(fd, (struct sockaddr *)&in, sizeof in) == 0 && listen(fd, 100) == 0 ? 0 : -1;
	close(fd);
	return rc;
}

static int inject_n(long n)
{
	for (long i = 0; i < n; i++)
		if (inject() < 0)
			return -1;
	return 0;
}

/* Waits (bounded) for a line on stdin. */
static void wait_stdin(void)
{
	struct pollfd p = { 0, POLLIN, 0 };
	char c;
	if (poll(&p, 1, 20000) > 0)
		while (read(0, &c, 1) == 1 && c != '\n')
			;
}

static void wait_file(const char *path)
{
	for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++)
		usleep(10000);
}

static bool sigpipe_pending(void)
{
	sigset_t p;
	sigpending(&p);
	return sigismember(&p, SIGPIPE) == 1;
}

/* Waits for a line on stdin (file NULL) or for file to exist, then
 * injects n times, and says what became of SIGPIPE. */
static int do_wait_inject(const char *file, long n, const char *how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	if (how && (strcmp(how, "block") == 0 || strcmp(how, "pending") == 0))
		sigprocmask(SIG_BLOCK, &s, NULL);
	if (how && strcmp(how, "pending") == 0)
		raise(SIGPIPE);
	if (file)
		wait_file(file);
	else
		wait_stdin();
	if (inject_n(n) < 0)
		return 1;
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	printf("sigpipe pending %d blocked %d\n", sigpipe_pending(), sigismember(&mask, SIGPIPE) == 1);
	return 0;
}

static void nonblock_stderr(void)
{
	int fl = fcntl(2, F_GETFL);
	fcntl(2, F_SETFL, fl | O_NONBLOCK);
}

static int do_nonblock_phases(long n1, const char *file, long n2)
{
	nonblock_stderr();
	long long t0 = now_ms();
	if (inject_n(n1) < 0)
		return 1;
	printf("phase1 %lld\n", now_ms() - t0);
	fflush(stdout);
	wait_file(file);
	t0 = now_ms();
	if (inject_n(n2) < 0)
		return 1;
	printf("phase2 %lld\n", now_ms() - t0);
	return 0;
}

/* Reads one line from fd, bounded; returns its length or -1. */
static int read_line(int fd, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int n = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			return n;
		n++;
	}
}

static int do_broken(int argc, char **argv)
{
	const char *kind = argv[2];
	bool late = strstr(kind, "-late") != NULL;
	bool sock = strncmp(kind, "socket", 6) == 0;
	int i = 3;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++)
		putenv(argv[i]);
	if (i + 1 >= argc)
		return 2;
	int e[2], in[2];
	if ((sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e) : pipe2(e, O_CLOEXEC)) < 0 ||
	    pipe2(in, O_CLOEXEC) < 0)
		return 2;
	if (!late)
		close(e[0]);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(e[1], 2);
		dup2(in[0], 0);
		execv(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	close(e[1]);
	close(in[0]);
	if (late) {
		if (read_line(e[0], 10000) < 0)
			printf("no first line\n");
		close(e[0]);
		ssize_t w = write(in[1], "go\n", 3);
		(void)w;
	}
	close(in[1]);
	int status;
	long long deadline = now_ms() + 20000;
	pid_t r;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(5000);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		printf("status hung\n");
		return 0;
	}
	printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

/* The descriptors /proc/self/fd lists, but the listing's own. */
static int listed(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (d == NULL)
		return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d) && n < max)
			fds[n++] = fd;
	}
	closedir(d);
	return n;
}

static int do_strict(const char *file, long n)
{
	int fds[4096];
	int count = listed(fds, 4096), ebadf = 0, again = 0;
	for (int i = 0; i < count; i++)
		/* systemd: assert_se(close_nointr(fd) != -EBADF) */
		if (close(fds[i]) < 0 && errno == EBADF)
			ebadf++;
	int injected = inject_n(n) == 0 ? (int)n : -1;
	/* whatever is listed now was not closed for real: a second close
	 * of it finds a closed number */
	count = listed(fds, 4096);
	for (int i = 0; i < count; i++)
		if (close(fds[i]) < 0 && errno == EBADF)
			again++;
	FILE *f = fopen(file, "w");
	if (f == NULL)
		return 1;
	fprintf(f, "ebadf %d\nagain %d of %d\ninjected %d\n", ebadf, again, count, injected);
	fclose(f);
	return 0;
}

/* ---- dupstorm --------------------------------------------------------- */

#define STORM_THREADS 8
#define STORM_LOW 3
#define STORM_HIGH 1099
#define STORM_FILES 1100

static pthread_barrier_t storm_barrier;
static int storm_src, storm_target;

static void *storm_thread(void *arg)
{
	pthread_barrier_wait(&storm_barrier);
	dup2(storm_src, storm_target);
	return arg;
}

/* The number the log has now: a listed descriptor that is the log's
 * file. */
static int find_log(const char *path)
{
	static int fds[8192];
	struct stat want, st;
	if (stat(path, &want) != 0)
		return -1;
	int n = listed(fds, 8192);
	for (int i = 0; i < n; i++)
		if (fstat(fds[i], &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			return fds[i];
	return -1;
}

/* Did anything write into a file of the host's? */
static bool polluted(int fd)
{
	char buf[64];
	return pread(fd, buf, sizeof buf, 0) > 0;
}

static bool polluted_path(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size > 0;
}

static int do_dupstorm(char **argv, long iter, long k)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 4096 && getenv("KBT_RAISED") == NULL) {
		/* the shim chooses its numbers when it starts: start again with
		 * room for 1,100 files of the host's */
		rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return 3;
		setenv("KBT_RAISED", "1", 1);
		execv("/proc/self/exe", argv);
		return 3;
	}
	const char *log = getenv("KBFAULT_LOG");
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", log ? log : "/tmp/x");
	*strrchr(dir, '/') = '\0';
	long dirty = 0, missing = 0;
	for (long it = 0; it < iter; it++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/src", dir);
		storm_src = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		storm_target = log ? find_log(log) : -1;
		if (storm_src < 0 || storm_target < 0) {
			missing++;
			break;
		}
		pthread_t t[STORM_THREADS];
		pthread_barrier_init(&storm_barrier, NULL, STORM_THREADS);
		for (int i = 0; i < STORM_THREADS; i++)
			pthread_create(&t[i], NULL, storm_thread, NULL);
		for (int i = 0; i < STORM_THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&storm_barrier);
		for (int fd = STORM_LOW; fd <= STORM_HIGH; fd++)
			close(fd);
		int files[STORM_FILES];
		for (int i = 0; i < STORM_FILES; i++) {
			snprintf(path, sizeof path, "%s/f%d", dir, i);
			files[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		}
		if (inject_n(k) < 0)
			missing++;
		for (int i = 0; i < STORM_FILES; i++) {
			if (files[i] >= 0 && polluted(files[i]))
				dirty++;
			if (files[i] >= 0)
				close(files[i]);
		}
		/* the file dup2()ed onto the log's number, closed since */
		snprintf(path, sizeof path, "%s/src", dir);
		dirty += polluted_path(path);
	}
	printf("polluted %ld missing %ld\n", dirty, missing);
	return 0;
}

static int do_fsize(long bytes, long n, long m)
{
	struct stat st;
	struct rlimit rl, was;
	const char *log = getenv("KBFAULT_LOG");
	if (log == NULL || stat(log, &st) != 0 || getrlimit(RLIMIT_FSIZE, &was) != 0)
		return 3;
	rl.rlim_cur = (rlim_t)st.st_size + (rlim_t)bytes;
	rl.rlim_max = was.rlim_max;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || inject_n(n) < 0 || setrlimit(RLIMIT_FSIZE, &was) != 0)
		return 1;
	return inject_n(m) == 0 ? 0 : 1;
}

static pthread_barrier_t first_lines;

static void *one_injection(void *arg)
{
	pthread_barrier_wait(&first_lines);
	return inject() == 0 ? arg : NULL;
}

/* T threads whose first injections come at once. */
static int do_threads(int t)
{
	pthread_t th[64];
	int ok = 0;
	if (t < 1 || t > 64)
		return 1;
	pthread_barrier_init(&first_lines, NULL, (unsigned)t);
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, one_injection, &ok);
	int done = 0;
	for (int i = 0; i < t; i++) {
		void *r;
		pthread_join(th[i], &r);
		done += r != NULL;
	}
	printf("injected %d\n", done);
	return done == t ? 0 : 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "inject") == 0)
		return inject_n(atol(argv[2])) == 0 ? 0 : 1;
	if (argc >= 3 && strcmp(argv[1], "threads") == 0)
		return do_threads(atoi(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "stdin-inject") == 0)
		return do_wait_inject(NULL, atol(argv[2]), argc > 3 ? argv[3] : NULL);
	if (argc >= 4 && strcmp(argv[1], "file-inject") == 0)
		return do_wait_inject(argv[2], atol(argv[3]), argc > 4 ? argv[4] : NULL);
	if (argc >= 3 && strcmp(argv[1], "nonblock") == 0) {
		nonblock_stderr();
		return inject_n(atol(argv[2])) == 0 ? 0 : 1;
	}
	if (argc >= 5 && strcmp(argv[1], "nonblock-phases") == 0)
		return do_nonblock_phases(atol(argv[2]), argv[3], atol(argv[4]));
	if (argc >= 5 && strcmp(argv[1], "broken") == 0)
		return do_broken(argc, argv);
	if (argc >= 4 && strcmp(argv[1], "strict") == 0)
		return do_strict(argv[2], atol(argv[3]));
	if (argc >= 4 && strcmp(argv[1], "dupstorm") == 0)
		return do_dupstorm(argv, atol(argv[2]), atol(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "fill") == 0) {
		if (inject_n(atol(argv[2])) < 0)
			return 1;
		unlink(argv[3]);
		return inject_n(atol(argv[4])) == 0 ? 0 : 1;
	}
	if (argc >= 5 && strcmp(argv[1], "fsize") == 0)
		return do_fsize(atol(argv[2]), atol(argv[3]), atol(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of kbt-log.c\n");
	return 2;
}
