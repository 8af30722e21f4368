/*
 * servers.h - real servers for the end-to-end tests: nginx and
 * redis-server from Debian, and the project's own kbdemo-server, each
 * started on a free loopback port with its own temporary directory,
 * optionally under a recipe (through `kbfault run`, as a user would), and
 * stopped at the end of the test.
 */
#ifndef KBT_SERVERS_H
#define KBT_SERVERS_H

#include <stdbool.h>

#include "harness.h"

struct kbt_server {
	char name[32];
	char dir[600];   /* the server's own directory under the test's tmpdir */
	char log[700];   /* the kbfault injection log */
	int port;
	struct kbt_proc proc;
	char *out, *err; /* after stop */
};

/* What to run a server under: a recipe (NULL: no shim), parameter
 * overrides ("NAME=VALUE", NULL-terminated; may be NULL), a descriptor
 * limit (0: unchanged), and the port (0: a free one). */
struct kbt_under {
	const char *recipe;
	const char *const *set;
	int nofile;
	int port;
};

int kbt_free_port(void);

/* Is something listening on 127.0.0.1:port? Read from /proc/net/tcp, so
 * the check itself opens no connection (a connection would be a session
 * to the server, which some recipes remember). */
bool kbt_listening(int port);

/* nginx with `workers` worker processes, serving "ok\n" at / ; extra is
 * added to the http block (may be NULL). */
void kbt_nginx_start(struct kbt_server *s, const char *name, const struct kbt_under *u, int workers,
		     const char *extra);

/* redis-server with persistence off; extra arguments (may be NULL). */
void kbt_redis_start(struct kbt_server *s, const char *name, const struct kbt_under *u,
		     const char *const *extra);

/* Any other server: kbt_server_prepare() makes its directory and picks
 * its port (s->dir, s->port), so that the caller can write its
 * configuration; kbt_server_run() starts cmd under u and waits until it
 * listens on that port. */
void kbt_server_prepare(struct kbt_server *s, const char *name, const struct kbt_under *u);
void kbt_server_run(struct kbt_server *s, const char *name, const struct kbt_under *u, const char *const *cmd);

/* kbdemo-server with arguments. */
void kbt_demo_start(struct kbt_server *s, const char *name, const struct kbt_under *u,
		    const char *const *args);

/* SIGTERM, then wait; returns the exit status (-1 if it had to be killed). */
int kbt_server_stop(struct kbt_server *s, int timeout_ms);

/* Is the server's process still running? */
bool kbt_server_alive(const struct kbt_server *s);

/* A shell command's standard output (bounded by timeout_ms; NULL status
 * pointer allowed). */
char *kbt_sh(const char *cmd, int timeout_ms, int *status);

/* kbdemo-client against the server with extra arguments; its JSON. */
char *kbt_drive(const struct kbt_server *s, const char *const *args, int timeout_ms);

/* Sockets on the server's port in state CLOSE-WAIT (on the server's side). */
int kbt_close_wait(int port);

/* Injections in the server's log with key=value pairs (NULL-terminated). */
size_t kbt_injections(const struct kbt_server *s, ...);

/* The text of a file (empty string if missing). */
char *kbt_slurp(const char *path);

#endif
