/* The injection log and the shim's own descriptors in hosts that are hard
 * on them: FIFOs without a reader, readers that go away, non-blocking and
 * stuck stderr, full filesystems, strict hosts that close whatever
 * /proc/self/fd lists, threads that dup2() onto the log's number, the
 * /dev/stdout family of names, and program names that are not UTF-8. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char listen_recipe[] = "rule cap\n  on listen\n  action backlog 2\n";

static const char *helper(void)
{
	return kbt_build("helpers/kbt-log");
}

static const char *tmp(const char *name)
{
	static char path[8][700];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, 700, "%s/%s", kbt_tmpdir(), name);
	return p;
}

/* KBFAULT_RECIPE and, unless log is NULL, KBFAULT_LOG */
static const char **env_for(const char *log)
{
	static char env_recipe[800], env_log[800];
	static const char *env[3];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", listen_recipe));
	env[0] = env_recipe;
	env[1] = NULL;
	if (log) {
		snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", log);
		env[1] = env_log;
	}
	env[2] = NULL;
	return env;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *at = text; at && (at = strstr(at, needle)) != NULL; at += strlen(needle))
		n++;
	return n;
}

static const char inject_line[] = "{\"event\":\"inject\"";

/* Under valgrind every host program runs inside valgrind's launcher,
 * which has descriptors, timing and a process of its own: what these
 * tests look at cannot hold there. */
static void skip_under_valgrind(void)
{
	kbt_skip_under("valgrind", "valgrind's launcher sits between the test and the host");
}

