/*
 * harness.c - see harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *kbt_build(const char *name)
{
	static char buf[8][4096];
	static int next;
	const char *b = getenv("KB_BUILD");
	char *out = buf[next++ % 8];
	snprintf(out, 4096, "%s/%s", b ? b : "build", name);
	return out;
}

static char tmpdir[64];

static void remove_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *kbt_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/kbtest-XXXXXX");
		cr_assert_not_null(mkdtemp(tmpdir));
		atexit(remove_tmpdir);
	}
	return tmpdir;
}

const char *kbt_write(const char *name, const char *text)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, 512, "%s/%s", kbt_tmpdir(), name);
	kbt_write_path(p, text);
	return p;
}

void kbt_write_path(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0, "%s: %s", path, strerror(errno));
}

const char *kbt_logpath(void)
{
	static char log[600];
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	return log;
}

const char **kbt_under(const char *recipe)
{
	static char env_recipe[700], env_log[700];
	static const char *env[3];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", recipe));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	env[0] = env_recipe;
	env[1] = env_log;
	env[2] = NULL;
	return env;
}

bool kbt_sanitizer_is(const char *name)
{
	const char *san = getenv("KB_SANITIZER");
	return san && strcmp(san, name) == 0;
}

void kbt_skip_under(const char *sanitizer, const char *why)
{
	if (kbt_sanitizer_is(sanitizer))
		cr_skip_test("%s", why);
}

/* Every process group a test starts. A failed assertion abandons the test
 * body before it stops its servers; this makes sure nothing it started
 * outlives the test's process, whatever happened. */
static pid_t started[128];
static size_t nstarted;

static void reap_everything(void)
{
	for (size_t i = 0; i < nstarted; i++)
		kill(-started[i], SIGKILL);
}

static void remember(pid_t pid)
{
	if (nstarted == 0)
		atexit(reap_everything);
	if (nstarted < sizeof started / sizeof started[0])
		started[nstarted++] = pid;
}

void kbt_spawn(struct kbt_proc *p, const char *const *argv, const char *const *env_extra, bool preload)
{
	char *env[512];
	size_t n = 0;
	char preload_var[4200];
	int out[2], err[2];
	posix_spawn_file_actions_t fa;

	/* under make check-asan the test runner does not hunt its own leaks
	 * (each test is a short-lived process), but every program it starts -
	 * and the shim inside it - is checked: KB_CHILD_ASAN_OPTIONS */
	static char child_asan[512];
	const char *ca = getenv("KB_CHILD_ASAN_OPTIONS");
	for (char **e = environ; *e && n < 400; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "KBFAULT_", 8) != 0 &&
		    !(ca && strncmp(*e, "ASAN_OPTIONS=", 13) == 0))
			env[n++] = *e;
	if (ca) {
		snprintf(child_asan, sizeof child_asan, "ASAN_OPTIONS=%s", ca);
		env[n++] = child_asan;
	}
	if (preload) {
		snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", kbt_build("libkbfault.so"));
		env[n++] = preload_var;
	}
	for (size_t i = 0; env_extra && env_extra[i] && n < 510; i++)
		env[n++] = (char *)env_extra[i];
	env[n] = NULL;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	/* its own process group: a server's children (nginx's workers) can be
	 * stopped with it, and nothing outlives the test */
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	/* Under make check-valgrind every host program (and what it execs)
	 * runs under memcheck; the load generator does not, so that its
	 * timing stays that of a real client. valgrind's own wrapper and
	 * launcher get an environment without the shim: env(1), itself run
	 * under valgrind, hands LD_PRELOAD and KBFAULT_* to the program. */
	const char *vg_argv[96];
	const char *vg = getenv("KB_VALGRIND");
	if (vg && strstr(argv[0], "kbdemo-client") == NULL && strcmp(argv[0], "/bin/sh") != 0) {
		size_t k = 0, kept = 0;
		vg_argv[k++] = "/usr/bin/valgrind";
		vg_argv[k++] = "-q";
		vg_argv[k++] = "--error-exitcode=95";
		vg_argv[k++] = "--leak-check=full";
		vg_argv[k++] = "--errors-for-leak-kinds=definite";
		vg_argv[k++] = "--trace-children=yes";
		vg_argv[k++] = "--trace-children-skip=*/sh,*/kbdemo-client";
		vg_argv[k++] = "/usr/bin/env";
		for (size_t i = 0; i < n; i++) {
			if ((strncmp(env[i], "LD_PRELOAD=", 11) == 0 || strncmp(env[i], "KBFAULT_", 8) == 0) && k < 70)
				vg_argv[k++] = env[i];
			else
				env[kept++] = env[i];
		}
		env[kept] = NULL;
		for (size_t i = 0; argv[i] && k < 95; i++)
			vg_argv[k++] = argv[i];
		vg_argv[k] = NULL;
		argv = vg_argv;
	}
	int rc = posix_spawn(&p->pid, argv[0], &fa, &attr, (char *const *)argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "cannot start %s: %s", argv[0], strerror(rc));
	remember(p->pid);
	close(out[1]);
	close(err[1]);
	p->out = out[0];
	p->err = err[0];
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

char *kbt_line(struct kbt_proc *p, int timeout_ms)
{
	static char line[4096];
	size_t n = 0;
	long long deadline = now_ms() + timeout_ms;

	while (n < sizeof line - 1) {
		struct pollfd pf = { p->out, POLLIN, 0 };
		long long left = deadline - now_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return NULL;
		char c;
		if (read(p->out, &c, 1) != 1)
			return NULL;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return line;
}

/* Reads what is left on fd until its end, or until deadline (ms on the
 * monotonic clock; 0: none). A deadline matters when something the test
 * did not start keeps the pipe open: a daemon that left our process group
 * (or valgrind's copy of its descriptors) would otherwise block us for
 * ever. */
static char *slurp_until(int fd, long long deadline)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 1024 > cap)
			buf = realloc(buf, cap *= 2);
		if (deadline) {
			long long left = deadline - now_ms();
			struct pollfd pf = { fd, POLLIN, 0 };
			if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
				break;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return buf;
}

