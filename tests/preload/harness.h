/*
 * harness.h - running programs under the shim for the preload tests.
 *
 * LD_PRELOAD and KBFAULT_* are set in the child's environment only; the
 * test process itself never loads the shim. Every wait is bounded: a
 * child that outlives its deadline is killed and the test fails.
 */
#ifndef KBT_HARNESS_H
#define KBT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kbfault/json.h"

struct kbt_proc {
	pid_t pid;
	int out, err; /* read ends of the child's stdout and stderr */
};

/* Path of a file in the build directory (KB_BUILD), e.g. "libkbfault.so". */
const char *kbt_build(const char *name);

/* A fresh temporary directory for this test, removed at exit. */
const char *kbt_tmpdir(void);

/* Writes text to dir/name and returns the path. */
const char *kbt_write(const char *name, const char *text);
/* Writes text to path; a failure fails the test. */
void kbt_write_path(const char *path, const char *text);

/* The test's injection log: "log" in its temporary directory. */
const char *kbt_logpath(void);

/* KBFAULT_RECIPE (the text, written to a file) and KBFAULT_LOG
 * (kbt_logpath()) as env_extra for kbt_spawn/kbt_run. */
const char **kbt_under(const char *recipe);

/* Whether the tests run under the named sanitizer (KB_SANITIZER: asan,
 * tsan, valgrind), and skipping the test, saying why, when they do. */
bool kbt_sanitizer_is(const char *name);
void kbt_skip_under(const char *sanitizer, const char *why);

/* Starts argv with env_extra ("K=V", NULL-terminated) added to a clean
 * copy of our environment; preload says whether to add libkbfault.so. */
void kbt_spawn(struct kbt_proc *p, const char *const *argv, const char *const *env_extra, bool preload);

/* The child's next stdout line (without newline), or NULL by the deadline. */
char *kbt_line(struct kbt_proc *p, int timeout_ms);

/* Waits for the child; returns its exit status, 128+signal, or -1 after
 * killing it at the deadline. Collects what is left of stdout/stderr. */
int kbt_wait(struct kbt_proc *p, int timeout_ms, char **out, char **err);

/* What is left to read on fd, until its end (closes fd). */
char *kbt_slurp_fd(int fd);

/* spawn + wait */
int kbt_run(const char *const *argv, const char *const *env_extra, bool preload, int timeout_ms,
	    char **out, char **err);

/* The kbfault command with arguments (NULL-terminated), not preloaded,
 * within 20 s; returns as kbt_run. */
int kbt_kbfault(const char *const *args, char **out, char **err);

/* The port a server announced in its first line ("listening on H:P" or
 * "port P"). */
int kbt_port_of(const char *line);

/* An injection log, every line parsed; a line that does not parse fails
 * the test. */
struct kbt_log {
	size_t n;
	struct kb_json_obj *line;
};
struct kbt_log kbt_log_read(const char *path);
void kbt_log_free(struct kbt_log *log);
/* Lines with every given key=value (pairs, NULL-terminated). */
size_t kbt_log_count(const struct kbt_log *log, ...);

/* A number from a flat JSON object printed by a helper. */
long kbt_json_num(const char *json, const char *key);


/* kbdemo-server under `recipe` (NULL: not preloaded), logging to `log`,
 * with extra arguments; returns the port it listens on. */
int kbt_server(struct kbt_proc *p, const char *recipe, const char *log, const char *const *args);

/* kbdemo-client against 127.0.0.1:port; returns its JSON summary. */
char *kbt_client(int port, int count, int concurrency, int timeout_ms);

#endif