/* Everything a read end gives until its writers are gone, bounded. */
static char *drain(int fd, int timeout_ms)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (n + 4096 > cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- 3: a FIFO with no reader -------------------------------------------- */

Test(log, a_fifo_without_a_reader_does_not_hold_the_host_before_main, .timeout = 60)
{
	skip_under_valgrind();
	const char *fifo = tmp("fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	char *out, *err;
	long long t0 = now_ms();
	int rc = kbt_run((const char *[]){ helper(), "inject", "3", NULL }, env_for(fifo), true, 15000, &out, &err);
	cr_assert_eq(rc, 0, "the host ran to its end (%d): %s", rc, err);
	cr_assert_lt(now_ms() - t0, 10000, "within the shim's short wait for a reader");
	cr_assert_eq(count(err, "cannot open the injection log"), 1, "one warning: %s", err);
	cr_assert(strstr(err, "open for reading"), "it says why: %s", err);
}

Test(log, a_fifo_whose_reader_comes_a_moment_later_gets_every_line, .timeout = 60)
{
	skip_under_valgrind();
	const char *fifo = tmp("fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	struct kbt_proc p;
	char *out, *err;
	kbt_spawn(&p, (const char *[]){ helper(), "inject", "3", NULL }, env_for(fifo), true);
	usleep(100000);
	int r = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(r, 0);
	cr_assert_eq(kbt_wait(&p, 15000, &out, &err), 0, "%s", err);
	char *got = drain(r, 2000);
	close(r);
	cr_assert_eq(count(got, "{\"event\":\"start\""), 1, "%s", got);
	cr_assert_eq(count(got, inject_line), 3, "%s", got);
	cr_assert_eq(count(err, "cannot open"), 0, "%s", err);
	free(got);
}

Test(log, kbfault_run_with_a_fifo_log_neither_hangs_nor_ends_the_readers_stream, .timeout = 90)
{
	skip_under_valgrind();
	const char *fifo = tmp("fifo"), *got = tmp("from-fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	/* a reader that stops at the end of the stream, as most do */
	char cmd[2000];
	snprintf(cmd, sizeof cmd, "exec cat '%s' > '%s'", fifo, got);
	struct kbt_proc cat;
	kbt_spawn(&cat, (const char *[]){ "/bin/sh", "-c", cmd, NULL }, NULL, false);
	usleep(100000); /* cat waits in open() */
	char *out, *err;
	const char *r = kbt_write("cap.kbf", listen_recipe);
	int rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", fifo, "--", helper(), "inject", "3", NULL }, &out,
			 &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(kbt_wait(&cat, 10000, NULL, NULL), 0, "the reader saw the end of the stream");
	struct kbt_log l = kbt_log_read(got);
	cr_assert_eq(kbt_log_count(&l, "event", "start", NULL), 1, "the reader got the command's lines");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 3);
	kbt_log_free(&l);

	/* no reader at all: the command still runs, once warned */
	long long t0 = now_ms();
	rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", fifo, "--", helper(), "inject", "3", NULL }, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_lt(now_ms() - t0, 10000);
	cr_assert_eq(count(err, "cannot open the injection log"), 1, "%s", err);
}

Test(log, kbfault_gate_refuses_a_log_it_could_not_read_back, .timeout = 60)
{
	const char *fifo = tmp("fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	char *out, *err;
	const char *r = kbt_write("cap.kbf", listen_recipe);
	int rc = kbt_kbfault((const char *[]){ "gate", "-r", r, "--name", "g", "--server", "sleep 30", "--ready",
					   "tcp:127.0.0.1:9", "--probe", "true", "--timeout", "5", "--log", fifo,
					   "--out", tmp("gates"), NULL },
			 &out, &err);
	cr_assert_eq(rc, 2, "could not run as configured: %s %s", out, err);
	cr_assert(strstr(out, "not a regular file") || strstr(err, "not a regular file"), "%s %s", out, err);
}

/* ---- 7: readers that go away ------------------------------------------- */

/* kbt-log broken KIND -- kbt-log stdin-inject 5 [how], with env added
 * for the child (NULL-terminated); returns its stdout. */
static char *broken(const char *kind, const char *const *child_env, const char *how)
{
	const char *argv[24] = { helper(), "broken", kind };
	size_t n = 3;
	for (size_t i = 0; child_env && child_env[i]; i++)
		argv[n++] = child_env[i];
	argv[n++] = "--";
	argv[n++] = helper();
	argv[n++] = "stdin-inject";
	argv[n++] = "5";
	if (how)
		argv[n++] = how;
	argv[n] = NULL;
	char *out, *err;
	int rc = kbt_run(argv, env_for(NULL), true, 30000, &out, &err);
	cr_assert_eq(rc, 0, "%s%s", out, err);
	return out;
}

Test(log, a_pipe_or_socket_log_whose_reader_left_does_not_kill_the_host, .timeout = 90)
{
	skip_under_valgrind();
	/* the default log is the child's stderr: its reader reads the start
	 * line, then goes; the host injects five times */
	char *out = broken("pipe-late", NULL, NULL);
	cr_assert(strstr(out, "status 0\n"), "not killed by SIGPIPE: %s", out);
	cr_assert(strstr(out, "sigpipe pending 0 blocked 0\n"), "and left nothing behind: %s", out);
	out = broken("socket-late", NULL, NULL);
	cr_assert(strstr(out, "status 0\n"), "a socket likewise: %s", out);
	cr_assert(strstr(out, "sigpipe pending 0 blocked 0\n"), "%s", out);
}

Test(log, the_hosts_own_sigpipe_is_left_as_it_was, .timeout = 90)
{
	skip_under_valgrind();
	char *out = broken("pipe-late", NULL, "block");
	cr_assert(strstr(out, "sigpipe pending 0 blocked 1\n"), "ours consumed, the mask the host's: %s", out);
	out = broken("pipe-late", NULL, "pending");
	cr_assert(strstr(out, "sigpipe pending 1 blocked 1\n"), "the host's own pending signal stays: %s", out);
}

Test(log, the_shims_own_messages_on_a_broken_stderr_raise_no_signal, .timeout = 90)
{
	skip_under_valgrind();
	/* a configuration error: the refusal goes to a stderr nobody reads,
	 * and the exit status is still kbfault's 125 */
	static char bad[800];
	snprintf(bad, sizeof bad, "KBFAULT_RECIPE=%s", kbt_write("bad.kbf", "rule r\n  on listen\n  action nonsense\n"));
	char *out = broken("pipe", (const char *[]){ bad, NULL }, NULL);
	cr_assert(strstr(out, "status 125\n"), "%s", out);
	/* a log that cannot be written: the warning goes the same way */
	out = broken("pipe", (const char *[]){ "KBFAULT_LOG=/dev/full", NULL }, NULL);
	cr_assert(strstr(out, "status 0\n"), "%s", out);
	out = broken("socket", (const char *[]){ "KBFAULT_LOG=/dev/full", NULL }, NULL);
	cr_assert(strstr(out, "status 0\n"), "%s", out);
}

Test(log, a_fifo_log_whose_reader_left_does_not_kill_the_host, .timeout = 60)
{
	skip_under_valgrind();
	const char *fifo = tmp("fifo"), *go = tmp("go");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	int r = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(r, 0);
	struct kbt_proc p;
	kbt_spawn(&p, (const char *[]){ helper(), "file-inject", go, "5", NULL }, env_for(fifo), true);
	/* the start line, then the reader goes */
	char buf[8192];
	int lines = 0;
	for (long long deadline = now_ms() + 10000; lines < 1 && now_ms() < deadline;) {
		struct pollfd pf = { r, POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t n = read(r, buf, sizeof buf);
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	}
	cr_assert_eq(lines, 1, "the start line");
	close(r);
	cr_assert_eq(fclose(fopen(go, "w")), 0);
	char *out, *err;
	cr_assert_eq(kbt_wait(&p, 30000, &out, &err), 0, "not killed by SIGPIPE: %s", err);
	cr_assert(strstr(out, "sigpipe pending 0 blocked 0\n"), "%s", out);
}

/* ---- 10: strict hosts ------------------------------------------------------ */

Test(log, a_strict_host_that_closes_every_listed_descriptor_sees_no_ebadf, .timeout = 60)
{
	skip_under_valgrind();
	const char *result = tmp("strict.out"), *log = tmp("log");
	char *out, *err;
	int rc = kbt_run((const char *[]){ helper(), "strict", result, "4", NULL }, env_for(log), true, 15000, &out,
			 &err);
	cr_assert_eq(rc, 0, "%s", err);
	char *said = kbt_slurp_fd(open(result, O_RDONLY | O_CLOEXEC));
	cr_assert(strstr(said, "ebadf 0\n"), "no close() of a listed descriptor said EBADF: %s", said);
	cr_assert(strstr(said, "injected 4\n"), "%s", said);
	/* the log is still listed (it is still open), and to the host it is a
	 * closed number now: closing it again is EBADF */
	cr_assert(strstr(said, "again 1 of 1\n"), "%s", said);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 4, "the lines still reach the log");
	kbt_log_free(&l);
	free(said);
}

/* ---- 11: dup2() onto the log's number from many threads at once ----------- */

Test(log, concurrent_dup2_onto_the_log_never_sends_lines_into_the_hosts_files, .timeout = 240)
{
	skip_under_valgrind();
	const char *log = tmp("storm/log");
	cr_assert_eq(mkdir(tmp("storm"), 0700), 0);
	char *out, *err;
	int rc = kbt_run((const char *[]){ helper(), "dupstorm", "600", "3", NULL }, env_for(log), true, 200000, &out,
			 &err);
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_assert(strstr(out, "polluted 0 missing 0\n"), "no line in a file of the host's: %s", out);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), 600 * 3, "every injection is in the log");
	kbt_log_free(&l);
}

/* ---- 12: full filesystems, torn and glued lines ---------------------------- */

Test(log, a_log_that_cannot_be_written_warns_once_and_truthfully, .timeout = 60)
{
	/* under valgrind the one warning (one writev, in its own trace) can
	 * reach the pipe twice: valgrind's doing, not the shim's */
	skip_under_valgrind();
	char *out, *err;
	int rc = kbt_run((const char *[]){ helper(), "inject", "20", NULL }, env_for("/dev/full"), true, 15000, &out,
			 &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(count(err, "kbfault: warning"), 1, "once: %s", err);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	cr_assert(strstr(err, "still injected"), "it says the faults go on: %s", err);
	cr_assert_eq(count(err, "not logged"), 0, "and claims nothing it does not do: %s", err);
}

/* The lines of a log file, each checked: whole kbfault objects, or a line
 * of ours cut short; never two lines glued together. */
static void check_lines(const char *path, size_t *whole, size_t *cut, uint64_t *lost)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	*whole = *cut = 0;
	*lost = 0;
	cr_assert_not_null(f);
	for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
		struct kb_json_obj o;
		cr_assert_eq(line[n - 1], '\n', "every line ends: %s", line);
		/* at most one start of a line of ours: a line cut within its
		 * first ten bytes holds only a piece of that start */
		cr_assert_leq(count(line, "{\"event\":\""), 1, "no line glued to another: %s", line);
		if (kb_json_flat_parse(line, &o, NULL, NULL) == 0) {
			(*whole)++;
			if (strcmp(kb_json_str(&o, "event"), "lost") == 0)
				*lost += strtoull(kb_json_str(&o, "lines"), NULL, 10);
		} else {
			size_t piece = (size_t)n - 1 < 10 ? (size_t)n - 1 : 10;
			cr_assert_gt(piece, 0, "no empty line");
			cr_assert_eq(strncmp(line, "{\"event\":\"", piece), 0, "a cut line is one of ours: %s", line);
			(*cut)++;
		}
	}
	free(line);
	fclose(f);
}

Test(log, a_line_cut_short_is_ended_and_the_next_starts_on_a_line_of_its_own, .timeout = 60)
{
	/* a file size limit cuts a write short where it falls, as a full
	 * filesystem does, and past it a write fails with EFBIG and SIGXFSZ:
	 * 10 injections cross it, 5 more come once it is lifted */
	const char *log = tmp("log");
	char *out, *err;
	int rc = kbt_run((const char *[]){ helper(), "fsize", "1000", "10", "5", NULL }, env_for(log), true, 15000, &out,
			 &err);
	cr_assert_eq(rc, 0, "not killed by SIGXFSZ (%d): %s", rc, err);
	size_t whole, cut;
	uint64_t lost;
	check_lines(log, &whole, &cut, &lost);
	cr_assert_eq(cut, 1, "the line that met the limit");
	char *report_out, *report_err;
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", "--json", log, NULL }, &report_out, &report_err), 0, "%s",
		     report_err);
	struct kb_json_obj o;
	cr_assert_eq(kb_json_flat_parse(report_out, &o, NULL, NULL), 0, "%s", report_out);
	cr_assert_eq(strtoull(kb_json_str(&o, "injections"), NULL, 10) + lost, 15, "whole or counted: %s", report_out);
	cr_assert_geq(lost, 2, "%s", report_out);
	cr_assert_eq(count(err, "kbfault: warning"), 1, "%s", err);
}

