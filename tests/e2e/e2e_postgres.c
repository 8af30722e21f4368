/* postgresql (Debian's) under kbfault: a postmaster polls its listeners
 * with select() and accepts on blocking sockets, with its signals blocked
 * everywhere but in select(). A rule that drops a connection must not
 * leave it waiting in accept() for the next client (issue #12, item 6),
 * and a stall must end on the SIGTERM that stays pending while it is
 * blocked (item 5). Each test makes a cluster (initdb, trust
 * authentication) in its own directory, runs the postmaster as the
 * postgres user on a free loopback port and a socket directory of its
 * own, and stops it. */
#include <criterion/criterion.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "servers.h"

struct pg {
	struct kbt_server s;
	char bin[256]; /* .../postgresql/N/bin */
	char data[700], sock[700];
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Debian's binaries, and a user other than root to run them as (initdb
 * and postgres refuse root) */
static void find_postgres(struct pg *p)
{
	glob_t g;
	if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || g.gl_pathc == 0)
		cr_skip_test("no postgresql in /usr/lib/postgresql (make e2e installs it)");
	snprintf(p->bin, sizeof p->bin, "%.*s", (int)(strrchr(g.gl_pathv[g.gl_pathc - 1], '/') - g.gl_pathv[g.gl_pathc - 1]),
		 g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	if (getuid() != 0)
		cr_skip_test("needs root, to run the postmaster as the postgres user");
	if (system("id postgres >/dev/null 2>&1") != 0)
		cr_skip_test("no postgres user");
}

/* initdb, then the postmaster under `recipe` (a bundled name or a path;
 * NULL: no shim) with parameter overrides */
static void pg_start(struct pg *p, const char *name, const char *recipe, const char *const *set)
{
	char cmd[4096], initdb_out[800];
	find_postgres(p);
	struct kbt_server *s = &p->s;
	snprintf(s->dir, sizeof s->dir, "%s/%s", kbt_tmpdir(), name);
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->log, sizeof s->log, "%s/kbfault.log", s->dir);
	snprintf(p->data, sizeof p->data, "%s/data", s->dir);
	snprintf(p->sock, sizeof p->sock, "%s/sock", s->dir);
	s->port = kbt_free_port();
	s->out = s->err = NULL;
	snprintf(cmd, sizeof cmd, "chmod 755 '%s' && mkdir -p '%s' && chown postgres: '%s' && chmod 700 '%s'", kbt_tmpdir(),
		 p->sock, s->dir, s->dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof cmd, "chown postgres: '%s'", p->sock);
	cr_assert_eq(system(cmd), 0);
	snprintf(initdb_out, sizeof initdb_out, "%s/initdb.out", s->dir);
	snprintf(cmd, sizeof cmd,
		 "setpriv --reuid=postgres --regid=postgres --init-groups '%s/initdb' -D '%s' -A trust -U postgres --no-sync >'%s' 2>&1",
		 p->bin, p->data, initdb_out);
	int rc;
	free(kbt_sh(cmd, 120000, &rc));
	cr_assert_eq(rc, 0, "initdb: %s", kbt_slurp(initdb_out));

	const char *argv[64];
	size_t n = 0;
	char port[16], postgres[300];
	snprintf(port, sizeof port, "%d", s->port);
	snprintf(postgres, sizeof postgres, "%s/postgres", p->bin);
	argv[n++] = "/usr/bin/setpriv";
	argv[n++] = "--reuid=postgres";
	argv[n++] = "--regid=postgres";
	argv[n++] = "--init-groups";
	if (recipe) {
		argv[n++] = kbt_build("kbfault");
		argv[n++] = "run";
		argv[n++] = "-r";
		argv[n++] = recipe;
		argv[n++] = "-l";
		argv[n++] = s->log;
		for (size_t i = 0; set && set[i] && n < 40; i++) {
			argv[n++] = "--set";
			argv[n++] = set[i];
		}
		argv[n++] = "--";
	}
	argv[n++] = postgres;
	argv[n++] = "-D";
	argv[n++] = p->data;
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "-k";
	argv[n++] = p->sock;
	argv[n++] = "-c";
	argv[n++] = "listen_addresses=127.0.0.1";
	argv[n++] = "-c";
	argv[n++] = "fsync=off";
	argv[n] = NULL;
	kbt_spawn(&s->proc, argv, NULL, false);
	for (int i = 0; i < 400 && !kbt_listening(s->port); i++)
		usleep(50000);
	cr_assert(kbt_listening(s->port), "the postmaster listens on %d", s->port);
}

