/* The recipe parser: what it understands, and exactly where it says no. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbfault/recipe.h"
#include "recipe_text.h"

Test(recipe, a_full_rule)
{
	struct kb_recipe r;
	int rc = kbt_parse("# comment\n"
		           "recipe demo\n"
		           "about \"a demo\" recipe\n"
		           "seed 42\n"
		           "rule slow-accept\n"
		           "  on accept4\n"
		           "  port 8080\n"
		           "  peer 127.0.0.0/8 ::1\n"
		           "  peer 10.0.0.1\n"
		           "  peer-port 1000-2000\n"
		           "  program nginx redis-server\n"
		           "  every 3\n"
		           "  after 2\n"
		           "  probability 50%\n"
		           "  limit 10\n"
		           "  window 1s..1m\n"
		           "  counters tree\n"
		           "  delay 250ms\n"
		           "  action fail ECONNABORTED\n",
		           NULL, &r);
	cr_assert_eq(rc, 0, "%s", kbt_message);
	cr_assert_str_eq(r.name, "demo");
	cr_assert_str_eq(r.about, "a demo recipe");
	cr_assert(r.has_seed);
	cr_assert_eq(r.seed, 42);
	cr_assert_eq(r.nrules, 1);
	const struct kb_rule *x = &r.rules[0];
	cr_assert_str_eq(x->name, "slow-accept");
	cr_assert_eq(x->line, 5);
	cr_assert_eq(x->calls, 1u << KB_CALL_ACCEPT);
	cr_assert(x->has_port && x->port.lo == 8080 && x->port.hi == 8080);
	cr_assert_eq(x->npeers, 3);
	cr_assert_eq(x->peers[1].family, AF_INET6);
	cr_assert(x->has_peer_port && x->peer_port.lo == 1000 && x->peer_port.hi == 2000);
	cr_assert_eq(x->nprograms, 2);
	cr_assert_str_eq(x->programs[1], "redis-server");
	cr_assert_eq(x->every, 3);
	cr_assert_eq(x->after, 2);
	cr_assert_eq(x->chance, 1ULL << 63);
	cr_assert_eq(x->limit, 10);
	cr_assert(x->has_window && x->window_from_ns == 1000000000ULL && x->window_to_ns == 60000000000ULL);
	cr_assert_eq(x->scope, KB_SCOPE_TREE);
	cr_assert_eq(x->delay_ns, 250000000ULL);
	cr_assert_eq(x->action, KB_ACT_FAIL);
	cr_assert_eq(x->err, ECONNABORTED);
	kb_recipe_free(&r);
}

Test(recipe, defaults)
{
	struct kb_recipe r;
	cr_assert_eq(kbt_parse("rule a\n on close\n action leak\nrule b\n on listen\n delay 1s\n", NULL, &r), 0,
		     "%s", kbt_message);
	cr_assert_str_eq(r.name, "t", "the name defaults to the file name without .kbf");
	cr_assert_not(r.has_seed);
	const struct kb_rule *a = &r.rules[0];
	cr_assert(a->enabled);
	cr_assert_eq(a->chance, UINT64_MAX);
	cr_assert_eq(a->roles, 0);
	cr_assert_eq(a->scope, KB_SCOPE_PROCESS);
	cr_assert_eq(r.rules[1].action, KB_ACT_PASS, "a delay alone is a pass with a delay");
	cr_assert_eq(r.rules[1].index, 1);
	kb_recipe_free(&r);
}

Test(recipe, actions_and_their_values)
{
	struct kb_recipe r;
	cr_assert_eq(kbt_parse("rule a\n on listen\n action backlog 5\n"
			       "rule b\n on accept\n action stall forever\n"
			       "rule c\n on connect\n action stall 1.5s\n"
			       "rule d\n on connect\n action refuse\n"
			       "rule e\n on close shutdown\n role accepted outbound\n action reset\n",
			       NULL, &r),
		     0, "%s", kbt_message);
	cr_assert_eq(r.rules[0].backlog, 5);
	cr_assert_eq(r.rules[1].stall_ns, KB_FOREVER);
	cr_assert_eq(r.rules[2].stall_ns, 1500000000ULL);
	cr_assert_eq(r.rules[3].action, KB_ACT_REFUSE);
	cr_assert_eq(r.rules[4].roles, (1u << KB_ROLE_ACCEPTED) | (1u << KB_ROLE_OUTBOUND));
	kb_recipe_free(&r);
}

Test(recipe, errors_name_line_and_column)
{
	kbt_refused("rule a\n  on close\n  action fial\n", "t.kbf:3:10: ", "did you mean 'fail'?");
	kbt_refused("rule a\n  on clsoe\n  action leak\n", "t.kbf:2:6: ", "unknown call 'clsoe'");
	/* the errno is what is wrong, so its column is the one named */
	kbt_refused("rule a\n  on accept\n  action fail ECONNREFUSED\n", "t.kbf:3:15: ",
		    "accept() cannot fail with ECONNREFUSED");
	kbt_refused("rule a\n  on accept\n  action fail WHATEVER\n", "t.kbf:3:15: ",
		    "unknown errno 'WHATEVER' (expected a name like ECONNREFUSED)");
	kbt_refused("rule a\n  on accept\n  action fail ECONNABORTD\n", "t.kbf:3:15: ",
		    "unknown errno 'ECONNABORTD' (did you mean ECONNABORTED?)");
	kbt_refused("rule a\n  on accept\n  action leak\n", "t.kbf:3:3: ", "does not apply to accept");
	kbt_refused("rule a\n  on close\n", "t.kbf:1:1: ", "no `action` line");
	kbt_refused("rule a\n  action leak\n", "t.kbf:1:1: ", "no `on` line");
	kbt_refused("rule a\n  on close\n  on close\n  action leak\n", "t.kbf:3:3: ", "already set");
	kbt_refused("rule a\n  on close\n  limit 0\n  action leak\n", "t.kbf:3:9: ", "at least 1");
	kbt_refused("rule a\n  on close\n  delay 5\n  action leak\n", "t.kbf:3:9: ", "duration");
	kbt_refused("rule a\n  on close\n  window 5s..1s\n  action leak\n", "t.kbf:3:10: ", "ends before it starts");
	kbt_refused("rule a\n  on connect\n  role accepted\n  action refuse\n", "t.kbf:3:3: ", "close and shutdown only");
	kbt_refused("rule a\n  on listen\n  peer 1.2.3.4\n  action backlog 5\n", "t.kbf:3:3: ", "no peer");
	kbt_refused("rule a\n  on close\n  peer 1.2.3\n  action leak\n", "t.kbf:3:8: ", "IPv4 or IPv6");
	kbt_refused("rule a\n  on close\n  nth 2\n  every 3\n  action leak\n", "t.kbf:3:3: ", "cannot be combined");
	kbt_refused("rule a\n  on listen\n  action backlog\n", "t.kbf:3:17: ", "needs the backlog");
	kbt_refused("rule a\n  on close\n  action leak now\n", "t.kbf:3:15: ", "takes no value");
	kbt_refused("rule a\n  on close\n  colour red\n", "t.kbf:3:3: ", "unknown rule key 'colour'");
	kbt_refused("rule a\n  on close\n  actoin leak\n", "t.kbf:3:3: ", "did you mean 'action'?");
	kbt_refused("rule a b\n", "t.kbf:1:8: ", "expected `rule NAME`");
	kbt_refused("rule a\n on close\n action leak\nrule a\n on close\n action leak\n", "t.kbf:4:6: ",
		    "already defined at line 1");
	kbt_refused("rule a\n on close\n action leak\nseed 3\n", "t.kbf:4:1: ", "before the first rule");
	kbt_refused("bogus 1\n", "t.kbf:1:1: ", "unknown keyword 'bogus'");
	kbt_refused("# nothing\n", "t.kbf:1:1: ", "no rules");
	kbt_refused("rule a\n  on close\n  program /usr/bin/x\n  action leak\n", "t.kbf:3:11: ", "without a directory");
	kbt_refused("rule a\n  on close\n  probability 2\n  action leak\n", "t.kbf:3:15: ", "probability");
}

