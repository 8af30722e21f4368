/* Q298486, stops at the 1,024th: the 1,024th accepted connection stalls
 * the service; what comes after backs up unanswered while the process
 * stays alive and listening; SIGTERM still stops it normally. With
 * abort=yes the process dies instead. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "servers.h"

#define RESP "--request", "PING\\r\\n", "--final", "QUIT\\r\\n"
#define HTTP "--request", "GET / HTTP/1.0\\r\\n\\r\\n"

static const struct kbt_under stops = { "q298486-stops-at-1024", NULL, 0, 0 };

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* 1,040 clients, 4 at a time: served up to the 1,024th, the rest
 * unanswered; then the server is alive, still listening, and stops on
 * SIGTERM. A server that accepts in batches (redis) may have taken up to
 * three more connections just before the 1,024th: they wait behind the
 * stalled thread, unserved, like everything after it. */
static void stops_at_1024(struct kbt_server *s, const char *const *client)
{
	char *res = kbt_drive(s, client, 120000);
	long ok = kbt_json_num(res, "ok");
	cr_assert(ok >= 1020 && ok <= 1023, "served up to the 1,024th: %s", res);
	/* waiting: no reply, no connection, or (redis) a reply but no answer
	 * to the QUIT that followed it - never a refusal or a reset */
	long waiting = kbt_json_num(res, "reply_timeout") + kbt_json_num(res, "connect_timeout") +
		       kbt_json_num(res, "no_eof");
	cr_assert_eq(waiting, 1040 - ok, "everything after it waits: %s", res);
	cr_assert(kbt_server_alive(s), "the process is alive");
	cr_assert(kbt_listening(s->port), "and still listening");
	cr_assert_eq(kbt_injections(s, "action", "stall", "stall", "forever", "hit", "1024", NULL), 1);
	long long t0 = now_ms();
	int rc = kbt_server_stop(s, 10000);
	cr_assert_eq(rc, 0, "SIGTERM stops it normally (status %d): %s", rc, s->err);
	cr_assert_lt(now_ms() - t0, 8000);
}

static void healthy(struct kbt_server *s, const char *const *client)
{
	char *res = kbt_drive(s, client, 120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 1040, "%s", res);
	cr_assert_eq(kbt_server_stop(s, 10000), 0);
}

Test(q298486, demo_server, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "1040", "--concurrency", "4", "--timeout", "800", NULL };
	const char *args[] = { "--idle-exit", "60", NULL };

	kbt_demo_start(&s, "none", NULL, args);
	healthy(&s, client);
	kbt_demo_start(&s, "stops", &stops, args);
	stops_at_1024(&s, client);
}

Test(q298486, nginx_two_workers_share_the_count, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "1040", "--concurrency", "4", "--timeout", "800", HTTP, NULL };

	kbt_nginx_start(&s, "none", NULL, 2, NULL);
	healthy(&s, client);
	kbt_nginx_start(&s, "stops", &stops, 2, NULL);
	stops_at_1024(&s, client);
}

Test(q298486, redis, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "1040", "--concurrency", "4", "--timeout", "800", RESP, NULL };

	kbt_redis_start(&s, "none", NULL, NULL);
	healthy(&s, client);
	kbt_redis_start(&s, "stops", &stops, NULL);
	stops_at_1024(&s, client);
}

Test(q298486, abort_instead_exercises_a_supervisor, .timeout = 60)
{
	struct kbt_server s;
	const char *set[] = { "abort=yes", "count=50", NULL };
	const char *client[] = { "--count", "60", "--concurrency", "1", "--timeout", "800", NULL };

	kbt_demo_start(&s, "abort", &(struct kbt_under){ "q298486-stops-at-1024", set, 0, 0 },
		       (const char *[]){ "--idle-exit", "60", NULL });
	char *res = kbt_drive(&s, client, 60000);
	cr_assert_eq(kbt_json_num(res, "ok"), 49, "%s", res);
	int rc = kbt_wait(&s.proc, 10000, NULL, NULL);
	cr_assert_eq(rc, 128 + SIGABRT, "killed by SIGABRT at the 50th (status %d)", rc);
	cr_assert_eq(kbt_injections(&s, "action", "abort", "hit", "50", NULL), 1, "and logged first");
}
