/* Q124737, session count miscounted: clients holding sessions of three
 * exchanges, eight at a time, 100 attempts. Under the recipe, sessions
 * are cut mid-conversation once the miscounted total reaches zero, and
 * every attempt after the 60th is refused as "session limit exceeded". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "servers.h"

static const struct kbt_under gateway = { "q124737-session-count-miscounted", NULL, 0, 0 };

/* The client's view and the log's must tell the same story. */
static void both_symptoms(const struct kbt_server *s, const char *res)
{
	size_t cuts = kbt_injections(s, "effect", "cut", NULL);
	size_t refusals = kbt_injections(s, "effect", "refused", "reason", "session limit exceeded", NULL);
	long broken = kbt_json_num(res, "dropped") + kbt_json_num(res, "reset");
	cr_assert_geq(cuts, 1, "active sessions were cut: %s", res);
	cr_assert_eq(refusals, 40, "attempts 61 to 100 refused (%zu): %s", refusals, res);
	cr_assert_geq(kbt_json_num(res, "dropped"), 1, "a session dropped mid-conversation: %s", res);
	cr_assert_geq(broken, (long)refusals, "every refusal and cut is a broken session for a client: %s", res);
	cr_assert_lt(kbt_json_num(res, "ok"), 60, "%s", res);
}

static void healthy(const char *res)
{
	cr_assert_eq(kbt_json_num(res, "ok") + kbt_json_num(res, "no_eof"), 100, "all sessions complete: %s", res);
	cr_assert_eq(kbt_json_num(res, "dropped") + kbt_json_num(res, "reset"), 0, "%s", res);
}

Test(q124737, demo_server, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "100", "--concurrency", "8", "--lines", "3", "--gap", "100", "--timeout",
				 "3000", NULL };
	const char *args[] = { "--lines", "3", "--threads", "8", "--idle-exit", "60", NULL };

	kbt_demo_start(&s, "none", NULL, args);
	healthy(kbt_drive(&s, client, 120000));
	kbt_server_stop(&s, 5000);

	kbt_demo_start(&s, "gateway", &gateway, args);
	both_symptoms(&s, kbt_drive(&s, client, 120000));
	cr_assert_eq(kbt_server_stop(&s, 5000), 0);
}

Test(q124737, nginx, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "100", "--concurrency", "8", "--lines", "3", "--gap", "100", "--timeout",
				 "3000", "--request", "GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n", "--final",
				 "GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n", NULL };

	kbt_nginx_start(&s, "none", NULL, 1, NULL);
	healthy(kbt_drive(&s, client, 120000));
	kbt_server_stop(&s, 5000);

	kbt_nginx_start(&s, "gateway", &gateway, 1, NULL);
	both_symptoms(&s, kbt_drive(&s, client, 120000));
	kbt_server_stop(&s, 5000);
}

Test(q124737, redis, .timeout = 120)
{
	struct kbt_server s;
	const char *client[] = { "--count", "100", "--concurrency", "8", "--lines", "3", "--gap", "100", "--timeout",
				 "3000", "--request", "PING\\r\\n", "--final", "QUIT\\r\\n", NULL };

	kbt_redis_start(&s, "none", NULL, NULL);
	healthy(kbt_drive(&s, client, 120000));
	kbt_server_stop(&s, 5000);

	kbt_redis_start(&s, "gateway", &gateway, NULL);
	both_symptoms(&s, kbt_drive(&s, client, 120000));
	kbt_server_stop(&s, 5000);
}

Test(q124737, leaked_memory_grows_per_attempt, .timeout = 120)
{
	struct kbt_server s;
	const char *set[] = { "leak=262144", "slots=1000", NULL };
	const char *client[] = { "--count", "100", "--concurrency", "4", "--timeout", "2000", NULL };
	char path[64], cmd[200];

	kbt_demo_start(&s, "leak", &(struct kbt_under){ "q124737-session-count-miscounted", set, 0, 0 },
		       (const char *[]){ "--idle-exit", "60", NULL });
	/* the server is kbdemo-server itself: kbfault run exec'd it */
	snprintf(path, sizeof path, "/proc/%d/status", s.proc.pid);
	snprintf(cmd, sizeof cmd, "awk '/^VmRSS/ {print $2}' %s", path);
	long before = atol(kbt_sh(cmd, 5000, NULL));
	free(kbt_drive(&s, client, 60000));
	long after = atol(kbt_sh(cmd, 5000, NULL));
	/* 100 attempts x 256 KiB: at least 20 MiB more, never given back */
	cr_assert_geq(after - before, 20 * 1024, "VmRSS %ld KiB -> %ld KiB", before, after);
	kbt_server_stop(&s, 5000);
}
