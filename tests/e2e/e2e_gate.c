/* `kbfault gate`, driven as a CI job drives it: a gate that passes, one
 * that fails because the service breaks, one that fails because no fault
 * fired, one whose server dies, bad invocations and suites (exit 2), an
 * interrupted gate that leaves nothing running, suites against nginx and
 * redis, and the JUnit file read back with xmllint. Also the HTML page of
 * `kbfault report --html`. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "servers.h"

/* `kbfault gate ARGS` (a shell fragment) with stdout and stderr together. */
static char *gate(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *gate(int *status, const char *fmt, ...)
{
	char args[8192], cmd[9000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	/* the gates' temporary directories in the test's own, removed with it */
	snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' '%s' gate %s 2>&1", getenv("KB_SRC"), kbt_tmpdir(),
		 kbt_build("kbfault"), args);
	return kbt_sh(cmd, 150000, status);
}

/* An XPath expression's value in an XML file, by xmllint. */
static char *xpath(const char *file, const char *expr)
{
	char cmd[2048];
	int st;
	snprintf(cmd, sizeof cmd, "xmllint --xpath \"%s\" '%s' 2>&1", expr, file);
	char *out = kbt_sh(cmd, 10000, &st);
	cr_assert_eq(st, 0, "xmllint --xpath %s %s: %s", expr, file, out);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

static void xpath_is(const char *file, const char *expr, const char *want)
{
	char *got = xpath(file, expr);
	cr_assert_str_eq(got, want, "%s in %s", expr, file);
	free(got);
}

static const char *path_in_tmp(const char *name)
{
	static char buf[8][1024];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", kbt_tmpdir(), name);
	return buf[k];
}

/* The demo server on port, as a gate's --server. */
static const char *demo_server(int port, const char *extra)
{
	static char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' --port %d %s", kbt_build("kbdemo-server"), port, extra ? extra : "");
	return cmd;
}

static const char *demo_probe(int port, const char *extra)
{
	static char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' --port %d --strict %s", kbt_build("kbdemo-client"), port, extra ? extra : "");
	return cmd;
}

Test(gate, passes_when_the_service_survives_and_faults_fired, .timeout = 120)
{
	int st, port = kbt_free_port();
	/* --junit into a directory that does not exist yet: it is made */
	const char *junit = path_in_tmp("reports/ci/pass.xml"), *out = path_in_tmp("pass");
	char *server = strdup(demo_server(port, NULL));
	char *res = gate(&st,
			 "-r q181350 --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s\" --load \"%s\" "
			 "--timeout 60 --junit '%s' --out '%s'",
			 server, port, demo_probe(port, "--count 40 --concurrency 4"),
			 demo_probe(port, "--count 200 --concurrency 2"), junit, out);
	cr_assert_eq(st, 0, "exit 0 for a gate that passed: %s", res);
	cr_assert(strstr(res, "PASS   q181350 "), "the summary names the verdict and the gate: %s", res);
	cr_assert(strstr(res, "backlog-of-five=1"), "and the injections by rule: %s", res);
	cr_assert(strstr(res, "1 gate: 1 passed, 0 failed, 0 could not run"), "%s", res);

	xpath_is(junit, "count(//testsuite/testcase)", "1");
	xpath_is(junit, "string(//testcase/@name)", "q181350");
	xpath_is(junit, "count(//testcase/failure) + count(//testcase/error)", "0");
	xpath_is(junit, "string(//testsuite/@failures)", "0");
	xpath_is(junit, "string(//property[@name='injections.backlog-of-five']/@value)", "1");
	xpath_is(junit, "string(//property[@name='probe-status']/@value)", "0");
	xpath_is(junit, "string(//property[@name='server-alive']/@value)", "true");
	char *log = xpath(junit, "string(//property[@name='log']/@value)");
	char want[1200];
	snprintf(want, sizeof want, "%s/q181350/kbfault.log", out);
	cr_assert_str_eq(log, want, "the log is kept under --out DIR/NAME");
	char *text = kbt_slurp(log);
	cr_assert(strstr(text, "\"rule\":\"backlog-of-five\""), "and is the shim's log: %s", text);
	char *probe = xpath(junit, "string(//testcase/system-out)");
	cr_assert(strstr(probe, "\"ok\":40"), "system-out holds the probe's output: %s", probe);
	cr_assert_eq(kbt_listening(port), false, "the server was stopped");
	free(probe);
	free(text);
	free(log);
	free(res);
	free(server);
}

Test(gate, fails_when_the_service_breaks, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *junit = path_in_tmp("broken.xml");
	char *server = strdup(demo_server(port, NULL));
	/* the 50th connection stalls the server: what follows goes unanswered */
	char *res = gate(&st,
			 "-r q298486 --set count=50 --name stalls --server \"%s\" --ready tcp:127.0.0.1:%d "
			 "--probe \"%s\" --timeout 60 --junit '%s'",
			 server, port, demo_probe(port, "--count 80 --concurrency 8 --timeout 500"), junit);
	cr_assert_eq(st, 1, "exit 1 for a gate that failed: %s", res);
	cr_assert(strstr(res, "FAIL   stalls "), "%s", res);
	cr_assert(strstr(res, "reason:  the probe failed (exit status 1)"), "the reason is given: %s", res);
	cr_assert_null(strstr(res, "no fault was injected"), "the fault did fire: %s", res);
	xpath_is(junit, "count(//testcase/failure)", "1");
	xpath_is(junit, "string(//testsuite/@failures)", "1");
	xpath_is(junit, "string(//testcase/failure/@message)", "the probe failed (exit status 1)");
	xpath_is(junit, "string(//property[@name='injections.stall-at-count']/@value)", "1");
	cr_assert_eq(kbt_listening(port), false, "the stalled server was stopped");
	free(res);
	free(server);
}

Test(gate, fails_when_no_fault_fired, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *junit = path_in_tmp("vacuous.xml");
	char *server = strdup(demo_server(port, NULL));
	/* the rule is for port 1 only: the probe succeeds, but proves nothing */
	char *res = gate(&st,
			 "-r q181350 --set port=1 --name vacuous --server \"%s\" --ready tcp:127.0.0.1:%d "
			 "--probe \"%s\" --junit '%s'",
			 server, port, demo_probe(port, "--count 5"), junit);
	cr_assert_eq(st, 1, "a gate with no injection fails: %s", res);
	cr_assert(strstr(res, "no fault was injected: 0 injections, at least 1 needed"), "%s", res);
	xpath_is(junit, "string(//property[@name='probe-status']/@value)", "0");
	xpath_is(junit, "string(//property[@name='injections']/@value)", "0");
	char *msg = xpath(junit, "string(//testcase/failure/@message)");
	cr_assert(strstr(msg, "no fault was injected"), "%s", msg);
	free(msg);
	free(res);

	/* and --min-injections raises the bar above what fired */
	res = gate(&st,
		   "-r q181350 --min-injections 2 --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s\"",
		   server, port, demo_probe(port, "--count 5"));
	cr_assert_eq(st, 1, "%s", res);
	cr_assert(strstr(res, "too few faults were injected: 1 injection, at least 2 needed"), "%s", res);
	free(res);
	free(server);
}

/* A cap at or above what the server asks for changes nothing: a server
 * that already listens with a backlog of five, under Q181350's cap of
 * five, has had no fault, and its gate says so rather than passing. */
Test(gate, fails_when_the_fault_changed_nothing, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *junit = path_in_tmp("noop.xml");
	char *server = strdup(demo_server(port, "--backlog 5"));
	char *res = gate(&st, "-r q181350 --name noop --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s\" --junit '%s'",
			 server, port, demo_probe(port, "--count 5"), junit);
	cr_assert_eq(st, 1, "a fault that changed nothing is no injection: %s", res);
	cr_assert(strstr(res, "no fault was injected: 0 injections, at least 1 needed - 1 time a rule fired, the fault "
			      "changed nothing (rule backlog-of-five: the program asked for a backlog of 5, no more "
			      "than the cap of 5)"),
		  "%s", res);
	xpath_is(junit, "string(//property[@name='injections']/@value)", "0");
	xpath_is(junit, "string(//property[@name='no-ops']/@value)", "1");
	free(res);

	/* the same server asking for more is capped: that is a fault */
	free(server);
	server = strdup(demo_server(port, "--backlog 128"));
	res = gate(&st, "-r q181350 --name capped --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s\"", server,
		   port, demo_probe(port, "--count 5"));
	cr_assert_eq(st, 0, "%s", res);
	free(res);
	free(server);
}

/* The issue's own case: python's http.server already asks for five. */
Test(gate, python_http_server_under_a_cap_of_five_changed_nothing, .timeout = 120)
{
	int st, port = kbt_free_port();
	char *res = gate(&st,
			 "-r q181350 --server 'exec python3 -m http.server %d --bind 127.0.0.1' --ready tcp:127.0.0.1:%d "
			 "--probe true",
			 port, port);
	cr_assert_eq(st, 1, "%s", res);
	cr_assert(strstr(res, "the program asked for a backlog of 5, no more than the cap of 5"), "%s", res);
	free(res);
}

/* Evidence measured outside the server: connections never released
 * (Q236565) leave CLOSE-WAIT sockets and descriptors behind, and a gate
 * can require them; a symptom that did not show fails the gate, even
 * though faults were injected and the probe passed. */
Test(gate, expect_requires_the_symptom, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *junit = path_in_tmp("expect.xml");
	char *server = strdup(demo_server(port, NULL)), probe[1024];
	/* the replies come, the end of the stream does not: not --strict */
	snprintf(probe, sizeof probe, "'%s' --port %d --count 10 --timeout 300", kbt_build("kbdemo-client"), port);
	char *res = gate(&st,
			 "-r q236565 --name leaks --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s\" "
			 "--expect 'close-wait >= 10' --expect 'server-fds>=13' --junit '%s'",
			 server, port, probe, junit);
	cr_assert_eq(st, 0, "%s", res);
	cr_assert(strstr(res, "evidence: close-wait 10 (expected close-wait >= 10: met)"), "%s", res);
	cr_assert(strstr(res, "(expected server-fds >= 13: met)"), "%s", res);
	xpath_is(junit, "string(//property[@name='measure.close-wait']/@value)", "10");
	xpath_is(junit, "string(//property[@name='expect.1']/@value)", "close-wait >= 10: met");
	free(res);

	/* nothing leaks without the recipe's fault: the symptom is not seen */
	res = gate(&st,
		   "-r q236565 --set port=1 --min-injections 0 --name no-leak --server \"%s\" --ready tcp:127.0.0.1:%d "
		   "--probe \"%s\" --expect 'close-wait >= 10'",
		   server, port, probe);
	cr_assert_eq(st, 1, "%s", res);
	cr_assert(strstr(res, "the symptom was not seen: close-wait was 0, expected close-wait >= 10"), "%s", res);
	cr_assert(strstr(res, "evidence: close-wait 0 (expected close-wait >= 10: NOT MET)"), "%s", res);
	free(res);
	free(server);
}

/* A burst against a backlog of five overflows the kernel's queue: the
 * kernel's own counter is the evidence (Q181350). */
Test(gate, expect_sees_listen_overflows_under_a_burst, .timeout = 120)
{
	int st, port = kbt_free_port();
	char load[1024];
	char *server = strdup(demo_server(port, "--slow 50"));
	snprintf(load, sizeof load, "'%s' --port %d --count 100 --concurrency 50 --timeout 3000", kbt_build("kbdemo-client"),
		 port);
	char *res = gate(&st,
			 "-r q181350 --server \"%s\" --ready tcp:127.0.0.1:%d --load \"%s\" --probe 'sleep 1' "
			 "--expect 'listen-overflows >= 1' --expect 'recv-q >= 5'",
			 server, port, load);
	cr_assert_eq(st, 0, "%s", res);
	free(res);
	free(server);
}

/* `ready tcp:127.0.0.1:$KBGATE_PORT`: the gate picks a free port, and
 * its commands find it in $KBGATE_PORT and the gate's directory in
 * $KBGATE_DIR - two gates of one suite, each on a port of its own. */
Test(gate, a_suite_with_no_fixed_port, .timeout = 120)
{
	int st;
	char suite[4096];
	const char *out = path_in_tmp("out");
	snprintf(suite, sizeof suite,
		 "gate one\n"
		 "    recipe q236565\n"
		 "    server \"echo $KBGATE_PORT > $KBGATE_DIR/port && exec '%s' --port $KBGATE_PORT\"\n"
		 "    ready  tcp:127.0.0.1:$KBGATE_PORT\n"
		 "    probe  \"'%s' --port $KBGATE_PORT --count 3 --timeout 300\"\n"
		 "gate two\n"
		 "    recipe q236565\n"
		 "    server \"echo $KBGATE_PORT > $KBGATE_DIR/port && exec '%s' --port $KBGATE_PORT\"\n"
		 "    ready  tcp:127.0.0.1:${KBGATE_PORT}\n"
		 "    probe  \"'%s' --port $KBGATE_PORT --count 3 --timeout 300\"\n",
		 kbt_build("kbdemo-server"), kbt_build("kbdemo-client"), kbt_build("kbdemo-server"),
		 kbt_build("kbdemo-client"));
	char *res = gate(&st, "-f '%s' --out '%s'", kbt_write("auto.kbg", suite), out);
	cr_assert_eq(st, 0, "%s", res);
	int ports[2] = { 0, 0 };
	for (int i = 0; i < 2; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s/port", out, i ? "two" : "one");
		FILE *f = fopen(path, "r");
		cr_assert_not_null(f, "each server was told its directory: %s", path);
		cr_assert_eq(fscanf(f, "%d", &ports[i]), 1);
		fclose(f);
		cr_assert_gt(ports[i], 0);
	}
	free(res);
}

/* The summary names the outputs that are there; a --out directory used
 * again keeps nothing of the earlier run (no stale load.out). */
Test(gate, outputs_are_what_this_run_wrote, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *out = path_in_tmp("again");
	char *server = strdup(demo_server(port, NULL)), load_out[1200];
	char *res = gate(&st, "-r q181350 --name g --server \"%s\" --ready tcp:127.0.0.1:%d --load 'echo busy' --probe true "
			      "--out '%s'",
			 server, port, out);
	cr_assert_eq(st, 0, "%s", res);
	cr_assert(strstr(res, "(kbfault.log, server.out, load.out, probe.out)"), "%s", res);
	free(res);
	res = gate(&st, "-r q181350 --name g --server \"%s\" --ready tcp:127.0.0.1:%d --probe true --out '%s'", server,
		   port, out);
	cr_assert_eq(st, 0, "%s", res);
	cr_assert(strstr(res, "(kbfault.log, server.out, probe.out)"), "no load, no load.out: %s", res);
	snprintf(load_out, sizeof load_out, "%s/g/load.out", out);
	cr_assert_neq(access(load_out, F_OK), 0, "the first run's load.out is gone");
	free(res);
	free(server);
}

Test(gate, fails_when_the_server_dies_unless_allowed, .timeout = 120)
{
	int st, port = kbt_free_port();
	char *server = strdup(demo_server(port, NULL));
	/* abort=yes: the 5th connection kills the server. The probe is told
	 * to tolerate that (|| true): only the gate's own judgement counts */
	char *probe = strdup(demo_probe(port, "--count 10 --timeout 500 || true"));
	char *res = gate(&st,
			 "-r q298486 --set count=5 --set abort=yes --server \"%s\" --ready tcp:127.0.0.1:%d "
			 "--probe \"%s\"",
			 server, port, probe);
	cr_assert_eq(st, 1, "%s", res);
	cr_assert(strstr(res, "the server is no longer running (exit status 134)"), "aborted: %s", res);
	free(res);

	res = gate(&st,
		   "-r q298486 --set count=5 --set abort=yes --server-may-exit --server \"%s\" "
		   "--ready tcp:127.0.0.1:%d --probe \"%s\"",
		   server, port, probe);
	cr_assert_eq(st, 0, "--server-may-exit: %s", res);
	cr_assert(strstr(res, "server:  exited during the gate (allowed: --server-may-exit)"), "%s", res);
	free(res);
	free(probe);
	free(server);
}

Test(gate, bad_invocations_exit_2_and_say_why, .timeout = 60)
{
	int st, port = kbt_free_port();
	char *server = strdup(demo_server(port, NULL));
	char *res;

	res = gate(&st, "-r q181350 --server \"%s\" --probe true", server);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "no readiness check (--ready tcp:HOST:PORT)"), "%s", res);
	free(res);

	res = gate(&st, "-r no-such-recipe --server true --ready tcp:127.0.0.1:%d --probe true", port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "no-such-recipe"), "the recipe is named: %s", res);
	free(res);

	res = gate(&st, "-r q181350 --server true --ready 127.0.0.1:%d --probe true", port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "expected tcp:HOST:PORT"), "%s", res);
	free(res);

	res = gate(&st, "-r q181350 --set nosuch=1 --server true --ready tcp:127.0.0.1:%d --probe true", port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "nosuch"), "the parameter is named: %s", res);
	free(res);

	res = gate(&st, "-r q181350 --timeout forever --server true --ready tcp:127.0.0.1:%d --probe true", port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "timeout: expected seconds"), "%s", res);
	free(res);

	/* a JUnit file that cannot be written is found out before any gate runs */
	res = gate(&st, "-r q181350 --server \"%s\" --ready tcp:127.0.0.1:%d --probe true --junit /proc/nonexistent/x.xml",
		   server, port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "--junit /proc/nonexistent/x.xml: cannot write in /proc/nonexistent"), "%s", res);
	cr_assert_null(strstr(res, "RESULT"), "no gate ran: %s", res);
	free(res);

	res = gate(&st, "--bogus");
	cr_assert_eq(st, 2, "%s", res);
	free(res);

	/* a server that never listens is a configuration error, not a failure */
	const char *junit = path_in_tmp("never.xml");
	res = gate(&st, "-r q181350 --name never --server 'sleep 30' --ready tcp:127.0.0.1:%d --probe true "
		   "--timeout 2 --junit '%s'", port, junit);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "ERROR  never "), "%s", res);
	cr_assert(strstr(res, "the server never listened on 127.0.0.1 port"), "%s", res);
	xpath_is(junit, "count(//testcase/error)", "1");
	xpath_is(junit, "string(//testsuite/@errors)", "1");
	free(res);

	/* a port someone else holds would make any server look ready */
	int holder = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(holder, (struct sockaddr *)&in, sizeof in), 0);
	cr_assert_eq(listen(holder, 1), 0);
	res = gate(&st, "-r q181350 --server \"%s\" --ready tcp:127.0.0.1:%d --probe true", server, port);
	close(holder);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "is already listening before the server started"), "%s", res);
	free(res);

	/* nor is one that exits at once */
	res = gate(&st, "-r q181350 --server 'echo cannot start; exit 3' --ready tcp:127.0.0.1:%d --probe true",
		   port);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "the server exited (status 3) before it listened"), "%s", res);
	cr_assert(strstr(res, "cannot start"), "with its last words: %s", res);
	free(res);
	free(server);
}

