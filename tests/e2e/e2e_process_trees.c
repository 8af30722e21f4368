/* Every recipe on servers made of several processes: a child per
 * connection (kbdemo-server --fork, socat's fork mode), whose parent
 * closes its copy of each connection at once, and a pool of workers
 * (kbdemo-server --prefork, apache's prefork MPM). A session or a node's
 * link ends when its connection ends in the whole process tree, not when
 * one process drops its copy; the session model and peer marks are the
 * server's, not one worker's. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "servers.h"

#define FORK "--fork"
#define PREFORK "--prefork", "4"

/* ---- Q238009: a node that cannot re-join ---------------------------- */

static const struct kbt_under sponsor = { "q238009-rejoin-fails-until-restart", NULL, 0, 0 };

/* One session of three exchanges from a node: "ok", "reset" or "other". */
static const char *join(const struct kbt_server *s, const char *node)
{
	char *res = kbt_drive(s,
			      (const char *[]){ "--bind", node, "--count", "1", "--lines", "3", "--timeout", "2000",
						NULL },
			      10000);
	const char *what = kbt_json_num(res, "ok") == 1 ? "ok" : kbt_json_num(res, "reset") == 1 ? "reset" : "other";
	free(res);
	return what;
}

/* A session from a node that lasts about two seconds, in the background. */
static void long_session(struct kbt_proc *p, const struct kbt_server *s, const char *node)
{
	char port[16];
	snprintf(port, sizeof port, "%d", s->port);
	kbt_spawn(p,
		  (const char *[]){ kbt_build("kbdemo-client"), "--port", port, "--bind", node, "--count", "1",
				    "--lines", "3", "--gap", "900", "--timeout", "4000", NULL },
		  NULL, false);
	usleep(400000); /* connected, first exchange done */
}

static void long_session_ok(struct kbt_proc *p)
{
	char *out;
	cr_assert_eq(kbt_wait(p, 10000, &out, NULL), 0);
	cr_assert_eq(kbt_json_num(out, "ok"), 1, "the first session went on to its end: %s", out);
	free(out);
}

/* While a node's first session is alive in a child, a second connection
 * from it is a second session, not a re-join: the parent's close of its
 * copy ended nothing. Once the first has ended, wherever it ended, the
 * node cannot re-join; another node still can, once. */
/* A mark made for a connection that ended in another process names
 * that process and no local address (which only that process could
 * have been asked). Returns how many such lines the log has. */
static size_t marks_for_others(const struct kbt_server *s)
{
	struct kbt_log l = kbt_log_read(s->log);
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *ev = kb_json_str(&l.line[i], "event"), *via = kb_json_str(&l.line[i], "via");
		if (strcmp(ev, "mark") != 0 || via == NULL || strcmp(via, "exit") != 0 ||
		    strcmp(kb_json_str(&l.line[i], "pid"), kb_json_str(&l.line[i], "holder") ?: "") == 0)
			continue;
		cr_assert_not_null(kb_json_str(&l.line[i], "holder"), "%s: a mark for a gone process names it", s->name);
		cr_assert_null(kb_json_str(&l.line[i], "local"), "%s: and has no local address of ours", s->name);
		n++;
	}
	kbt_log_free(&l);
	return n;
}

static void rejoin_in_a_tree(const char *name, const char *const *args)
{
	struct kbt_server s;
	struct kbt_proc first;

	kbt_demo_start(&s, name, &sponsor, args);
	long_session(&first, &s, "127.0.0.2");
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok", "%s: a second session while the first is alive", name);
	long_session_ok(&first);
	usleep(200000);
	cr_assert_str_eq(join(&s, "127.0.0.2"), "reset", "%s: its sessions ended: no re-join", name);
	cr_assert_str_eq(join(&s, "127.0.0.3"), "ok", "%s: node B is unaffected", name);
	usleep(200000);
	cr_assert_str_eq(join(&s, "127.0.0.3"), "reset", "%s: until its own session ended", name);
	cr_assert_eq(kbt_injections(&s, "action", "reset", "rule", "refuse-rejoin", NULL), 2, "%s", name);
	kbt_server_stop(&s, 5000);
	if (strcmp(name, "_exit") == 0)
		cr_assert_geq(marks_for_others(&s), 1, "the child gone with _exit() is found by the next accept");
}

Test(trees, q238009_fork_per_connection, .timeout = 60)
{
	rejoin_in_a_tree("fork", (const char *[]){ FORK, "--lines", "3", "--idle-exit", "30", NULL });
}

/* socat's children end a connection with shutdown() and exit() without
 * close(): the exit ends it. */
