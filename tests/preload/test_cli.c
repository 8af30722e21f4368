/* The kbfault command: run, check, report and list, and their exit codes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

Test(cli, help_and_version)
{
	char *out, *err;
	cr_assert_eq(kbt_kbfault((const char *[]){ "--version", NULL }, &out, &err), 0);
	cr_assert(strncmp(out, "kbfault ", 8) == 0, "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "--help", NULL }, &out, &err), 0);
	cr_assert(strstr(out, "Exit status:"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "help", "run", NULL }, &out, &err), 0);
	cr_assert(strstr(out, "Usage: kbfault run"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "help", "help", NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "Commands:"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "help", "--version", NULL }, &out, &err), 0, "%s", err);
	cr_assert(strncmp(out, "kbfault ", 8) == 0, "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "gate", "--help", NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "Usage: kbfault gate"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "frobnicate", NULL }, &out, &err), 2);
	cr_assert(strstr(err, "unknown command 'frobnicate'"), "%s", err);
}

Test(cli, run_passes_the_command_status_through)
{
	char *out, *err;
	const char *r = kbt_write("ok.kbf", "rule r\n  on listen\n  action backlog 5\n");
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", r, "--", "/bin/sh", "-c", "exit 7", NULL }, &out, &err), 7, "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", r, "--", "/nonexistent/cmd", NULL }, &out, &err), 127);
	cr_assert(strstr(err, "cannot execute /nonexistent/cmd"), "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", r, "--", "/etc/passwd", NULL }, &out, &err), 126);
}

Test(cli, run_arms_the_shim_in_the_command)
{
	char *out, *err, log[600];
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	const char *r = kbt_write("ok.kbf", "set cap 5\nrule r\n  on listen\n  action backlog $cap\n");
	int rc = kbt_kbfault((const char *[]){ "run", "-r", r, "-l", log, "--seed", "9", "--set", "cap=4", "--",
					   kbt_build("helpers/kbt-probe"), "listen", "100", NULL },
			 &out, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "backlog 4\n"), "%s", out);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbt-probe", "seed", "9", "params", "cap=4", NULL), 1);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "backlog", "4", NULL), 1);
	kbt_log_free(&l);
}

Test(cli, run_refuses_bad_input_with_125)
{
	char *out, *err;
	const char *bad = kbt_write("bad.kbf", "rule r\n  on listen\n  action backlog lots\n");
	char want[700];
	snprintf(want, sizeof want, "kbfault: %s:3:18: expected a backlog from 0 to 65535, got 'lots'", bad);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", bad, "--", "/bin/true", NULL }, &out, &err), 125);
	cr_assert(strstr(err, want), "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "--", "/bin/true", NULL }, &out, &err), 125);
	cr_assert(strstr(err, "no recipe"), "%s", err);
	const char *ok = kbt_write("ok.kbf", "rule r\n  on listen\n  action backlog 5\n");
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", ok, "--seed", "x", "--", "/bin/true", NULL }, &out, &err), 125);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", ok, "--set", "nope=1", "--", "/bin/true", NULL }, &out, &err), 125);
	cr_assert(strstr(err, "no such parameter"), "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", ok, "-l", "/nonexistent/dir/log", "--", "/bin/true", NULL }, &out, &err), 125);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", ok, NULL }, &out, &err), 125);
	cr_assert(strstr(err, "no command"), "%s", err);
}

Test(cli, check_says_where)
{
	char *out, *err;
	const char *good = kbt_write("good.kbf", "about \"fine\"\nrule r\n  on close\n  role accepted\n  action leak\n");
	const char *bad = kbt_write("bad.kbf", "rule r\n  on close\n  every often\n  action leak\n");
	cr_assert_eq(kbt_kbfault((const char *[]){ "check", good, NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, ": ok: recipe good, 1 rule"), "%s", out);
	cr_assert(strstr(out, "close of accepted sockets"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "check", good, bad, NULL }, &out, &err), 1);
	char want[700];
	snprintf(want, sizeof want, "%s:3:9: expected a whole number of at least 1, got 'often'", bad);
	cr_assert(strstr(err, want), "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "check", NULL }, &out, &err), 2);
	cr_assert_eq(kbt_kbfault((const char *[]){ "check", "--bogus", good, NULL }, &out, &err), 2);
}

Test(cli, report_tables_and_json)
{
	char *out, *err;
	const char *log = kbt_write("log",
				    "{\"event\":\"start\",\"pid\":5,\"ppid\":1,\"program\":\"srv\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n"
				    "{\"event\":\"inject\",\"pid\":5,\"rule\":\"keep\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.5}\n"
				    "{\"event\":\"inject\",\"pid\":5,\"rule\":\"keep\",\"call\":\"close\",\"action\":\"leak\",\"t\":0.7}\n");
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", log, NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "injections: 2"), "%s", out);
	cr_assert(strstr(out, "keep"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", "--json", log, NULL }, &out, &err), 0);
	struct kb_json_obj o;
	cr_assert_eq(kb_json_flat_parse(out, &o, NULL, NULL), 0, "--json prints one JSON object: %s", out);
	cr_assert_str_eq(kb_json_str(&o, "injections"), "2");
	cr_assert(strstr(out, "\"by_rule\":{\"keep\":2}"), "%s", out);

	const char *broken = kbt_write("broken", "{\"event\":\"start\",\"pid\":5}\nnot json\n");
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", broken, NULL }, &out, &err), 1);
	char want[700];
	snprintf(want, sizeof want, "%s:2:1: not a JSON object", broken);
	cr_assert(strstr(err, want), "%s", err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", "/nonexistent/log", NULL }, &out, &err), 1);
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", NULL }, &out, &err), 2);
}

Test(cli, list_shows_bundled_recipes)
{
	char *out, *err;
	cr_assert_eq(kbt_kbfault((const char *[]){ "list", NULL }, &out, &err), 0, "%s%s", out, err);
	cr_assert(strstr(out, "demo"), "%s", out);
	cr_assert_eq(kbt_kbfault((const char *[]){ "list", "--json", NULL }, &out, &err), 0);
	struct kb_json_obj o;
	cr_assert_eq(kb_json_flat_parse(strtok(out, "\n"), &o, NULL, NULL), 0, "%s", out);
	cr_assert_not_null(kb_json_get(&o, "about"));
}

/* A rule that can never fire is said at check and at start-up (run,
 * gate), on standard error, and stops nothing. */