Test(gate, bad_suites_name_file_line_and_column, .timeout = 60)
{
	int st;
	const char *bad_key = kbt_write("badkey.kbg", "gate a\n    recipe q181350\n    probee true\n");
	char *res = gate(&st, "-f '%s'", bad_key);
	cr_assert_eq(st, 2, "%s", res);
	char want[1200];
	snprintf(want, sizeof want, "%s:3:5: unknown gate key 'probee'", bad_key);
	cr_assert(strstr(res, want), "want %s in: %s", want, res);
	free(res);

	const char *incomplete = kbt_write("incomplete.kbg", "gate a\n    recipe q181350\n    probe true\n");
	res = gate(&st, "-f '%s'", incomplete);
	cr_assert_eq(st, 2, "%s", res);
	snprintf(want, sizeof want, "%s:1: gate 'a': no server command", incomplete);
	cr_assert(strstr(res, want), "want %s in: %s", want, res);
	free(res);

	const char *dup = kbt_write("dup.kbg", "gate a\ngate a\n");
	res = gate(&st, "-f '%s'", dup);
	cr_assert_eq(st, 2, "%s", res);
	snprintf(want, sizeof want, "%s:2:6: gate 'a' is already defined", dup);
	cr_assert(strstr(res, want), "want %s in: %s", want, res);
	free(res);

	res = gate(&st, "-f '%s' --probe true", dup);
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "--probe sets a gate"), "single-gate flags with -f: %s", res);
	free(res);

	res = gate(&st, "-f '%s/nonexistent.kbg'", kbt_tmpdir());
	cr_assert_eq(st, 2, "%s", res);
	cr_assert(strstr(res, "nonexistent.kbg"), "%s", res);
	free(res);
}

