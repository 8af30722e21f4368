/* The emulated accept queue (queue N reset|refuse) in hosts that are hard
 * on it: acceptor threads cancelled at any moment, and prefork servers
 * whose workers exit while they hold the paused queue. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* 1,000 rounds, each cancelling one of four acceptors while a burst of
 * clients keeps the queue's drain busy: a thread cancelled inside it
 * must not leave it locked (the others would spin and never be joined).
 * Without the fix one round in a hundred or so catches it. */
static void cancel_rounds(const char *mode)
{
	char recipe[200], *out, *err;
	snprintf(recipe, sizeof recipe, "rule q\n  on listen\n  action queue 2 %s\n", mode);
	const char *rounds = kbt_sanitizer_is("valgrind") ? "100" : "1000";
	const char *argv[] = { kbt_build("helpers/kbt-acceptors"), rounds, NULL };
	int rc = kbt_run(argv, kbt_under(recipe), true, 100000, &out, &err);
	cr_assert_eq(rc, 0, "rc %d: %s %s", rc, out, err);
	cr_assert(strstr(out, "rounds ok"), "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_gt(kbt_log_count(&l, "event", "inject", "effect", "reset", NULL), 100, "the queue was busy");
	kbt_log_free(&l);
}

Test(queue, cancelled_acceptors_leave_no_lock_held_reset, .timeout = 150)
{
	cancel_rounds("reset");
}

Test(queue, cancelled_acceptors_leave_no_lock_held_refuse, .timeout = 150)
{
	cancel_rounds("refuse");
}

static int prefork(struct kbt_proc *p, const char *workers, const char *max, const char *reap, const char *wait_ms,
		   const char *recipe)
{
	kbt_spawn(p, (const char *[]){ kbt_build("helpers/kbt-prefork"), workers, max, reap, wait_ms, NULL }, kbt_under(recipe),
		  true);
	return kbt_port_of(kbt_line(p, 5000));
}

/* Does the log hold this text yet? */
static bool log_says(const char *text)
{
	FILE *f = fopen(kbt_logpath(), "r");
	char line[4096];
	bool found = false;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* the pid of the log's first line with event=inject and effect=`effect` */
static const char *pid_of(const struct kbt_log *l, const char *effect)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *e = kb_json_str(&l->line[i], "effect");
		if (e && strcmp(e, effect) == 0)
			return kb_json_str(&l->line[i], "pid");
	}
	return NULL;
}

/* Twelve clients queue up before the workers start; the first worker to
 * accept pauses the listener with two of them in its queue, serves one,
 * and exits at its limit of one connection, holding the other. Later
 * clients must be served by the others, who resume the listener. */
static void pauser_exits(const char *workers, const char *reap, int later)
{
	struct kbt_proc srv;
	char *out;
	int port = prefork(&srv, workers, "1", reap, "500", "rule q\n  on listen\n  action queue 2 refuse\n");
	free(kbt_client(port, 12, 12, 3000));
	/* until the pool has resumed the listener, clients are refused, as
	 * the recipe wants: the later ones come once a resume is logged
	 * (bounded: a slow machine, or valgrind, takes a while) */
	for (int i = 0; i < 200 && !log_says("\"effect\":\"resume\""); i++)
		usleep(50000);
	char *res = kbt_client(port, later, 1, 3000);
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0, "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	const char *paused = pid_of(&l, "pause");
	cr_assert_not_null(paused, "the burst paused the listener");
	size_t by_other = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *e = kb_json_str(&l.line[i], "effect"), *why = kb_json_str(&l.line[i], "reason");
		if (e && strcmp(e, "resume") == 0 && why && strstr(why, "is gone") &&
		    strcmp(kb_json_str(&l.line[i], "pid"), paused) != 0)
			by_other++;
	}
	cr_assert_geq(by_other, 1, "another process resumed the listener after its pauser was gone");
	cr_assert_eq(kbt_json_num(res, "ok"), later, "every later client served: %s", res);
	kbt_log_free(&l);
}

Test(queue, prefork_a_pause_outlives_the_worker_that_made_it, .timeout = 60)
{
	pauser_exits("2", "reap", 10);
}

Test(queue, prefork_a_zombie_pauser_counts_as_gone, .timeout = 60)
{
	/* nobody reaps the workers: the pauser stays a zombie, which
	 * kill(pid, 0) would call alive */
	pauser_exits("3", "noreap", 2);
}

