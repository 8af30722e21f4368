/* A connection a rule drops after accept() took it, on a blocking
 * listener that the host polls first (select() then accept(), as
 * postgresql does): accept() must not wait for the next client, which
 * the host's own call would not have done. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int select_server(struct kbt_proc *p, const char *recipe, const char *wait_ms)
{
	static char env_recipe[700], env_log[700];
	snprintf(env_recipe, sizeof env_recipe, "KBFAULT_RECIPE=%s", kbt_write("r.kbf", recipe));
	snprintf(env_log, sizeof env_log, "KBFAULT_LOG=%s", kbt_logpath());
	kbt_spawn(p, (const char *[]){ kbt_build("helpers/kbt-select"), "1", wait_ms, NULL }, (const char *[]){ env_recipe, env_log, NULL },
		  true);
	return kbt_port_of(kbt_line(p, 5000));
}

Test(dropped, blocking_accept_returns_when_nothing_else_waits)
{
	struct kbt_proc srv;
	char *out;
	int port = select_server(&srv, "rule drop\n  on accept\n  nth 1\n  action reset\n", "0");
	char *res = kbt_client(port, 1, 1, 2000);
	cr_assert_eq(kbt_json_num(res, "reset"), 1, "%s", res);
	/* before the next client arrives, the host's accept() has returned */
	char *line = kbt_line(&srv, 3000);
	cr_assert_not_null(line, "accept() is still waiting, for a client nobody announced");
	cr_assert_str_eq(line, "accept -1 ECONNABORTED");
	res = kbt_client(port, 1, 1, 2000);
	cr_assert_eq(kbt_json_num(res, "ok"), 1, "the next client is served: %s", res);
	cr_assert_str_eq(kbt_line(&srv, 3000), "accept ok");
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0);
	struct kbt_log l = kbt_log_read(kbt_logpath());
	cr_assert_eq(kbt_log_count(&l, "event", "inject", "action", "reset", "hit", "1", NULL), 1);
	kbt_log_free(&l);
}

Test(dropped, blocking_accept_takes_a_connection_already_waiting)
{
	/* two clients queued before the server looks: the first is dropped,
	 * the second was already waiting, and the same accept() returns it */
	struct kbt_proc srv;
	char *out;
	int port = select_server(&srv, "rule drop\n  on accept\n  nth 1\n  action reset\n", "500");
	char *res = kbt_client(port, 2, 2, 3000);
	cr_assert_eq(kbt_json_num(res, "reset"), 1, "%s", res);
	cr_assert_eq(kbt_json_num(res, "ok"), 1, "%s", res);
	cr_assert_str_eq(kbt_line(&srv, 3000), "accept ok", "no error for the host: another connection was waiting");
	cr_assert_eq(kbt_wait(&srv, 5000, &out, NULL), 0);
}
