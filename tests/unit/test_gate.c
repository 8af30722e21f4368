/* A gate's settings from flags and suite keys, suites read with
 * FILE:LINE:COL errors, and gate results written as JUnit XML. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/kbgate-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

Test(gate_set, ready_takes_tcp_host_port)
{
	struct kb_gate g;
	char err[512];
	kb_gate_defaults(&g);
	cr_assert_eq(kb_gate_set(&g, "ready", "tcp:127.0.0.1:8080", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(g.ready_host, "127.0.0.1");
	cr_assert_eq(g.ready_port, 8080);
	cr_assert_eq(kb_gate_set(&g, "ready", "tcp:[::1]:6379", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(g.ready_host, "[::1]");
	cr_assert_eq(g.ready_port, 6379);
	const char *bad[] = { "127.0.0.1:80", "tcp:127.0.0.1", "tcp::80", "tcp:h:0", "tcp:h:65536", "tcp:h:http",
			      "udp:h:53" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(kb_gate_set(&g, "ready", bad[i], err, sizeof err), -1, "%s accepted", bad[i]);
		cr_assert(strstr(err, "expected tcp:HOST:PORT"), "%s: %s", bad[i], err);
	}
}

Test(gate_set, defaults_and_numbers)
{
	struct kb_gate g;
	char err[512];
	kb_gate_defaults(&g);
	cr_assert_eq(g.min_injections, 1, "a gate needs a fault by default: never vacuous");
	cr_assert_eq(g.timeout_s, 60);
	cr_assert_eq(kb_gate_set(&g, "timeout", "2m", err, sizeof err), 0, "%s", err);
	cr_assert_eq(g.timeout_s, 120);
	cr_assert_eq(kb_gate_set(&g, "timeout", "90", err, sizeof err), 0, "%s", err);
	cr_assert_eq(g.timeout_s, 90);
	cr_assert_eq(kb_gate_set(&g, "timeout", "0", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "timeout", "soon", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "min-injections", "0", err, sizeof err), 0, "%s", err);
	cr_assert_eq(g.min_injections, 0);
	cr_assert_eq(kb_gate_set(&g, "min-injections", "-1", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "seed", "x", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "server-may-exit", "yes", err, sizeof err), 0, "%s", err);
	cr_assert(g.server_may_exit);
	cr_assert_eq(kb_gate_set(&g, "server-may-exit", "perhaps", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "set", "mode=reset", err, sizeof err), 0, "%s", err);
	cr_assert_eq(g.ov.n, 1);
	cr_assert_eq(kb_gate_set(&g, "set", "mode", err, sizeof err), -1);
	cr_assert_eq(kb_gate_set(&g, "probee", "x", err, sizeof err), -1);
	cr_assert(strstr(err, "unknown gate key 'probee'"), "%s", err);
}

Test(gate_set, names_are_safe_as_directories_and_test_cases)
{
	struct kb_gate g;
	char err[512];
	kb_gate_defaults(&g);
	cr_assert_eq(kb_gate_set(&g, "name", "nginx-backlog_5.v2", err, sizeof err), 0, "%s", err);
	const char *bad[] = { "", "..", ".hidden", "a/b", "a b", "a<b" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(kb_gate_set(&g, "name", bad[i], err, sizeof err), -1, "'%s' accepted", bad[i]);
}

Test(gate_check, names_what_is_missing)
{
	struct kb_gate g;
	char err[512];
	kb_gate_defaults(&g);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), -1);
	cr_assert(strstr(err, "no recipe"), "%s", err);
	kb_gate_set(&g, "recipe", "q181350", err, sizeof err);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), -1);
	cr_assert(strstr(err, "no server command"), "%s", err);
	kb_gate_set(&g, "server", "srv", err, sizeof err);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), -1);
	cr_assert(strstr(err, "no readiness check"), "%s", err);
	kb_gate_set(&g, "ready", "tcp:127.0.0.1:1", err, sizeof err);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), -1);
	cr_assert(strstr(err, "no probe command"), "%s", err);
	kb_gate_set(&g, "probe", "true", err, sizeof err);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), 0, "%s", err);
	kb_gate_set(&g, "set", "nosuch=1", err, sizeof err);
	cr_assert_eq(kb_gate_check(&g, err, sizeof err), -1, "an override the recipe does not have");
	cr_assert(strstr(err, "nosuch"), "%s", err);
}

Test(gate_suite, reads_stanzas, .init = setup, .fini = teardown)
{
	const char *path = write_file("ok.kbg", "# two gates\n"
						"gate first\n"
						"    recipe q181350\n"
						"    set mode=reset\n"
						"    server \"srv --port 1\"   # quoted: one value\n"
						"    ready tcp:127.0.0.1:1\n"
						"    probe \"curl -fsS http://127.0.0.1:1/\"\n"
						"\n"
						"gate second\n"
						"    recipe q236565\n"
						"    server srv\n"
						"    ready tcp:127.0.0.1:2\n"
						"    load \"a b\"\n"
						"    probe true\n"
						"    min-injections 50\n"
						"    timeout 30s\n");
	struct kb_gate *g;
	char err[4096];
	int n = kb_gate_suite(path, &g, err, sizeof err);
	cr_assert_eq(n, 2, "%s", err);
	cr_assert_str_eq(g[0].name, "first");
	cr_assert_str_eq(g[0].server, "srv --port 1");
	cr_assert_str_eq(g[0].probe, "curl -fsS http://127.0.0.1:1/");
	cr_assert_eq(g[0].ov.n, 1);
	cr_assert_eq(g[0].min_injections, 1);
	cr_assert_str_eq(g[1].name, "second");
	cr_assert_str_eq(g[1].load, "a b");
	cr_assert_eq(g[1].min_injections, 50);
	cr_assert_eq(g[1].timeout_s, 30);
	char where[300];
	snprintf(where, sizeof where, "%s:9", path);
	cr_assert_str_eq(g[1].where, where);
	free(g);
}

static void suite_error(const char *text, const char *want_suffix)
{
	const char *path = write_file("bad.kbg", text);
	struct kb_gate *g = NULL;
	char err[4096], want[512];
	cr_assert_eq(kb_gate_suite(path, &g, err, sizeof err), -1, "accepted: %s", text);
	snprintf(want, sizeof want, "%s%s", path, want_suffix);
	cr_assert(strncmp(err, want, strlen(want)) == 0, "want '%s...', got '%s'", want, err);
}

Test(gate_suite, errors_name_file_line_and_column, .init = setup, .fini = teardown)
{
	suite_error("recipe q181350\n", ":1:1: expected `gate NAME` before 'recipe'");
	suite_error("gate\n", ":1:1: expected `gate NAME`");
	suite_error("gate a b\n", ":1:1: expected `gate NAME`");
	suite_error("gate a/b\n", ":1:6: name: expected letters");
	suite_error("gate a\n  probee x\n", ":2:3: unknown gate key 'probee'");
	suite_error("gate a\n  probe curl http://x\n", ":2:14: `probe` takes one value (quote a command with blanks)");
	suite_error("gate a\n  ready 1.2.3.4:80\n", ":2:9: ready: expected tcp:HOST:PORT");
	suite_error("gate a\n  name b\n", ":2:3: a gate's name is the one in `gate NAME`");
	suite_error("gate a\ngate a\n", ":2:6: gate 'a' is already defined");
	suite_error("gate a\n  probe \"unterminated\n", ":2:");
	suite_error("# nothing\n", ": no gates");
	suite_error("gate a\n  recipe q181350\n", ":1: gate 'a': no server command");
	suite_error("gate a\n  expect \"overflows >= 1\"\n",
		    ":2:10: expect: 'overflows' is not a measure (expected one of listen-overflows, listen-drops, "
		    "resets-sent, server-fds, close-wait, recv-q, as in 'listen-overflows >= 1')");
}

/* `expect MEASURE OP N`, with or without blanks; what is not one is
 * refused, naming what was expected. */