Test(log, a_full_filesystem_cuts_at_most_one_line_and_never_glues_the_next, .timeout = 120)
{
	skip_under_valgrind();
	if (getuid() != 0 || access("/usr/bin/unshare", X_OK) != 0)
		cr_skip_test("needs root and unshare for a small tmpfs of its own");
	const char *dir = kbt_tmpdir();
	char cmd[8192];
	cr_assert_eq(mkdir(tmp("mnt"), 0700), 0);
	/* 16 pages: 14 for a filler, 2 for the log; 60 lines fill it, the
	 * filler goes, 10 more are written */
	snprintf(cmd, sizeof cmd,
		 "set -e; unshare -m --propagation private sh -c '"
		 "mount -t tmpfs -o size=64k kbt %s/mnt && head -c 57344 /dev/zero > %s/mnt/filler && "
		 "env LD_PRELOAD=%s KBFAULT_RECIPE=%s KBFAULT_LOG=%s/mnt/log %s fill 60 %s/mnt/filler 10 2> %s/err; "
		 "cp %s/mnt/log %s/log'",
		 dir, dir, kbt_build("libkbfault.so"), kbt_write("cap.kbf", listen_recipe), dir, helper(), dir, dir, dir,
		 dir);
	char *out;
	int status = kbt_run((const char *[]){ "/bin/sh", "-c", cmd, NULL }, NULL, false, 60000, &out, NULL);
	cr_assert_eq(status, 0, "%s", out);
	size_t whole, cut;
	uint64_t lost;
	check_lines(tmp("log"), &whole, &cut, &lost);
	cr_assert_leq(cut, 1, "at most the one line the disk filled up in");
	cr_assert_gt(lost, 0, "lines were lost, and said so");
	/* every line is either in the log whole, or counted as lost */
	char *report_out, *report_err;
	int rc = kbt_kbfault((const char *[]){ "report", "--json", tmp("log"), NULL }, &report_out, &report_err);
	cr_assert_eq(rc, 0, "the report reads it: %s", report_err);
	struct kb_json_obj o;
	cr_assert_eq(kb_json_flat_parse(report_out, &o, NULL, NULL), 0, "%s", report_out);
	cr_assert_eq(strtoull(kb_json_str(&o, "injections"), NULL, 10) + lost, 70, "%s", report_out);
	cr_assert_eq(strtoull(kb_json_str(&o, "torn"), NULL, 10), cut, "%s", report_out);
	cr_assert_eq(strtoull(kb_json_str(&o, "lost"), NULL, 10), lost, "%s", report_out);
	char *err = kbt_slurp_fd(open(tmp("err"), O_RDONLY | O_CLOEXEC));
	cr_assert_eq(count(err, "kbfault: warning"), 1, "%s", err);
	cr_assert(strstr(err, "still injected"), "%s", err);
	free(err);
}

