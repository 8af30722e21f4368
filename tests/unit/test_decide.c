/* Decisions: filters, counters, "when", file order, and the index. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/decide.h"
#include "kbfault/recipe.h"

static struct kb_recipe recipe;
static struct kb_plan plan;
static struct kb_counter proc_ctr[64], tree_ctr[64];
static uint64_t fake_now;

static uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static const struct kb_clock clk = { fake_clock, NULL };

static void load(const char *text, const char *program)
{
	struct kb_diag d;
	char *copy = strdup(text);
	const char *names[] = { program, NULL };
	memset(proc_ctr, 0, sizeof proc_ctr);
	memset(tree_ctr, 0, sizeof tree_ctr);
	cr_assert_eq(kb_recipe_parse("t.kbf", copy, strlen(copy), NULL, &recipe, &d), 0, "%s", d.msg);
	cr_assert_eq(kb_plan_build(&plan, &recipe, 7, names, proc_ctr, tree_ctr, &d), 0, "%s", d.msg);
	free(copy);
}

static void unload(void)
{
	kb_plan_free(&plan);
	kb_recipe_free(&recipe);
}

static struct kb_addr ip4(const char *s, uint16_t port)
{
	struct kb_addr a = { .family = AF_INET, .port = port };
	inet_pton(AF_INET, s, a.bytes);
	return a;
}

/* The rule that decides a close of an accepted socket, or NULL. */
static const char *close_once(uint16_t lport, const struct kb_addr *peer)
{
	struct kb_event ev = { KB_CALL_CLOSE, KB_ROLE_ACCEPTED, lport, peer };
	struct kb_verdict v[KB_VERDICTS_MAX];
	size_t n = kb_decide(&plan, &ev, &clk, v);
	return n ? v[n - 1].rule->name : NULL;
}

/* Which of hits 1..n fired, as a string of 0/1. */
static char *pattern(int n)
{
	static char out[256];
	for (int i = 0; i < n; i++)
		out[i] = close_once(80, NULL) ? '1' : '0';
	out[n] = '\0';
	return out;
}

Test(decide, nth_after_every_limit)
{
	load("rule r\n on close\n nth 3\n action leak\n", "p");
	cr_assert_str_eq(pattern(6), "001000");
	unload();
	load("rule r\n on close\n after 2\n action leak\n", "p");
	cr_assert_str_eq(pattern(5), "00111");
	unload();
	load("rule r\n on close\n every 3\n action leak\n", "p");
	cr_assert_str_eq(pattern(7), "0010010");
	unload();
	load("rule r\n on close\n after 1\n every 2\n action leak\n", "p");
	cr_assert_str_eq(pattern(7), "0010101");
	unload();
	load("rule r\n on close\n limit 2\n action leak\n", "p");
	cr_assert_str_eq(pattern(5), "11000");
	unload();
}

Test(decide, probability_is_reproducible)
{
	char first[256];
	load("rule r\n on close\n probability 0.3\n action leak\n", "p");
	snprintf(first, sizeof first, "%s", pattern(200));
	unload();
	load("rule r\n on close\n probability 0.3\n action leak\n", "p");
	cr_assert_str_eq(pattern(200), first, "same seed, rule and hits: same decisions");
	int ones = 0;
	for (int i = 0; i < 200; i++)
		ones += first[i] == '1';
	cr_assert(ones > 35 && ones < 85, "about 30%% of 200 should fire, %d did", ones);
	unload();
	/* another rule name draws differently */
	load("rule other\n on close\n probability 0.3\n action leak\n", "p");
	cr_assert_str_neq(pattern(200), first);
	unload();
}

Test(decide, time_window)
{
	load("rule r\n on close\n window 1s..2s\n action leak\n", "p");
	fake_now = 500000000ULL;
	cr_assert_null(close_once(80, NULL));
	fake_now = 1000000000ULL;
	cr_assert_not_null(close_once(80, NULL));
	fake_now = 1999999999ULL;
	cr_assert_not_null(close_once(80, NULL));
	fake_now = 2000000000ULL;
	cr_assert_null(close_once(80, NULL));
	cr_assert_eq(proc_ctr[0].hits, 4, "hits are counted in and out of the window");
	fake_now = 0;
	unload();
}

