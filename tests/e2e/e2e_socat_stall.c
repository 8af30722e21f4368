/* socat (Debian's), fork per connection, under Q298486: its SIGCHLD
 * handler runs each time a connection's child exits, and must not end
 * the stall (issue #12, item 5: before, every stall ended at once and the
 * service never stopped); SIGTERM still stops it. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "servers.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

Test(socat_stall, sigchld_does_not_end_the_stall, .timeout = 120)
{
	struct kbt_server s;
	char listen[128];
	if (access("/usr/bin/socat", X_OK) != 0)
		cr_skip_test("no socat");
	snprintf(s.dir, sizeof s.dir, "%s", kbt_tmpdir());
	snprintf(s.log, sizeof s.log, "%s/kbfault.log", s.dir);
	s.port = kbt_free_port();
	snprintf(listen, sizeof listen, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr", s.port);
	kbt_spawn(&s.proc,
		  (const char *[]){ kbt_build("kbfault"), "run", "-r", "q298486-stops-at-1024", "-l", s.log, "--set",
				    "count=50", "--", "/usr/bin/socat", listen, "SYSTEM:read l; echo ok", NULL },
		  NULL, false);
	for (int i = 0; i < 200 && !kbt_listening(s.port); i++)
		usleep(50000);
	cr_assert(kbt_listening(s.port), "socat listens on %d", s.port);
	char *res = kbt_drive(&s, (const char *[]){ "--count", "70", "--concurrency", "1", "--timeout", "800", NULL },
			      120000);
	cr_assert_eq(kbt_json_num(res, "ok"), 49, "served up to the 50th, which stalls it: %s", res);
	cr_assert_eq(kbt_injections(&s, "action", "stall", NULL), 1);
	cr_assert(kbt_server_alive(&s), "socat is alive");
	long long t0 = now_ms();
	kill(s.proc.pid, SIGTERM);
	int rc = kbt_wait(&s.proc, 10000, NULL, NULL);
	kill(-s.proc.pid, SIGKILL);
	cr_assert_neq(rc, -1, "SIGTERM stops it");
	cr_assert_lt(now_ms() - t0, 10000);
}
