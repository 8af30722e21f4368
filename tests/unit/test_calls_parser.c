/*
 * The recipe reader's limits, kept honest: rules that a call could never
 * reach, parameter names and lines that are too long, columns, and the
 * parameter list that `kbfault run` hands to the library.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/decide.h"
#include "kbfault/recipe.h"
#include "kbfault/stanza.h"
#include "recipe_text.h"

static void accepted(const char *text)
{
	struct kb_recipe r;
	cr_assert_eq(kbt_parse(text, NULL, &r), 0, "%s\n%s", kbt_message, text);
	kb_recipe_free(&r);
}

/* n pass rules (delays) on `calls`, then `last`. */
static char *passes_then(int n, const char *calls, const char *last)
{
	static char text[8192];
	size_t used = 0;
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "rule p%d\n  on %s\n  delay 1ms\n", i + 1, calls);
	snprintf(text + used, sizeof text - used, "%s", last);
	return text;
}

/* ---- 18: at most KB_VERDICTS_MAX rules fire on one call ---------------- */

Test(calls_parser, an_action_after_seven_pass_rules_fires)
{
	struct kb_recipe r;
	struct kb_plan plan;
	struct kb_counter ctr[16];
	struct kb_diag d;
	const char *names[] = { "p", NULL };
	char *text = strdup(passes_then(KB_VERDICTS_MAX - 1, "accept", "rule last\n  on accept\n  action fail ECONNABORTED\n"));

	memset(ctr, 0, sizeof ctr);
	cr_assert_eq(kb_recipe_parse("t.kbf", text, strlen(text), NULL, &r, &d), 0, "%s", d.msg);
	cr_assert_eq(kb_plan_build(&plan, &r, 0, names, ctr, NULL, &d), 0, "%s", d.msg);
	struct kb_event ev = { KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, 80, NULL };
	struct kb_verdict v[KB_VERDICTS_MAX];
	size_t n = kb_decide(&plan, &ev, NULL, v);
	cr_assert_eq(n, KB_VERDICTS_MAX);
	cr_assert_str_eq(v[n - 1].rule->name, "last");
	kb_plan_free(&plan);
	kb_recipe_free(&r);
	free(text);
}

Test(calls_parser, a_rule_after_eight_pass_rules_is_refused)
{
	kbt_refused(passes_then(8, "accept", "rule never\n  on accept\n  action fail ECONNABORTED\n"), "t.kbf:25:1: ",
		    "rule 'never'");
	cr_assert(strstr(kbt_message, "8 pass rules"), "%s", kbt_message);
	cr_assert(strstr(kbt_message, "at most 8"), "the limit: %s", kbt_message);
	/* a ninth pass rule would never run its delay either */
	kbt_refused(passes_then(8, "connect", "rule ninth\n  on connect\n  delay 2ms\n"), "t.kbf:25:1: ", "rule 'ninth'");
	/* indented: the column of `rule` */
	kbt_refused(passes_then(8, "close", "  rule never\n  on close\n  action leak\n"), "t.kbf:25:3: ", "rule 'never'");
}

Test(calls_parser, pass_rules_that_cannot_fire_together_do_not_count)
{
	/* another call */
	accepted(passes_then(8, "connect", "rule x\n  on accept\n  action fail ECONNABORTED\n"));
	/* a disabled pass rule never fires */
	accepted(passes_then(7, "accept", "rule off\n  on accept\n  delay 1ms\n  enabled no\n"
					  "rule x\n  on accept\n  action fail ECONNABORTED\n"));
	/* close rules for other roles, and ports no range shares */
	accepted(passes_then(8, "close\n  role outbound", "rule x\n  on close\n  role accepted\n  action leak\n"));
	accepted(passes_then(8, "close\n  port 80", "rule x\n  on close\n  port 81-90\n  action leak\n"));
	kbt_refused(passes_then(8, "close\n  port 85", "rule x\n  on close\n  port 81-90\n  action leak\n"), "t.kbf:",
		    "rule 'x'");
	/* an accept rule that decides before the connection is taken is not
	 * in the pass rules' phase */
	accepted(passes_then(8, "accept", "rule x\n  on accept\n  action fail EMFILE\n"));
	/* a close rule for listening sockets, and pass rules about peers
	 * (which a listener has none of) */
	accepted(passes_then(8, "close\n  peer 10.0.0.0/8", "rule x\n  on close\n  role listening\n  action fail EIO\n"));
}

/* ---- over-long $names --------------------------------------------------- */

Test(calls_parser, a_parameter_name_over_the_limit_is_refused)
{
	char name[KB_NAME_MAX + 8], text[1024];
	memset(name, 'a', KB_NAME_MAX - 1);
	name[KB_NAME_MAX - 1] = '\0';
	/* a parameter with the longest name there can be, and a reference one
	 * letter longer: not the same name */
	snprintf(text, sizeof text, "set %s 5\nrule r\n  on close\n  nth $%sb\n  action leak\n", name, name);
	kbt_refused(text, "t.kbf:4:7: ", "longer than 63");
	snprintf(text, sizeof text, "set %s 5\nrule r\n  on close\n  nth ${%sbc}\n  action leak\n", name, name);
	kbt_refused(text, "t.kbf:4:7: ", "longer than 63");
	snprintf(text, sizeof text, "set %s 5\nrule r\n  on close\n  nth $%s\n  action leak\n", name, name);
	accepted(text);
}