Test(decide, filters)
{
	load("rule by-port\n on close\n port 8080\n action leak\n"
	     "rule by-range\n on close\n port 9000-9009\n action reset\n"
	     "rule by-peer\n on close\n peer 10.0.0.0/8\n peer-port 5000-5999\n action fail EIO\n",
	     "p");
	struct kb_addr near = ip4("10.1.1.1", 5555), far = ip4("11.1.1.1", 5555), wrongport = ip4("10.1.1.1", 6000);
	cr_assert_str_eq(close_once(8080, NULL), "by-port");
	cr_assert_str_eq(close_once(9005, NULL), "by-range");
	cr_assert_null(close_once(9010, NULL));
	cr_assert_str_eq(close_once(1, &near), "by-peer");
	cr_assert_null(close_once(1, &far));
	cr_assert_null(close_once(1, &wrongport));
	cr_assert_null(close_once(1, NULL), "a peer rule never matches an unknown peer");
	unload();
}

Test(decide, pass_rules_chain_and_file_order_decides)
{
	load("rule slow\n on close\n delay 1ms\n"
	     "rule leak-it\n on close\n action leak\n"
	     "rule never\n on close\n action reset\n",
	     "p");
	struct kb_event ev = { KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 80, NULL };
	struct kb_verdict v[KB_VERDICTS_MAX];
	cr_assert_eq(kb_decide(&plan, &ev, &clk, v), 2);
	cr_assert_str_eq(v[0].rule->name, "slow");
	cr_assert_str_eq(v[1].rule->name, "leak-it");
	cr_assert_eq(v[1].hit, 1);
	cr_assert_eq(proc_ctr[2].hits, 0, "a rule after the deciding one does not count the call");
	unload();
}

Test(decide, index_by_call_role_and_port)
{
	load("rule acc\n on close\n role accepted\n action leak\n"
	     "rule lst\n on close\n role listening\n action leak\n"
	     "rule cap\n on listen\n action backlog 5\n"
	     "rule early\n on accept\n action fail EMFILE\n"
	     "rule late\n on accept\n action fail ECONNABORTED\n"
	     "rule peer-emfile\n on accept\n peer 10.0.0.0/8\n action fail EMFILE\n"
	     "rule out\n on connect\n action refuse\n",
	     "p");
	cr_assert(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_ACCEPTED));
	cr_assert(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_LISTENING));
	cr_assert_not(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_OUTBOUND));
	cr_assert_not(kb_plan_wants(&plan, KB_CALL_SHUTDOWN, KB_ROLE_ACCEPTED));
	cr_assert(kb_plan_wants(&plan, KB_CALL_LISTEN, KB_ROLE_LISTENING));
	cr_assert(kb_plan_wants(&plan, KB_CALL_CONNECT, KB_ROLE_OUTBOUND));
	/* accept: EMFILE keeps the connection queued, so it decides first */
	cr_assert_eq(plan.bucket[KB_CALL_ACCEPT][KB_ROLE_LISTENING].any.n, 1);
	cr_assert_str_eq(plan.bucket[KB_CALL_ACCEPT][KB_ROLE_LISTENING].any.rules[0]->name, "early");
	cr_assert_eq(plan.bucket[KB_CALL_ACCEPT][KB_ROLE_ACCEPTED].any.n, 2, "late, and peer-emfile (needs the peer)");
	cr_assert_eq(plan.track_roles, (1u << KB_ROLE_LISTENING) | (1u << KB_ROLE_ACCEPTED));
	cr_assert_eq(plan.active, 7);
	unload();
}

Test(decide, exact_ports_keep_file_order_with_wildcards)
{
	load("rule any1\n on close\n delay 1ms\n"
	     "rule p80\n on close\n port 80\n delay 1ms\n"
	     "rule any2\n on close\n delay 1ms\n"
	     "rule p81\n on close\n port 81\n delay 1ms\n",
	     "p");
	struct kb_event ev = { KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 80, NULL };
	struct kb_verdict v[KB_VERDICTS_MAX];
	cr_assert_eq(kb_decide(&plan, &ev, &clk, v), 3);
	cr_assert_str_eq(v[0].rule->name, "any1");
	cr_assert_str_eq(v[1].rule->name, "p80");
	cr_assert_str_eq(v[2].rule->name, "any2");
	ev.lport = 82;
	cr_assert_eq(kb_decide(&plan, &ev, &clk, v), 2);
	unload();
}

Test(decide, program_filter_and_disabled_rules)
{
	load("rule mine\n on close\n program nginx\n action leak\n"
	     "rule off\n on close\n enabled no\n action leak\n",
	     "redis-server");
	cr_assert_eq(plan.active, 0);
	cr_assert_not(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_ACCEPTED));
	unload();
	load("rule mine\n on close\n program nginx\n action leak\n", "nginx");
	cr_assert_eq(plan.active, 1);
	unload();
}

Test(decide, tree_counters_are_separate_storage)
{
	load("rule shared\n on close\n counters tree\n nth 2\n action leak\n", "p");
	cr_assert(plan.uses_tree);
	cr_assert_eq(plan.counter[0], &tree_ctr[0]);
	cr_assert_str_eq(pattern(3), "010");
	cr_assert_eq(tree_ctr[0].hits, 3);
	cr_assert_eq(proc_ctr[0].hits, 0);
	unload();
}

