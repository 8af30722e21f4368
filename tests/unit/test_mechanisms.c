/* The state behind the knowledge-base recipes: peer marks, the session
 * arithmetic, and the recipe keys that drive them. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/marks.h"
#include "kbfault/recipe.h"
#include "kbfault/sessions.h"

static uint64_t clock_now;

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return clock_now;
}

/* kb_marks_has at a given time */
static bool marked_at(const struct kb_marks *m, const struct kb_addr *a, uint64_t t)
{
	clock_now = t;
	return kb_marks_has(m, a, fake_now, NULL);
}

static struct kb_addr ip(const char *s)
{
	struct kb_addr a = { .family = AF_INET, .port = 1234 };
	inet_pton(AF_INET, s, a.bytes);
	return a;
}

Test(marks, set_expire_and_refresh)
{
	static struct kb_marks m; /* zeroed: no marks */
	struct kb_addr a = ip("127.0.0.2"), b = ip("127.0.0.3");

	cr_assert_not(marked_at(&m, &a, 0));
	cr_assert(kb_marks_set(&m, &a, 1000));
	cr_assert(marked_at(&m, &a, 999));
	cr_assert_not(marked_at(&m, &a, 1000), "a mark ends at its time");
	cr_assert_not(marked_at(&m, &b, 0), "other peers are unaffected");
	a.port = 9999;
	cr_assert(marked_at(&m, &a, 500), "a node is its address, not a port");
	cr_assert(kb_marks_set(&m, &a, UINT64_MAX));
	cr_assert(marked_at(&m, &a, 1ULL << 62), "marked again: for ever");
	cr_assert(kb_marks_set(&m, &a, 10));
	cr_assert(marked_at(&m, &a, 1ULL << 62), "a shorter mark never shortens a longer one");
}

Test(marks, table_fills_up_and_says_so)
{
	struct kb_marks *m = calloc(1, sizeof *m);
	char s[32];
	for (int i = 0; i < KB_MARKS_MAX; i++) {
		snprintf(s, sizeof s, "10.%d.%d.1", i / 256, i % 256);
		struct kb_addr a = ip(s);
		cr_assert(kb_marks_set(m, &a, UINT64_MAX), "mark %d", i);
	}
	struct kb_addr extra = ip("11.0.0.1"), first = ip("10.0.0.1");
	cr_assert_not(kb_marks_set(m, &extra, UINT64_MAX), "full: the caller is told");
	cr_assert(marked_at(m, &first, 0));
	cr_assert_not(marked_at(m, &extra, 0));
	free(m);
}

static struct kb_rule gateway(int64_t count, uint64_t slots)
{
	struct kb_rule r;
	memset(&r, 0, sizeof r);
	r.action = KB_ACT_SESSIONS;
	r.sess_count = count;
	r.sess_miscount = 1;
	r.sess_slots = slots;
	return r;
}

Test(sessions, the_count_drifts_down_per_session)
{
	struct kb_rule r = gateway(3, 0);
	struct kb_counter c;
	memset(&c, 0, sizeof c);

	/* each session: +1 on accept, -1 for the request (the bug), -1 on close */
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(kb_sessions_admit(&c, &r), 3 - (i - 1));
		cr_assert_eq(kb_sessions_release(&c, &r, false), 3 - i);
	}
	cr_assert_eq(kb_sessions_count(&c, &r), 0);
	cr_assert_not(kb_sessions_must_cut(&c, &r), "zero, but no session is active");
	kb_sessions_admit(&c, &r);
	kb_sessions_admit(&c, &r);
	cr_assert(kb_sessions_must_cut(&c, &r), "zero while sessions are active");
	kb_sessions_cut(&c);
	kb_sessions_cut(&c);
	cr_assert_not(kb_sessions_must_cut(&c, &r), "cut sessions are not active");
	cr_assert_eq(kb_sessions_release(&c, &r, true), -1, "their release still counts down");
	cr_assert_eq(c.sess_active, 0);
}

Test(sessions, slots_run_out)
{
	struct kb_rule r = gateway(10, 3);
	struct kb_counter c;
	bool refused;
	memset(&c, 0, sizeof c);
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(kb_sessions_attempt(&c, &r, &refused), (uint64_t)i);
		cr_assert_not(refused);
	}
	cr_assert_eq(kb_sessions_attempt(&c, &r, &refused), 4);
	cr_assert(refused, "the 4th of 3 slots");
	r.sess_slots = 0;
	kb_sessions_attempt(&c, &r, &refused);
	cr_assert_not(refused, "0 slots: no limit");
}

