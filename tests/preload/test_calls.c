/* listen, accept and connect faults, seen from both ends. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

Test(calls, listen_backlog_is_capped_and_logged)
{
	char *out, *err, env[600], env_log[700];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", "rule five\n  on listen\n  action backlog 5\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "511", NULL };
	cr_assert_eq(kbt_run(argv, (const char *[]){ env, env_log, NULL }, true, 5000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "backlog 5\n"), "the kernel's queue is 5: %s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "listen", "action", "backlog", "requested", "511",
				   "backlog", "5", "rule", "five", "effect", "capped", NULL),
		     1);
	kbt_log_free(&l);
}

/* A cap at or above what the program asked for changes nothing: the line
 * says so, and why, for a cap and for a queue that only caps (hang). */
Test(calls, listen_at_or_below_the_cap_is_logged_as_no_effect)
{
	const char *recipes[] = { "rule five\n  on listen\n  action backlog 5\n",
				  "rule five\n  on listen\n  action queue 5 hang\n" };
	for (size_t i = 0; i < 2; i++) {
		char *out, *err;
		const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "5", NULL };
		unlink(kbt_logpath());
		cr_assert_eq(kbt_run(argv, kbt_under(recipes[i]), true, 5000, &out, &err), 0, "%s", err);
		struct kbt_log l = kbt_log_read(kbt_logpath());
		cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "listen", "requested", "5", "backlog", "5",
					   "effect", "none", "reason",
					   "the program asked for a backlog of 5, no more than the cap of 5", NULL),
			     1, "%s", recipes[i]);
		kbt_log_free(&l);
		free(out);
		free(err);
		/* and the report counts it as a no-op, not as an injection */
		cr_assert_eq(kbt_kbfault((const char *[]){ "report", "--json", kbt_logpath(), NULL }, &out, &err), 0,
			     "%s", err);
		cr_assert(strstr(out, "\"injections\":0,\"noops\":1,"), "%s", out);
		free(out);
		free(err);
	}
}

/* Every inject line says what the rule did to the call. */
Test(calls, every_injection_says_its_effect)
{
	struct kbt_proc srv;
	char *out;
	int port = kbt_server(&srv,
			      kbt_write("r.kbf", "rule slow\n  on accept\n  nth 1\n  delay 1ms\n  action pass\n"
						 "rule drop\n  on accept\n  nth 2\n  action reset\n"
						 "rule refuse\n  on accept\n  nth 3\n  action fail ECONNABORTED\n"),
			      kbt_logpath(), (const char *[]){ "--max", "3", NULL });
	free(kbt_client(port, 5, 1, 2000));
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "drop", "effect", "reset", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "refuse", "effect", "failed", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "slow", "effect", "delayed", NULL), 1);
	kbt_log_free(&l);
}

Test(calls, accept_reset_drops_the_connection_unseen)
{
	struct kbt_proc srv;
	char *out;
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule drop\n  on accept\n  nth 2\n  action reset\n"), kbt_logpath(),
			      (const char *[]){ "--max", "2", NULL });
	char *res = kbt_client(port, 3, 1, 2000);
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	cr_assert_eq(kbt_json_num(res, "reset"), 1, "%s", res);
	cr_assert_eq(kbt_json_num(out, "served"), 2, "the server never saw the dropped one: %s", out);
	cr_assert_eq(kbt_json_num(out, "accept_errors"), 0, "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "accept", "action", "reset", "hit", "2", NULL), 1);
	kbt_log_free(&l);
}

Test(calls, accept_econnaborted_resets_and_reports)
{
	struct kbt_proc srv;
	char *out;
	/* the server counts idle time in whole seconds from its last good
	 * accept, so --idle-exit 1 could end it mid-run when a second
	 * boundary fell between two clients (seen once under valgrind) */
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule abort\n  on accept\n  every 2\n  action fail ECONNABORTED\n"),
			      kbt_logpath(), (const char *[]){ "--idle-exit", "4", NULL });
	char *res = kbt_client(port, 4, 1, 2000);
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	cr_assert_eq(kbt_json_num(res, "reset"), 2, "%s", res);
	cr_assert_eq(kbt_json_num(out, "accept_errors"), 2, "%s", out);
	cr_assert(strstr(out, "\"last_errno\":\"ECONNABORTED\""), "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "fail", "errno", "ECONNABORTED", "via", "accept4", NULL), 2);
	kbt_log_free(&l);
}