Test(log, kbfault_report_skips_a_cut_line_and_recovers_the_one_glued_to_it)
{
	const char *log = kbt_write("torn.log",
				    "{\"event\":\"start\",\"pid\":5,\"ppid\":1,\"program\":\"srv\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n"
				    "{\"event\":\"inject\",\"pid\":5,\"rule\":\"keep\",\"call\":\"close\",\"act"
				    "{\"event\":\"inject\",\"pid\":5,\"rule\":\"keep\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.7}\n"
				    "{\"event\":\"inject\",\"pid\":5,\"rule\":\"keep\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.8}\n"
				    "{\"event\":\"inj");
	char *out, *err;
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", log, NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "injections: 2"), "%s", out);
	cr_assert(strstr(out, "torn lines: 2"), "%s", out);
	char want[800];
	snprintf(want, sizeof want, "%s:2:1: a line cut short", log);
	cr_assert(strstr(err, want), "%s", err);
}

/* ---- 13: non-blocking and stuck stderr ------------------------------------- */

Test(log, a_nonblocking_stderr_read_slowly_gets_every_line, .timeout = 120)
{
	skip_under_valgrind();
	struct kbt_proc p;
	kbt_spawn(&p, (const char *[]){ helper(), "nonblock", "5000", NULL }, env_for(NULL), true);
	/* a slow reader: 4 KiB at a time, a pause after each */
	size_t cap = 1 << 21, n = 0;
	char *buf = malloc(cap);
	for (long long deadline = now_ms() + 90000; now_ms() < deadline;) {
		struct pollfd pf = { p.err, POLLIN, 0 };
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		if (n + 4096 + 1 > cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(p.err, buf + n, 4096);
		if (r <= 0)
			break;
		n += (size_t)r;
		usleep(2000);
	}
	buf[n] = '\0';
	char *out, *err;
	cr_assert_eq(kbt_wait(&p, 10000, &out, &err), 0);
	cr_assert_eq(count(buf, inject_line), 5000, "every line arrived");
	cr_assert_eq(count(buf, "kbfault: warning"), 0, "%.300s", buf);
	free(buf);
}

Test(log, a_stuck_stderr_costs_the_host_one_wait_not_one_per_line, .timeout = 120)
{
	skip_under_valgrind();
	struct kbt_proc p;
	const char *go = tmp("go");
	kbt_spawn(&p, (const char *[]){ helper(), "nonblock-phases", "600", go, "20", NULL }, env_for(NULL), true);
	/* nobody reads: the pipe fills within the first 600 lines */
	char *phase1 = kbt_line(&p, 60000);
	cr_assert_not_null(phase1, "the host got through its injections");
	long ms = strtol(phase1 + strlen("phase1 "), NULL, 10);
	cr_assert_lt(ms, 15000, "not a wait for every line: %s", phase1);
	char *first = drain(p.err, 500);
	cr_assert_eq(fclose(fopen(go, "w")), 0);
	char *rest = drain(p.err, 20000);
	char *out, *err;
	cr_assert_eq(kbt_wait(&p, 10000, &out, &err), 0);
	size_t got = count(first, inject_line) + count(rest, inject_line);
	cr_assert_lt(got, 620, "some were lost");
	const char *lost = strstr(rest, "{\"event\":\"lost\"");
	cr_assert_not_null(lost, "and counted: %s", rest);
	struct kb_json_obj o;
	char line[1024];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(lost, "\n"), lost);
	cr_assert_eq(kb_json_flat_parse(line, &o, NULL, NULL), 0, "%s", line);
	cr_assert_eq(got + strtoull(kb_json_str(&o, "lines"), NULL, 10), 620, "%zu arrived, %s", got, line);
	cr_assert_eq(count(first, "kbfault: warning") + count(rest, "kbfault: warning"), 1, "one warning");
	free(first);
	free(rest);
}