/* psql's answer to `select 1`, over TCP or the unix socket; NULL if it
 * failed; bounded by timeout_ms */
static char *psql(const struct pg *p, bool tcp, int timeout_ms, int *status)
{
	char cmd[2000];
	snprintf(cmd, sizeof cmd, "PGCONNECT_TIMEOUT=20 psql -X -A -t -U postgres -h '%s' -p %d -d postgres -c 'select 41+1' 2>&1",
		 tcp ? "127.0.0.1" : p->sock, p->s.port);
	return kbt_sh(cmd, timeout_ms, status);
}

Test(postgres, a_dropped_connection_leaves_the_postmaster_serving, .timeout = 180)
{
	struct pg p;
	const char *recipe = kbt_write("drop.kbf", "rule drop-first\n  on accept\n  nth 1\n  action reset\n");
	pg_start(&p, "pg-drop", recipe, NULL);
	int rc;
	char *out = psql(&p, true, 20000, &rc);
	cr_assert_neq(rc, 0, "the first connection is dropped: %s", out);
	/* the postmaster went back to its loop: the unix socket, which no
	 * rule touches, and the next TCP connection are both served */
	out = psql(&p, false, 15000, &rc);
	cr_assert_eq(rc, 0, "psql over the unix socket (rc %d): %s", rc, out);
	cr_assert(strstr(out, "42"), "%s", out);
	out = psql(&p, true, 15000, &rc);
	cr_assert_eq(rc, 0, "psql over TCP (rc %d): %s", rc, out);
	cr_assert(strstr(out, "42"), "%s", out);
	long long t0 = now_ms();
	rc = kbt_server_stop(&p.s, 20000);
	cr_assert_eq(rc, 0, "SIGTERM stops it (status %d): %s", rc, p.s.err);
	cr_assert_lt(now_ms() - t0, 20000);
	cr_assert_eq(kbt_injections(&p.s, "rule", "drop-first", "action", "reset", NULL), 1);
}

Test(postgres, sigterm_ends_a_stall_while_signals_are_blocked, .timeout = 180)
{
	struct pg p;
	pg_start(&p, "pg-stall", "q298486-stops-at-1024", (const char *[]){ "count=2", NULL });
	int rc;
	char *out = psql(&p, true, 20000, &rc);
	cr_assert_eq(rc, 0, "the first is served (rc %d): %s", rc, out);
	/* the second stalls the postmaster, with its signals blocked */
	char cmd[2000];
	snprintf(cmd, sizeof cmd, "PGCONNECT_TIMEOUT=30 psql -X -A -t -U postgres -h 127.0.0.1 -p %d -d postgres -c 'select 1'",
		 p.s.port);
	struct kbt_proc stalled;
	kbt_spawn(&stalled, (const char *[]){ "/bin/sh", "-c", cmd, NULL }, NULL, false);
	for (int i = 0; i < 200 && kbt_injections(&p.s, "action", "stall", NULL) == 0; i++)
		usleep(50000);
	cr_assert_eq(kbt_injections(&p.s, "action", "stall", NULL), 1, "the second connection stalls it");
	usleep(300000);
	long long t0 = now_ms();
	rc = kbt_server_stop(&p.s, 20000);
	cr_assert_eq(rc, 0, "SIGTERM stops it (status %d): %s", rc, p.s.err);
	cr_assert_lt(now_ms() - t0, 20000);
	kbt_wait(&stalled, 40000, NULL, NULL);
	struct kbt_log l = kbt_log_read(p.s.log);
	cr_assert_eq(kbt_log_count(&l, "event", "stall-end", "interrupted", "true", NULL), 1);
	kbt_log_free(&l);
}