/* SIGTERM to a running gate (a CI job cancelled): it stops the server and
 * the probe it started, says so, and exits 2. */
Test(gate, an_interrupted_gate_leaves_nothing_running, .timeout = 60)
{
	int port = kbt_free_port();
	char server[4096], ready[64], pidfile[1024];
	snprintf(pidfile, sizeof pidfile, "%s/server.pid", kbt_tmpdir());
	snprintf(server, sizeof server, "echo $$ > '%s'; exec %s", pidfile, demo_server(port, NULL));
	snprintf(ready, sizeof ready, "tcp:127.0.0.1:%d", port);
	struct kbt_proc p;
	char env_tmpdir[700];
	snprintf(env_tmpdir, sizeof env_tmpdir, "TMPDIR=%s", kbt_tmpdir());
	kbt_spawn(&p, (const char *[]){ kbt_build("kbfault"), "gate", "-r", "q181350", "--server", server, "--ready",
					ready, "--probe", "sleep 61.25", NULL },
		  (const char *[]){ env_tmpdir, NULL }, false);
	for (int i = 0; i < 200 && !kbt_listening(port); i++)
		usleep(25000);
	cr_assert(kbt_listening(port), "the gate started the server");
	usleep(200000);
	char *text = kbt_slurp(pidfile);
	pid_t server_pid = (pid_t)atol(text);
	cr_assert_gt(server_pid, 0);
	kill(p.pid, SIGTERM);
	char *out, *err;
	int st = kbt_wait(&p, 30000, &out, &err);
	cr_assert_eq(st, 2, "exit 2 when interrupted: %s %s", out, err);
	cr_assert(strstr(out, "interrupted by signal 15"), "%s", out);
	cr_assert(strstr(out, " stopped "), "the probe was stopped, it did not time out: %s", out);
	cr_assert_null(strstr(out, "timed out"), "%s", out);
	cr_assert_eq(kill(server_pid, 0), -1, "the server is gone");
	cr_assert_eq(kbt_listening(port), false);
	char *left = kbt_sh("pgrep -f '[s]leep 61.25' || true", 5000, NULL);
	cr_assert_str_eq(left, "", "the probe is gone: %s", left);
	free(left);
	free(text);
	free(out);
	free(err);
}

