/* Q238009, re-join fails until restart: a node whose session with the
 * server ends can never connect again until the server restarts; other
 * nodes are unaffected. On the demo server, nginx (curl from distinct
 * loopback addresses), and a redis replica whose link to its master is
 * cut - from the master's side and, with the client recipe, from the
 * replica's. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "servers.h"

static const char *const node_a_only[] = { "nodes=127.0.0.2/32", NULL };

/* One session from a node, by the demo client: "ok" or what went wrong. */
static const char *join(const struct kbt_server *s, const char *node)
{
	char *res = kbt_drive(s, (const char *[]){ "--bind", node, "--count", "1", "--timeout", "2000", NULL }, 10000);
	if (kbt_json_num(res, "ok") == 1)
		return "ok";
	return kbt_json_num(res, "reset") == 1 ? "reset" : "other";
}

/* One request from a node, by curl: the HTTP status, "000" when the
 * connection failed. */
static char *curl_from(const struct kbt_server *s, const char *node)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd,
		 "curl -s -o /dev/null -w '%%{http_code}' --interface %s --max-time 3 http://127.0.0.1:%d/", node,
		 s->port);
	return kbt_sh(cmd, 10000, NULL);
}

Test(q238009, demo_server, .timeout = 60)
{
	struct kbt_server s;
	const struct kbt_under sponsor = { "q238009-rejoin-fails-until-restart", NULL, 0, 0 };
	const char *args[] = { "--idle-exit", "30", NULL };

	kbt_demo_start(&s, "plain", NULL, args);
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok");
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok", "without the recipe a node re-joins");
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "sponsor", &sponsor, args);
	int port = s.port;
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok", "node A joins");
	cr_assert_str_eq(join(&s, "127.0.0.2"), "reset", "its session ended: it cannot re-join");
	cr_assert_str_eq(join(&s, "127.0.0.2"), "reset", "nor later");
	cr_assert_str_eq(join(&s, "127.0.0.3"), "ok", "node B is unaffected");
	cr_assert_str_eq(join(&s, "127.0.0.3"), "reset", "until its own session ended");
	cr_assert_eq(kbt_injections(&s, "call", "accept", "action", "reset", "rule", "refuse-rejoin", NULL), 3);
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "restarted", &(struct kbt_under){ "q238009-rejoin-fails-until-restart", NULL, 0, port }, args);
	cr_assert_str_eq(join(&s, "127.0.0.2"), "ok", "after the restart node A joins again");
	kbt_server_stop(&s, 5000);
}

/* The recipe's default nodes are every IPv4 and every IPv6 peer: a
 * server on ::1 is faulted with no --set. */
Test(q238009, an_ipv6_server_by_default, .timeout = 60)
{
	struct kbt_server s;
	const struct kbt_under sponsor = { "q238009-rejoin-fails-until-restart", NULL, 0, 0 };
	const char *args[] = { "--host", "::1", "--idle-exit", "30", NULL };
	const char *v6[] = { "--host", "::1", "--count", "1", "--timeout", "2000", NULL };

	kbt_demo_start(&s, "v6", &sponsor, args);
	char *first = kbt_drive(&s, v6, 10000), *second = kbt_drive(&s, v6, 10000);
	cr_assert_eq(kbt_json_num(first, "ok"), 1, "the node joins over IPv6: %s", first);
	cr_assert_eq(kbt_json_num(second, "reset"), 1, "and cannot re-join: %s", second);
	cr_assert_eq(kbt_injections(&s, "call", "accept", "action", "reset", "rule", "refuse-rejoin", NULL), 1);
	free(first);
	free(second);
	kbt_server_stop(&s, 5000);
}

Test(q238009, nginx_with_curl, .timeout = 60)
{
	struct kbt_server s;
	const struct kbt_under sponsor = { "q238009-rejoin-fails-until-restart", NULL, 0, 0 };

	/* two workers: the memory of a lost node is the server's, not a worker's */
	kbt_nginx_start(&s, "sponsor", &sponsor, 2, NULL);
	int port = s.port;
	cr_assert_str_eq(curl_from(&s, "127.0.0.2"), "200", "node A's first request");
	/* nginx closes the connection when curl has gone: give it that moment */
	usleep(200000);
	for (int i = 0; i < 4; i++)
		cr_assert_str_eq(curl_from(&s, "127.0.0.2"), "000", "node A is refused, attempt %d", i + 1);
	cr_assert_str_eq(curl_from(&s, "127.0.0.3"), "200", "node B is served");
	cr_assert_geq(kbt_injections(&s, "action", "reset", NULL), 4);
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "restarted", &(struct kbt_under){ "q238009-rejoin-fails-until-restart", NULL, 0, port }, 2, NULL);
	cr_assert_str_eq(curl_from(&s, "127.0.0.2"), "200", "after a restart node A is served");
	kbt_server_stop(&s, 5000);
}