/* ---- lines and columns -------------------------------------------------- */

static void line_of(char *text, size_t bytes, const char *tail)
{
	memset(text, 'a', bytes);
	strcpy(text + bytes, tail);
}

Test(calls_parser, the_line_limit_counts_every_byte)
{
	static char text[KB_LINE_MAX + 64];
	struct kb_diag d;
	/* a comment of 4,095 bytes and a four-byte character: 4,099 bytes */
	text[0] = '#';
	line_of(text + 1, KB_LINE_MAX - 2, "\xf0\x9f\x98\x80\n");
	cr_assert_eq(strlen(text), KB_LINE_MAX + 4);
	cr_assert_lt(kb_text_check("t.kbf", text, strlen(text), &d), 0, "4,099 bytes pass");
	cr_assert(strstr(d.msg, "longer than 4096 bytes"), "%s", d.msg);
	cr_assert_eq(d.col, KB_LINE_MAX, "at the character that crosses it: %u", d.col);
	/* exactly the limit, with either line end */
	text[0] = '#';
	line_of(text + 1, KB_LINE_MAX - 1, "\n");
	cr_assert_eq(kb_text_check("t.kbf", text, strlen(text), &d), 0, "%s", d.msg);
	line_of(text + 1, KB_LINE_MAX - 1, "\r\n");
	cr_assert_eq(kb_text_check("t.kbf", text, strlen(text), &d), 0, "a CR before the LF is the line's end: %s", d.msg);
	line_of(text + 1, KB_LINE_MAX - 4, "\xc3\xa9\xc3\xa9\n");
	cr_assert_lt(kb_text_check("t.kbf", text, strlen(text), &d), 0, "4,097 bytes");
}

Test(calls_parser, columns_count_characters_everywhere)
{
	struct kb_diag d;
	/* the encoding check: the control byte is the 4th character, the 6th byte */
	const char *bad = "a\xc3\xa9\xc3\xa9\x01\n";
	cr_assert_lt(kb_text_check("t.kbf", bad, strlen(bad), &d), 0);
	cr_assert_eq(d.col, 4, "%u", d.col);
	/* a token after two-byte characters */
	kbt_refused("rule r\n  on close\n  program \xc3\xa9 a/b\n  action leak\n", "t.kbf:3:13: ", "a/b");
	/* an escape error inside a quoted value */
	kbt_refused("about \"\xc3\xa9\xc3\xa9\\x\"\nrule r\n  on close\n  action leak\n", "t.kbf:1:10: ", "unknown escape");
	/* a parameter in a quoted value, after escapes and a two-byte one */
	kbt_refused("about \"\\\"\xc3\xa9$nope\"\nrule r\n  on close\n  action leak\n", "t.kbf:1:11: ",
		    "unknown parameter 'nope'");
	kbt_refused("about \"\\\"\\\\$nope\"\nrule r\n  on close\n  action leak\n", "t.kbf:1:12: ",
		    "unknown parameter 'nope'");
}

/* ---- the parameter list `kbfault run` hands to the library -------------- */

Test(calls_parser, overrides_survive_the_environment)
{
	static const char *const values[] = { "two words", "a,b", "tab\there", "quote \" and \\ backslash", "", "=" };
	struct kb_overrides ov, back;
	struct kb_diag d;
	char list[4096];

	kb_overrides_init(&ov, "--set");
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char item[300];
		snprintf(item, sizeof item, "p%zu=%s", i, values[i]);
		cr_assert_eq(kb_overrides_add(&ov, item, &d), 0, "%s", d.msg);
	}
	cr_assert_eq(kb_overrides_format(&ov, list, sizeof list), 0);
	kb_overrides_init(&back, "KBFAULT_SET");
	cr_assert_eq(kb_overrides_add_list(&back, list, &d), 0, "%s: %s", list, d.msg);
	cr_assert_eq(back.n, ov.n, "%s", list);
	for (size_t i = 0; i < ov.n; i++) {
		cr_assert_str_eq(back.item[i].name, ov.item[i].name);
		cr_assert_str_eq(back.item[i].value, ov.item[i].value, "%s", list);
	}
	/* and the plain form people write by hand still reads as before */
	kb_overrides_init(&back, "KBFAULT_SET");
	cr_assert_eq(kb_overrides_add_list(&back, "every=3, port=80 from=1s", &d), 0, "%s", d.msg);
	cr_assert_eq(back.n, 3);
	cr_assert_str_eq(back.item[1].value, "80");
	/* an unterminated quote is an error, not a value */
	cr_assert_lt(kb_overrides_add_list(&back, "note=\"two words", &d), 0);
	cr_assert(strstr(d.msg, "quote"), "%s", d.msg);
}