Test(queue, a_resumed_listener_keeps_its_port, .timeout = 60)
{
	/* bound to port 0 and without SO_REUSEADDR: pausing loses the port,
	 * and the connections taken from it still hold it. Twelve clients
	 * queue up before the worker starts, so that it pauses */
	struct kbt_proc srv;
	char *out;
	int port = prefork(&srv, "1", "1000", "reap", "500", "rule q\n  on listen\n  action queue 2 refuse\n");
	free(kbt_client(port, 12, 12, 2000));
	char *res = kbt_client(port, 5, 1, 3000);
	cr_assert_eq(kbt_json_num(res, "ok"), 5, "served on the same port after the pause: %s", res);
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0, "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	char local[64];
	snprintf(local, sizeof local, "127.0.0.1:%d", port);
	cr_assert_geq(kbt_log_count(&l, "event", "inject", "effect", "pause", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "effect", "resume", NULL),
		     kbt_log_count(&l, "event", "inject", "effect", "resume", "local", local, NULL),
		     "every resume on the port it had");
	kbt_log_free(&l);
}

Test(queue, a_listener_the_host_shuts_down_itself_is_not_waited_on)
{
	/* the acceptor blocks in accept(); the host wakes it by shutting the
	 * listener down, and accept() must say EINVAL, as it does without
	 * kbfault, rather than wait for a resume no pause will bring */
	struct kbt_proc srv;
	char *out;
	kbt_spawn(&srv, (const char *[]){ kbt_build("helpers/kbt-stall"), "usr1-shutdown", NULL },
		  kbt_under("rule q\n  on listen\n  action queue 2 refuse\n"), true);
	int port = kbt_port_of(kbt_line(&srv, 5000));
	char *res = kbt_client(port, 1, 1, 2000);
	cr_assert_eq(kbt_json_num(res, "ok"), 1, "%s", res);
	usleep(100000); /* back in accept() */
	kill(srv.pid, SIGUSR1);
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0, "the acceptor returned and was joined: %s", out);
	cr_assert_eq(kbt_json_num(out, "served"), 1, "%s", out);
}

/* A server that listens again and again, each time on a new descriptor
 * number, gets an emulated queue every time: the entries of listeners it
 * has closed are taken back, not held until the table runs out. */
Test(queue, a_listener_opened_anew_on_a_new_number_is_emulated_each_time, .timeout = 60)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-relisten"), "24", NULL };

	cr_assert_eq(kbt_run(argv, kbt_under("rule q\n  on listen\n  action queue 1 reset\n"), true, 40000, &out, &err), 0,
		     "%s %s", out, err);
	cr_assert_str_eq(out, "rounds 24\nresets 48\n", "two of three clients reset in every round");
	free(out);
	free(err);
}

/* The same when the listener is closed where the shim cannot see it (an
 * inline system call): an entry whose descriptor no longer holds its
 * listener is taken back when the table is full. */
Test(queue, a_listener_closed_unseen_gives_its_entry_back, .timeout = 60)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-relisten"), "24", "unseen", NULL };

	cr_assert_eq(kbt_run(argv, kbt_under("rule q\n  on listen\n  action queue 1 reset\n"), true, 40000, &out, &err), 0,
		     "%s %s", out, err);
	if (strcmp(out, "unseen unsupported\n") == 0)
		cr_skip_test("no inline system call on this architecture");
	cr_assert_str_eq(out, "rounds 24\nresets 48\n", "two of three clients reset in every round");
	free(out);
	free(err);
}

/* A listener closed while its refuse queue holds it paused (a graceful
 * stop closes the listener first): what the shim holds for it is reset,
 * as the kernel resets what waits on a listener that closes, and its
 * pause is given up - no client is left hanging, and a server that does
 * this again and again keeps its emulated queue every time. */
Test(queue, a_paused_listener_that_closes_leaves_no_client_hanging, .timeout = 120)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-relisten"), "70", "closing", NULL };

	cr_assert_eq(kbt_run(argv, kbt_under("rule q\n  on listen\n  action queue 5 refuse\n"), true, 100000, &out, &err), 0,
		     "%s %s", out, err);
	cr_assert_str_eq(out, "rounds 70\nhanging 0\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "effect", "pause", NULL), 70, "every listener's queue paused it");
	kbt_log_free(&l);
	free(out);
	free(err);
}
