/*
 * What `kbfault check` and `kbfault run` say about recipes and parameters
 * must be what the library then does: a rule check lists can fire, and a
 * --set that run accepts reaches every process as it was given.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

Test(calls_cli, check_refuses_a_rule_no_call_can_reach)
{
	char text[4096], *out, *err;
	size_t used = 0;
	for (int i = 1; i <= 8; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "rule slow%d\n  on accept\n  delay %dms\n", i, i);
	snprintf(text + used, sizeof text - used, "rule drop\n  on accept\n  action reset\n");
	const char *r = kbt_write("nine.kbf", text);
	int rc = kbt_kbfault((const char *[]){ "check", r, NULL }, &out, &err);
	cr_assert_eq(rc, 1, "check says the recipe is not valid (rc %d): %s%s", rc, out, err);
	char where[700];
	snprintf(where, sizeof where, "%s:25:1: ", r);
	cr_assert(strstr(err, where), "FILE:LINE:COL of the rule: %s", err);
	cr_assert(strstr(err, "rule 'drop'") && strstr(err, "at most 8"), "the rule and the limit: %s", err);
	cr_assert_null(strstr(out, "drop"), "and it is not listed as a rule that applies: %s", out);
}

Test(calls_cli, run_hands_set_values_over_as_given)
{
	char *out, *err, log[600];
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	const char *r = kbt_write("note.kbf", "set note none\nset cap 9\nabout \"$note\"\nrule r\n  on listen\n  action backlog $cap\n");
	int rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", log, "--set", "note=two words, and \"more\"", "--set",
					   "cap=4", "--", kbt_build("helpers/kbt-probe"), "listen", "100", NULL },
			 &out, &err);
	cr_assert_eq(rc, 0, "what run accepted, the library takes (rc %d): %s", rc, err);
	cr_assert(strstr(out, "backlog 4\n"), "%s", out);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", NULL), 1);
	kbt_log_free(&l);
}

Test(calls_cli, run_refuses_what_the_library_would_refuse)
{
	char *out, *err;
	const char *r = kbt_write("note.kbf", "set note none\nrule r\n  on listen\n  action backlog 5\n");
	/* a value longer than the library keeps */
	char big[400];
	memset(big, 'x', sizeof big);
	memcpy(big, "note=", 5);
	big[sizeof big - 1] = '\0';
	int rc = kbt_kbfault((const char *[]){ "run", "-r", r, "--set", big, "--", "/bin/true", NULL }, &out, &err);
	cr_assert_eq(rc, 125, "%s", err);
	cr_assert(strstr(err, "too long"), "%s", err);
}