Test(recipe, parameters_and_overrides)
{
	struct kb_recipe r;
	struct kb_overrides ov;
	struct kb_diag d;

	const char *text = "set backlog 5\nset mode \"x y\"\n"
			   "rule cap\n  on listen\n  action backlog $backlog\n"
			   "rule t\n  on close\n  program ${mode}z\n  action leak\n";
	cr_assert_eq(kbt_parse(text, NULL, &r), 0, "%s", kbt_message);
	cr_assert_eq(r.rules[0].backlog, 5);
	cr_assert_str_eq(r.rules[1].programs[0], "x yz");
	cr_assert_eq(r.nparams, 2);
	kb_recipe_free(&r);

	kb_overrides_init(&ov, "KBFAULT_SET");
	cr_assert_eq(kb_overrides_add_list(&ov, "backlog=1, mode=q", &d), 0);
	cr_assert_eq(kbt_parse(text, &ov, &r), 0, "%s", kbt_message);
	cr_assert_eq(r.rules[0].backlog, 1);
	cr_assert(r.params[0].overridden);
	kb_recipe_free(&r);

	kb_overrides_init(&ov, "KBFAULT_SET");
	kb_overrides_add(&ov, "backlog=lots", &d);
	cr_assert_lt(kbt_parse(text, &ov, &r), 0);
	cr_assert(strstr(kbt_message, "t.kbf:5:18: expected a backlog"), "%s", kbt_message);
	cr_assert(strstr(kbt_message, "from parameter 'backlog', set to 'lots' by KBFAULT_SET"), "%s", kbt_message);

	kb_overrides_init(&ov, "--set");
	kb_overrides_add(&ov, "nope=1", &d);
	cr_assert_lt(kbt_parse(text, &ov, &r), 0);
	cr_assert(strstr(kbt_message, "--set sets 'nope', but this recipe has no such parameter (it has: backlog, mode)"),
		  "%s", kbt_message);

	kbt_refused("rule a\n  on listen\n  action backlog $missing\n", "t.kbf:3:18: ", "unknown parameter 'missing'");
	kbt_refused("set x 1\nset x 2\nrule a\n on close\n action leak\n", "t.kbf:2:5: ", "already set at line 1");
	cr_assert_lt(kb_overrides_add(&ov, "novalue", &d), 0);
	cr_assert(strstr(d.msg, "expected NAME=VALUE"));
}

