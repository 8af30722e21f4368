/* The session model (Q124737) inside hosts that make it hard: a signal
 * handler that accepts while its thread is in the model, sessions cut
 * while their server threads close them, and the numbers a cut line
 * carries; and a child made without fork(). (Process trees:
 * tests/e2e/e2e_process_trees.c.) */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A SIGALRM handler accepts every millisecond while the main thread
 * accepts too, with memory leaked per attempt: a handler arriving while
 * its thread is leaking must not wait for the lock that thread holds. */
Test(sessions, a_signal_handler_that_accepts_while_memory_leaks, .timeout = 60)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "sigaccept", "1500", NULL };
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 1000000\n  slots 0\n"
			     "  leak 262144\n";

	int rc = kbt_run(argv, kbt_under(recipe), true, 40000, &out, &err);
	cr_assert_eq(rc, 0, "no deadlock (status %d): %s %s", rc, out, err);
	cr_assert(strncmp(out, "done ", 5) == 0, "%s", out);
	int by_main = 0, by_handler = 0;
	sscanf(out, "done %d %d", &by_main, &by_handler);
	cr_assert_gt(by_handler, 0, "the handler did accept some: %s", out);
	free(out);
	free(err);
}

/* A cut made because a session ended has no hit of the rule's own; one
 * made because a session was admitted carries that accept's hit; both
 * say which session they cut. */
Test(sessions, a_cut_line_says_which_session_and_which_hit)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "cuts", NULL };
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 1\n  miscount 1\n";

	cr_assert_eq(kbt_run(argv, kbt_under(recipe), true, 10000, &out, &err), 0, "%s %s", out, err);
	cr_assert_str_eq(out, "c2 reset\nc3 reset\nc4 open\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t cuts = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *effect = kb_json_str(&l.line[i], "effect");
		if (effect == NULL || strcmp(effect, "cut") != 0)
			continue;
		const char *call = kb_json_str(&l.line[i], "call"), *hit = kb_json_str(&l.line[i], "hit");
		const char *session = kb_json_str(&l.line[i], "session");
		cr_assert_not_null(session, "a cut line names the session");
		if (cuts++ == 0) {
			cr_assert_str_eq(call, "close", "the first cut follows a close");
			cr_assert_null(hit, "and has no hit of its own: %s", hit);
			cr_assert_str_eq(session, "2", "the oldest active session");
		} else {
			cr_assert_str_eq(call, "accept");
			cr_assert_str_eq(hit, "4", "the admitting accept's hit");
			cr_assert_str_eq(session, "3");
		}
	}
	cr_assert_eq(cuts, 2);
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* Eight server threads end sessions with plain close() while the model
 * cuts the oldest: every session a cut line names is one whose client
 * saw it broken - never one that ended cleanly while an unrelated
 * connection on its old number was reset instead. */
Test(sessions, a_cut_acts_on_the_session_it_checked, .timeout = 120)
{
	struct kbt_proc srv;
	char port[16], *out, *err;
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 4\n  slots 0\n";

	kbt_spawn(&srv, (const char *[]){ kbt_build("kbdemo-server"), "--threads", "8", "--lines", "3", NULL },
		  kbt_under(recipe), true);
	snprintf(port, sizeof port, "%d", kbt_port_of(kbt_line(&srv, 5000)));
	int rc = kbt_run((const char *[]){ kbt_build("helpers/kbt-sessions"), "clients", port, "2000", "16", NULL },
			 NULL, false, 100000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	kill(srv.pid, SIGTERM);
	kbt_wait(&srv, 10000, NULL, NULL);

	/* the local ports on which every session ended cleanly: a port can
	 * come round again (loopback reuses ports in TIME-WAIT), and a cut
	 * line names its session by the port alone */
	static bool seen[65536], clean[65536];
	memset(seen, 0, sizeof seen);
	memset(clean, 0, sizeof clean);
	size_t sessions = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		int p;
		char what[16];
		if (sscanf(line, "%d %15s", &p, what) == 2 && p > 0 && p < 65536) {
			clean[p] = (seen[p] ? clean[p] : true) && strcmp(what, "ok") == 0;
			seen[p] = true;
			sessions++;
		}
	}
	cr_assert_eq(sessions, 2000, "every session reported");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t cuts = 0, wrong = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *effect = kb_json_str(&l.line[i], "effect"), *peer = kb_json_str(&l.line[i], "peer");
		if (effect == NULL || strcmp(effect, "cut") != 0 || peer == NULL)
			continue;
		cuts++;
		const char *colon = strrchr(peer, ':');
		int p = colon ? atoi(colon + 1) : 0;
		if (p > 0 && p < 65536 && clean[p])
			wrong++;
	}
	cr_assert_gt(cuts, 100, "sessions were cut (%zu)", cuts);
	cr_assert_eq(wrong, 0, "%zu of %zu cut lines name a session whose client saw it end cleanly", wrong, cuts);
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A child made by a raw clone() runs no fork handler: it still says it
 * exists before its first line, under its own pid, and counts its own
 * hits from one. */