/* The nginx conf and suite for one nginx and one redis gate on free ports. */
static const char *real_suite(int nginx_port, int redis_port, const char *redis_recipe, const char *redis_probe)
{
	char conf[4096], suite[8192];
	snprintf(conf, sizeof conf,
		 "daemon off;\nworker_processes 2;\npid nginx.pid;\nerror_log stderr notice;\n"
		 "events { worker_connections 1024; }\n"
		 "http { access_log off; client_body_temp_path body;\n"
		 "  server { listen 127.0.0.1:%d; location / { return 200 \"ok\\n\"; } } }\n",
		 nginx_port);
	const char *conf_path = kbt_write("nginx.conf", conf);
	snprintf(suite, sizeof suite,
		 "# nginx and redis under two recipes\n"
		 "gate nginx-backlog\n"
		 "    recipe q181350-backlog-of-five\n"
		 "    set    mode=reset\n"
		 "    server \"exec nginx -p '%s/' -c '%s' -e stderr\"\n"
		 "    ready  tcp:127.0.0.1:%d\n"
		 "    probe  \"for i in $(seq 30); do curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:%d/ || exit 1; done\"\n"
		 "    timeout 60\n"
		 "\n"
		 "gate redis\n"
		 "    recipe %s\n"
		 "    server \"exec redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no\"\n"
		 "    ready  tcp:127.0.0.1:%d\n"
		 "    probe  \"%s\"\n"
		 "    timeout 20\n",
		 kbt_tmpdir(), conf_path, nginx_port, nginx_port, redis_recipe, redis_port, redis_port, redis_probe);
	return kbt_write("real.kbg", suite);
}