/* A parameter that is a whole word of a key taking several values is a
 * list, split at blanks; an error in one of its words names the
 * parameter; anywhere else its value stays one word. */
Test(recipe, a_parameter_can_be_a_list)
{
	struct kb_recipe r;
	struct kb_overrides ov;
	struct kb_diag d;
	const char *text = "set nodes \"0.0.0.0/0  ::/0\"\nset calls \"close shutdown\"\n"
			   "rule a\n  on $calls\n  peer $nodes 10.0.0.1\n  program \"$calls\"\n  action leak\n";
	cr_assert_eq(kbt_parse(text, NULL, &r), 0, "%s", kbt_message);
	cr_assert_eq(r.rules[0].npeers, 3, "two from the list, one written");
	cr_assert_eq(r.rules[0].calls, (1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN));
	cr_assert_eq(r.rules[0].nprograms, 1, "in quotes, one word");
	cr_assert_str_eq(r.rules[0].programs[0], "close shutdown");
	kb_recipe_free(&r);

	kb_overrides_init(&ov, "--set");
	cr_assert_eq(kb_overrides_add(&ov, "nodes=10.0.0.0/8 fd00::/8 ::1", &d), 0);
	cr_assert_eq(kbt_parse(text, &ov, &r), 0, "%s", kbt_message);
	cr_assert_eq(r.rules[0].npeers, 4);
	kb_recipe_free(&r);

	kb_overrides_init(&ov, "--set");
	cr_assert_eq(kb_overrides_add(&ov, "nodes=10.0.0.0/8 nonsense", &d), 0);
	cr_assert_lt(kbt_parse(text, &ov, &r), 0);
	cr_assert(strstr(kbt_message, "t.kbf:5:8: expected an IPv4 or IPv6 address or CIDR"), "%s", kbt_message);
	cr_assert(strstr(kbt_message, "got 'nonsense' (from parameter 'nodes', set to '10.0.0.0/8 nonsense' by --set)"),
		  "%s", kbt_message);

	/* a key of one value takes the value whole */
	kbt_refused("set p \"80 81\"\nrule a\n  on close\n  port $p\n  action leak\n", "t.kbf:4:8: ",
		    "expected a port (0-65535) or a range like 8000-8099, got '80 81'");
}

Test(recipe, dollar_escapes)
{
	struct kb_recipe r;
	cr_assert_eq(kbt_parse("about \"costs $$5\"\nrule a\n on close\n action leak\n", NULL, &r), 0, "%s", kbt_message);
	cr_assert_str_eq(r.about, "costs $5");
	kb_recipe_free(&r);
	kbt_refused("about $\nrule a\n on close\n action leak\n", "t.kbf:1:7: ", "parameter name after '$'");
}

Test(recipe, disabled_rules_parse)
{
	struct kb_recipe r;
	cr_assert_eq(kbt_parse("set on no\nrule a\n on close\n enabled $on\n action leak\n", NULL, &r), 0, "%s", kbt_message);
	cr_assert_not(r.rules[0].enabled);
	kb_recipe_free(&r);
}

