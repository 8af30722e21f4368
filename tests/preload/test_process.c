/* Processes and threads: fork, a pool of accepting threads, a hook run
 * before our constructor, and a host that closes every descriptor. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* kbt-probe fork: the parent serves one connection, forks, and the child
 * serves the next. The rule leaks the first close it counts. */
static void fork_case(const char *scope, size_t expected_leaks)
{
	struct kbt_proc p;
	char rule[300], env[600], env_log[700], *out;
	snprintf(rule, sizeof rule, "rule first\n  on close\n  role accepted\n  nth 1\n  counters %s\n  action leak\n", scope);
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", rule));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	kbt_spawn(&p, (const char *[]){ kbt_build("helpers/kbt-probe"), "fork", NULL }, (const char *[]){ env, env_log, NULL }, true);
	cr_assert_str_eq(kbt_line(&p, 5000), "main");
	int port = kbt_port_of(kbt_line(&p, 5000));
	free(kbt_client(port, 2, 1, 800));
	cr_assert_eq(kbt_wait(&p, 10000, &out, NULL), 0);
	cr_assert(strstr(out, "child 0"), "%s", out);

	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", "fork", "false", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", "fork", "true", NULL), 1,
		     "the child announces itself");
	const char *parent = NULL, *child = NULL;
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(kb_json_str(&l.line[i], "event"), "start") != 0 ||
		    strcmp(kb_json_str(&l.line[i], "program"), "kbt-probe") != 0)
			continue;
		if (strcmp(kb_json_str(&l.line[i], "fork"), "true") == 0) {
			child = kb_json_str(&l.line[i], "pid");
			cr_assert_str_eq(kb_json_str(&l.line[i], "ppid"), parent, "the child's parent is the first process");
		} else {
			parent = kb_json_str(&l.line[i], "pid");
		}
	}
	cr_assert_str_neq(parent, child);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), expected_leaks);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", parent, "hit", "1", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", child, NULL), expected_leaks - 1);
	kbt_log_free(&l);
}

Test(process, forked_child_counts_for_itself)
{
	fork_case("process", 2);
}

Test(process, tree_counters_are_shared_with_forks)
{
	fork_case("tree", 1);
}

Test(process, eight_threads_every_injection_logged_once, .timeout = 120)
{
	/* 3,000 connections, 16 clients at once, 8 accepting threads, two
	 * rules firing often: every 5th accept drops the connection, every
	 * 2nd close of what is served is a reset. Each injection must be in
	 * the log exactly once, under a hit number nobody else got. */
	struct kbt_proc srv;
	char *out, *err;
	enum { N = 3000, DROPPED = N / 5, SERVED = N - DROPPED };
	int port = kbt_server(&srv,
			      kbt_write("r.kbf", "rule drop\n  on accept\n  every 5\n  action reset\n"
						 "rule half\n  on close\n  role accepted\n  every 2\n  action reset\n"),
			      kbt_logpath(), (const char *[]){ "--threads", "8", "--idle-exit", "60", NULL });
	char *res = kbt_client(port, N, 16, 5000);
	/* Stopped only once the client has its 3,000 answers, not with
	 * --max: the server stops accepting once it has served its quota,
	 * and the last connection (hit 3,000: a drop) can still be in the
	 * queue then. Closing the listener resets it, so the client counts
	 * a reset that no rule made and the log is one drop short. */
	kill(srv.pid, SIGTERM);
	cr_assert_eq(kbt_wait(&srv, 30000, &out, &err), 0, "client: %s\nserver: %s %s", res, out, err);
	cr_assert_eq(kbt_json_num(out, "served"), SERVED, "%s", out);
	cr_assert_eq(kbt_json_num(res, "ok"), SERVED / 2, "%s", res);
	cr_assert_eq(kbt_json_num(res, "reset"), DROPPED + SERVED / 2, "%s", res);

	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t drops = kbt_log_count(&l, "event", "inject", "rule", "drop", NULL);
	size_t halves = kbt_log_count(&l, "event", "inject", "rule", "half", NULL);
	cr_assert_eq(drops, DROPPED, "%zu drops logged", drops);
	cr_assert_eq(halves, SERVED / 2, "%zu resets on close logged", halves);
	static bool seen[2][N + 1];
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(kb_json_str(&l.line[i], "event"), "inject") != 0)
			continue;
		int r = strcmp(kb_json_str(&l.line[i], "rule"), "drop") == 0 ? 0 : 1;
		long hit = strtol(kb_json_str(&l.line[i], "hit"), NULL, 10);
		cr_assert(hit >= 1 && hit <= N && hit % (r ? 2 : 5) == 0, "rule %d hit %ld", r, hit);
		cr_assert_not(seen[r][hit], "rule %d hit %ld logged twice", r, hit);
		seen[r][hit] = true;
	}
	kbt_log_free(&l);
}