/* redis replication: a replica on 127.0.0.2 following a master. */
static char *link_status(int replica_port)
{
	char cmd[200];
	snprintf(cmd, sizeof cmd, "redis-cli -p %d info replication | grep -o 'master_link_status:[a-z]*'", replica_port);
	return kbt_sh(cmd, 5000, NULL);
}

static bool wait_link(int replica_port, const char *want, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		char *st = link_status(replica_port);
		bool ok = strstr(st, want) != NULL;
		free(st);
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

static void cut_link(int master_port)
{
	char cmd[200];
	snprintf(cmd, sizeof cmd, "redis-cli -p %d client kill type replica", master_port);
	free(kbt_sh(cmd, 5000, NULL));
}

static void start_replica(struct kbt_server *r, const struct kbt_under *u, int master_port)
{
	char mport[16];
	snprintf(mport, sizeof mport, "%d", master_port);
	kbt_redis_start(r, "replica", u,
			(const char *[]){ "--replicaof", "127.0.0.1", mport, "--bind-source-addr", "127.0.0.2", NULL });
}

static const char *const master_args[] = { "--protected-mode", "no", "--repl-diskless-sync-delay", "0", NULL };

Test(q238009, redis_replica_cannot_resync_until_the_master_restarts, .timeout = 60)
{
	struct kbt_server m, r;
	const struct kbt_under sponsor = { "q238009-rejoin-fails-until-restart", node_a_only, 0, 0 };

	kbt_redis_start(&m, "master", &sponsor, master_args);
	int mport = m.port;
	start_replica(&r, NULL, mport);
	cr_assert(wait_link(r.port, "up", 10000), "the replica syncs");
	cut_link(mport);
	cr_assert(wait_link(r.port, "down", 3000));
	sleep(3); /* the replica retries once a second */
	cr_assert(wait_link(r.port, "down", 0), "three seconds on, it still cannot re-sync");
	cr_assert_geq(kbt_injections(&m, "action", "reset", NULL), 2, "each re-sync attempt was reset");
	char cmd[800];
	snprintf(cmd, sizeof cmd, "redis-cli -p %d set k v", mport);
	char *out = kbt_sh(cmd, 5000, NULL);
	cr_assert(strstr(out, "OK"), "other clients are still served: %s", out);
	/* the replica kept trying: its first sync and at least two more */
	snprintf(cmd, sizeof cmd, "grep -c 'MASTER <-> REPLICA sync started' %s/redis.log", r.dir);
	char *tries = kbt_sh(cmd, 5000, NULL);
	cr_assert_geq(atoi(tries), 3, "sync attempts: %s", tries);

	kbt_server_stop(&m, 5000);
	kbt_redis_start(&m, "master-restarted", &(struct kbt_under){ "q238009-rejoin-fails-until-restart", node_a_only, 0, mport },
			master_args);
	cr_assert(wait_link(r.port, "up", 10000), "after the master restarts the replica re-syncs");
	kbt_server_stop(&r, 5000);
	kbt_server_stop(&m, 5000);
}

Test(q238009, redis_replica_client_side_heals_after_a_while, .timeout = 60)
{
	struct kbt_server m, r;
	char mport[16], set_port[32];

	kbt_redis_start(&m, "master", NULL, master_args);
	snprintf(mport, sizeof mport, "%d", m.port);
	snprintf(set_port, sizeof set_port, "port=%d", m.port);
	const char *set[] = { "nodes=127.0.0.1/32", set_port, "heal=4s", NULL };
	start_replica(&r, &(struct kbt_under){ "q238009-rejoin-fails-client", set, 0, 0 }, m.port);
	cr_assert(wait_link(r.port, "up", 10000), "the replica syncs");
	cut_link(m.port);
	sleep(2);
	cr_assert(wait_link(r.port, "down", 0), "within the heal time it cannot reconnect");
	char path[800];
	snprintf(path, sizeof path, "%s/redis.log", r.dir);
	char *rlog = kbt_slurp(path);
	cr_assert(strstr(rlog, "Connection refused"), "refused on its normal, non-blocking path: %s", rlog);
	cr_assert_geq(kbt_injections(&r, "call", "connect", "action", "refuse", NULL), 1);
	cr_assert(wait_link(r.port, "up", 10000), "after the heal time it re-syncs");
	kbt_server_stop(&r, 5000);
	kbt_server_stop(&m, 5000);
}
