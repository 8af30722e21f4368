/* Behaviours that a review found untested: bugs planted in them survived
 * the whole suite. Each test here fails under the planted bug it is named
 * for in tests/mutants/core.mut, which `make mutants` checks. The hosts
 * are modes of tests/helpers/kbt-kills. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* kbt-kills MODE [ARGS] under `recipe`, logging to a file of its own;
 * returns its standard output and leaves the log's path in log. */
static char *under(const char *recipe, const char *log_name, char *log, size_t log_size,
		   const char *const *argv)
{
	char env_recipe[700], env_log[720], *out, *err;

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", recipe));
	snprintf(log, log_size, "%s/%s", kbt_tmpdir(), log_name);
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", log);
	int rc = kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 30000, &out, &err);
	cr_assert_eq(rc, 0, "kbt-kills %s exited %d: %s%s", argv[1], rc, out, err);
	free(err);
	return out;
}

/* The fast path of close() sends a descriptor the shim kept open to the
 * slow path, which answers for it. Under `nth 1` the second close is not
 * a hit the rule is due on, so if only the rule were asked, the tally
 * would count it and hand it to libc: the connection would be released
 * after all, and the host told it had closed a descriptor it had already
 * closed. */
Test(kills, a_second_close_of_a_leaked_connection_is_ebadf_under_nth_1)
{
	char log[600];
	const char *argv[] = { kbt_build("helpers/kbt-kills"), "leaked-twice", NULL };
	char *out = under("rule keep-first\n  on close\n  role accepted\n  nth 1\n  action leak\n", "log", log,
			  sizeof log, argv);

	cr_assert_str_eq(out, "close ok\nagain EBADF\npeer open\n",
			 "the first close is swallowed; the second is of a closed descriptor, and the peer never "
			 "sees the end");
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "keep-first", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "keep-first", "hit", "1", "action", "leak", NULL), 1);
	kbt_log_free(&l);
	free(out);
}

/* A dup2() copy of a session is the same connection, not another session:
 * closing the copy neither ends the session nor counts it. With count 1
 * and miscount 1, each admission leaves the count at 1 and each end of a
 * session takes one off: so the count reaches zero only when A itself
 * ends, and then B, the one session left, is cut. Had closing the copy
 * ended A, the count would have reached zero then, and A would have been
 * cut when B was admitted. */
Test(kills, closing_a_dup2_copy_of_a_session_does_not_end_it)
{
	char log[600];
	const char *argv[] = { kbt_build("helpers/kbt-kills"), "dup-session", NULL };
	char *out = under("rule gateway\n  on accept\n  action sessions\n  count 1\n  miscount 1\n", "log", log,
			  sizeof log, argv);

	cr_assert_str_eq(out, "close copy ok\nafter B: none\nclose A ok\nafter closing A: B\nA eof\n", "%s", out);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "effect", "cut", NULL), 1, "one cut: B's, when A ended");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "effect", "cut", "call", "close", "count", "0", NULL), 1);
	kbt_log_free(&l);
	free(out);
}

/* The session cut is the oldest active one: the one furthest into its
 * conversation. Sessions A and B are admitted, A ends, then C (on A's old
 * descriptor number, so the lowest), D and E (the highest): E's admission
 * brings the count (6, miscount 2) to zero, and B - neither the lowest
 * nor the highest number, nor the newest - must be the one cut. */
Test(kills, the_session_cut_is_the_oldest)
{
	char log[600], want[64];
	const char *argv[] = { kbt_build("helpers/kbt-kills"), "cut-order", NULL };
	char *out = under("rule gateway\n  on accept\n  action sessions\n  count 6\n  miscount 2\n", "log", log,
			  sizeof log, argv);

	int fd[5];
	const char *fds = strstr(out, "fds ");
	cr_assert_not_null(fds, "%s", out);
	cr_assert_eq(sscanf(fds, "fds %d %d %d %d %d", &fd[0], &fd[1], &fd[2], &fd[3], &fd[4]), 5, "%s", out);
	cr_assert(fd[2] == fd[0] && fd[2] < fd[1] && fd[1] < fd[3] && fd[3] < fd[4],
		  "C reuses A's number, below B's; D and E are above: %s", out);
	cr_assert(strstr(out, "reset B\n"), "B's client sees its session cut, and only B's: %s", out);

	/* and the log names B's connection */
	const char *b = strstr(out, "B 127.0.0.1:");
	cr_assert_not_null(b, "%s", out);
	snprintf(want, sizeof want, "%.*s", (int)strcspn(b + 2, "\n"), b + 2);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "effect", "cut", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "effect", "cut", "peer", want, "count", "0", NULL), 1,
		     "the cut line is B's (%s)", want);
	kbt_log_free(&l);
	free(out);
}

/* Programs that each open the log themselves - exec'd, not forked, so
 * each has its own open file description - write at the end of the file
 * whoever else writes: 8 of them at once, 300 lines each, and none lost
 * or torn (kbt_log_read fails on a torn line). */
Test(kills, programs_opening_the_log_themselves_lose_no_line, .timeout = 120)
{
	char log[600];
	const char *argv[] = { kbt_build("helpers/kbt-kills"), "appenders", "8", "300", NULL };
	char *out = under("rule cap\n  on listen\n  action backlog 2\n", "log", log, sizeof log, argv);

	cr_assert_str_eq(out, "appenders done\n");
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-kills", "fork", "false", NULL), 1 + 8,
		     "the parent and each program it started");
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "cap", NULL), 8 * 300, "every line, whole");
	kbt_log_free(&l);
	free(out);
}
