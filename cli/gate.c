/*
 * gate.c - running one gate, and reading a suite of them; see gate.h.
 *
 * Every process a gate starts gets a process group of its own, so that
 * stopping it stops what it started too (nginx's workers, a shell's
 * children); nothing outlives the gate. Every wait is bounded.
 */
#include "gate.h"
#include "reach.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kbfault/mem.h"
#include "kbfault/scan.h"
#include "kbfault/stanza.h"

extern char **environ;

const char *const kb_gate_outputs[KB_GATE_OUTPUTS] = { "kbfault.log", "server.out", "load.out", "probe.out" };

void kb_gate_defaults(struct kb_gate *g)
{
	memset(g, 0, sizeof *g);
	kb_overrides_init(&g->ov, "set");
	g->min_injections = 1;
	g->timeout_s = 60;
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

static int copy(char *dst, size_t size, const char *src, const char *what, char *err, size_t len)
{
	if (strlen(src) >= size)
		return fail(err, len, "%s is too long", what);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* The reason a gate failed or could not run. (A function of its own, not
 * snprintf: a long path in a reason is cut, which is fine here.) */
static void say(struct kb_gate_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct kb_gate_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
}

/* "60", "60s", "2m": whole seconds. */
static int seconds(const char *s, unsigned *out)
{
	uint64_t v;
	if (kb_scan_u64(s, 86400, &v) == 0 || (kb_scan_duration(s, &v) == 0 && (v /= 1000000000ULL) <= 86400)) {
		if (v == 0)
			return -1;
		*out = (unsigned)v;
		return 0;
	}
	return -1;
}

int kb_gate_set(struct kb_gate *g, const char *key, const char *value, char *err, size_t len)
{
	struct kb_diag d;
	uint64_t v;

	if (strcmp(key, "recipe") == 0)
		return copy(g->recipe, sizeof g->recipe, value, "the recipe", err, len);
	if (strcmp(key, "server") == 0)
		return copy(g->server, sizeof g->server, value, "the server command", err, len);
	if (strcmp(key, "probe") == 0)
		return copy(g->probe, sizeof g->probe, value, "the probe command", err, len);
	if (strcmp(key, "load") == 0)
		return copy(g->load, sizeof g->load, value, "the load command", err, len);
	if (strcmp(key, "log") == 0)
		return copy(g->log, sizeof g->log, value, "the log path", err, len);
	if (strcmp(key, "name") == 0) {
		/* it names a directory under --out and a JUnit test case */
		if (!value[0] || value[0] == '.' || value[strspn(value, KB_GATE_NAME_CHARS)])
			return fail(err, len, "name: expected letters, digits, '.', '_' and '-' (not first '.'), got '%s'",
				    value);
		return copy(g->name, sizeof g->name, value, "the name", err, len);
	}
	if (strcmp(key, "seed") == 0) {
		if (kb_scan_u64(value, UINT64_MAX, &v) < 0)
			return fail(err, len, "seed: expected a whole number, got '%s'", value);
		return copy(g->seed, sizeof g->seed, value, "the seed", err, len);
	}
	if (strcmp(key, "set") == 0) {
		if (kb_overrides_add(&g->ov, value, &d) < 0)
			return fail(err, len, "%s", d.msg);
		return 0;
	}
	if (strcmp(key, "ready") == 0) {
		/* tcp:HOST:PORT, HOST possibly [v6] */
		const char *colon = strrchr(value, ':');
		bool chosen = colon && (strcmp(colon + 1, "$KBGATE_PORT") == 0 || strcmp(colon + 1, "${KBGATE_PORT}") == 0);
		if (strncmp(value, "tcp:", 4) != 0 || colon == NULL || colon < value + 4 ||
		    (!chosen && (kb_scan_u64(colon + 1, 65535, &v) < 0 || v == 0)))
			return fail(err, len,
				    "ready: expected tcp:HOST:PORT (tcp:127.0.0.1:8080, or tcp:127.0.0.1:$KBGATE_PORT for "
				    "a free one), got '%s'",
				    value);
		size_t n = (size_t)(colon - (value + 4));
		if (n == 0 || n >= sizeof g->ready_host)
			return fail(err, len, "ready: expected tcp:HOST:PORT, got '%s'", value);
		memcpy(g->ready_host, value + 4, n);
		g->ready_host[n] = '\0';
		g->ready_port = chosen ? KB_GATE_PORT_AUTO : (int)v;
		return 0;
	}
	if (strcmp(key, "min-injections") == 0) {
		if (kb_scan_u64(value, 1000000000, &v) < 0)
			return fail(err, len, "min-injections: expected a whole number, got '%s'", value);
		g->min_injections = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "expect") == 0) {
		if (g->nexpects == KB_EXPECTS_MAX)
			return fail(err, len, "expect: at most %d per gate", KB_EXPECTS_MAX);
		if (kb_expect_parse(value, &g->expects[g->nexpects], err, len) < 0)
			return -1;
		g->nexpects++;
		return 0;
	}
	if (strcmp(key, "timeout") == 0) {
		if (seconds(value, &g->timeout_s) < 0)
			return fail(err, len, "timeout: expected seconds (60) or a duration (2m), got '%s'", value);
		return 0;
	}
	if (strcmp(key, "server-may-exit") == 0) {
		if (kb_scan_bool(value, &g->server_may_exit) < 0)
			return fail(err, len, "server-may-exit: expected yes or no, got '%s'", value);
		return 0;
	}
	return fail(err, len,
		    "unknown gate key '%s' (expected recipe, set, seed, server, ready, load, probe, min-injections, expect, timeout, server-may-exit, log)",
		    key);
}

int kb_gate_check(const struct kb_gate *g, char *err, size_t len)
{
	char storage[KB_RECIPE_DIRS_MAX][4096], path[4096], msg[2048];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	struct kb_recipe r;
	struct kb_diag d;
	struct kb_overrides ov = g->ov;

	if (!g->recipe[0])
		return fail(err, len, "no recipe (--recipe RECIPE)");
	if (!g->server[0])
		return fail(err, len, "no server command (--server 'CMD')");
	if (!g->ready_port)
		return fail(err, len, "no readiness check (--ready tcp:HOST:PORT)");
	if (!g->probe[0])
		return fail(err, len, "no probe command (--probe 'CMD')");
	kb_locate_recipe_dirs(storage, dirs);
	if (kb_recipe_find(g->recipe, dirs, path, sizeof path, &d) < 0 || kb_recipe_load(path, &ov, &r, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		return fail(err, len, "%s", msg);
	}
	kb_recipe_free(&r);
	return 0;
}

/* ---- running ----------------------------------------------------------- */

/* SIGINT, SIGTERM, SIGHUP: every process a gate started is in a group of
 * its own, out of reach of the terminal's ^C, so the gate stops them
 * itself before it exits. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

void kb_gate_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int kb_gate_interrupted(void)
{
	return interrupted;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Our environment without the shim's variables (for the probe and the
 * load, which are clients), plus extra ("K=V", NULL-terminated). */
static char **environment(const char *const *extra)
{
	size_t n = 0, k = 0;
	for (char **e = environ; *e; e++)
		n++;
	for (size_t i = 0; extra && extra[i]; i++)
		n++;
	char **env = calloc(n + 1, sizeof *env);
	if (env == NULL)
		return NULL;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "KBFAULT_", 8) != 0)
			env[k++] = *e;
	for (size_t i = 0; extra && extra[i]; i++)
		env[k++] = (char *)extra[i];
	env[k] = NULL;
	return env;
}

