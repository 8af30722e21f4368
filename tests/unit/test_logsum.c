/* Summing an injection log, as `kbfault report` does. */
#include <criterion/criterion.h>
#include <string.h>

#include "logsum.h"

Test(logsum, counts_per_rule_call_action_and_pid)
{
	struct kb_logsum s;
	char why[256];
	const char *lines[] = {
		"{\"event\":\"start\",\"pid\":10,\"ppid\":1,\"program\":\"srv\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"a\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.1}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"a\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.2}\n",
		"{\"event\":\"inject\",\"pid\":11,\"rule\":\"a\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.3}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"b\",\"call\":\"accept\",\"action\":\"reset\",\"t\":0.4}\n",
		"{\"event\":\"stall-end\",\"pid\":10}\n",
		"{\"event\":\"error\",\"message\":\"bad\"}\n",
		"{\"event\":\"future-thing\"}\n",
		"\n",
	};
	memset(&s, 0, sizeof s);
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		cr_assert_eq(kb_logsum_add(&s, lines[i], why, sizeof why), 0, "%s", why);
	cr_assert_eq(s.injections, 4);
	cr_assert_eq(s.nrows, 3);
	cr_assert_eq(s.nprocs, 1);
	cr_assert_eq(s.stall_ends, 1);
	cr_assert_eq(s.nerrors, 1);
	cr_assert_eq(kb_logsum_rule_total(&s, "a"), 3);
	cr_assert_eq(kb_logsum_rule_total(&s, "b"), 1);
	cr_assert_eq(s.rows[0].count, 2);
	cr_assert_str_eq(s.rows[0].first_t, "0.1");
	cr_assert_str_eq(s.rows[0].last_t, "0.2");
	kb_logsum_free(&s);
}

/* A rule that fired and changed nothing ("effect":"none") is counted
 * apart: not an injection, in no rule's total, its reason kept; a line
 * of an older log, with no effect, still counts. */
Test(logsum, a_noop_is_not_an_injection)
{
	struct kb_logsum s;
	char why[256];
	const char *lines[] = {
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"cap\",\"call\":\"listen\",\"action\":\"queue\","
		"\"effect\":\"none\",\"reason\":\"asked for 5\",\"t\":0.1}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"cap\",\"call\":\"listen\",\"action\":\"queue\","
		"\"effect\":\"none\",\"reason\":\"asked for 4\",\"t\":0.2}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"cap\",\"call\":\"listen\",\"action\":\"queue\","
		"\"effect\":\"capped\",\"t\":0.3}\n",
		"{\"event\":\"inject\",\"pid\":10,\"rule\":\"old\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.4}\n",
	};
	memset(&s, 0, sizeof s);
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		cr_assert_eq(kb_logsum_add(&s, lines[i], why, sizeof why), 0, "%s", why);
	cr_assert_eq(s.injections, 2);
	cr_assert_eq(s.noops, 2);
	cr_assert_eq(kb_logsum_rule_total(&s, "cap"), 1);
	cr_assert_eq(kb_logsum_rule_total(&s, "old"), 1);
	cr_assert_str_eq(s.noop_rule, "cap");
	cr_assert_str_eq(s.noop_reason, "asked for 5", "the first no-op's reason");
	kb_logsum_free(&s);
}

Test(logsum, refuses_what_is_not_a_log_line)
{
	struct kb_logsum s;
	char why[256];
	memset(&s, 0, sizeof s);
	/* a line of ours cut short is skipped and counted apart (test_logread.c) */
	cr_assert_eq(kb_logsum_add(&s, "{\"event\":\"inject\",\"pid\":1,\"rule\":\"a\",\"call\":\"cl", why, sizeof why),
		     KB_LOGSUM_TORN);
	cr_assert(strstr(why, "cut short"), "%s", why);
	cr_assert_lt(kb_logsum_add(&s, "[1,2]", why, sizeof why), 0);
	cr_assert(strstr(why, "not a JSON object"), "%s", why);
	cr_assert_lt(kb_logsum_add(&s, "{\"x\":1}", why, sizeof why), 0);
	cr_assert(strstr(why, "no \"event\""), "%s", why);
	cr_assert_lt(kb_logsum_add(&s, "{\"event\":\"inject\",\"pid\":1}", why, sizeof why), 0);
	cr_assert_eq(s.malformed, 3);
	cr_assert_eq(s.injections, 0);
	kb_logsum_free(&s);
}