/* ---- the /dev/stdout family ---------------------------------------------- */

Test(log, dev_stdout_stderr_and_fd_names_mean_the_hosts_own_descriptors, .timeout = 60)
{
	skip_under_valgrind();
	const char *names[] = { "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1" };
	for (size_t i = 0; i < 3; i++) {
		char *out, *err;
		int rc = kbt_run((const char *[]){ helper(), "inject", "2", NULL }, env_for(names[i]), true, 15000, &out,
				 &err);
		cr_assert_eq(rc, 0, "%s: %s", names[i], err);
		cr_assert_eq(count(out, inject_line), 2, "%s: %s %s", names[i], out, err);
		cr_assert_eq(count(err, "kbfault"), 0, "%s: %s", names[i], err);
	}
	const char *to_err[] = { "/dev/stderr", "/dev/fd/2", "/proc/self/fd/2" };
	for (size_t i = 0; i < 3; i++) {
		char *out, *err;
		int rc = kbt_run((const char *[]){ helper(), "inject", "2", NULL }, env_for(to_err[i]), true, 15000, &out,
				 &err);
		cr_assert_eq(rc, 0, "%s: %s", to_err[i], err);
		cr_assert_eq(count(err, inject_line), 2, "%s: %s", to_err[i], err);
	}
	/* a socket cannot be opened again by its /proc name: it is copied */
	char *out = broken("socket-late", (const char *[]){ "KBFAULT_LOG=/dev/fd/2", NULL }, NULL);
	cr_assert(strstr(out, "status 0\n"), "%s", out);
	/* a descriptor that is not open is a log that cannot be opened */
	char *err;
	int rc = kbt_run((const char *[]){ helper(), "inject", "2", NULL }, env_for("/dev/fd/77"), true, 15000, &out,
			 &err);
	cr_assert_eq(rc, 0);
	cr_assert(strstr(err, "cannot open the injection log /dev/fd/77"), "%s", err);

	const char *r = kbt_write("cap.kbf", listen_recipe);
	rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", "/dev/stdout", "--", helper(), "inject", "2", NULL }, &out,
		     &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(count(out, inject_line), 2, "%s %s", out, err);
	rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", "/dev/fd/77", "--", "/bin/true", NULL }, &out, &err);
	cr_assert_eq(rc, 125, "%s", err);
	cr_assert(strstr(err, "/dev/fd/77"), "%s", err);
}

