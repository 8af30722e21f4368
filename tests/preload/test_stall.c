/* Stalls and delays against the ways real servers learn they must stop:
 * a handler in another thread, sigwait(), signals blocked outside
 * pselect(), a listener shut down or closed to wake its acceptor - and
 * against signals that are not a stop (timers, SIGCHLD), which must
 * neither end a stall nor shorten a delay. And the host's own view of its
 * handlers, which kbfault wraps while stall rules are armed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* kbt-stall MODE under `recipe`; returns its port */
static int stall_server(struct kbt_proc *p, const char *mode, const char *recipe)
{
	static char env_recipe[700], env_log[700];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", recipe));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	kbt_spawn(p, (const char *[]){ kbt_build("helpers/kbt-stall"), mode, NULL },
		  (const char *[]){ env_recipe, env_log, NULL }, true);
	return kbt_port_of(kbt_line(p, 5000));
}

/* kbdemo-client, started and left running */
static void client_async(struct kbt_proc *c, int port, int count, int timeout_ms)
{
	char sport[16], scount[16], stime[16];
	snprintf(sport, sizeof sport, "%d", port);
	snprintf(scount, sizeof scount, "%d", count);
	snprintf(stime, sizeof stime, "%d", timeout_ms);
	kbt_spawn(c, (const char *[]){ kbt_build("kbdemo-client"), "--port", sport, "--count", scount, "--concurrency", "1",
				       "--timeout", stime, NULL },
		  NULL, false);
}

/* the process's log lines of one event, and how many */
static size_t events(const char *event)
{
	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t n = kbt_log_count(&l, "event", event, NULL);
	kbt_log_free(&l);
	return n;
}

/* waits (bounded) until the log has a stall line: the stall has begun */
static void await_stall(void)
{
	for (int i = 0; i < 200 && events("inject") == 0; i++)
		usleep(25000);
	cr_assert_eq(events("inject"), 1, "the third connection stalls");
}

#define FREEZE "rule freeze\n  on accept\n  after 2\n  action stall forever\n"

/* Two clients served, the third stalls; then `sig` must stop the server
 * within 5 s, the stall's end logged as interrupted. */
static void stops_on(const char *mode, int sig, const char *how)
{
	struct kbt_proc srv, cli;
	char *out, *err;
	int port = stall_server(&srv, mode, FREEZE);
	char *res = kbt_client(port, 2, 1, 2000);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	client_async(&cli, port, 1, 8000);
	await_stall();
	usleep(200000); /* well inside the stall */
	cr_assert_eq(events("stall-end"), 0, "nothing ended it yet");
	long long t0 = now_ms();
	kill(srv.pid, sig);
	int rc = kbt_wait(&srv, 5000, &out, &err);
	cr_assert_eq(rc, 0, "the server stopped (rc %d): %s %s", rc, out, err);
	cr_assert_lt(now_ms() - t0, 5000);
	cr_assert(strstr(out, how), "%s", out);
	cr_assert_eq(kbt_json_num(out, "served"), 3, "the stalled connection was served once it ended: %s", out);
	kbt_wait(&cli, 10000, NULL, NULL);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "stall", "stall", "forever", "hit", "3", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "stall-end", "interrupted", "true", "rule", "freeze", NULL), 1);
	kbt_log_free(&l);
}

Test(stall, a_handler_in_the_main_thread_ends_it)
{
	stops_on("main-handler", SIGTERM, "main-handler");
}

Test(stall, sigwait_in_another_thread_ends_it)
{
	stops_on("sigwait", SIGTERM, "sigwait SIGTERM");
}

Test(stall, a_pending_blocked_sigterm_ends_it)
{
	/* postgresql's postmaster: signals blocked but inside pselect() */
	stops_on("blocked", SIGTERM, "blocked");
}

Test(stall, shutdown_of_the_listener_ends_it)
{
	/* SIGUSR1 is no termination signal: what wakes the acceptor is the
	 * listener shut down under it */
	stops_on("usr1-shutdown", SIGUSR1, "shutdown");
}

Test(stall, close_of_the_listener_ends_it)
{
	stops_on("usr1-close", SIGUSR1, "close");
}

Test(stall, timers_and_sigchld_do_not_end_it)
{
	/* a SIGALRM every 2 ms and a SIGCHLD every 5 ms, handled in the
	 * stalled thread itself: the stall keeps its duration */
	struct kbt_proc srv;
	char *out;
	int port = stall_server(&srv, "noisy", "rule freeze\n  on accept\n  after 1\n  limit 1\n  action stall 800ms\n");
	long long t0 = now_ms();
	char *res = kbt_client(port, 2, 1, 5000);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	cr_assert_geq(now_ms() - t0, 800, "the second waited out the whole stall: %s", res);
	kill(srv.pid, SIGTERM);
	char *err;
	int rc = kbt_wait(&srv, 5000, &out, &err);
	cr_assert_eq(rc, 0, "rc %d: %s %s", rc, out, err);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "stall-end", "interrupted", "false", NULL), 1);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(kb_json_str(&l.line[i], "event"), "stall-end") == 0)
			cr_assert_geq(atof(kb_json_str(&l.line[i], "stalled_ms")), 800.0, "stalled %s ms",
				      kb_json_str(&l.line[i], "stalled_ms"));
	kbt_log_free(&l);
}

