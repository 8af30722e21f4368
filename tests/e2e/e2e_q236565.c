/* Q236565, connections not released: with a descriptor limit of 64, the
 * demo server, nginx and redis hold every connection they close (the
 * clients wait in vain for the end of the stream, the server's side sits
 * in CLOSE-WAIT) until they run out of descriptors and stop answering. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "servers.h"

#define HTTP "--request", "GET / HTTP/1.0\\r\\n\\r\\n"
#define RESP "--request", "PING\\r\\n", "--final", "QUIT\\r\\n"

static const struct kbt_under leak = { "q236565-connections-not-released", NULL, 64, 0 };
static const struct kbt_under plain = { NULL, NULL, 64, 0 };

/* Runs 80 clients, 8 at a time, against the server s was started as; with
 * the leak, the connections pile up and the server runs dry. */
static void scenario(struct kbt_server *s, const char *const *client, bool leaking)
{
	char *res = kbt_drive(s, client, 120000);
	int cw = kbt_close_wait(s->port);
	size_t leaks = kbt_injections(s, "action", "leak", NULL);
	cr_assert(kbt_server_alive(s), "the server is still running");
	if (!leaking) {
		cr_assert_eq(kbt_json_num(res, "ok"), 80, "healthy with the same limit: %s", res);
		cr_assert_eq(cw, 0);
		return;
	}
	long no_eof = kbt_json_num(res, "no_eof");
	long stuck = kbt_json_num(res, "reply_timeout") + kbt_json_num(res, "connect_timeout");
	cr_assert_eq(kbt_json_num(res, "ok"), 0, "no client ever sees its connection end: %s", res);
	cr_assert_geq(no_eof, 20, "served, then left open: %s", res);
	cr_assert_gt(stuck, 0, "then out of descriptors, unanswered: %s", res);
	cr_assert_geq(cw, no_eof, "every left-open connection is in CLOSE-WAIT (%d)", cw);
	cr_assert_geq(leaks, (size_t)no_eof, "one leak line per connection left open (%zu)", leaks);
}

Test(q236565, demo_server, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "80", "--concurrency", "8", "--timeout", "1000", NULL };
	const char *args[] = { "--idle-exit", "60", NULL };

	kbt_demo_start(&s, "none", &plain, args);
	scenario(&s, client, false);
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "leak", &leak, args);
	scenario(&s, client, true);
	cr_assert_eq(kbt_server_stop(&s, 5000), 0);
	cr_assert(strstr(s.out, "\"last_errno\":\"EMFILE\""), "the server saw EMFILE: %s", s.out);
}

Test(q236565, nginx, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "80", "--concurrency", "8", "--timeout", "1000", HTTP, NULL };

	kbt_nginx_start(&s, "none", &plain, 1, NULL);
	scenario(&s, client, false);
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "leak", &leak, 1, NULL);
	scenario(&s, client, true);
	char path[800];
	snprintf(path, sizeof path, "%s/error.log", s.dir);
	char *errlog = kbt_slurp(path);
	cr_assert(strstr(errlog, "Too many open files"), "nginx ran out of descriptors: %s", errlog);
	kbt_server_stop(&s, 5000);
}

Test(q236565, redis, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "80", "--concurrency", "8", "--timeout", "1000", RESP, NULL };

	kbt_redis_start(&s, "none", &plain, NULL);
	scenario(&s, client, false);
	kbt_server_stop(&s, 5000);

	kbt_redis_start(&s, "leak", &leak, NULL);
	scenario(&s, client, true);
	/* and redis-cli, a real client, cannot get an answer any more */
	char cmd[200];
	int status;
	snprintf(cmd, sizeof cmd, "redis-cli -p %d -t 2 PING 2>&1", s.port);
	char *out = kbt_sh(cmd, 10000, &status);
	cr_assert(status != 0 || strstr(out, "PONG") == NULL, "redis-cli got no PONG: %s", out);
	kbt_server_stop(&s, 5000);
}