Test(log, a_symlink_owned_by_another_user_is_not_followed_either, .timeout = 60)
{
	if (getuid() != 0)
		cr_skip_test("needs root to give a link away");
	const char *target = tmp("victim"), *link = tmp("planted-by-nobody");
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(lchown(link, 65534, 65534), 0);
	char *out, *err;
	int rc = kbt_run((const char *[]){ helper(), "inject", "2", NULL }, env_for(link), true, 15000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(err, "cannot open the injection log"), "%s", err);
	cr_assert_neq(access(target, F_OK), 0, "nothing was written through the link");
	const char *r = kbt_write("cap.kbf", listen_recipe);
	rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", link, "--", "/bin/true", NULL }, &out, &err);
	cr_assert_eq(rc, 125, "kbfault run refuses it first: %s", err);
	cr_assert_neq(access(target, F_OK), 0);
}

/* ---- UTF-8 ------------------------------------------------------------------- */

static bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
			return false;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) || (c == 0xf0 && s[i + 1] < 0x90) ||
		    (c == 0xf4 && s[i + 1] > 0x8f))
			return false;
		i += len;
	}
	return true;
}

Test(log, a_program_name_that_is_not_utf8_is_logged_as_valid_utf8, .timeout = 60)
{
	const char *name = tmp("kb\xff\xfe-\xc3\xa9-log");
	char cmd[2000];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", helper(), name);
	cr_assert_eq(system(cmd), 0);
	const char *log = tmp("log");
	char *out, *err;
	int rc = kbt_run((const char *[]){ name, "inject", "1", NULL }, env_for(log), true, 15000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	char *text = kbt_slurp_fd(open(log, O_RDONLY | O_CLOEXEC));
	cr_assert(valid_utf8((const unsigned char *)text, strlen(text)), "%s", text);
	cr_assert(strstr(text, "\"program\":\"kb\\ufffd\\ufffd-\xc3\xa9-log\""), "replaced, the rest kept: %s", text);
	free(text);
}

/* ---- a terminal that stops background writers ------------------------------ */

/* A background job on a terminal with `stty tostop` (a daemon started with
 * `&`, its stderr the terminal): the log's writes there must not stop it
 * with SIGTTOU - the start line is written before main(), so even a
 * program that never writes would stop. */
Test(log, a_background_job_on_a_tostop_terminal_is_not_stopped)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-tty"), "/bin/true", NULL };
	cr_assert_eq(kbt_run(argv, NULL, false, 20000, &out, &err), 0, "%s", err);
	cr_assert_str_eq(out, "exited 0\n", "a quiet program is not stopped without kbfault");
	free(out);
	free(err);
	/* the log named on the terminal, so that the start line is written
	 * there before main() (on the default log it would wait for a line
	 * this quiet program never has) */
	cr_assert_eq(kbt_run(argv, env_for("/dev/stderr"), true, 20000, &out, &err), 0, "%s", err);
	cr_assert_str_eq(out, "exited 0\n", "nor with it, its log on the terminal");
	free(out);
	free(err);
}