char *kbt_slurp_fd(int fd)
{
	return slurp_until(fd, 0);
}

int kbt_wait(struct kbt_proc *p, int timeout_ms, char **out, char **err)
{
	long long deadline = now_ms() + timeout_ms;
	int status;
	pid_t r;

	while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(5000);
	if (r == 0) {
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		status = -1;
	} else if (WIFEXITED(status)) {
		status = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		status = 128 + WTERMSIG(status);
	}
	/* the rest of the output, within what is left of the deadline (and
	 * a moment more, for a child that has just exited) */
	long long until = (deadline > now_ms() ? deadline : now_ms()) + 2000;
	char *o = slurp_until(p->out, until), *e = slurp_until(p->err, until);
	if (out)
		*out = o;
	else
		free(o);
	if (err)
		*err = e;
	else
		free(e);
	return status;
}

int kbt_run(const char *const *argv, const char *const *env_extra, bool preload, int timeout_ms,
	    char **out, char **err)
{
	struct kbt_proc p;
	kbt_spawn(&p, argv, env_extra, preload);
	return kbt_wait(&p, timeout_ms, out, err);
}

int kbt_kbfault(const char *const *args, char **out, char **err)
{
	const char *argv[32] = { kbt_build("kbfault") };
	size_t n = 1;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* what it makes in $TMPDIR (a gate's directory) goes with the test's */
	char env_tmpdir[700];
	snprintf(env_tmpdir, sizeof env_tmpdir, "TMPDIR=%s", kbt_tmpdir());
	return kbt_run(argv, (const char *[]){ env_tmpdir, NULL }, false, 20000, out, err);
}

int kbt_port_of(const char *line)
{
	cr_assert_not_null(line, "the server said nothing");
	const char *colon = strrchr(line, ':');
	const char *sp = strrchr(line, ' ');
	const char *num = colon ? colon + 1 : sp ? sp + 1 : line;
	int port = atoi(num);
	cr_assert_gt(port, 0, "no port in '%s'", line);
	return port;
}

struct kbt_log kbt_log_read(const char *path)
{
	struct kbt_log log = { 0, NULL };
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, slots = 0;
	unsigned lineno = 0;

	cr_assert_not_null(f, "no log at %s", path);
	while (getline(&line, &cap, f) >= 0) {
		unsigned col;
		const char *why;
		lineno++;
		cr_assert_eq(line[strlen(line) - 1], '\n', "%s:%u: a line without its end", path, lineno);
		if (log.n == slots) {
			/* doubling: a parsed line is tens of KiB, and a realloc per
			 * line copies the whole array each time under ASan, whose
			 * realloc never grows in place (hours for a large log) */
			slots = slots ? 2 * slots : 64;
			log.line = realloc(log.line, slots * sizeof *log.line);
			cr_assert_not_null(log.line, "%s: out of memory at line %u", path, lineno);
		}
		cr_assert_eq(kb_json_flat_parse(line, &log.line[log.n], &col, &why), 0, "%s:%u:%u: %s: %s", path,
			     lineno, col, why, line);
		log.n++;
	}
	free(line);
	fclose(f);
	return log;
}

void kbt_log_free(struct kbt_log *log)
{
	free(log->line);
	log->line = NULL;
	log->n = 0;
}

size_t kbt_log_count(const struct kbt_log *log, ...)
{
	size_t count = 0;
	for (size_t i = 0; i < log->n; i++) {
		va_list ap;
		bool all = true;
		va_start(ap, log);
		for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
			const char *v = va_arg(ap, const char *);
			const char *have = kb_json_str(&log->line[i], k);
			if (have == NULL || strcmp(have, v) != 0)
				all = false;
		}
		va_end(ap);
		count += all;
	}
	return count;
}

long kbt_json_num(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *at = json ? strstr(json, pat) : NULL;
	cr_assert_not_null(at, "no \"%s\" in %s", key, json ? json : "(nothing)");
	return strtol(at + strlen(pat), NULL, 10);
}

int kbt_server(struct kbt_proc *p, const char *recipe, const char *log, const char *const *args)
{
	const char *argv[32] = { kbt_build("kbdemo-server") };
	static char env_recipe[600], env_log[600];
	const char *env[3] = { NULL, NULL, NULL };
	size_t n = 1;

	for (size_t i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (recipe) {
		snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", recipe);
		snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", log);
		env[0] = env_recipe;
		env[1] = env_log;
	}
	kbt_spawn(p, argv, env, recipe != NULL);
	return kbt_port_of(kbt_line(p, 5000));
}

char *kbt_client(int port, int count, int concurrency, int timeout_ms)
{
	char sport[16], scount[16], sconc[16], stime[16];
	snprintf(sport, sizeof sport, "%d", port);
	snprintf(scount, sizeof scount, "%d", count);
	snprintf(sconc, sizeof sconc, "%d", concurrency);
	snprintf(stime, sizeof stime, "%d", timeout_ms);
	const char *argv[] = { kbt_build("kbdemo-client"), "--port", sport, "--count", scount, "--concurrency",
			       sconc, "--timeout", stime, NULL };
	char *out;
	/* every attempt ends by its own timeout; this bounds the whole run */
	int rc = kbt_run(argv, NULL, false, timeout_ms * (count / concurrency + 2) + 10000, &out, NULL);
	cr_assert_eq(rc, 0, "kbdemo-client failed: %s", out);
	return out;
}
