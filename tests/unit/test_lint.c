/* Rules that parse but can never fire as written get a warning, each at
 * its rule's line, saying why and what was likely meant; rules that can
 * fire get none. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/lint.h"
#include "recipe_text.h"

/* The warnings of a recipe given as text, one per line, "" for none. */
static const char *lint(const char *text)
{
	static char all[4096];
	struct kb_recipe r;
	struct kb_diag w[KB_LINT_MAX];
	size_t used = 0;
	cr_assert_eq(kbt_parse(text, NULL, &r), 0, "%s", kbt_message);
	size_t n = kb_recipe_lint(&r, w, KB_LINT_MAX);
	all[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char msg[1024];
		kb_diag_format(&w[i], msg, sizeof msg);
		kb_append(all, sizeof all, &used, "%s\n", msg);
	}
	kb_recipe_free(&r);
	return all;
}

Test(lint, port_on_connect_is_the_local_port)
{
	cr_assert_str_eq(lint("rule r\n  on connect\n  port 6379\n  action fail ECONNREFUSED\n"),
			 "t.kbf:1: warning: rule 'r' will hardly fire: on connect, `port` is the local port, an ephemeral "
			 "one the kernel picks (unless the program binds it); for the server's port write `peer-port "
			 "6379`\n");
	cr_assert(strstr(lint("rule r\n  on connect close\n  port 80-89\n  action fail EINTR\n"),
			 "write `peer-port 80-89`"));
	cr_assert_str_eq(lint("rule r\n  on connect\n  peer-port 6379\n  action fail ECONNREFUSED\n"), "");
	cr_assert_str_eq(lint("rule r\n  on accept\n  port 6379\n  action reset\n"), "", "a listener's port is its own");
}

Test(lint, peer_marked_needs_a_rule_that_marks)
{
	cr_assert(strstr(lint("rule r\n  on accept\n  peer-marked yes\n  action reset\n"),
			 "t.kbf:1: warning: rule 'r' never fires: `peer-marked yes` matches only peers that a "
			 "`mark-peer` rule remembered, and no rule of this recipe has `mark-peer`"));
	cr_assert_str_eq(lint("rule m\n  on close\n  role accepted\n  mark-peer\n"
			      "rule r\n  on accept\n  peer-marked yes\n  action reset\n"),
			 "");
	cr_assert_str_eq(lint("rule r\n  on accept\n  peer-marked no\n  action reset\n"), "");
}

Test(lint, a_listener_has_no_peer)
{
	cr_assert(strstr(lint("rule r\n  on close\n  role listening\n  peer 10.0.0.0/8\n  action leak\n"),
			 "rule 'r' never fires: it closes only listening sockets, which have no peer, and asks for one"));
	cr_assert_str_eq(lint("rule r\n  on close\n  role listening accepted\n  peer 10.0.0.0/8\n  action leak\n"), "");
}

Test(lint, a_rule_behind_one_that_decides_every_call)
{
	cr_assert_str_eq(lint("rule a\n  on accept\n  action reset\nrule b\n  on accept\n  action fail ECONNABORTED\n"),
			 "t.kbf:4: warning: rule 'b' never fires: rule 'a' (line 1) before it acts on every call this one "
			 "is on, and the first rule that acts decides the call\n");
	/* a count, a filter, a pass, a stall or a disabled rule leaves later rules their turn */
	const char *fine[] = {
		"rule a\n  on accept\n  nth 2\n  action reset\n",
		"rule a\n  on accept\n  port 80\n  action reset\n",
		"rule a\n  on accept\n  probability 0.5\n  action reset\n",
		"rule a\n  on accept\n  delay 1ms\n",
		"rule a\n  on accept\n  action stall 1s\n",
		"rule a\n  on accept\n  enabled no\n  action reset\n",
		"rule a\n  on close\n  action leak\n",
	};
	for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
		char text[512];
		snprintf(text, sizeof text, "%srule b\n  on accept\n  action fail ECONNABORTED\n", fine[i]);
		cr_assert_str_eq(lint(text), "", "%s", text);
	}
}

Test(lint, the_bundled_recipes_have_no_warnings)
{
	const char *names[] = { "demo", "q124737-session-count-miscounted", "q181350-backlog-of-five",
				"q236565-connections-not-released", "q238009-rejoin-fails-client",
				"q238009-rejoin-fails-until-restart", "q298486-stops-at-1024" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char path[4200];
		struct kb_recipe r;
		struct kb_diag d, w[KB_LINT_MAX];
		snprintf(path, sizeof path, "%s/recipes/%s.kbf", getenv("KB_SRC") ? getenv("KB_SRC") : ".", names[i]);
		cr_assert_eq(kb_recipe_load(path, NULL, &r, &d), 0, "%s: %s", path, d.msg);
		cr_assert_eq(kb_recipe_lint(&r, w, KB_LINT_MAX), 0, "%s: %s", names[i], w[0].msg);
		kb_recipe_free(&r);
	}
}