Test(gate, suite_against_nginx_and_redis_passes, .timeout = 180)
{
	int st, np = kbt_free_port(), rp = kbt_free_port();
	char probe[512];
	snprintf(probe, sizeof probe,
		 "for i in $(seq 100); do redis-cli -p %d ping | grep -qx PONG || exit 1; done", rp);
	const char *suite = real_suite(np, rp, "q236565-connections-not-released", probe);
	const char *junit = path_in_tmp("real.xml");
	char *res = gate(&st, "-f '%s' --junit '%s' --out '%s'", suite, junit, path_in_tmp("real"));
	cr_assert_eq(st, 0, "%s", res);
	cr_assert(strstr(res, "2 gates: 2 passed, 0 failed, 0 could not run"), "%s", res);
	xpath_is(junit, "count(//testcase)", "2");
	xpath_is(junit, "count(//failure) + count(//error)", "0");
	xpath_is(junit, "string(//testcase[1]/@name)", "nginx-backlog");
	/* redis closed 100 clients' connections, and none was released */
	xpath_is(junit, "string(//testcase[@name='redis']//property[@name='injections.never-release']/@value)", "100");
	/* nginx's workers share its listening socket: none of them is left */
	cr_assert_eq(kbt_listening(np) || kbt_listening(rp), false, "both servers were stopped");
	free(res);
}