Test(decide, ranges_join_in_file_order_only_where_they_cover)
{
	load("rule any1\n on close\n delay 1ms\n"
	     "rule r8000\n on close\n port 8000-8099\n delay 1ms\n"
	     "rule p8050\n on close\n port 8050\n delay 1ms\n"
	     "rule any2\n on close\n delay 1ms\n",
	     "p");
	struct kb_event ev = { KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 8050, NULL };
	struct kb_verdict v[KB_VERDICTS_MAX];
	cr_assert_eq(kb_decide(&plan, &ev, &clk, v), 4);
	cr_assert_str_eq(v[0].rule->name, "any1");
	cr_assert_str_eq(v[1].rule->name, "r8000");
	cr_assert_str_eq(v[2].rule->name, "p8050");
	cr_assert_str_eq(v[3].rule->name, "any2");
	ev.lport = 8100;
	cr_assert_eq(kb_decide(&plan, &ev, &clk, v), 2, "outside the range: only the rules for every port");
	cr_assert_eq(proc_ctr[1].hits, 1, "the range rule was not even counted");
	unload();
}

Test(decide, peer_rules_never_sit_with_listening_sockets)
{
	load("rule peerish\n on close\n peer 10.0.0.0/8\n action leak\n"
	     "rule marked\n on close\n peer-marked yes\n action leak\n",
	     "p");
	cr_assert_not(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_LISTENING), "listeners have no peer");
	cr_assert(kb_plan_wants(&plan, KB_CALL_CLOSE, KB_ROLE_ACCEPTED));
	unload();
}

Test(decide, many_rules_elsewhere_cost_nothing)
{
	/* 64 rules on other ports: the candidate list for port 7 is empty */
	char text[8192] = "";
	size_t u = 0;
	for (int i = 0; i < 64; i++)
		u += (size_t)snprintf(text + u, sizeof text - u, "rule r%d\n on close\n port %d\n action leak\n", i, 1000 + i);
	load(text, "p");
	cr_assert_null(close_once(7, NULL));
	for (int i = 0; i < 64; i++)
		cr_assert_eq(proc_ctr[i].hits, 0);
	cr_assert_str_eq(close_once(1042, NULL), "r42");
	unload();
	/* and 64 rules on port ranges elsewhere */
	u = 0;
	for (int i = 0; i < 64; i++)
		u += (size_t)snprintf(text + u, sizeof text - u, "rule r%d\n on close\n port %d-%d\n action leak\n", i,
				      1000 + 10 * i, 1009 + 10 * i);
	load(text, "p");
	cr_assert_null(close_once(7, NULL));
	for (int i = 0; i < 64; i++)
		cr_assert_eq(proc_ctr[i].hits, 0, "range rule %d was not looked at", i);
	cr_assert_str_eq(close_once(1425, NULL), "r42");
	unload();
}

/* What a listener on a given port can be spared: rules for every port,
 * an exact port and a range apply where they say, and nowhere else. */
Test(decide, which_rules_can_apply_to_a_port)
{
	load("rule exact\n on close\n role accepted\n port 8080\n action leak\n"
	     "rule range\n on accept\n port 9000-9010\n action reset\n"
	     "rule all\n on shutdown\n role accepted\n action leak\n",
	     "p");
	cr_assert(kb_plan_applies_to_port(&plan, KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 8080));
	cr_assert_not(kb_plan_applies_to_port(&plan, KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 8081));
	cr_assert(kb_plan_applies_to_port(&plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, 9000));
	cr_assert(kb_plan_applies_to_port(&plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, 9010));
	cr_assert_not(kb_plan_applies_to_port(&plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, 9011));
	cr_assert_not(kb_plan_applies_to_port(&plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, 8080));
	cr_assert(kb_plan_applies_to_port(&plan, KB_CALL_SHUTDOWN, KB_ROLE_ACCEPTED, 1));
	cr_assert(kb_plan_applies_to_port(&plan, KB_CALL_SHUTDOWN, KB_ROLE_ACCEPTED, 65535));
	cr_assert_not(kb_plan_applies_to_port(&plan, KB_CALL_LISTEN, KB_ROLE_LISTENING, 8080), "no listen rule");
	unload();
}

/* Close an accepted socket as the close hook does: the bucket's tally
 * first, then kb_decide_from() where the tally stopped. Returns the
 * deciding rule's name or NULL; *quick tells whether the tally alone
 * decided. */