static void raw_clone_child_starts_its_own_count(const char *how, bool on_stderr)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "clone", how, NULL };
	const char *recipe = "rule cap\n  on listen\n  action backlog 2\n";
	const char **env = kbt_under(recipe);
	if (on_stderr)
		env[1] = NULL; /* no KBFAULT_LOG: the default, where start lines wait */

	cr_assert_eq(kbt_run(argv, env, true, 10000, &out, &err), 0, "%s %s", out, err);
	if (strstr(out, "unsupported"))
		cr_skip_test("no %s() here", how);
	struct kbt_log l = kbt_log_read(on_stderr ? kbt_write("stderr.log", err) : kbt_logpath());
	const char *parent = NULL, *child = NULL;
	for (size_t i = 0; i < l.n; i++) {
		const char *ev = kb_json_str(&l.line[i], "event"), *pid = kb_json_str(&l.line[i], "pid");
		if (strcmp(ev, "start") == 0 && strcmp(kb_json_str(&l.line[i], "program"), "kbt-sessions") == 0) {
			if (strcmp(kb_json_str(&l.line[i], "fork"), "false") == 0)
				parent = pid;
			else
				child = pid;
		}
		if (strcmp(ev, "inject") == 0 && child && strcmp(pid, child) == 0)
			cr_assert_str_eq(kb_json_str(&l.line[i], "hit"), "1", "the child counts from one");
	}
	cr_assert_not_null(parent);
	cr_assert_not_null(child, "the child's start line");
	cr_assert_str_neq(parent, child);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", child, NULL), 1, "its one listen");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "pid", parent, "hit", "2", NULL), 1,
		     "the parent's count goes on from its own");
	kbt_log_free(&l);
	free(out);
	free(err);
}

Test(sessions, a_raw_clone_child_starts_its_own_count)
{
	raw_clone_child_starts_its_own_count("clone", false);
}

Test(sessions, a_raw_clone3_child_starts_its_own_count)
{
	raw_clone_child_starts_its_own_count("clone3", false);
}

/* The same on the default log, where both start lines wait for their
 * process's first line: the child's still says fork, under its own pid. */
Test(sessions, a_raw_clone_child_starts_its_own_count_on_stderr)
{
	raw_clone_child_starts_its_own_count("clone", true);
}

/* A client that forks a child per task: the child's link to a node ends
 * with shutdown() and exit(), never close(), and no accept follows that
 * could find the child gone. The exit itself ends the link: connecting to
 * that node again is refused (the client side of Q238009). */
Test(sessions, a_link_ends_when_its_last_holder_exits)
{
	struct kbt_proc srv;
	char port[16], *out, *err, env_recipe[700], env_log[720];

	kbt_spawn(&srv, (const char *[]){ kbt_build("kbdemo-server"), "--threads", "2", NULL }, NULL, false);
	snprintf(port, sizeof port, "%d", kbt_port_of(kbt_line(&srv, 5000)));
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=q238009-rejoin-fails-client");
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	const char *env[] = { env_recipe, env_log, "KBFAULT_RECIPE_DIR=", NULL };
	char dir[700];
	snprintf(dir, sizeof dir, "KBFAULT_RECIPE_DIR=%s/recipes", getenv("KB_SRC") ? getenv("KB_SRC") : ".");
	env[2] = dir;
	int rc = kbt_run((const char *[]){ kbt_build("helpers/kbt-sessions"), "forkconnect", port, NULL }, env, true,
			 10000, &out, &err);
	kill(srv.pid, SIGTERM);
	kbt_wait(&srv, 5000, NULL, NULL);
	cr_assert_eq(rc, 0, "%s %s", out, err);
	cr_assert_str_eq(out, "second refused\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "mark", "via", "exit", NULL), 1, "marked as the child exited");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A session's number, closed behind kbfault's back, now holds another
 * connection that its peer has reset: to the kernel both are accepted
 * sockets of the same listener with no peer any more. A cut must tell
 * them apart (by the socket itself, not by the port they share): it cuts
 * the connection that is there, and says so, never the one that left. */
Test(sessions, a_cut_tells_a_reset_connection_from_the_session_that_left)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "reused", NULL };
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 4\n  miscount 2\n";

	cr_assert_eq(kbt_run(argv, kbt_under(recipe), true, 10000, &out, &err), 0, "%s %s", out, err);
	if (strstr(out, "unsupported"))
		cr_skip_test("no inline system call for this architecture in kbt-sessions");
	int first = 0, second = 0;
	cr_assert_eq(sscanf(out, "first %d\nsecond %d", &first, &second), 2, "%s", out);
	char want[32], gone[32];
	snprintf(want, sizeof want, "127.0.0.1:%d", second);
	snprintf(gone, sizeof gone, "127.0.0.1:%d", first);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "effect", "cut", "peer", gone, NULL), 0,
		     "no cut names the session that was closed behind kbfault's back");
	cr_assert_eq(kbt_log_count(&l, "effect", "cut", "peer", want, NULL), 1, "the connection there is the one cut");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A child made by a raw clone() was never counted as holding its
 * parent's connections: its close of its copy of a session ends nothing,
 * and cuts nothing the parent holds. */