/* redis stalls at its 1,024th connection: each redis-cli is a
 * connection, so the probe's 1,100 pings cannot all be answered. */
Test(gate, suite_against_redis_fails_when_it_stalls, .timeout = 180)
{
	int st, np = kbt_free_port(), rp = kbt_free_port();
	char probe[512];
	snprintf(probe, sizeof probe,
		 "for i in $(seq 1100); do timeout 2 redis-cli -p %d ping | grep -qx PONG || exit 1; done", rp);
	const char *suite = real_suite(np, rp, "q298486-stops-at-1024", probe);
	const char *junit = path_in_tmp("stall.xml");
	char *res = gate(&st, "-f '%s' --only redis --junit '%s'", suite, junit);
	cr_assert_eq(st, 1, "%s", res);
	xpath_is(junit, "count(//testcase)", "1");
	xpath_is(junit, "string(//testcase/@name)", "redis");
	xpath_is(junit, "string(//testcase/failure/@message)", "the probe failed (exit status 1)");
	xpath_is(junit, "string(//property[@name='injections.stall-at-count']/@value)", "1");
	free(res);
}

Test(report, html_page_has_the_timeline, .timeout = 120)
{
	int st, port = kbt_free_port();
	const char *out = path_in_tmp("html");
	char *server = strdup(demo_server(port, NULL));
	char *res = gate(&st, "-r q236565 --name leak --server \"%s\" --ready tcp:127.0.0.1:%d --probe \"%s || true\" "
			      "--timeout 30 --out '%s'",
			 server, port, demo_probe(port, "--count 30 --concurrency 30 --timeout 300"), out);
	cr_assert_eq(st, 0, "%s", res);
	free(res);

	char cmd[4096];
	const char *page = path_in_tmp("leak.html");
	snprintf(cmd, sizeof cmd, "'%s' report --html '%s' '%s/leak/kbfault.log'", kbt_build("kbfault"), page, out);
	res = kbt_sh(cmd, 10000, &st);
	cr_assert_eq(st, 0, "%s", res);
	char *html = kbt_slurp(page);
	cr_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	cr_assert(strstr(html, "<b id=injections>30</b> injections"), "the total: %.400s", html);
	cr_assert_null(strstr(html, "src="), "self-contained: nothing loaded from elsewhere");
	cr_assert_null(strstr(html, "<script"), "and no script");
	/* the timeline is well-formed SVG with a lane for the rule */
	snprintf(cmd, sizeof cmd, "sed -n '/<svg/,/<\\/svg>/p' '%s' > '%s' && xmllint --noout '%s'", page,
		 path_in_tmp("t.svg"), path_in_tmp("t.svg"));
	free(kbt_sh(cmd, 10000, &st));
	cr_assert_eq(st, 0, "the SVG parses as XML");
	char *svg = kbt_slurp(path_in_tmp("t.svg"));
	cr_assert(strstr(svg, "never-release"), "a lane names the rule");
	cr_assert(strstr(svg, "kbdemo-server (30)</text>"), "and the process, with its count: %s", svg);
	cr_assert(strstr(svg, "kbdemo-server (30): "), "boxes carry their lane and counts: %s", svg);
	cr_assert(strstr(svg, " injection"), "%s", svg);
	free(svg);
	free(html);
	free(res);
	free(server);
}