Test(stall, a_forever_stall_outlasts_the_noise_and_sigterm_ends_it)
{
	struct kbt_proc srv, cli;
	char *out;
	int port = stall_server(&srv, "noisy", FREEZE);
	free(kbt_client(port, 2, 1, 2000));
	client_async(&cli, port, 1, 8000);
	await_stall();
	sleep(1);
	cr_assert_eq(events("stall-end"), 0, "a second of timers and SIGCHLD did not end it");
	long long t0 = now_ms();
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0);
	cr_assert_lt(now_ms() - t0, 5000);
	kbt_wait(&cli, 10000, NULL, NULL);
	cr_assert_eq(events("stall-end"), 1);
}

Test(stall, after_a_termination_signal_the_process_stalls_no_more)
{
	/* every accept after the second stalls; SIGHUP (a reload, for this
	 * server) ends the stall, and the process goes on serving unstalled */
	struct kbt_proc srv, cli;
	char *out;
	int port = stall_server(&srv, "noisy", FREEZE);
	free(kbt_client(port, 2, 1, 2000));
	client_async(&cli, port, 1, 8000);
	await_stall();
	kill(srv.pid, SIGHUP);
	char *o;
	cr_assert_eq(kbt_wait(&cli, 8000, &o, NULL), 0);
	cr_assert_eq(kbt_json_num(o, "ok"), 1, "the stalled client was served: %s", o);
	char *res = kbt_client(port, 3, 1, 2000);
	cr_assert_eq(kbt_json_num(res, "ok"), 3, "and the next ones at once: %s", res);
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(out, "served"), 6, "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "stall", NULL), 1, "one stall only");
	cr_assert_eq(kbt_log_count(&l, "event", "stall-end", "interrupted", "true", NULL), 1);
	kbt_log_free(&l);
}

Test(stall, delay_lasts_its_duration_under_signals)
{
	/* SA_RESTART handlers every 2 and 5 ms: each delay is whole, as the
	 * log says */
	struct kbt_proc srv;
	char *out;
	int port = stall_server(&srv, "noisy", "rule slow\n  on accept\n  delay 300ms\n");
	char *res = kbt_client(port, 3, 1, 5000);
	cr_assert_eq(kbt_json_num(res, "ok"), 3, "%s", res);
	cr_assert_geq(kbt_json_num(res, "elapsed_ms"), 900, "three whole delays of 300 ms: %s", res);
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "pass", "delay_ms", "300.000", NULL), 3);
	kbt_log_free(&l);
}

/* the lines of sigquery's output but those about the kernel's own view */
static char *without_raw(const char *out)
{
	char *copy = strdup(out), *kept = calloc(1, strlen(out) + 1), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "raw ", 4) != 0) {
			strcat(kept, line);
			strcat(kept, "\n");
		}
	free(copy);
	return kept;
}

Test(stall, the_host_sees_its_own_handlers)
{
	char *bare, *under, env_recipe[700];
	const char *argv[] = { kbt_build("helpers/kbt-stall"), "sigquery", NULL };
	/* ThreadSanitizer keeps a table and a kernel handler of its own
	 * (past which bsd_signal, sysv_signal and sigset reach the kernel),
	 * and runs handlers itself, late, with an errno of its own: what a
	 * host sees of its handlers there is ThreadSanitizer's affair */
	kbt_skip_under("tsan", "ThreadSanitizer stands between the host and its handlers itself");
	/* valgrind delivers signals itself too, and a queued SIGINT's
	 * siginfo reaches a handler with another signal's number even with
	 * no shim at all */
	kbt_skip_under("valgrind", "valgrind stands between the host and its handlers itself");
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", FREEZE));
	cr_assert_eq(kbt_run(argv, NULL, false, 5000, &bare, NULL), 0, "%s", bare);
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, "KBFAULT_LOG=/dev/null", NULL }, true, 5000, &under, NULL), 0,
		     "%s", under);
	cr_assert_str_eq(without_raw(under), without_raw(bare), "the same answers with kbfault as without");
	cr_assert(strstr(bare, "term handled: sig=15 hits=1 errno-at-entry=EDOM"), "%s", bare);
	cr_assert(strstr(bare, "int handled: sig=2 code=SI_QUEUE value=42 own-pid=1 ucontext=1 errno-at-entry=EDOM"), "%s",
		  bare);
	cr_assert(strstr(bare, "hup handled 1 time(s)\nhup after one: SIG_DFL"), "%s", bare);
	cr_assert(strstr(bare, "quit handled 1 time(s)"), "%s", bare);
	cr_assert(strstr(bare, "raw term is the host's: 1"), "%s", bare);
	/* under kbfault the kernel calls kbfault's wrapper, which the host
	 * never sees */
	cr_assert(strstr(under, "raw term is the host's: 0"), "wrapped: %s", under);
	cr_assert(strstr(under, "raw int is the host's: 0"), "wrapped: %s", under);
	cr_assert(strstr(under, "raw quit is the host's: 0"), "wrapped: %s", under);
	cr_assert(strstr(under, "raw usr1 is the host's: 1"), "other signals are left alone: %s", under);
}

Test(stall, no_stall_rules_no_wrapping)
{
	char *under, env_recipe[700];
	const char *argv[] = { kbt_build("helpers/kbt-stall"), "sigquery", NULL };
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", "rule slow\n  on accept\n  delay 1ms\n"));
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, "KBFAULT_LOG=/dev/null", NULL }, true, 5000, &under, NULL), 0,
		     "%s", under);
	if (!kbt_sanitizer_is("tsan"))
		cr_assert(strstr(under, "raw term is the host's: 1"), "%s", under);
}
