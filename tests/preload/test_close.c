/* Q236565's mechanism: closes of accepted sockets swallowed, whichever way
 * the server closes; and the other close actions. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static const char leak_recipe[] = "rule keep-open\n  on close shutdown\n  role accepted\n  action leak\n";

/* Serves n connections closed with `how` under the leak recipe: every
 * client must wait in vain for the end of the stream, and every close be
 * logged once, through the right entry point. */
static void leaks_with(const char *how, const char *via, int n)
{
	struct kbt_proc srv;
	char log[600], *out, *err;
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	/* no --max: the server must outlive the clients' patience, or its
	 * exit would close the leaked connections and end their streams */
	int port = kbt_server(&srv, kbt_write("leak.kbf", leak_recipe), log,
			      (const char *[]){ "--close", how, "--idle-exit", "2", NULL });
	char *res = kbt_client(port, n, n, 1000);
	cr_assert_eq(kbt_wait(&srv, 15000, &out, &err), 0, "%s", err);
	cr_assert_eq(kbt_json_num(res, "no_eof"), n, "every connection left open: %s", res);
	cr_assert_eq(kbt_json_num(res, "ok"), 0, "%s", res);
	cr_assert_eq(kbt_json_num(out, "served"), n, "%s", out);

	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "start", "program", "kbdemo-server", NULL), 1);
	size_t closes = via ? kbt_log_count(&l, "event", "inject", "action", "leak", "call", "close", "via", via, NULL)
			    : kbt_log_count(&l, "event", "inject", "action", "leak", "call", "close", NULL);
	cr_assert_eq(closes, (size_t)n, "one leak line per connection, got %zu", closes);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(kb_json_str(&l.line[i], "event"), "inject") != 0)
			continue;
		cr_assert_str_eq(kb_json_str(&l.line[i], "rule"), "keep-open");
		cr_assert_str_eq(kb_json_str(&l.line[i], "role"), "accepted");
		cr_assert(strncmp(kb_json_str(&l.line[i], "peer"), "127.0.0.1:", 10) == 0);
		cr_assert_not_null(kb_json_get(&l.line[i], "ts"));
		cr_assert_not_null(kb_json_get(&l.line[i], "tid"));
		cr_assert_not_null(kb_json_get(&l.line[i], "hit"));
	}
	kbt_log_free(&l);
}

Test(close, leak_through_close)
{
	leaks_with("close", NULL, 5);
}

Test(close, leak_through_shutdown_then_close)
{
	char log[600];
	leaks_with("shutdown", NULL, 4);
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "call", "shutdown", "action", "leak", NULL), 4,
		     "shutdown(SHUT_WR) is swallowed too, or the peer would see the end");
	kbt_log_free(&l);
}

Test(close, leak_through_syscall)
{
	leaks_with("syscall", "syscall", 4);
}

Test(close, leak_through_fclose)
{
	leaks_with("fclose", "fclose", 4);
}

Test(close, leak_through_close_range)
{
	leaks_with("close-range", "close_range", 4);
}

Test(close, reset_instead_of_fin)
{
	struct kbt_proc srv;
	char log[600], *out;
	snprintf(log, sizeof log, "%s/log", kbt_tmpdir());
	int port = kbt_server(&srv, kbt_write("r.kbf", "rule rst\n  on close\n  role accepted\n  every 2\n  action reset\n"),
			      log, (const char *[]){ "--max", "6", NULL });
	char *res = kbt_client(port, 6, 1, 2000);
	cr_assert_eq(kbt_wait(&srv, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 3, "%s", res);
	cr_assert_eq(kbt_json_num(res, "reset"), 3, "%s", res);
	struct kbt_log l = kbt_log_read(log);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "reset", NULL), 3);
	kbt_log_free(&l);
}

/* A copy of a tracked listener (dup2, dup3) is the same listener: a rule
 * on accept applies to it after the original is closed. A closed copy is
 * forgotten: the non-socket put on its number (by F_DUPFD, which the shim
 * does not see) is no listener of kbfault's. Without the recipe, all three
 * behave as they do natively. */
Test(close, copies_are_tracked_and_closed_copies_forgotten)
{
	char *out, *err, env_recipe[700], env_log[700];
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "dupclose", NULL };

	cr_assert_eq(kbt_run(argv, NULL, true, 10000, &out, &err), 0, "%s", err);
	cr_assert_str_eq(out, "main\ndup2 ok\ndup3 ok\nclosed ENOTSOCK\n");
	free(out);
	free(err);

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s",
		 kbt_write("full.kbf", "rule full\n  on accept\n  action fail EMFILE\n"));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s/log", kbt_tmpdir());
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 10000, &out, &err), 0, "%s",
		     err);
	cr_assert_str_eq(out, "main\ndup2 EMFILE\ndup3 EMFILE\nclosed ENOTSOCK\n");
	char path[700];
	snprintf(path, sizeof path, "%s/log", kbt_tmpdir());
	struct kbt_log l = kbt_log_read(path);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "full", NULL), 2, "one per copy, none after the close");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A kept-open descriptor is closed as far as the host knows: copying it
 * fails as copying any closed descriptor does, and the copy attempts
 * neither lose the leak nor reach the peer. */