/* A port nothing listens on at host now (the kernel's choice), or -1. */
static int free_port(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char bare[256];
	size_t hl = strlen(host);
	snprintf(bare, sizeof bare, "%.*s", (int)(hl >= 2 && host[0] == '[' ? hl - 2 : hl), host + (host[0] == '['));
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET6, bare, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		len = sizeof *in6;
	} else {
		in->sin_family = AF_INET;
		if (inet_pton(AF_INET, bare, &in->sin_addr) != 1)
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *in;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) == 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ? in6->sin6_port : in->sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* /bin/sh -c cmd in a process group of its own, output to out_path. */
static pid_t start(const char *cmd, char **env, const char *out_path)
{
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (in >= 0)
			dup2(in, 0);
		execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, env);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid); /* also here: whichever runs first */
	return pid;
}

static int status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* Waits for pid until deadline; returns its status, or -1 if still running. */
static int wait_until(pid_t pid, double deadline, int *reaped)
{
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			*reaped = 1;
			return status_of(st);
		}
		if (r < 0) {
			*reaped = 1;
			return -1;
		}
		if (now_s() >= deadline)
			return -1;
		usleep(20000);
	}
}

/* SIGTERM to the group, up to `grace` seconds, then SIGKILL to it. */
static int stop(pid_t pid, double grace)
{
	int reaped = 0, st;
	kill(-pid, SIGTERM);
	st = wait_until(pid, now_s() + grace, &reaped);
	kill(-pid, SIGKILL);
	if (!reaped)
		st = status_of(waitpid(pid, &st, 0) == pid ? st : 0);
	/* the rest of the group (a shell's children, nginx's workers) was
	 * killed too; wait, bounded, until it is gone, so that nothing of
	 * this gate still holds the port when the next starts */
	for (int i = 0; i < 200 && kill(-pid, 0) == 0; i++) {
		while (waitpid(-pid, NULL, WNOHANG) > 0) /* ours too: we are their subreaper */
			;
		if (kill(-pid, 0) != 0)
			break;
		usleep(10000);
	}
	return st;
}

