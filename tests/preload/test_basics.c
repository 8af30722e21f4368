/* Pass-through, errno discipline, bad configuration. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char leak_recipe[] = "rule leak\n  on close shutdown\n  role accepted\n  action leak\n";

Test(basics, no_recipe_is_pure_pass_through)
{
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "77", NULL };
	int rc = kbt_run(argv, (const char *[]){ "KBFAULT_LOG=/dev/full", NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_assert(strstr(out, "backlog 77"), "%s", out);
	cr_assert_str_eq(err, "", "nothing is said without a recipe: %s", err);
}

Test(basics, errno_is_preserved_when_armed)
{
	char *out, *err, env_recipe[600], env_log[600];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", leak_recipe));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s/log", kbt_tmpdir());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "errno", NULL };
	int rc = kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_assert(strstr(out, "errno-ok"), "%s", out);
}

/* The same under rules that watch every connection and never fire: each
 * accept and close is only counted (decide.h: kb_tally). */
Test(basics, errno_is_preserved_on_counted_calls)
{
	char *out, *err, env_recipe[600], env_log[600];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s",
		 kbt_write("r.kbf", "rule watch-accept\n  on accept\n  nth 1000000\n  action reset\n"
				    "rule watch-close\n  on close shutdown\n  role accepted\n  nth 1000000\n"
				    "  action leak\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s/log", kbt_tmpdir());
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "errno", NULL };
	int rc = kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_assert(strstr(out, "errno-ok"), "%s", out);
}

/* Under valgrind, valgrind's launcher is started with the program's
 * environment and loads the shim first: it, not the program, refuses or
 * warns. What these tests check about which process says what cannot hold
 * there; the parsing behind it runs under memcheck in the unit tests. */
static void skip_under_valgrind(void)
{
	kbt_skip_under("valgrind", "valgrind's launcher loads the shim before the program does");
}

/* Runs the probe with env; expects it refused before main with exit 125
 * and `needle` on stderr. */
static void refused(const char *const *env, const char *needle)
{
	skip_under_valgrind();
	char *out, *err;
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "5", NULL };
	int rc = kbt_run(argv, env, true, 5000, &out, &err);
	cr_assert_eq(rc, 125, "exit %d, out=%s err=%s", rc, out, err);
	cr_assert_str_eq(out, "", "main() must not have run: %s", out);
	cr_assert(strstr(err, needle), "expected '%s' in: %s", needle, err);
	cr_assert(strstr(err, "kbfault: not starting kbt-probe"), "%s", err);
}

Test(basics, a_broken_recipe_stops_the_host_before_main)
{
	char env[600];
	const char *path = kbt_write("bad.kbf", "rule r\n  on close\n  action fial\n");
	char needle[700];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", path);
	snprintf(needle, sizeof needle, "kbfault: %s:3:10: unknown action 'fial' (did you mean 'fail'?", path);
	refused((const char *[]){ env, NULL }, needle);
}

Test(basics, the_error_is_in_the_log_too)
{
	char env[600], env_log[700], log[600];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("bad.kbf", "rule r\n  on nothing\n"));
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", log);
	refused((const char *[]){ env, env_log, NULL }, "unknown call 'nothing'");
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(kbt_log_count(&l, "event", "error", NULL), 1);
	cr_assert(strstr(kb_json_str(&l.line[0], "message"), "bad.kbf:2:6:"), "%s", kb_json_str(&l.line[0], "message"));
	kbt_log_free(&l);
}

Test(basics, missing_unreadable_and_directory_recipes)
{
	refused((const char *[]){ "KBFAULT_RECIPE=/nonexistent/r.kbf", NULL }, "/nonexistent/r.kbf: cannot open: No such file");
	refused((const char *[]){ "KBFAULT_RECIPE=/tmp/", NULL }, "/tmp/: is a directory");
	refused((const char *[]){ "KBFAULT_RECIPE=no-such-bundled-name", NULL },
		"no recipe file or bundled recipe named 'no-such-bundled-name'");
}

Test(basics, bad_environment_values)
{
	char env[600];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("ok.kbf", "set n 3\n" "rule r\n  on close\n  every $n\n  action leak\n"));
	refused((const char *[]){ env, "KBFAULT_SEED=12x", NULL }, "KBFAULT_SEED: expected a whole number");
	refused((const char *[]){ env, "KBFAULT_SET=m=2", NULL }, "KBFAULT_SET sets 'm', but this recipe has no such parameter (it has: n)");
	refused((const char *[]){ env, "KBFAULT_SET=n=x", NULL }, ":4:9: expected a whole number of at least 1, got 'x' (from parameter 'n', set to 'x' by KBFAULT_SET)");
	refused((const char *[]){ env, "KBFAULT_RECIPES=oops", NULL }, "unknown environment variable KBFAULT_RECIPES");
}

Test(basics, an_unwritable_log_warns_once_and_the_host_runs)
{
	skip_under_valgrind();
	char *out, *err, env[600];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", "rule cap\n  on listen\n  action backlog 3\n"));
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "50", NULL };
	int rc = kbt_run(argv, (const char *[]){ env, "KBFAULT_LOG=/nonexistent/dir/log", NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "backlog 3"), "the fault still happens: %s", out);
	cr_assert(strstr(err, "kbfault: warning: cannot open the injection log /nonexistent/dir/log"), "%s", err);
	rc = kbt_run(argv, (const char *[]){ env, "KBFAULT_LOG=/dev/full", NULL }, true, 5000, &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(err, "kbfault: warning: cannot write the injection log /dev/full"), "%s", err);
	cr_assert_null(strstr(strstr(err, "cannot write") + 1, "cannot write"), "warned once only: %s", err);
}

Test(basics, log_defaults_to_stderr)
{
	char *out, *err, env[600];
	snprintf(env, sizeof env, "KBFAULT_RECIPE=%s", kbt_write("cap.kbf", "rule cap\n  on listen\n  action backlog 3\n"));
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "listen", "50", NULL };
	cr_assert_eq(kbt_run(argv, (const char *[]){ env, NULL }, true, 5000, &out, &err), 0);
	cr_assert(strstr(err, "{\"event\":\"start\""), "%s", err);
	cr_assert(strstr(err, "\"event\":\"inject\""), "%s", err);
	cr_assert(strstr(err, "\"requested\":50,\"backlog\":3"), "%s", err);
}