Test(gate_set, expect_takes_a_measure_an_operator_and_a_number)
{
	struct kb_gate g;
	char err[512], text[96];

	kb_gate_defaults(&g);
	cr_assert_eq(kb_gate_set(&g, "expect", "listen-overflows >= 1", err, sizeof err), 0, "%s", err);
	cr_assert_eq(kb_gate_set(&g, "expect", "recv-q>3", err, sizeof err), 0, "%s", err);
	cr_assert_eq(kb_gate_set(&g, "expect", "  close-wait == 0 ", err, sizeof err), 0, "%s", err);
	cr_assert_eq(g.nexpects, 3);
	cr_assert_eq(g.expects[0].measure, KB_MEASURE_LISTEN_OVERFLOWS);
	cr_assert_eq(g.expects[0].op, KB_EXPECT_GE);
	cr_assert_eq(g.expects[0].value, 1);
	cr_assert_eq(g.expects[1].op, KB_EXPECT_GT, "'>' alone, not '>=");
	kb_expect_format(&g.expects[1], text, sizeof text);
	cr_assert_str_eq(text, "recv-q > 3");
	kb_expect_format(&g.expects[2], text, sizeof text);
	cr_assert_str_eq(text, "close-wait == 0");

	const char *bad[][2] = {
		{ "resets >= 1", "'resets' is not a measure" },
		{ "recv-q => 1", "after recv-q, expected >=, >, <=, < or == and a number, got '=> 1'" },
		{ "recv-q >= many", "after 'recv-q >=', expected a whole number, got 'many'" },
		{ "recv-q >= 1 2", "expected a whole number, got '1 2'" },
		{ "recv-q >= -1", "expected a whole number" },
		{ "", "'' is not a measure" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(kb_gate_set(&g, "expect", bad[i][0], err, sizeof err), -1, "%s", bad[i][0]);
		cr_assert(strstr(err, bad[i][1]), "%s: %s", bad[i][0], err);
	}
	while (g.nexpects < KB_EXPECTS_MAX)
		cr_assert_eq(kb_gate_set(&g, "expect", "recv-q >= 1", err, sizeof err), 0, "%s", err);
	cr_assert_eq(kb_gate_set(&g, "expect", "recv-q >= 1", err, sizeof err), -1);
	cr_assert(strstr(err, "at most 8"), "%s", err);
}

/* Each operator, and a measure that could not be taken meets nothing. */
Test(gate_set, expectations_are_judged_on_what_was_measured)
{
	struct kb_evidence e;
	memset(&e, 0, sizeof e);
	e.ok[KB_MEASURE_RECV_Q] = true;
	e.value[KB_MEASURE_RECV_Q] = 3;
	const struct {
		enum kb_expect_op op;
		long long v;
		bool met;
	} cases[] = {
		{ KB_EXPECT_GE, 3, true }, { KB_EXPECT_GE, 4, false }, { KB_EXPECT_GT, 2, true }, { KB_EXPECT_GT, 3, false },
		{ KB_EXPECT_LE, 3, true }, { KB_EXPECT_LE, 2, false }, { KB_EXPECT_LT, 4, true }, { KB_EXPECT_LT, 3, false },
		{ KB_EXPECT_EQ, 3, true }, { KB_EXPECT_EQ, 2, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kb_expect x = { KB_MEASURE_RECV_Q, cases[i].op, cases[i].v };
		cr_assert_eq(kb_expect_met(&x, &e), cases[i].met, "case %zu", i);
	}
	struct kb_expect unmeasured = { KB_MEASURE_CLOSE_WAIT, KB_EXPECT_GE, 0 };
	cr_assert_not(kb_expect_met(&unmeasured, &e));
}

/* The kernel's counters are read from this machine's /proc, and grow
 * from where they stood at the start, not from zero. */
/* A connection refused on loopback: the kernel answers the SYN with a
 * reset, which Tcp OutRsts counts. */
static void refused_once(void)
{
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof at;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(l >= 0 && bind(l, (struct sockaddr *)&at, sizeof at) == 0 &&
		  getsockname(l, (struct sockaddr *)&at, &len) == 0);
	close(l); /* a port nothing listens on */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&at, sizeof at), -1);
	close(c);
}