Test(sessions, a_raw_clone_child_ends_none_of_its_parents_sessions)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "clonesession", NULL };
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 1\n  miscount 1\n";

	cr_assert_eq(kbt_run(argv, kbt_under(recipe), true, 10000, &out, &err), 0, "%s %s", out, err);
	cr_assert_str_eq(out, "second open\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "effect", "cut", NULL), 0, "no session ended, none was cut");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* More sessions at once than the tree's table holds (4,096): one past it
 * counts as a session that came and went at once - and what it does to
 * the count can make the model cut, as any session's end can. */
Test(sessions, sessions_beyond_the_table_still_move_the_model, .timeout = 60)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "overflow", "4200", NULL };
	const char *recipe = "rule gateway\n  on accept\n  action sessions\n  count 10\n  slots 0\n";

	cr_assert_eq(kbt_run(argv, kbt_under(recipe), true, 50000, &out, &err), 0, "%s %s", out, err);
	if (strstr(out, "unsupported"))
		cr_skip_test("cannot raise the descriptor limit to 8,464");
	cr_assert_str_eq(out, "held 4200\n");
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_geq(kbt_log_count(&l, "effect", "cut", "call", "accept", NULL), 1,
		      "the count went below zero while the sessions were admitted: a cut");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A connection held by many processes (a parent that forked a dozen
 * children while it held it), all of them killed: the link ends when the
 * last one is found gone, however many there were, and the node cannot
 * re-join (Q238009). */
Test(sessions, a_link_held_by_a_dozen_processes_ends_when_they_die, .timeout = 30)
{
	char *out, *err, env_recipe[700], env_log[720], dir[700];
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "holders", "12", NULL };

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=q238009-rejoin-fails-until-restart");
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	snprintf(dir, sizeof dir, "KBFAULT_RECIPE_DIR=%s/recipes", getenv("KB_SRC") ? getenv("KB_SRC") : ".");
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, env_log, dir, NULL }, true, 20000, &out, &err), 0,
		     "%s %s", out, err);
	cr_assert_str_eq(out, "second refused\n");
	free(out);
	free(err);
}

/* One thread accepts and keeps every connection while another forks
 * helpers that close what they inherited: a connection accepted while a
 * fork is under way reaches the child uncounted, and the child's close of
 * that copy must end nothing - no connection of this server ever ends,
 * so no peer may be marked. */
Test(sessions, a_fork_racing_an_accept_ends_no_connection, .timeout = 30)
{
	/* valgrind runs one thread at a time, and forks a few times a second:
	 * the race this looks for needs threads that run side by side */
	kbt_skip_under("valgrind", "valgrind serialises the threads whose race this is");
	char *out, *err, env_recipe[700], env_log[720], dir[700];
	const char *argv[] = { kbt_build("helpers/kbt-sessions"), "forkrace", "1500", NULL };

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=q238009-rejoin-fails-until-restart");
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	snprintf(dir, sizeof dir, "KBFAULT_RECIPE_DIR=%s/recipes", getenv("KB_SRC") ? getenv("KB_SRC") : ".");
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, env_log, dir, NULL }, true, 20000, &out, &err), 0,
		     "%s %s", out, err);
	long accepted = 0, forks = 0;
	cr_assert_eq(sscanf(out, "accepted %ld forks %ld", &accepted, &forks), 2, "%s", out);
	cr_assert_geq(accepted, 20, "%s", out);
	cr_assert_geq(forks, 20, "%s", out);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	size_t marks = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *ev = kb_json_str(&l.line[i], "event"), *via = kb_json_str(&l.line[i], "via");
		/* the process's own exit ends what it held: those marks are due */
		marks += strcmp(ev, "mark") == 0 && !(via && strcmp(via, "exit") == 0);
	}
	cr_assert_eq(marks, 0, "%zu peers marked while every connection was still open", marks);
	kbt_log_free(&l);
	free(out);
	free(err);
}