Test(recipe, load_errors_name_the_file)
{
	struct kb_recipe r;
	struct kb_diag d;
	char buf[2048];
	cr_assert_lt(kb_recipe_load("/nonexistent/x.kbf", NULL, &r, &d), 0);
	kb_diag_format(&d, buf, sizeof buf);
	cr_assert_str_eq(buf, "/nonexistent/x.kbf: cannot open: No such file or directory");
	cr_assert_lt(kb_recipe_load("/tmp", NULL, &r, &d), 0);
	kb_diag_format(&d, buf, sizeof buf);
	cr_assert_str_eq(buf, "/tmp: is a directory, expected a recipe file");
	cr_assert_lt(kb_recipe_load("/dev/null", NULL, &r, &d), 0);
	kb_diag_format(&d, buf, sizeof buf);
	cr_assert_str_eq(buf, "/dev/null: is not a regular file");
}

Test(recipe, a_fifo_is_refused_without_blocking, .timeout = 10)
{
	/* open() of a FIFO with no writer would block for ever: the loader
	 * must say no instead of hanging the host's start-up */
	char path[64];
	struct kb_recipe r;
	struct kb_diag d;
	snprintf(path, sizeof path, "/tmp/kbfifo-%d", (int)getpid());
	unlink(path);
	cr_assert_eq(mkfifo(path, 0600), 0);
	int rc = kb_recipe_load(path, NULL, &r, &d);
	unlink(path);
	cr_assert_lt(rc, 0);
	cr_assert(strstr(d.msg, "not a regular file"), "%s", d.msg);
}

Test(recipe, describe_says_what_was_understood)
{
	struct kb_recipe r;
	char buf[4096];
	cr_assert_eq(kbt_parse("rule a\n on close shutdown\n role accepted\n every 3\n limit 2\n action leak\n", NULL, &r), 0);
	kb_rule_describe(&r.rules[0], buf, sizeof buf);
	cr_assert(strstr(buf, "on    close, shutdown of accepted sockets"), "%s", buf);
	cr_assert(strstr(buf, "every 3rd hit, at most 2 times"), "%s", buf);
	cr_assert(strstr(buf, "keep the socket open"), "%s", buf);
	kb_recipe_free(&r);
}

/* The error examples in recipes/README.md are what the parser says: the
 * recipe shown, then its two mended forms. */
Test(recipe, the_readme_error_examples_are_true)
{
	char path[4200], *doc = NULL;
	size_t cap = 0;
	snprintf(path, sizeof path, "%s/recipes/README.md", getenv("KB_SRC") ? getenv("KB_SRC") : ".");
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	ssize_t n = getdelim(&doc, &cap, '\0', f);
	fclose(f);
	cr_assert_gt(n, 0);
	const char *recipe = "rule slow-accepts\n    on      accept\n    action  fial ECONNREFUSED\n";
	cr_assert(strstr(doc, recipe), "the example recipe is in the README");
	const struct {
		const char *from, *to, *said;
	} cases[] = {
		{ NULL, NULL, "mine.kbf:3:13: unknown action 'fial' (did you mean 'fail'? expected one of: pass, fail, "
			      "backlog, leak, reset, refuse, stall, abort, queue, sessions)" },
		{ "fial ", "fail ", "mine.kbf:3:18: accept() cannot fail with ECONNREFUSED on Linux (it can with: EAGAIN, "
				    "EBADF, ECONNABORTED, " },
		{ "fial ECONNREFUSED", "fail ECONNABORTD", "mine.kbf:3:18: unknown errno 'ECONNABORTD' (did you mean "
							  "ECONNABORTED?)" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256], shown[400];
		struct kb_recipe r;
		struct kb_diag d;
		snprintf(text, sizeof text, "%s", recipe);
		if (cases[i].from) {
			const char *at = strstr(recipe, cases[i].from);
			snprintf(text, sizeof text, "%.*s%s%s", (int)(at - recipe), recipe, cases[i].to,
				 at + strlen(cases[i].from));
		}
		cr_assert_lt(kb_recipe_parse("mine.kbf", text, strlen(text), NULL, &r, &d), 0);
		kb_diag_format(&d, shown, sizeof shown);
		cr_assert(strncmp(shown, cases[i].said, strlen(cases[i].said)) == 0, "the parser says %s", shown);
		/* the README shows it so, cut with "..." where the list goes on */
		char line[400];
		snprintf(line, sizeof line, "%s", cases[i].said);
		cr_assert(strstr(doc, line), "the README shows: %s", line);
	}
	free(doc);
}