/* The address a /proc/net/tcp{,6} line shows ("0100007F" or 32 digits):
 * the kernel prints each 32-bit word of it as a native-order number. */
static bool proc_address(const char *hex, size_t digits, unsigned char *out)
{
	for (size_t w = 0; w < digits / 8; w++) {
		char word[9];
		memcpy(word, hex + w * 8, 8);
		word[8] = '\0';
		uint32_t v = (uint32_t)strtoul(word, NULL, 16);
		memcpy(out + w * 4, &v, 4);
	}
	return true;
}

/* Is a socket listening on port, at host or at the wildcard address (a
 * host that is not an address literal matches any)? Read from
 * /proc/net/tcp{,6}, without connecting: a test connection would be a
 * session that some recipes count and remember. */
static bool listening(const char *host, int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	static const unsigned char any[16];
	unsigned char want4[4], want6[16];
	char bare[256], line[512];
	size_t hl = strlen(host);
	bool literal4, literal6;

	/* [::1] as well as ::1 */
	snprintf(bare, sizeof bare, "%.*s", (int)(hl >= 2 && host[0] == '[' && host[hl - 1] == ']' ? hl - 2 : hl),
		 host + (hl >= 2 && host[0] == '[' && host[hl - 1] == ']'));
	literal4 = inet_pton(AF_INET, bare, want4) == 1;
	literal6 = inet_pton(AF_INET6, bare, want6) == 1;
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof line, f)) {
			char local[128];
			unsigned st;
			unsigned char addr[16];
			if (sscanf(line, " %*d: %127s %*s %x", local, &st) != 2 || st != 0x0A)
				continue;
			char *colon = strrchr(local, ':');
			if (colon == NULL || (int)strtol(colon + 1, NULL, 16) != port)
				continue;
			size_t digits = (size_t)(colon - local), n = digits / 2;
			if ((digits != 8 && digits != 32) || !proc_address(local, digits, addr))
				continue;
			bool match = (!literal4 && !literal6) || memcmp(addr, any, n) == 0 ||
				     (literal4 && n == 4 && memcmp(addr, want4, 4) == 0) ||
				     (literal6 && n == 16 && memcmp(addr, want6, 16) == 0);
			if (match) {
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	return false;
}

/* The live line on a terminal: the gate, its phase, the time, and the
 * injections so far - counted in what the log gained since the last look,
 * whole lines only, so a line being written is counted next time. */
struct progress {
	bool on;
	const char *log;
	off_t pos;
	unsigned long long injections;
};

static void progress_line(struct progress *p, const struct kb_gate *g, const char *phase, double since)
{
	if (!p->on)
		return;
	int fd = open(p->log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[65536];
		ssize_t n;
		while ((n = pread(fd, buf, sizeof buf - 1, p->pos)) > 0) {
			char *end = memrchr(buf, '\n', (size_t)n);
			if (end == NULL)
				break;
			end[1] = '\0';
			for (char *q = buf; (q = strstr(q, "\"event\":\"inject\"")) != NULL; q += 16) {
				char *eol = strchr(q, '\n'), *noop = strstr(q, "\"effect\":\"none\"");
				p->injections += !(noop && noop < eol); /* a no-op is not one */
			}
			p->pos += end + 1 - buf;
		}
		close(fd);
	}
	fprintf(stderr, "\r\033[K  %s: %s %.1fs, %llu injection%s so far", g->name, phase, now_s() - since,
		p->injections, p->injections == 1 ? "" : "s");
}

/* dir + "/" + name into out (PATH_MAX); -1 if it would not fit. */
static int path_join(char *out, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	if (a + 1 + b + 1 > PATH_MAX)
		return -1;
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
	return 0;
}

/* The gate's directory: DIR/NAME under --out (made if need be, reused if
 * there), else a fresh one under $TMPDIR. */
static int make_dir(const struct kb_gate *g, struct kb_gate_result *res)
{
	if (g->out[0]) {
		if (mkdir(g->out, 0755) < 0 && errno != EEXIST) {
			say(res, "--out %s: %s", g->out, strerror(errno));
			return -1;
		}
		char base[PATH_MAX];
		errno = 0;
		if (realpath(g->out, base) == NULL || path_join(res->dir, base, g->name) < 0) {
			say(res, "--out %s: %s", g->out, errno ? strerror(errno) : "too long a path");
			return -1;
		}
		if (mkdir(res->dir, 0755) < 0 && errno != EEXIST) {
			say(res, "%s: %s", res->dir, strerror(errno));
			return -1;
		}
		/* a directory used before: what an earlier run left (a load.out
		 * of a gate that has no load now) must not pass for this run's */
		for (size_t i = 0; i < KB_GATE_OUTPUTS; i++) {
			char old[PATH_MAX];
			if (path_join(old, res->dir, kb_gate_outputs[i]) == 0)
				unlink(old);
		}
		return 0;
	}
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 1024)
		tmp = "/tmp";
	snprintf(res->dir, sizeof res->dir, "%s/kbfault-gate.XXXXXX", tmp);
	if (mkdtemp(res->dir) == NULL) {
		say(res, "cannot make a working directory in %s: %s",
			 tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/* The last bytes of a file, for the report. */
static void tail_of(const char *path, char *out, size_t len)
{
	out[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	long from = size > (long)len - 1 ? size - (long)len + 1 : 0;
	fseek(f, from, SEEK_SET);
	size_t n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

/* The last lines of an output as one line, for a reason: blank ends
 * trimmed, line ends shown as " | ". */
static void one_line(char *s, size_t size)
{
	size_t n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	char *start = s + strspn(s, " \t\r\n");
	memmove(s, start, strlen(start) + 1);
	char out[1024];
	size_t k = 0;
	for (char *p = s; *p && k + 4 < sizeof out && k + 4 < size; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			memcpy(out + k, " | ", 3);
			k += 3;
		} else {
			out[k++] = *p;
		}
	}
	out[k] = '\0';
	memcpy(s, out, k + 1);
}

static void sum_log(const char *path, struct kb_logsum *s)
{
	FILE *f = fopen(path, "re");

	memset(s, 0, sizeof *s);
	if (f == NULL)
		return;
	/* what it judges by is what kbfault report counts: lines cut short
	 * are skipped, the line after one still read */
	kb_logsum_read(s, f, path, NULL);
	fclose(f);
	kb_logsum_sort(s);
}

/* Why too few faults count: none fired, or those that fired changed
 * nothing (a cap at or above what the server asked for). */
static void short_of_injections(const struct kb_gate *g, const struct kb_logsum *s, char *out, size_t len,
				size_t *used)
{
	unsigned long long n = s->injections;
	kb_append(out, len, used, "%s%s: %llu injection%s, at least %u needed", *used ? "; " : "",
		  n ? "too few faults were injected" : "no fault was injected", n, n == 1 ? "" : "s",
		  g->min_injections);
	if (s->noops)
		kb_append(out, len, used,
			  " - %llu time%s a rule fired, the fault changed nothing (rule %s: %s), so %s not count",
			  (unsigned long long)s->noops, s->noops == 1 ? "" : "s", s->noop_rule,
			  s->noop_reason[0] ? s->noop_reason : "no effect", s->noops == 1 ? "it does" : "they do");
	else
		kb_append(out, len, used, " (did the recipe's rules match the server's calls?)");
}

/* An expectation of the evidence the gate did not see met. */
static void symptom_unseen(const struct kb_expect *x, const struct kb_evidence *e, char *out, size_t len,
			   size_t *used)
{
	char want[96];
	kb_expect_format(x, want, sizeof want);
	if (e->ok[x->measure])
		kb_append(out, len, used, "%sthe symptom was not seen: %s was %lld, expected %s", *used ? "; " : "",
			  kb_measure_name(x->measure), e->value[x->measure], want);
	else
		kb_append(out, len, used, "%sthe symptom could not be measured: no %s here (expected %s)",
			  *used ? "; " : "", kb_measure_name(x->measure), want);
}

void kb_gate_run(const struct kb_gate *g, bool progress, struct kb_gate_result *res)
{
	char lib[PATH_MAX], path[4096], out[PATH_MAX], msg[2048];
	char storage[KB_RECIPE_DIRS_MAX][4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	struct kb_diag d;
	double t0 = now_s();

	/* what the gate's processes orphan (a shell's children, a daemon's
	 * double fork) is re-parented to us, not to init: it stays in reach,
	 * and we reap it */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	memset(res, 0, sizeof *res);
	res->probe_status = -2;
	res->verdict = KB_GATE_ERROR;
	if (make_dir(g, res) < 0)
		return;
	kb_locate_recipe_dirs(storage, dirs);
	if (kb_recipe_find(g->recipe, dirs, path, sizeof path, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		say(res, "%s", msg);
		return;
	}
	struct kb_elf libinfo;
	if (kb_locate_library(lib, sizeof lib, &libinfo) < 0) {
		say(res, "no libkbfault.so to preload (see above; set KBFAULT_LIB)");
		return;
	}
	res->port = g->ready_port == KB_GATE_PORT_AUTO ? free_port(g->ready_host) : g->ready_port;
	if (res->port <= 0) {
		say(res, "no free port on %s for $KBGATE_PORT", g->ready_host);
		return;
	}
	if (listening(g->ready_host, res->port)) {
		/* it would look ready before ours started: a vacuous run */
		say(res, "%s port %d is already listening before the server started (another process holds it)",
		    g->ready_host, res->port);
		return;
	}
	char abs[PATH_MAX];
	if (realpath(path, abs) == NULL)
		snprintf(abs, sizeof abs, "%s", path);
	/* absolute: a server that changes directory logs to the same file */
	char cwd[PATH_MAX] = "/";
	if (getcwd(cwd, sizeof cwd) == NULL)
		strcpy(cwd, "/");
	if ((g->log[0] == '/' ? path_join(res->log, "", g->log + 1) :
	     g->log[0]	       ? path_join(res->log, cwd, g->log) :
				 path_join(res->log, res->dir, "kbfault.log")) < 0) {
		say(res, "log %s: too long a path", g->log);
		return;
	}
	/* The shim appends: an old run's injections must not count for this
	 * one. And the gate reads the log back once the server has stopped,
	 * so it must be a file: a FIFO (which would also hold a blocking
	 * open() until a reader came), a terminal or a link is refused. */
	int lfd = open(res->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644);
	struct stat lst;
	if (lfd < 0 || fstat(lfd, &lst) != 0 || !S_ISREG(lst.st_mode)) {
		if (lfd >= 0 || errno == ENXIO)
			say(res, "log %s: not a regular file (the gate reads its log back when the server has stopped)",
			    res->log);
		else
			say(res, "log %s: %s", res->log, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return;
	}
	close(lfd);

	/* the server's environment: ours, with the shim armed */
	char v_preload[PATH_MAX + 4200], v_recipe[PATH_MAX + 20], v_log[PATH_MAX + 16], v_seed[64], v_set[KB_MAX_PARAMS * 600];
	const char *old = getenv("LD_PRELOAD");
	snprintf(v_preload, sizeof v_preload, "LD_PRELOAD=%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");
	snprintf(v_recipe, sizeof v_recipe, "KBFAULT_RECIPE=%s", abs);
	snprintf(v_log, sizeof v_log, "KBFAULT_LOG=%s", res->log);
	snprintf(v_seed, sizeof v_seed, "KBFAULT_SEED=%s", g->seed);
	/* quoted where a value needs it, so the library reads back each value
	 * as given (recipe.h) */
	memcpy(v_set, "KBFAULT_SET=", 12);
	if (kb_overrides_format(&g->ov, v_set + 12, sizeof v_set - 12) < 0) {
		say(res, "set: the parameters do not fit in KBFAULT_SET");
		return;
	}
	/* the gate's port and directory, for every command it runs */
	char v_port[32], v_dir[PATH_MAX + 20];
	snprintf(v_port, sizeof v_port, "KBGATE_PORT=%d", res->port);
	snprintf(v_dir, sizeof v_dir, "KBGATE_DIR=%s", res->dir);
	const char *client_extra[] = { v_port, v_dir, NULL };
	const char *server_extra[8] = { v_preload, v_recipe, v_log, v_port, v_dir, NULL, NULL, NULL };
	size_t k = 5;
	if (g->seed[0])
		server_extra[k++] = v_seed;
	if (g->ov.n)
		server_extra[k++] = v_set;
	char **server_env = environment(server_extra);
	char **client_env = environment(client_extra);

	struct progress live = { progress, res->log, 0, 0 };
	path_join(out, res->dir, "server.out");
	pid_t server = start(g->server, server_env, out);
	if (server < 0) {
		say(res, "cannot start the server: %s", strerror(errno));
		goto done;
	}

	/* ready, within the timeout */
	double deadline = now_s() + g->timeout_s;
	bool ready = false;
	while (!ready && now_s() < deadline && !interrupted) {
		int st;
		if (waitpid(server, &st, WNOHANG) == server) {
			char tail[600];
			tail_of(out, tail, sizeof tail);
			one_line(tail, sizeof tail);
			say(res, "the server exited (status %d) before it listened on port %d%s%s", status_of(st),
			    res->port, tail[0] ? "; its last output: " : " (and said nothing)", tail);
			kill(-server, SIGKILL);
			server = -1;
			goto done;
		}
		ready = listening(g->ready_host, res->port);
		if (!ready) {
			progress_line(&live, g, "waiting for the server", t0);
			usleep(50000);
		}
	}
	if (interrupted) {
		say(res, "interrupted by signal %d", (int)interrupted);
		goto done;
	}
	if (!ready) {
		say(res, "the server never listened on %s port %d within %us", g->ready_host, res->port,
		    g->timeout_s);
		stop(server, 5);
		server = -1;
		goto done;
	}

	kb_evidence_begin(&res->ev);
	pid_t load = -1;
	if (g->load[0]) {
		path_join(out, res->dir, "load.out");
		load = start(g->load, client_env, out);
	}

	path_join(out, res->dir, "probe.out");
	pid_t probe = start(g->probe, client_env, out);
	int reaped = 0;
	double probe_deadline = now_s() + g->timeout_s;
	res->probe_status = -1;
	while (probe > 0 && !reaped && now_s() < probe_deadline && !interrupted) {
		progress_line(&live, g, "probing", t0);
		kb_evidence_sample(&res->ev, server, res->port);
		res->probe_status = wait_until(probe, now_s() + 0.1 < probe_deadline ? now_s() + 0.1 : probe_deadline,
					       &reaped);
	}
	if (probe > 0 && !reaped) {
		stop(probe, 1);
		res->probe_status = interrupted ? -3 : -1; /* it did not time out: we stopped it */
	} else if (probe > 0) {
		kill(-probe, SIGKILL); /* whatever it left running in the background */
	}
	tail_of(out, res->probe_out, sizeof res->probe_out);
	kb_evidence_sample(&res->ev, server, res->port); /* as the probe left things */
	if (load > 0)
		stop(load, 3);

	int st;
	res->server_alive = waitpid(server, &st, WNOHANG) == 0;
	int server_status = res->server_alive ? 0 : status_of(st);
	if (res->server_alive)
		stop(server, 10);
	else
		kill(-server, SIGKILL); /* what a crashed server left behind (workers) */
	server = -1;
	if (progress)
		fprintf(stderr, "\r\033[K");

	/* the verdict */
	sum_log(res->log, &res->sum);
	if (interrupted) {
		say(res, "interrupted by signal %d", (int)interrupted);
		goto done;
	}
	size_t r = 0;
	if (res->probe_status != 0)
		kb_append(res->reason, sizeof res->reason, &r, "%sthe probe %s", r ? "; " : "",
			  res->probe_status == -1 ? "did not finish within the timeout" : "failed");
	if (res->probe_status == -1)
		kb_append(res->reason, sizeof res->reason, &r, " (%us)", g->timeout_s);
	if (res->probe_status > 0)
		kb_append(res->reason, sizeof res->reason, &r, " (exit status %d)", res->probe_status);
	if (res->sum.injections < g->min_injections)
		short_of_injections(g, &res->sum, res->reason, sizeof res->reason, &r);
	for (unsigned i = 0; i < g->nexpects; i++)
		if (!kb_expect_met(&g->expects[i], &res->ev))
			symptom_unseen(&g->expects[i], &res->ev, res->reason, sizeof res->reason, &r);
	if (!res->server_alive && !g->server_may_exit)
		kb_append(res->reason, sizeof res->reason, &r, "%sthe server is no longer running (exit status %d)",
			  r ? "; " : "", server_status);
	res->verdict = r ? KB_GATE_FAIL : KB_GATE_PASS;
done:
	if (server > 0)
		stop(server, 5);
	if (progress)
		fprintf(stderr, "\r\033[K");
	free(server_env);
	free(client_env);
	res->seconds = now_s() - t0;
}

/* ---- suites ------------------------------------------------------------- */

int kb_gate_suite(const char *path, struct kb_gate **out, char *err, size_t len)
{
	char *text;
	size_t tlen, pos = 0;
	struct kb_diag d;
	struct kb_line *ln = malloc(sizeof *ln);
	struct kb_gate *gates = NULL;
	int n = 0;
	unsigned lineno = 0;
	char *line, msg[1024];

	if (ln == NULL)
		return fail(err, len, "out of memory");
	if (kb_text_read(path, &text, &tlen, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		free(ln);
		return fail(err, len, "%s", msg);
	}
	if (kb_text_check(path, text, tlen, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		fail(err, len, "%s", msg);
		goto bad;
	}
	while ((line = kb_text_next_line(text, tlen, &pos)) != NULL) {
		lineno++;
		if (kb_line_split(path, lineno, line, ln, &d) < 0) {
			kb_diag_format(&d, msg, sizeof msg);
			fail(err, len, "%s", msg);
			goto bad;
		}
		if (ln->ntok == 0)
			continue;
		const char *kw = ln->tok[0].text;
		if (strcmp(kw, "gate") == 0) {
			if (ln->ntok != 2) {
				fail(err, len, "%s:%u:%u: expected `gate NAME`", path, lineno, ln->tok[0].col);
				goto bad;
			}
			struct kb_gate *ng = realloc(gates, (size_t)(n + 1) * sizeof *ng);
			if (ng == NULL) {
				fail(err, len, "out of memory");
				goto bad;
			}
			gates = ng;
			kb_gate_defaults(&gates[n]);
			char why[1024];
			if (kb_gate_set(&gates[n], "name", ln->tok[1].text, why, sizeof why) < 0) {
				fail(err, len, "%s:%u:%u: %s", path, lineno, ln->tok[1].col, why);
				goto bad;
			}
			snprintf(gates[n].where, sizeof gates[n].where, "%s:%u", path, lineno);
			for (int i = 0; i < n; i++)
				if (strcmp(gates[i].name, gates[n].name) == 0) {
					fail(err, len, "%s:%u:%u: gate '%s' is already defined", path, lineno,
					     ln->tok[1].col, gates[n].name);
					goto bad;
				}
			n++;
			continue;
		}
		if (n == 0) {
			fail(err, len, "%s:%u:%u: expected `gate NAME` before '%s'", path, lineno, ln->tok[0].col, kw);
			goto bad;
		}
		if (ln->ntok != 2) {
			fail(err, len, "%s:%u:%u: `%s` takes one value (quote a command with blanks)", path, lineno,
			     ln->tok[ln->ntok > 2 ? 2 : 0].col, kw);
			goto bad;
		}
		char why[1024];
		if (strcmp(kw, "name") == 0) {
			fail(err, len, "%s:%u:%u: a gate's name is the one in `gate NAME`", path, lineno, ln->tok[0].col);
			goto bad;
		}
		if (kb_gate_set(&gates[n - 1], kw, ln->tok[1].text, why, sizeof why) < 0) {
			bool unknown = strncmp(why, "unknown gate key", 16) == 0;
			fail(err, len, "%s:%u:%u: %s", path, lineno, unknown ? ln->tok[0].col : ln->tok[1].col, why);
			goto bad;
		}
	}
	if (n == 0) {
		fail(err, len, "%s: no gates (a suite is `gate NAME` stanzas)", path);
		goto bad;
	}
	for (int i = 0; i < n; i++) {
		char why[2048];
		if (kb_gate_check(&gates[i], why, sizeof why) < 0) {
			fail(err, len, "%s: gate '%s': %s", gates[i].where, gates[i].name, why);
			goto bad;
		}
	}
	kb_free(text, tlen + 1);
	free(ln);
	*out = gates;
	return n;
bad:
	kb_free(text, tlen + 1);
	free(ln);
	free(gates);
	return -1;
}