static const char *close_tallied(bool *quick)
{
	const struct kb_tally *t = &plan.tally[KB_CALL_CLOSE][KB_ROLE_ACCEPTED];
	struct kb_event ev = { KB_CALL_CLOSE, KB_ROLE_ACCEPTED, 80, NULL };
	struct kb_verdict v[KB_VERDICTS_MAX];
	uint32_t counted = kb_tally(t);

	*quick = kb_tally_done(t, counted);
	if (*quick)
		return NULL;
	size_t n = kb_decide_from(&plan, &ev, &clk, v, counted);
	return n ? v[n - 1].rule->name : NULL;
}

/* The tally is a shortcut, not a second model: for every kind of "when"
 * it takes part in, calls through it decide exactly what kb_decide()
 * decides, and leave the same hit counts behind. */
Test(decide, a_tally_decides_what_the_rules_decide)
{
	static const char *const recipes[] = {
		"rule r\n on close\n nth 5\n action leak\n",
		"rule r\n on close\n nth 1\n action leak\n",
		"rule r\n on close\n nth 40\n action leak\n",
		"rule r\n on close\n after 5\n window 0s..1h\n action leak\n",
		"rule r\n on close\n after 4\n action leak\n",
		"rule r\n on close\n after 2\n every 5\n action leak\n",
		"rule r\n on close\n every 4\n limit 2\n action leak\n",
		"rule r\n on close\n after 3\n probability 0.5\n action reset\n",
		"rule r\n on close\n port 0-65535\n nth 9\n action leak\n",
		"rule a\n on close\n nth 4\n delay 1ms\nrule b\n on close\n nth 6\n action leak\n",
		"rule a\n on close\n nth 4\n action reset\nrule b\n on close\n every 4\n action leak\n",
		"rule a\n on close\n nth 30\n action reset\nrule b\n on close\n after 10\n every 7\n action leak\n",
	};
	for (size_t k = 0; k < sizeof recipes / sizeof *recipes; k++) {
		char want[64], got[64];
		uint64_t want_hits[2], quick_calls = 0;

		load(recipes[k], "p");
		for (int i = 0; i < 40; i++) {
			const char *r = close_once(80, NULL);
			want[i] = r ? r[0] : '.';
		}
		want[40] = '\0';
		want_hits[0] = proc_ctr[0].hits;
		want_hits[1] = proc_ctr[1].hits;
		unload();

		load(recipes[k], "p");
		cr_assert_gt(plan.tally[KB_CALL_CLOSE][KB_ROLE_ACCEPTED].n, 0, "recipe %zu gets a tally", k);
		for (int i = 0; i < 40; i++) {
			bool quick;
			const char *r = close_tallied(&quick);
			got[i] = r ? r[0] : '.';
			quick_calls += quick;
		}
		got[40] = '\0';
		cr_assert_str_eq(got, want, "recipe %zu: same decisions", k);
		cr_assert_eq(proc_ctr[0].hits, want_hits[0], "recipe %zu: same hits on the first rule", k);
		cr_assert_eq(proc_ctr[1].hits, want_hits[1], "recipe %zu: same hits on the second rule", k);
		cr_assert_gt(quick_calls, 0, "recipe %zu: some calls were only counted", k);
		unload();
	}
}

/* Only hit numbers may tell a tally's rules apart: a bucket whose rules
 * look at ports or peers, or has more rules than a tally holds, is left
 * to kb_decide(). */
Test(decide, a_tally_only_where_hit_numbers_decide)
{
	static const struct {
		const char *text;
		uint32_t n;
	} cases[] = {
		{ "rule r\n on close\n nth 3\n action leak\n", 1 },
		{ "rule r\n on close\n port 0-65535\n nth 3\n action leak\n", 1 },
		{ "rule r\n on close\n port 80\n nth 3\n action leak\n", 0 },
		{ "rule r\n on close\n port 80-90\n nth 3\n action leak\n", 0 },
		{ "rule r\n on close\n peer 10.0.0.0/8\n nth 3\n action leak\n", 0 },
		{ "rule r\n on close\n peer-port 1-2\n nth 3\n action leak\n", 0 },
		{ "rule a\n on close\n nth 3\n action leak\nrule b\n on close\n nth 4\n action leak\n", 2 },
		{ "rule a\n on close\n nth 3\n action leak\nrule b\n on close\n nth 4\n action leak\n"
		  "rule c\n on close\n nth 5\n action leak\n",
		  0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		load(cases[k].text, "p");
		cr_assert_eq(plan.tally[KB_CALL_CLOSE][KB_ROLE_ACCEPTED].n, cases[k].n, "case %zu", k);
		cr_assert_eq(plan.tally[KB_CALL_ACCEPT][KB_ROLE_ACCEPTED].n, 0, "case %zu: no accept rules", k);
		unload();
	}
}