Test(trees, q238009_child_exits_without_closing, .timeout = 60)
{
	rejoin_in_a_tree("exit", (const char *[]){ FORK, "--close", "none", "--lines", "3", "--idle-exit", "30", NULL });
}

/* A child that leaves with _exit() runs no code of ours: the next accept
 * finds it gone and ends what it held. */
Test(trees, q238009_child_leaves_with_underscore_exit, .timeout = 60)
{
	rejoin_in_a_tree("_exit", (const char *[]){ FORK, "--close", "none", "--child-exit", "_exit", "--lines", "3",
						    "--idle-exit", "30", NULL });
}

Test(trees, q238009_prefork_pool, .timeout = 60)
{
	rejoin_in_a_tree("prefork", (const char *[]){ PREFORK, "--lines", "3", "--idle-exit", "30", NULL });
}

/* ---- Q124737: a session count that drifts to zero -------------------- */

static const struct kbt_under gateway = { "q124737-session-count-miscounted", NULL, 0, 0 };

/* 100 attempts of three exchanges, eight at a time: sessions cut
 * mid-conversation (in whichever process holds them) and attempts 61 to
 * 100 refused - by the tree's one model, not one per worker. */
static void gateway_symptoms(const struct kbt_server *s, const char *res)
{
	size_t cuts = kbt_injections(s, "effect", "cut", NULL);
	size_t refusals = kbt_injections(s, "effect", "refused", "reason", "session limit exceeded", NULL);
	cr_assert_geq(cuts, 1, "%s: active sessions were cut: %s", s->name, res);
	cr_assert_eq(refusals, 40, "%s: attempts 61 to 100 refused (%zu): %s", s->name, refusals, res);
	cr_assert_geq(kbt_json_num(res, "dropped"), 1, "%s: a session dropped mid-conversation: %s", s->name, res);
	cr_assert_lt(kbt_json_num(res, "ok"), 60, "%s: %s", s->name, res);
}

/* Cuts made by one process on a session another process holds. */
static size_t cuts_elsewhere(const struct kbt_server *s)
{
	struct kbt_log l = kbt_log_read(s->log);
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *effect = kb_json_str(&l.line[i], "effect");
		n += effect && strcmp(effect, "cut") == 0 && kb_json_str(&l.line[i], "holder") != NULL;
	}
	kbt_log_free(&l);
	return n;
}

static const char *const sessions_client[] = { "--count", "100", "--concurrency", "8", "--lines", "3", "--gap",
					       "100", "--timeout", "3000", NULL };

Test(trees, q124737_fork_per_connection, .timeout = 120)
{
	struct kbt_server s;
	const char *args[] = { FORK, "--lines", "3", "--idle-exit", "60", NULL };

	kbt_demo_start(&s, "none", NULL, args);
	char *res = kbt_drive(&s, sessions_client, 120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 100, "healthy without the recipe: %s", res);
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "gateway-fork", &gateway, args);
	gateway_symptoms(&s, kbt_drive(&s, sessions_client, 120000));
	cr_assert_geq(cuts_elsewhere(&s), 1, "the parent cut sessions its children hold");
	kbt_server_stop(&s, 5000);
}

Test(trees, q124737_prefork_pool, .timeout = 120)
{
	struct kbt_server s;
	const char *args[] = { PREFORK, "--lines", "3", "--idle-exit", "60", NULL };

	kbt_demo_start(&s, "none", NULL, args);
	char *res = kbt_drive(&s, sessions_client, 120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 100, "healthy without the recipe: %s", res);
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "gateway-prefork", &gateway, args);
	gateway_symptoms(&s, kbt_drive(&s, sessions_client, 120000));
	kbt_server_stop(&s, 5000);
}

/* ---- Q236565: connections that are never released -------------------- */

static const struct kbt_under keep = { "q236565-connections-not-released", NULL, 24, 0 };

/* The parent's copy (or a worker's) is what stays open: no client ever
 * sees its connection end, and the server runs out of descriptors. */
static void never_released(const char *name, const char *const *args)
{
	struct kbt_server s;
	const char *client[] = { "--count", "80", "--concurrency", "8", "--timeout", "1000", NULL };

	kbt_demo_start(&s, name, &keep, args);
	char *res = kbt_drive(&s, client, 120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 0, "%s: no connection ends: %s", name, res);
	cr_assert_geq(kbt_json_num(res, "no_eof"), 10, "%s: served, then left open: %s", name, res);
	cr_assert_gt(kbt_json_num(res, "reply_timeout") + kbt_json_num(res, "connect_timeout"), 0,
		     "%s: then out of descriptors: %s", name, res);
	cr_assert_geq(kbt_close_wait(s.port), 10, "%s: CLOSE-WAIT on the server's side", name);
	kbt_server_stop(&s, 5000);
}