Test(gate_set, evidence_counters_start_from_where_they_stood)
{
	struct kb_evidence e;
	for (int i = 0; i < 20; i++)
		refused_once(); /* the total is at least 20 now */
	kb_evidence_begin(&e);
	cr_assert(e.ok[KB_MEASURE_LISTEN_OVERFLOWS] && e.ok[KB_MEASURE_RESETS_SENT], "read from /proc/net");
	kb_evidence_sample(&e, 0, 1);
	cr_assert_lt(e.value[KB_MEASURE_RESETS_SENT], 20, "the growth, not the total: %lld",
		     e.value[KB_MEASURE_RESETS_SENT]);
	for (int i = 0; i < 3; i++)
		refused_once();
	kb_evidence_sample(&e, 0, 1);
	cr_assert_geq(e.value[KB_MEASURE_RESETS_SENT], 3, "%lld", e.value[KB_MEASURE_RESETS_SENT]);
	cr_assert(e.ok[KB_MEASURE_CLOSE_WAIT] && e.ok[KB_MEASURE_RECV_Q]);
	cr_assert_not(e.ok[KB_MEASURE_SERVER_FDS], "no server group given");
}

Test(gate_junit, carries_verdicts_counts_and_escapes, .init = setup, .fini = teardown)
{
	struct kb_gate g[3];
	struct kb_gate_result r[3];
	char err[512], path[256];

	memset(r, 0, sizeof r);
	for (int i = 0; i < 3; i++) {
		kb_gate_defaults(&g[i]);
		snprintf(g[i].recipe, sizeof g[i].recipe, "q181350");
		r[i].seconds = 1.5;
		r[i].server_alive = true;
		snprintf(r[i].log, sizeof r[i].log, "/tmp/log-%d", i);
	}
	snprintf(g[0].name, sizeof g[0].name, "passes");
	r[0].verdict = KB_GATE_PASS;
	cr_assert_eq(kb_gate_set(&g[0], "expect", "recv-q >= 5", err, sizeof err), 0, "%s", err);
	r[0].ev.ok[KB_MEASURE_RECV_Q] = true;
	r[0].ev.value[KB_MEASURE_RECV_Q] = 7;
	snprintf(r[0].probe_out, sizeof r[0].probe_out, "a <b> & \"c\" \x01 done");
	const char *line = "{\"event\":\"inject\",\"pid\":7,\"rule\":\"backlog\",\"call\":\"listen\",\"action\":\"queue\","
			   "\"queue\":5,\"mode\":\"hang\",\"requested\":511,\"effect\":\"capped\",\"t\":0.1}";
	const char *noop = "{\"event\":\"inject\",\"pid\":7,\"rule\":\"backlog\",\"call\":\"listen\",\"action\":\"queue\","
			   "\"queue\":5,\"mode\":\"hang\",\"requested\":5,\"effect\":\"none\",\"t\":0.2}";
	const char *start = "{\"event\":\"start\",\"pid\":7,\"ppid\":1,\"program\":\"s\",\"recipe\":\"q\","
			    "\"recipe_path\":\"/r/q181350.kbf\",\"params\":\"backlog=5\",\"seed\":0,\"fork\":false}";
	char why[128];
	cr_assert_eq(kb_logsum_add(&r[0].sum, start, why, sizeof why), 0, "%s", why);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(kb_logsum_add(&r[0].sum, line, why, sizeof why), 0, "%s", why);
	cr_assert_eq(kb_logsum_add(&r[0].sum, noop, why, sizeof why), 0, "%s", why);
	kb_logsum_sort(&r[0].sum);
	cr_assert_eq(kb_gate_set(&g[0], "set", "backlog=5", err, sizeof err), 0, "%s", err);
	snprintf(g[1].name, sizeof g[1].name, "fails");
	r[1].verdict = KB_GATE_FAIL;
	r[1].probe_status = 1;
	snprintf(r[1].reason, sizeof r[1].reason, "the probe failed (exit status 1) <&>");
	snprintf(g[2].name, sizeof g[2].name, "errs");
	r[2].verdict = KB_GATE_ERROR;
	r[2].probe_status = -2;
	snprintf(r[2].reason, sizeof r[2].reason, "the server never listened");

	snprintf(path, sizeof path, "%s/junit.xml", dir);
	cr_assert_eq(kb_gate_junit(path, g, r, 3, err, sizeof err), 0, "%s", err);
	char *x = read_file(path);
	cr_assert(strstr(x, "<testsuites name=\"kbfault\" tests=\"3\" failures=\"1\" errors=\"1\""), "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"kbfault.gate\" name=\"passes\" time=\"1.500\">"), "%s", x);
	cr_assert(strstr(x, "<property name=\"injections\" value=\"3\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"injections.backlog\" value=\"3\"/>"), "%s", x);
	cr_assert(strstr(x, "<system-out>a &lt;b&gt; &amp; &quot;c&quot; ? done</system-out>"),
		  "escaped, and the control byte XML cannot hold replaced: %s", x);
	cr_assert(strstr(x, "<failure type=\"kbfault.GateFailed\" message=\"the probe failed (exit status 1) &lt;&amp;&gt;\">"),
		  "%s", x);
	cr_assert(strstr(x, "<error type=\"kbfault.GateError\" message=\"the server never listened\">"), "%s", x);
	cr_assert(strstr(x, "<property name=\"log\" value=\"/tmp/log-1\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"no-ops\" value=\"1\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"recipe-path\" value=\"/r/q181350.kbf\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"params\" value=\"backlog=5\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"effects.backlog\" value=\"capped=3, none=1\"/>"), "%s", x);
	cr_assert(strstr(x, "<property name=\"detail.backlog\" value=\"queue 5 hang (asked 511); queue 5 hang (asked 5)\"/>"),
		  "%s", x);
	cr_assert(strstr(x, "<property name=\"measure.recv-q\" value=\"7\"/>"), "%s", x);
	cr_assert_null(strstr(x, "measure.close-wait"), "a measure not taken is not written: %s", x);
	cr_assert(strstr(x, "<property name=\"expect.1\" value=\"recv-q &gt;= 5: met\"/>"), "%s", x);
	kb_logsum_free(&r[0].sum);

	snprintf(path, sizeof path, "%s/no/such/dir/junit.xml", dir);
	cr_assert_eq(kb_gate_junit(path, g, r, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "--junit"), "%s", err);
}