Test(cli, check_run_and_gate_warn_of_a_rule_that_cannot_fire)
{
	char *out, *err, want[900];
	const char *r = kbt_write("w.kbf", "rule to-redis\n  on connect\n  port 6379\n  action fail ECONNREFUSED\n");
	snprintf(want, sizeof want, "%s:1: warning: rule 'to-redis' will hardly fire: on connect, `port` is the local port", r);
	cr_assert_eq(kbt_kbfault((const char *[]){ "check", "-q", r, NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(err, want), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", r, "-l", kbt_logpath(), "--", "/bin/true", NULL }, &out, &err),
		     0, "%s", err);
	cr_assert(strstr(err, want), "%s", err);
	free(out);
	free(err);
	kbt_kbfault((const char *[]){ "gate", "-r", r, "--server", "exec sleep 5", "--ready", "tcp:127.0.0.1:1", "--probe",
				   "true", "--timeout", "1", NULL },
		    &out, &err);
	cr_assert(strstr(err, want), "%s", err);
	free(out);
	free(err);
}

/* A log that cannot be read gets an error and no summary: an empty one
 * would pass for a run in which nothing was injected. */
Test(cli, report_of_a_missing_log_prints_no_summary)
{
	char *out, *err;
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", "/nonexistent/kb.log", NULL }, &out, &err), 1);
	cr_assert(strstr(err, "report: /nonexistent/kb.log: No such file or directory"), "%s", err);
	cr_assert_str_eq(out, "", "no summary: %s", out);
	free(out);
	free(err);
}

/* A refusal of kbfault run is in the log too, as the library's own
 * errors are: a CI job that keeps only the log sees why nothing ran. */
Test(cli, run_writes_its_refusal_into_the_log)
{
	char *out, *err;
	const char *log = kbt_logpath();
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", "demo", "--set", "evry=2", "-l", log, "--", "/bin/true",
						   NULL },
				 &out, &err),
		     125);
	free(out);
	free(err);
	cr_assert_eq(kbt_kbfault((const char *[]){ "run", "-r", "demo", "-l", log, "--", "/sbin/ldconfig", NULL }, &out, &err),
		     125);
	free(out);
	free(err);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(l.n, 2, "two lines, each a whole JSON object");
	cr_assert(strstr(kb_json_str(&l.line[0], "message"), "--set sets 'evry', but this recipe has no such parameter"),
		  "%s", kb_json_str(&l.line[0], "message"));
	cr_assert_str_eq(kb_json_str(&l.line[0], "event"), "error");
	cr_assert_str_eq(kb_json_str(&l.line[0], "program"), "kbfault");
	cr_assert(strstr(kb_json_str(&l.line[1], "message"), "not starting /sbin/ldconfig"), "%s",
		  kb_json_str(&l.line[1], "message"));
	kbt_log_free(&l);
	cr_assert_eq(kbt_kbfault((const char *[]){ "report", log, NULL }, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "error: /"), "report shows it: %s", out);
	free(out);
	free(err);
}

/* The name `kbfault list` shows (a recipe's `recipe NAME` line) is one
 * that -r, check and KBFAULT_RECIPE find, whatever the file is called. */
Test(cli, a_recipe_is_found_by_the_name_list_shows)
{
	char *out, *err, dir[700], env_dir[720];
	snprintf(dir, sizeof dir, "%s/mine", kbt_tmpdir());
	mkdir(dir, 0755);
	char file[800];
	snprintf(file, sizeof file, "%s/flaky.kbf", dir);
	kbt_write_path(file, "recipe flaky-accepts\nabout \"half the accepts reset\"\nrule r\n  on listen\n  action backlog 3\n");
	snprintf(env_dir, sizeof env_dir, "KBFAULT_RECIPE_DIR=%s", dir);
	const char *list[] = { kbt_build("kbfault"), "list", NULL };
	cr_assert_eq(kbt_run(list, (const char *[]){ env_dir, NULL }, false, 10000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "flaky-accepts"), "%s", out);
	free(out);
	free(err);
	const char *check[] = { kbt_build("kbfault"), "check", "-q", "flaky-accepts", NULL };
	cr_assert_eq(kbt_run(check, (const char *[]){ env_dir, NULL }, false, 10000, &out, &err), 0, "%s", err);
	free(out);
	free(err);
	char env_recipe[64] = "KBFAULT_RECIPE=flaky-accepts", env_log[700];
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	const char *probe[] = { kbt_build("helpers/kbt-probe"), "listen", "100", NULL };
	cr_assert_eq(kbt_run(probe, (const char *[]){ env_dir, env_recipe, env_log, NULL }, true, 10000, &out, &err), 0,
		     "%s", err);
	cr_assert(strstr(out, "backlog 3\n"), "the library found it by that name too: %s", out);
	free(out);
	free(err);
}