static int parse(const char *text, struct kb_recipe *r, char *msg, size_t len)
{
	struct kb_diag d;
	char *copy = strdup(text);
	int rc = kb_recipe_parse("m.kbf", copy, strlen(copy), NULL, r, &d);
	if (rc < 0)
		kb_diag_format(&d, msg, len);
	free(copy);
	return rc;
}

Test(recipe_keys, queue_sessions_marks_from)
{
	struct kb_recipe r;
	char msg[1024] = "";
	cr_assert_eq(parse("rule q\n on listen\n action queue 5 refuse\n"
			   "rule s\n on accept\n action sessions\n count -2\n slots 60\n leak 4096\n"
			   "rule m\n on close\n role accepted\n peer-marked no\n mark-peer 30s\n"
			   "rule n\n on accept\n peer-marked yes\n from 1024\n action reset\n",
			   &r, msg, sizeof msg),
		     0, "%s", msg);
	cr_assert_eq(r.rules[0].action, KB_ACT_QUEUE);
	cr_assert_eq(r.rules[0].backlog, 5);
	cr_assert_eq(r.rules[0].queue_mode, KB_QUEUE_REFUSE);
	cr_assert_eq(r.rules[1].sess_count, -2);
	cr_assert_eq(r.rules[1].sess_miscount, 1, "the article's bug by default");
	cr_assert_eq(r.rules[1].sess_slots, 60);
	cr_assert_eq(r.rules[1].sess_leak, 4096);
	cr_assert_eq(r.rules[2].action, KB_ACT_PASS, "a mark alone needs no action");
	cr_assert(r.rules[2].mark_peer);
	cr_assert_eq(r.rules[2].mark_ns, 30000000000ULL);
	cr_assert_eq(r.rules[2].peer_marked, KB_MARKED_NO);
	cr_assert_eq(r.rules[3].after, 1023, "from N is after N-1");
	cr_assert_eq(r.rules[3].peer_marked, KB_MARKED_YES);
	kb_recipe_free(&r);
}

Test(recipe_keys, their_mistakes)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "rule q\n on listen\n action queue 5\n", "m.kbf:3:16: 'queue' needs a length and hang, reset or refuse" },
		{ "rule q\n on listen\n action queue 0 hang\n", "m.kbf:3:15: expected a queue length from 1 to 1024" },
		{ "rule q\n on listen\n action queue 5 drop\n", "m.kbf:3:17: unknown queue mode 'drop'" },
		{ "rule q\n on accept\n action queue 5 hang\n", "does not apply to accept" },
		{ "rule s\n on close\n action sessions\n", "does not apply to close" },
		{ "rule s\n on accept\n slots 5\n action reset\n", "m.kbf:3:2: `slots` belongs to `action sessions`" },
		{ "rule s\n on accept\n action sessions\n leak lots\n", "m.kbf:4:7: expected a number of bytes" },
		{ "rule m\n on listen\n peer-marked yes\n action backlog 5\n", "a listening socket has no peer" },
		{ "rule m\n on close\n mark-peer soon\n", "m.kbf:3:12: expected a duration" },
		{ "rule f\n on accept\n from 0\n action reset\n", "m.kbf:3:7: expected a whole number of at least 1" },
		{ "rule f\n on accept\n from 5\n after 2\n action reset\n", "`from N` is `after N-1`" },
		{ "rule p\n on close\n", "a rule with only `delay` or `mark-peer` needs none" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kb_recipe r;
		char msg[1024] = "";
		cr_assert_lt(parse(cases[i].text, &r, msg, sizeof msg), 0, "accepted: %s", cases[i].text);
		cr_assert(strstr(msg, cases[i].want), "expected '%s' in '%s'", cases[i].want, msg);
	}
}

Test(recipe_keys, every_bundled_recipe_parses)
{
	/* the unit tests run from the source tree (make unit) */
	DIR *d = opendir("recipes");
	struct dirent *e;
	int seen = 0;
	cr_assert_not_null(d, "run from the source tree");
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".kbf") != 0)
			continue;
		char path[600], msg[1024];
		struct kb_recipe r;
		struct kb_diag diag;
		snprintf(path, sizeof path, "recipes/%s", e->d_name);
		int rc = kb_recipe_load(path, NULL, &r, &diag);
		if (rc < 0)
			kb_diag_format(&diag, msg, sizeof msg);
		cr_assert_eq(rc, 0, "%s", rc < 0 ? msg : "");
		cr_assert_neq(r.about[0], '\0', "%s has an about line", path);
		cr_assert_eq(strncmp(e->d_name, r.name, strlen(r.name)), 0, "%s is named after its file", path);
		kb_recipe_free(&r);
		seen++;
	}
	closedir(d);
	cr_assert_geq(seen, 7, "the demo and the six knowledge-base recipes");
}
