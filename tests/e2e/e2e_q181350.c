/* Q181350, backlog of five: a burst of clients against the demo server,
 * nginx and redis, with and without the recipe, in its three modes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "servers.h"

#define HTTP "--request", "GET / HTTP/1.0\\r\\n\\r\\n"
#define RESP "--request", "PING\\r\\n", "--final", "QUIT\\r\\n"

static const char *const mode_hang[] = { "mode=hang", NULL };
static const char *const mode_reset[] = { "mode=reset", NULL };
static const char *const mode_refuse[] = { "mode=refuse", NULL };

/* Healthy: every client served, and fast. */
static void healthy(const char *res, int n)
{
	cr_assert_eq(kbt_json_num(res, "ok"), n, "all served without the recipe: %s", res);
	cr_assert_lt(kbt_json_num(res, "p99"), 500, "and quickly: %s", res);
}

/* Hang: the backlog is five, and some of the burst waits on SYN retries. */
static void stalled(const struct kbt_server *s, const char *res)
{
	long slow = kbt_json_num(res, "p90") >= 900 || kbt_json_num(res, "p99") >= 900;
	long unanswered = kbt_json_num(res, "reply_timeout") + kbt_json_num(res, "connect_timeout");
	cr_assert(slow || unanswered > 0, "the burst stalls: %s", res);
	cr_assert_eq(kbt_json_num(res, "refused") + kbt_json_num(res, "reset"), 0, "Linux does not refuse: %s", res);
	cr_assert_geq(kbt_injections(s, "call", "listen", "action", "queue", "mode", "hang", "backlog", "5", NULL), 1);
}

/* Reset: every client beyond the queue is reset, one log line each. */
static void reset(const struct kbt_server *s, const char *res)
{
	long resets = kbt_json_num(res, "reset");
	cr_assert_gt(resets, 0, "%s", res);
	cr_assert_eq(kbt_injections(s, "effect", "reset", NULL), (size_t)resets,
		     "each reset the clients saw is in the log: %s", res);
}

/* Refuse: clients are turned away while the listener is paused, and it
 * listens again afterwards. */
static void refused(const struct kbt_server *s, const char *res, const char *const *again)
{
	cr_assert_gt(kbt_json_num(res, "refused"), 0, "%s", res);
	cr_assert_geq(kbt_injections(s, "effect", "pause", NULL), 1);
	cr_assert_geq(kbt_injections(s, "effect", "resume", NULL), 1);
	char *after = kbt_drive(s, again, 10000);
	cr_assert_eq(kbt_json_num(after, "ok"), 1, "the listener listens again: %s", after);
}

Test(q181350, demo_server, .timeout = 120)
{
	struct kbt_server s;
	const char *burst[] = { "--count", "150", "--concurrency", "50", "--timeout", "4000", NULL };
	const char *one[] = { "--count", "1", "--timeout", "2000", NULL };
	const char *slow[] = { "--slow", "50", NULL };

	kbt_demo_start(&s, "none", NULL, slow);
	char *base = kbt_drive(&s, burst, 60000);
	kbt_server_stop(&s, 5000);
	cr_assert_eq(kbt_json_num(base, "ok"), 150, "%s", base);

	kbt_demo_start(&s, "hang", &(struct kbt_under){ "q181350-backlog-of-five", mode_hang, 0, 0 }, slow);
	stalled(&s, kbt_drive(&s, burst, 60000));
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "reset", &(struct kbt_under){ "q181350-backlog-of-five", mode_reset, 0, 0 }, slow);
	reset(&s, kbt_drive(&s, burst, 60000));
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "refuse", &(struct kbt_under){ "q181350-backlog-of-five", mode_refuse, 0, 0 }, slow);
	refused(&s, kbt_drive(&s, burst, 60000), one);
	cr_assert_eq(kbt_server_stop(&s, 5000), 0);
}

Test(q181350, nginx, .timeout = 120)
{
	struct kbt_server s;
	const char *burst[] = { "--count", "200", "--concurrency", "200", "--timeout", "5000", HTTP, NULL };
	const char *one[] = { "--count", "1", "--timeout", "2000", HTTP, NULL };

	kbt_nginx_start(&s, "none", NULL, 1, NULL);
	healthy(kbt_drive(&s, burst, 60000), 200);
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "hang", &(struct kbt_under){ "q181350-backlog-of-five", mode_hang, 0, 0 }, 1, NULL);
	stalled(&s, kbt_drive(&s, burst, 60000));
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "reset", &(struct kbt_under){ "q181350-backlog-of-five", mode_reset, 0, 0 }, 1, NULL);
	reset(&s, kbt_drive(&s, burst, 60000));
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "refuse", &(struct kbt_under){ "q181350-backlog-of-five", mode_refuse, 0, 0 }, 1, NULL);
	const char *waves[] = { "--count", "400", "--concurrency", "100", "--timeout", "5000", HTTP, NULL };
	refused(&s, kbt_drive(&s, waves, 60000), one);
	cr_assert_eq(kbt_server_stop(&s, 5000), 0);
}

Test(q181350, redis, .timeout = 120)
{
	struct kbt_server s;
	const char *burst[] = { "--count", "200", "--concurrency", "200", "--timeout", "5000", RESP, NULL };
	const char *one[] = { "--count", "1", "--timeout", "2000", RESP, NULL };

	kbt_redis_start(&s, "none", NULL, NULL);
	healthy(kbt_drive(&s, burst, 60000), 200);
	kbt_server_stop(&s, 5000);

	kbt_redis_start(&s, "hang", &(struct kbt_under){ "q181350-backlog-of-five", mode_hang, 0, 0 }, NULL);
	stalled(&s, kbt_drive(&s, burst, 60000));
	kbt_server_stop(&s, 5000);

	kbt_redis_start(&s, "refuse", &(struct kbt_under){ "q181350-backlog-of-five", mode_refuse, 0, 0 }, NULL);
	const char *waves[] = { "--count", "400", "--concurrency", "100", "--timeout", "5000", RESP, NULL };
	refused(&s, kbt_drive(&s, waves, 60000), one);
	cr_assert_eq(kbt_server_stop(&s, 5000), 0);
}
