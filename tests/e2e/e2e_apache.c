/* apache2 (Debian's, prefork MPM) under Q181350's refuse mode: a pool of
 * children accepting on one listener, each exiting after two connections
 * (MaxConnectionsPerChild). The child that pauses the listener exits at
 * its limit with connections still in its queue; the pool must resume the
 * listener and serve later clients (issue #12, item 4). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "servers.h"

#define HTTP "--request", "GET / HTTP/1.0\\r\\n\\r\\n"

static void apache_start(struct kbt_server *s, const char *name, const struct kbt_under *u)
{
	char cmd[2000], conf[800], text[8192];
	if (access("/usr/sbin/apache2", X_OK) != 0 || access("/usr/lib/apache2/modules/mod_mpm_prefork.so", R_OK) != 0)
		cr_skip_test("no apache2 (make e2e installs it)");
	kbt_server_prepare(s, name, u);
	/* the children run as www-data (apache drops root): they read the
	 * document root; the log they inherit from the parent */
	snprintf(cmd, sizeof cmd, "chmod 755 '%s' && mkdir -p '%s/htdocs' && echo ok > '%s/htdocs/index.html' && chmod -R a+rX '%s'",
		 kbt_tmpdir(), s->dir, s->dir, s->dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(conf, sizeof conf, "%s/httpd.conf", s->dir);
	snprintf(text, sizeof text,
		 "ServerRoot \"%s\"\n"
		 "LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so\n"
		 "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n"
		 "ServerName localhost\n"
		 "Listen 127.0.0.1:%d\n"
		 "User www-data\n"
		 "Group www-data\n"
		 "PidFile %s/httpd.pid\n"
		 "ErrorLog %s/error.log\n"
		 "LogLevel warn\n"
		 "Mutex file:%s default\n"
		 "DocumentRoot %s/htdocs\n"
		 "<Directory %s/htdocs>\n  Require all granted\n</Directory>\n"
		 "KeepAlive Off\n"
		 "StartServers 3\nMinSpareServers 2\nMaxSpareServers 4\nServerLimit 4\nMaxRequestWorkers 4\n"
		 "MaxConnectionsPerChild 2\n",
		 s->dir, s->port, s->dir, s->dir, s->dir, s->dir, s->dir);
	kbt_write_path(conf, text);

	kbt_server_run(s, name, u, (const char *[]){ "/usr/sbin/apache2", "-f", conf, "-D", "FOREGROUND", NULL });
}

Test(apache, prefork_pool_resumes_a_pause_its_child_left, .timeout = 120)
{
	struct kbt_server s;
	const struct kbt_under u = { "q181350-backlog-of-five", (const char *[]){ "mode=refuse", "backlog=2", NULL }, 0, 0 };
	apache_start(&s, "apache-refuse", &u);
	/* bursts that fill the queue, against children that leave after two
	 * connections: some pause the listener and exit holding its queue */
	for (int i = 0; i < 5; i++)
		free(kbt_drive(&s, (const char *[]){ HTTP, "--count", "40", "--concurrency", "40", "--timeout", "3000", NULL },
			       60000));
	/* the bursts may have used up every child: apache forks new ones in
	 * its maintenance pass, once a second, and the first to accept
	 * resumes the listener */
	sleep(3);
	char *res = kbt_drive(&s, (const char *[]){ HTTP, "--count", "10", "--concurrency", "1", "--timeout", "8000", NULL },
			      120000);
	cr_assert_eq(kbt_server_stop(&s, 20000), 0, "%s", s.err);
	struct kbt_log l = kbt_log_read(s.log);
	size_t pauses = kbt_log_count(&l, "event", "inject", "effect", "pause", NULL);
	size_t taken_over = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *why = kb_json_str(&l.line[i], "reason");
		if (why && strstr(why, "is gone"))
			taken_over++;
	}
	kbt_log_free(&l);
	cr_assert_geq(pauses, 1, "the bursts paused the listener");
	cr_assert_eq(kbt_json_num(res, "ok"), 10, "every later client is served: %s", res);
	cr_assert_geq(taken_over, 1, "a child resumed a pause whose child was gone");
}