Test(trees, q236565_fork_per_connection, .timeout = 120)
{
	never_released("keep-fork", (const char *[]){ FORK, "--idle-exit", "60", NULL });
}

Test(trees, q236565_prefork_pool, .timeout = 120)
{
	never_released("keep-prefork", (const char *[]){ PREFORK, "--idle-exit", "60", NULL });
}

/* ---- Q298486: a service that stops at the Nth ----------------------- */

/* The count is the service's: a pool's workers stop together at the
 * 50th connection of the whole pool, the rest back up, and SIGTERM still
 * stops every process. */
static void stops_together(const char *name, const char *const *args)
{
	struct kbt_server s;
	const char *set[] = { "count=50", NULL };
	const char *client[] = { "--count", "70", "--concurrency", "2", "--timeout", "800", NULL };

	kbt_demo_start(&s, name, &(struct kbt_under){ "q298486-stops-at-1024", set, 0, 0 }, args);
	char *res = kbt_drive(&s, client, 120000);
	long ok = kbt_json_num(res, "ok");
	cr_assert(ok >= 46 && ok <= 49, "%s: served up to the 50th of the service: %s", name, res);
	cr_assert_eq(kbt_json_num(res, "refused") + kbt_json_num(res, "reset"), 0, "%s: %s", name, res);
	cr_assert(kbt_listening(s.port), "%s: still listening", name);
	cr_assert_eq(kbt_injections(&s, "action", "stall", "hit", "50", NULL), 1, "%s", name);
	cr_assert_eq(kbt_server_stop(&s, 10000), 0, "%s: SIGTERM stops it: %s", name, s.err);
}

Test(trees, q298486_fork_per_connection, .timeout = 60)
{
	stops_together("stop-fork", (const char *[]){ FORK, "--idle-exit", "60", NULL });
}

Test(trees, q298486_prefork_pool, .timeout = 60)
{
	stops_together("stop-prefork", (const char *[]){ PREFORK, "--idle-exit", "60", NULL });
}

/* ---- Q181350: a listen backlog of five --------------------------------- */

/* The backlog a tree's listener gets is five, whichever process listens. */
static void backlog_of_five(const char *name, const char *const *args)
{
	struct kbt_server s;
	char cmd[200];

	kbt_demo_start(&s, name, &(struct kbt_under){ "q181350-backlog-of-five", NULL, 0, 0 }, args);
	snprintf(cmd, sizeof cmd, "ss -Hltn '( sport = :%d )' | awk '{print $3}'", s.port);
	char *out = kbt_sh(cmd, 5000, NULL);
	cr_assert_eq(atoi(out), 5, "%s: ss shows a backlog of 5: %s", name, out);
	free(out);
	kbt_server_stop(&s, 5000);
}

Test(trees, q181350_fork_per_connection)
{
	backlog_of_five("five-fork", (const char *[]){ FORK, "--idle-exit", "60", NULL });
}

Test(trees, q181350_prefork_pool)
{
	backlog_of_five("five-prefork", (const char *[]){ PREFORK, "--idle-exit", "60", NULL });
}

/* ---- socat (fork per connection), from Debian ----------------------- */

/* socat TCP-LISTEN:P,fork in front of a plain kbdemo-server. */
static void socat_start(struct kbt_server *s, const char *name, const struct kbt_under *u, int backend)
{
	char listen[80], to[80];
	kbt_server_prepare(s, name, u);
	snprintf(listen, sizeof listen, "TCP-LISTEN:%d,fork,reuseaddr,bind=127.0.0.1", s->port);
	snprintf(to, sizeof to, "TCP:127.0.0.1:%d", backend);
	kbt_server_run(s, name, u, (const char *[]){ "/usr/bin/socat", listen, to, NULL });
}

Test(trees, socat_q238009_server_side, .timeout = 60)
{
	struct kbt_server backend, s;
	struct kbt_proc first;

	kbt_demo_start(&backend, "backend", NULL, (const char *[]){ "--lines", "3", "--threads", "4", NULL });
	socat_start(&s, "socat-sponsor", &sponsor, backend.port);
	long_session(&first, &s, "127.0.0.2");
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok", "a second session while the first is alive");
	long_session_ok(&first);
	usleep(200000);
	cr_assert_str_eq(join(&s, "127.0.0.2"), "reset", "then no re-join");
	cr_assert_str_eq(join(&s, "127.0.0.3"), "ok", "another node is unaffected");
	kbt_server_stop(&s, 5000);
	kbt_server_stop(&backend, 5000);
}