/* The default log is the program's standard error: a start line there
 * waits for its process's first other line, so helpers that never see a
 * fault stay silent; a log that was named holds every start line. */
Test(log, on_the_default_stderr_only_processes_with_something_to_say_start, .timeout = 60)
{
	/* its helpers are the system's own shell and ls, which cannot carry
	 * the ThreadSanitizer runtime an instrumented library brings */
	kbt_skip_under("tsan", "uninstrumented system programs under an instrumented library");
	char *out, *err;
	const char *quiet[] = { "run", "-r", "q181350", "--", "/bin/sh", "-c", "ls / >/dev/null; true", NULL };
	cr_assert_eq(kbt_kbfault(quiet, &out, &err), 0, "%s", err);
	cr_assert_str_eq(err, "", "two processes with nothing to log wrote nothing: %s", err);
	free(out);
	free(err);

	const char *faulted[] = { "run", "-r", "q181350", "--", "/bin/sh", "-c",
				  "ls / >/dev/null; exec \"$0\" listen 100", kbt_build("helpers/kbt-probe"), NULL };
	cr_assert_eq(kbt_kbfault(faulted, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "backlog 5"), "%s", out);
	const char *start = strstr(err, "{\"event\":\"start\""), *inject = strstr(err, "{\"event\":\"inject\"");
	cr_assert(start && inject && start < inject, "one start line, before the injection: %s", err);
	cr_assert_null(strstr(start + 1, "{\"event\":\"start\""), "only the process that logged started: %s", err);
	cr_assert(strstr(start, "\"program\":\"kbt-probe\""), "%s", err);
	cr_assert(strstr(start, "\"fork\":false"), "%s", err);
	double t_start = atof(strstr(start, "\"t\":") + 4), t_inject = atof(strstr(inject, "\"t\":") + 4);
	cr_assert_leq(t_start, t_inject, "the start line says when the process started: %s", err);
	free(out);
	free(err);

	const char *named[] = { "run", "-r", "q181350", "-l", kbt_logpath(), "--", "/bin/sh", "-c",
				"ls / >/dev/null; true", NULL };
	cr_assert_eq(kbt_kbfault(named, &out, &err), 0, "%s", err);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "start", NULL), 2, "a named log: sh and ls");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* Threads whose first lines come at once, on the default log where the
 * start line waits for them: one start line, not one per thread. */
Test(log, threads_logging_first_at_once_start_the_process_once, .timeout = 60)
{
	for (int round = 0; round < 20; round++) {
		char *out, *err;
		cr_assert_eq(kbt_run((const char *[]){ helper(), "threads", "8", NULL }, env_for(NULL), true, 20000, &out, &err),
			     0, "%s %s", out, err);
		cr_assert_str_eq(out, "injected 8\n");
		cr_assert_eq(count(err, "{\"event\":\"start\""), 1, "round %d: %s", round, err);
		cr_assert_eq(count(err, "{\"event\":\"inject\""), 8, "%s", err);
		free(out);
		free(err);
	}
}