Test(close, a_leaked_descriptor_cannot_be_copied)
{
	char *out, *err, env_recipe[700], env_log[720], path[700];
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "dupleaked", NULL };

	cr_assert_eq(kbt_run(argv, NULL, true, 10000, &out, &err), 0, "%s", err);
	cr_assert_str_eq(out, "main\nclose ok\ndup2 EBADF\ndup3 EBADF\nagain EBADF\npeer eof\n");
	free(out);
	free(err);

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("leak.kbf", leak_recipe));
	snprintf(path, sizeof path, "%s/log", kbt_tmpdir());
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", path);
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 10000, &out, &err), 0, "%s",
		     err);
	cr_assert_str_eq(out, "main\nclose ok\ndup2 EBADF\ndup3 EBADF\nagain EBADF\npeer waits\n");
	struct kbt_log l = kbt_log_read(path);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "rule", "keep-open", NULL), 1, "one leak, logged once");
	kbt_log_free(&l);
	free(out);
	free(err);
}

/* A number closed behind the shim's back (here by an inline system call)
 * and reused holds something else: a rule on closing accepted
 * connections must leave it alone. The connection's identity is its
 * peer, then its local port once the peer has gone, so a connection the
 * peer reset is still recognised and the rule acts on it. */
static void stale_case(const char *kind, const char *recipe, const char *expected, size_t injections)
{
	char *out, *err, env_recipe[700], env_log[720], path[700], want[100];
	const char *argv[] = { kbt_build("helpers/kbt-probe"), "stale", kind, NULL };

	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", recipe));
	snprintf(path, sizeof path, "%s/log-%s", kbt_tmpdir(), kind);
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", path);
	cr_assert_eq(kbt_run(argv, (const char *[]){ env_recipe, env_log, NULL }, true, 10000, &out, &err), 0, "%s%s",
		     out, err);
	if (strstr(out, "unsupported"))
		cr_skip_test("no inline system call for this architecture in kbt-probe");
	snprintf(want, sizeof want, "main\n%s\n", expected);
	cr_assert_str_eq(out, want, "%s", kind);
	struct kbt_log l = kbt_log_read(path);
	cr_assert_eq(kbt_log_count(&l, "event", "inject", NULL), injections, "%s", kind);
	kbt_log_free(&l);
	free(out);
	free(err);
}

Test(close, a_file_on_a_reused_number_is_closed)
{
	stale_case("file", leak_recipe, "close ok\nclosed", 0);
}

Test(close, a_connected_socket_on_a_reused_number_is_closed)
{
	stale_case("socket", leak_recipe, "close ok\nclosed", 0);
}

Test(close, an_unbound_socket_on_a_reused_number_is_closed)
{
	stale_case("unbound", leak_recipe, "close ok\nclosed", 0);
}

Test(close, a_connection_the_peer_reset_is_still_recognised)
{
	stale_case("reset", leak_recipe, "close ok\nopen", 1);
}

/* The session model cuts the oldest session when its count reaches zero.
 * A session closed behind the shim's back is no session to cut: the
 * connected socket now on its number is left alone. */
Test(close, a_session_on_a_reused_number_is_not_cut)
{
	stale_case("session", "rule gateway\n  on accept\n  action sessions\n  count 2\n  miscount 2\n",
		   "connected", 0);
}

/* A rule for one port acts on that port's connections only. The listener
 * on another port, which no rule can reach, is spared the shim: its
 * connections are taken and closed as if kbfault were not there. */
Test(close, a_rule_for_one_port_leaves_another_alone)
{
	struct kbt_proc a, b;
	char rule[200], sport[16], log_a[600], log_b[600], *out;
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(s >= 0 && bind(s, (struct sockaddr *)&in, sizeof in) == 0 &&
		  getsockname(s, (struct sockaddr *)&in, &len) == 0);
	close(s); /* a free port for server a, named in the rule */
	snprintf(sport, sizeof sport, "%d", ntohs(in.sin_port));
	snprintf(rule, sizeof rule, "rule rst\n  on close\n  role accepted\n  port %s\n  action reset\n", sport);
	const char *recipe = kbt_write("port.kbf", rule);
	snprintf(log_a, sizeof log_a, "%s/log-a", kbt_tmpdir());
	snprintf(log_b, sizeof log_b, "%s/log-b", kbt_tmpdir());

	int port_a = kbt_server(&a, recipe, log_a, (const char *[]){ "--port", sport, "--max", "2", NULL });
	cr_assert_eq(port_a, ntohs(in.sin_port));
	char *res = kbt_client(port_a, 2, 1, 2000);
	cr_assert_eq(kbt_wait(&a, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "reset"), 2, "the rule's port: %s", res);

	int port_b = kbt_server(&b, recipe, log_b, (const char *[]){ "--max", "2", NULL });
	cr_assert_neq(port_b, port_a);
	res = kbt_client(port_b, 2, 1, 2000);
	cr_assert_eq(kbt_wait(&b, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(res, "ok"), 2, "another port: %s", res);

	struct kbt_log la = kbt_log_read(log_a), lb = kbt_log_read(log_b);
	cr_assert_eq(kbt_log_count(&la, "event", "inject", "rule", "rst", NULL), 2);
	cr_assert_eq(kbt_log_count(&lb, "event", "inject", NULL), 0);
	kbt_log_free(&la);
	kbt_log_free(&lb);
}