/* The client side in socat: its child's link to the backend ends with
 * shutdown() and exit(); connecting there again is refused for `heal`. */
Test(trees, socat_q238009_client_side, .timeout = 60)
{
	struct kbt_server backend, s;
	const char *set[] = { "heal=3s", NULL };

	kbt_demo_start(&backend, "backend", NULL, (const char *[]){ "--lines", "3", "--threads", "4", NULL });
	socat_start(&s, "socat-client", &(struct kbt_under){ "q238009-rejoin-fails-client", set, 0, 0 },
		    backend.port);
	cr_assert_str_eq(join(&s, "127.0.0.1"), "ok", "the first link to the backend");
	usleep(200000);
	cr_assert_str_neq(join(&s, "127.0.0.1"), "ok", "after it ended, socat cannot reach the backend");
	cr_assert_geq(kbt_injections(&s, "call", "connect", "action", "refuse", NULL), 1);
	sleep(4);
	cr_assert_str_eq(join(&s, "127.0.0.1"), "ok", "after heal it can");
	kbt_server_stop(&s, 5000);
	kbt_server_stop(&backend, 5000);
}

Test(trees, socat_q124737, .timeout = 120)
{
	struct kbt_server backend, s;

	kbt_demo_start(&backend, "backend", NULL, (const char *[]){ "--lines", "3", "--threads", "16", NULL });
	socat_start(&s, "socat-gateway", &gateway, backend.port);
	gateway_symptoms(&s, kbt_drive(&s, sessions_client, 120000));
	kbt_server_stop(&s, 5000);
	kbt_server_stop(&backend, 5000);
}

/* ---- apache2, prefork MPM, from Debian ------------------------------- */

/* apache2 with four prefork workers, run as nobody from the start (so its
 * workers share one user and can reach each other's sessions), serving a
 * small page over keep-alive. */
static void apache_start(struct kbt_server *s, const char *name, const struct kbt_under *u)
{
	char conf[800], text[4096], cmd[4096];
	kbt_server_prepare(s, name, u);
	/* the log too: the workers, as nobody, open it themselves */
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/htdocs' && echo ok > '%s/htdocs/index.html' && : > '%s/kbfault.log' && "
				  "chown -R 65534:65534 '%s' && chmod 755 '%s'",
		 s->dir, s->dir, s->dir, s->dir, kbt_tmpdir());
	cr_assert_eq(system(cmd), 0);
	snprintf(conf, sizeof conf, "%s/httpd.conf", s->dir);
	snprintf(text, sizeof text,
		 "ServerRoot %s\nServerName 127.0.0.1\nListen 127.0.0.1:%d\n"
		 "LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so\n"
		 "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n"
		 "PidFile %s/httpd.pid\nErrorLog %s/error.log\nDocumentRoot %s/htdocs\nMutex file:%s\n"
		 "StartServers 4\nMinSpareServers 4\nMaxSpareServers 4\nServerLimit 4\nMaxRequestWorkers 4\n"
		 "KeepAlive On\nKeepAliveTimeout 5\nMaxKeepAliveRequests 100\n",
		 s->dir, s->port, s->dir, s->dir, s->dir, s->dir);
	kbt_write_path(conf, text);
	kbt_server_run(s, name, u,
		       (const char *[]){ "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
					 "/usr/sbin/apache2", "-f", conf, "-DFOREGROUND", NULL });
}

Test(trees, apache_prefork_q124737, .timeout = 120)
{
	struct kbt_server s;
	if (getuid() != 0)
		cr_skip_test("needs root to run apache as nobody");
	const char *client[] = { "--count", "100", "--concurrency", "4", "--lines", "3", "--gap", "100",
				 "--timeout", "3000", "--request", "GET /index.html HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n",
				 "--final", "GET /index.html HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n", NULL };

	apache_start(&s, "apache-none", NULL);
	char *res = kbt_drive(&s, client, 120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 100, "healthy without the recipe: %s", res);
	kbt_server_stop(&s, 5000);

	apache_start(&s, "apache-gateway", &gateway);
	res = kbt_drive(&s, client, 120000);
	size_t refusals = kbt_injections(&s, "effect", "refused", "reason", "session limit exceeded", NULL);
	cr_assert_eq(refusals, 40, "the pool's one model refuses attempts 61 to 100 (%zu): %s", refusals, res);
	cr_assert_geq(kbt_injections(&s, "effect", "cut", NULL), 1, "sessions cut, across workers: %s", res);
	cr_assert_geq(kbt_json_num(res, "dropped"), 1, "a session dropped mid-conversation: %s", res);
	kbt_server_stop(&s, 5000);
}