Test(process, hooks_work_before_our_constructor)
{
	char *out, *err, env[600], preload[9000];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", "rule five\n  on listen\n  action backlog 5\n"));
	/* libkbt_early.so is preloaded after us, so its constructor runs first */
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s %s", kbt_build("libkbfault.so"),
		 kbt_build("helpers/libkbt_early.so"));
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "64", NULL };
	cr_assert_eq(kbt_run(argv, (const char *[]){ preload, env, "KBFAULT_LOG=/dev/null", NULL }, false, 5000, &out, &err),
		     0, "%s", err);
	char *early = strstr(out, "early-backlog 5\n"), *main_ = strstr(out, "main\n");
	cr_assert_not_null(early, "the constructor's listen was capped: %s", out);
	cr_assert_not_null(main_, "%s", out);
	cr_assert_lt(early, main_, "and it ran before main: %s", out);
	cr_assert(strstr(out, "backlog 5\n"), "%s", out);
}

Test(process, log_survives_a_host_that_closes_everything)
{
	struct kbt_proc p;
	char env[600], env_log[700], *out, *err;
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s",
		 kbt_write("r.kbf", "rule keep\n  on close\n  role accepted\n  action leak\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	kbt_spawn(&p, (const char *[]){ kbt_build("helpers/kbt-probe"), "closeall", NULL }, (const char *[]){ env, env_log, NULL },
		  true);
	cr_assert_str_eq(kbt_line(&p, 5000), "main");
	int port = kbt_port_of(kbt_line(&p, 10000));
	free(kbt_client(port, 1, 1, 500));
	cr_assert_eq(kbt_wait(&p, 10000, &out, &err), 0, "%s", err);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "leak", NULL), 1,
		     "the injection after close loops, close_range, closefrom and dup2 is still logged");
	kbt_log_free(&l);
}

Test(process, start_up_never_calls_the_hosts_allocator)
{
	/* a sanitizer's runtime intercepts malloc itself: a second allocator
	 * interposed on top of it cannot work, whatever kbfault does */
	if (getenv("KB_SANITIZER"))
		cr_skip_test("an interposed allocator cannot run under %s", getenv("KB_SANITIZER"));
	/* The allocator's first malloc makes syscall(SYS_close) while it holds
	 * its lock; that starts kbfault, and kbfault's start-up must not
	 * allocate through it (redis with jemalloc hung exactly so). */
	char *out, *err, env[600], preload[9000];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", "rule five\n  on listen\n  action backlog 5\n"));
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s %s", kbt_build("libkbfault.so"),
		 kbt_build("helpers/libkbt_allocator.so"));
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "64", NULL };
	int rc = kbt_run(argv, (const char *[]){ preload, env, "KBFAULT_LOG=/dev/null", NULL }, false, 10000, &out, &err);
	cr_assert_eq(rc, 0, "exit %d (99: kbfault allocated inside the allocator): %s", rc, err);
	cr_assert(strstr(out, "backlog 5\n"), "%s", out);
}