Test(calls, accept_emfile_leaves_the_connection_queued)
{
	struct kbt_proc srv;
	char *out;
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule full\n  on accept\n  limit 3\n  action fail EMFILE\n"),
			      kbt_logpath(), (const char *[]){ "--max", "2", NULL });
	char *res = kbt_client(port, 2, 1, 3000);
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "the connection waited in the queue and was served: %s", res);
	cr_assert_eq(kbt_json_num(out, "accept_errors"), 3, "%s", out);
	cr_assert(strstr(out, "\"last_errno\":\"EMFILE\""), "%s", out);
}

Test(calls, connect_refuse_is_a_real_refusal)
{
	struct kbt_proc srv;
	char *out, *err, env[600], env_log[700], sport[16], rule[200];
	/* a healthy server, not preloaded: without the recipe it accepts */
	int port = kbt_server(&srv, NULL, NULL, (const char *[]){ "--idle-exit", "5", NULL });
	snprintf(sport, sizeof sport, "%d", port);
	snprintf(rule, sizeof rule, "rule down\n  on connect\n  peer 127.0.0.1\n  peer-port %d\n  action refuse\n", port);
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", rule));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "connect", sport, NULL };

	cr_assert_eq(kbt_run(argv, NULL, false, 5000, &out, &err), 0);
	cr_assert(strstr(out, "nonblocking rc=-1 errno=EINPROGRESS so_error=0"), "healthy: %s", out);
	cr_assert(strstr(out, "blocking rc=0 errno=0"), "healthy: %s", out);

	cr_assert_eq(kbt_run(argv, (const char *[]){ env, env_log, NULL }, true, 5000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "nonblocking rc=-1 errno=EINPROGRESS so_error=ECONNREFUSED"),
		  "refused on the normal, asynchronous path: %s", out);
	cr_assert(strstr(out, "blocking rc=-1 errno=ECONNREFUSED"), "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "connect", "action", "refuse", NULL), 2);
	kill(srv.pid, SIGTERM);
	kbt_wait(&srv, 5000, NULL, NULL);
	kbt_log_free(&l);
}

Test(calls, connect_fail_is_synchronous)
{
	char *out, *err, env[600];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", "rule t\n  on connect\n  action fail ETIMEDOUT\n"));
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "connect", "9", NULL };
	cr_assert_eq(kbt_run(argv, (const char *[]){ env, "KBFAULT_LOG=/dev/null", NULL }, true, 5000, &out, &err), 0);
	cr_assert(strstr(out, "nonblocking rc=-1 errno=ETIMEDOUT"), "%s", out);
	cr_assert(strstr(out, "blocking rc=-1 errno=ETIMEDOUT"), "%s", out);
}

Test(calls, stall_freezes_accepts_but_a_signal_stops_the_server)
{
	struct kbt_proc srv;
	char *out, *err;
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule freeze\n  on accept\n  after 2\n  action stall forever\n"),
			      kbt_logpath(), (const char *[]){ "--idle-exit", "60", NULL });
	char *res = kbt_client(port, 4, 1, 700);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	cr_assert_eq(kbt_json_num(res, "reply_timeout"), 2, "the third is held, the fourth queues: %s", res);
	kill(srv.pid, SIGTERM);
	int rc = kbt_wait(&srv, 5000, &out, &err);
	cr_assert_eq(rc, 0, "SIGTERM ends the stall and the server exits normally (rc %d): %s", rc, err);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "stall", "stall", "forever", "hit", "3", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "stall-end", "interrupted", "true", NULL), 1);
	kbt_log_free(&l);
}

Test(calls, delay_only_rules_slow_the_call_and_pass)
{
	struct kbt_proc srv;
	char *out;
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule slow\n  on accept\n  delay 300ms\n"), kbt_logpath(),
			      (const char *[]){ "--max", "2", NULL });
	char *res = kbt_client(port, 2, 1, 3000);
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "%s", res);
	cr_assert_geq(kbt_json_num(res, "elapsed_ms"), 600, "two delays of 300ms: %s", res);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "pass", "delay_ms", "300.000", NULL), 2);
	kbt_log_free(&l);
}
