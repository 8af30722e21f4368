/*
 * servers.c - see servers.h.
 */
#include "servers.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int kbt_free_port(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof in;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
	getsockname(fd, (struct sockaddr *)&in, &len);
	close(fd);
	return ntohs(in.sin_port);
}

bool kbt_listening(int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof line, f)) {
			char local[128];
			unsigned st;
			if (sscanf(line, " %*d: %127s %*s %x", local, &st) != 2)
				continue;
			const char *colon = strrchr(local, ':');
			if (colon && (int)strtol(colon + 1, NULL, 16) == port && st == 0x0A) {
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	return false;
}

static void wait_listening(struct kbt_server *s)
{
	for (int i = 0; i < 200; i++) {
		if (kbt_listening(s->port))
			return;
		int status;
		if (waitpid(s->proc.pid, &status, WNOHANG) == s->proc.pid) {
			char *out = kbt_slurp_fd(s->proc.out), *err = kbt_slurp_fd(s->proc.err);
			cr_assert_fail("%s exited before listening on %d: %s %s", s->name, s->port, out, err);
		}
		usleep(50000);
	}
	cr_assert_fail("%s never listened on port %d", s->name, s->port);
}

/* argv for running cmd under u: sh for the descriptor limit, kbfault run
 * for the recipe. */
static void start(struct kbt_server *s, const char *name, const struct kbt_under *u, const char *const *cmd)
{
	const char *argv[96];
	char limit[64];
	size_t n = 0;

	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->log, sizeof s->log, "%s/kbfault.log", s->dir);
	if (u && u->nofile) {
		snprintf(limit, sizeof limit, "ulimit -n %d && exec \"$@\"", u->nofile);
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = limit;
		argv[n++] = "sh";
	}
	if (u && u->recipe) {
		argv[n++] = kbt_build("kbfault");
		argv[n++] = "run";
		argv[n++] = "-r";
		argv[n++] = u->recipe;
		argv[n++] = "-l";
		argv[n++] = s->log;
		for (size_t i = 0; u->set && u->set[i] && n < 60; i++) {
			argv[n++] = "--set";
			argv[n++] = u->set[i];
		}
		argv[n++] = "--";
	}
	for (size_t i = 0; cmd[i] && n < 95; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	kbt_spawn(&s->proc, argv, NULL, false);
	wait_listening(s);
}

static void make_dir(struct kbt_server *s, const char *name, const struct kbt_under *u)
{
	char cmd[800];
	snprintf(s->dir, sizeof s->dir, "%s/%s", kbt_tmpdir(), name);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", s->dir);
	cr_assert_eq(system(cmd), 0);
	s->port = u && u->port ? u->port : kbt_free_port();
	s->out = s->err = NULL;
}

void kbt_server_prepare(struct kbt_server *s, const char *name, const struct kbt_under *u)
{
	make_dir(s, name, u);
}

void kbt_server_run(struct kbt_server *s, const char *name, const struct kbt_under *u, const char *const *cmd)
{
	start(s, name, u, cmd);
}

void kbt_nginx_start(struct kbt_server *s, const char *name, const struct kbt_under *u, int workers,
		     const char *extra)
{
	char conf[800], text[4096];
	make_dir(s, name, u);
	snprintf(conf, sizeof conf, "%s/nginx.conf", s->dir);
	snprintf(text, sizeof text,
		 "daemon off;\n"
		 "worker_processes %d;\n"
		 "error_log %s/error.log info;\n"
		 "pid %s/nginx.pid;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n"
		 "  access_log off;\n"
		 "  client_body_temp_path %s/body;\n"
		 "  %s\n"
		 "  server { listen 127.0.0.1:%d; location / { return 200 \"ok\\n\"; } }\n"
		 "}\n",
		 workers, s->dir, s->dir, s->dir, extra ? extra : "", s->port);
	kbt_write_path(conf, text);
	start(s, name, u, (const char *[]){ "/usr/sbin/nginx", "-p", s->dir, "-c", conf, NULL });
}

void kbt_redis_start(struct kbt_server *s, const char *name, const struct kbt_under *u,
		     const char *const *extra)
{
	const char *cmd[64];
	char port[16], logfile[700];
	size_t n = 0;
	make_dir(s, name, u);
	snprintf(port, sizeof port, "%d", s->port);
	snprintf(logfile, sizeof logfile, "%s/redis.log", s->dir);
	const char *base[] = { "/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
			       "--appendonly", "no", "--dir", s->dir, "--logfile", logfile, "--daemonize", "no", NULL };
	for (size_t i = 0; base[i]; i++)
		cmd[n++] = base[i];
	for (size_t i = 0; extra && extra[i] && n < 63; i++)
		cmd[n++] = extra[i];
	cmd[n] = NULL;
	start(s, name, u, cmd);
}

void kbt_demo_start(struct kbt_server *s, const char *name, const struct kbt_under *u,
		    const char *const *args)
{
	const char *cmd[64] = { kbt_build("kbdemo-server") };
	char port[16];
	size_t n = 1;
	make_dir(s, name, u);
	snprintf(port, sizeof port, "%d", s->port);
	cmd[n++] = "--port";
	cmd[n++] = port;
	for (size_t i = 0; args && args[i] && n < 63; i++)
		cmd[n++] = args[i];
	cmd[n] = NULL;
	start(s, name, u, cmd);
}

int kbt_server_stop(struct kbt_server *s, int timeout_ms)
{
	kill(s->proc.pid, SIGTERM);
	int rc = kbt_wait(&s->proc, timeout_ms, &s->out, &s->err);
	/* nginx's workers would outlive a master killed at the deadline:
	 * the process group takes everything the server started with it */
	kill(-s->proc.pid, SIGKILL);
	return rc;
}

bool kbt_server_alive(const struct kbt_server *s)
{
	return kill(s->proc.pid, 0) == 0 && waitpid(s->proc.pid, NULL, WNOHANG) == 0;
}

char *kbt_sh(const char *cmd, int timeout_ms, int *status)
{
	char *out;
	int rc = kbt_run((const char *[]){ "/bin/sh", "-c", cmd, NULL }, NULL, false, timeout_ms, &out, NULL);
	if (status)
		*status = rc;
	return out;
}

char *kbt_drive(const struct kbt_server *s, const char *const *args, int timeout_ms)
{
	const char *argv[48] = { kbt_build("kbdemo-client"), "--port" };
	char port[16];
	size_t n = 2;
	snprintf(port, sizeof port, "%d", s->port);
	argv[n++] = port;
	for (size_t i = 0; args && args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *out;
	int rc = kbt_run(argv, NULL, false, timeout_ms, &out, NULL);
	cr_assert_eq(rc, 0, "kbdemo-client: %s", out);
	return out;
}

int kbt_close_wait(int port)
{
	char cmd[200];
	snprintf(cmd, sizeof cmd, "ss -Htn state close-wait '( sport = :%d )' | wc -l", port);
	char *out = kbt_sh(cmd, 5000, NULL);
	int n = atoi(out);
	free(out);
	return n;
}

size_t kbt_injections(const struct kbt_server *s, ...)
{
	struct kbt_log log;
	if (access(s->log, F_OK) != 0)
		return 0;
	log = kbt_log_read(s->log);
	size_t count = 0;
	for (size_t i = 0; i < log.n; i++) {
		va_list ap;
		bool all = true;
		const char *ev = kb_json_str(&log.line[i], "event");
		if (ev == NULL || strcmp(ev, "inject") != 0)
			continue;
		va_start(ap, s);
		for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
			const char *v = va_arg(ap, const char *);
			const char *have = kb_json_str(&log.line[i], k);
			if (have == NULL || strcmp(have, v) != 0)
				all = false;
		}
		va_end(ap);
		count += all;
	}
	kbt_log_free(&log);
	return count;
}

char *kbt_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	return buf;
}
