/*
 * log.c - the injection log; see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kbfault/errnos.h"
#include "kbfault/json.h"
#include "fdtable.h"
#include "guard.h"
#include "real.h"
#include "shim.h"

#define PROTECTED_MAX 4
#define LINE_MAX_BYTES 2048

static int protected_fds[PROTECTED_MAX] = { -1, -1, -1, -1 };
static int log_fd = -1;
static unsigned log_writers; /* writes in flight: see kb_protect_evict */
static int log_warned;
static char log_path[1024];

/* Our descriptors sit high, away from the small numbers hosts and their
 * test harnesses assume are theirs, but below a lowered soft limit. */
static int high_fd_base(void)
{
	long max = sysconf(_SC_OPEN_MAX);
	if (max <= 0)
		return 3;
	long base = max / 2;
	if (base > 1000)
		base = 1000;
	return base < 3 ? 3 : (int)base;
}

void kb_protect(int fd)
{
	/* its entry in the table (and, beyond it, the floor) sends it to
	 * every hook's slow path, where kb_is_protected() decides */
	kb_fd_mark_ours(fd);
	for (int i = 0; i < PROTECTED_MAX; i++) {
		int expected = -1;
		if (__atomic_compare_exchange_n(&protected_fds[i], &expected, fd, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return;
	}
}

void kb_protected_to_table(void)
{
	for (int i = 0; i < PROTECTED_MAX; i++) {
		int fd = __atomic_load_n(&protected_fds[i], __ATOMIC_RELAXED);
		if (fd >= 0)
			kb_fd_mark_ours(fd);
	}
}

bool kb_is_protected(int fd)
{
	for (int i = 0; i < PROTECTED_MAX; i++)
		if (__atomic_load_n(&protected_fds[i], __ATOMIC_RELAXED) == fd)
			return fd >= 0;
	return false;
}

int kb_move_high(int fd)
{
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, high_fd_base());
	if (moved < 0)
		return fd;
	kb_real.close(fd);
	return moved;
}

int kb_protected_max(void)
{
	int max = -1;
	for (int i = 0; i < PROTECTED_MAX; i++) {
		int fd = __atomic_load_n(&protected_fds[i], __ATOMIC_RELAXED);
		if (fd > max)
			max = fd;
	}
	return max;
}

void kb_protect_evict(int fd)
{
	for (int i = 0; i < PROTECTED_MAX; i++) {
		if (fd < 0 || __atomic_load_n(&protected_fds[i], __ATOMIC_SEQ_CST) != fd)
			continue;
		int moved = fcntl(fd, F_DUPFD_CLOEXEC, high_fd_base());
		if (moved < 0)
			return; /* nothing better to do: the host wins the number */
		kb_fd_mark_ours(moved);
		__atomic_store_n(&protected_fds[i], moved, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&log_fd, __ATOMIC_SEQ_CST) == fd) {
			__atomic_store_n(&log_fd, moved, __ATOMIC_SEQ_CST);
			/* A writer that read the old number before the store may
			 * still be in write(); wait for it, or its line would go
			 * into whatever the host puts at `fd`. Writes are short;
			 * the wait is bounded anyway. */
			for (int spin = 0; spin < 100000 && __atomic_load_n(&log_writers, __ATOMIC_SEQ_CST);
			     spin++)
				sched_yield();
		}
		if (__atomic_load_n(&kb_shim.sink4, __ATOMIC_RELAXED) == fd)
			__atomic_store_n(&kb_shim.sink4, moved, __ATOMIC_RELAXED);
		if (__atomic_load_n(&kb_shim.sink6, __ATOMIC_RELAXED) == fd)
			__atomic_store_n(&kb_shim.sink6, moved, __ATOMIC_RELAXED);
		/* the old number is about to be replaced by the host's dup2 */
		kb_fd_forget(fd);
	}
}

int kb_log_open(const char *path)
{
	int fd;

	if (path == NULL || path[0] == '\0' || strcmp(path, "stderr") == 0 || strcmp(path, "-") == 0) {
		snprintf(log_path, sizeof log_path, "stderr");
		fd = fcntl(2, F_DUPFD_CLOEXEC, high_fd_base());
	} else {
		snprintf(log_path, sizeof log_path, "%s", path);
		/* O_NOFOLLOW: a symlink planted where the log should go (say in
		 * /tmp) is refused rather than followed. */
		int tmp = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
		if (tmp < 0)
			return -errno;
		fd = fcntl(tmp, F_DUPFD_CLOEXEC, high_fd_base());
		int e = errno;
		kb_real.close(tmp);
		errno = e;
	}
	if (fd < 0)
		return -errno;
	kb_protect(fd);
	__atomic_store_n(&log_fd, fd, __ATOMIC_SEQ_CST);
	return 0;
}

const char *kb_log_path(void)
{
	return log_path;
}

static void warn_once(int err)
{
	char msg[1400];

	if (__atomic_exchange_n(&log_warned, 1, __ATOMIC_RELAXED))
		return;
	int n = snprintf(msg, sizeof msg,
			 "kbfault: warning: cannot write the injection log %s: %s; further injections in process %d are not logged\n",
			 log_path, strerrordesc_np(err) ? strerrordesc_np(err) : "error", (int)getpid());
	if (n > 0) {
		ssize_t ignored = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
		(void)ignored;
	}
}

void kb_log_line(const char *line, size_t len)
{
	__atomic_add_fetch(&log_writers, 1, __ATOMIC_SEQ_CST);
	int fd = __atomic_load_n(&log_fd, __ATOMIC_SEQ_CST);
	if (fd >= 0) {
		ssize_t n;
		do {
			n = write(fd, line, len);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			warn_once(errno);
		else if ((size_t)n != len)
			warn_once(ENOSPC);
	}
	__atomic_sub_fetch(&log_writers, 1, __ATOMIC_SEQ_CST);
}

static void common_fields(struct kb_jw *w, const char *event)
{
	struct timespec real, mono;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	uint64_t since = (uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec - kb_shim.start_ns;
	kb_jw_str(w, "event", event);
	kb_jw_fixed(w, "ts", (uint64_t)real.tv_sec, (uint64_t)real.tv_nsec / 1000, 6);
	kb_jw_fixed(w, "t", since / 1000000000ULL, (since % 1000000000ULL) / 1000, 6);
	kb_jw_i64(w, "pid", getpid());
	kb_jw_i64(w, "tid", gettid());
	kb_jw_str(w, "program", kb_shim.program);
}

void kb_log_start(bool forked)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;

	kb_jw_begin(&w, line, sizeof line);
	common_fields(&w, "start");
	kb_jw_i64(&w, "ppid", getppid());
	kb_jw_str(&w, "argv0", kb_shim.argv0);
	kb_jw_str(&w, "recipe", kb_shim.recipe.name);
	kb_jw_str(&w, "recipe_path", kb_shim.recipe.path);
	kb_jw_u64(&w, "seed", kb_shim.seed);
	if (kb_shim.overrides[0])
		kb_jw_str(&w, "params", kb_shim.overrides);
	kb_jw_u64(&w, "rules", kb_shim.recipe.nrules);
	kb_jw_u64(&w, "active", kb_shim.plan.active);
	kb_jw_bool(&w, "fork", forked);
	kb_jw_str(&w, "version", KB_VERSION);
	kb_log_line(line, kb_jw_end(&w));
}

void kb_log_error(const char *message)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;

	kb_jw_begin(&w, line, sizeof line);
	common_fields(&w, "error");
	kb_jw_str(&w, "message", message);
	kb_jw_str(&w, "version", KB_VERSION);
	kb_log_line(line, kb_jw_end(&w));
}

static void site_fields(struct kb_jw *w, const struct kb_site *s, const struct kb_verdict *v)
{
	char addr[64];

	kb_jw_str(w, "rule", v->rule->name);
	kb_jw_u64(w, "hit", v->hit);
	kb_jw_str(w, "call", kb_call_name(s->call));
	if (s->via)
		kb_jw_str(w, "via", s->via);
	kb_jw_i64(w, "fd", s->fd);
	if (s->role != KB_ROLE_NONE)
		kb_jw_str(w, "role", kb_role_name(s->role));
	if (s->fd >= 0 && s->call != KB_CALL_CONNECT) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct kb_addr local;
		if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0) {
			kb_addr_from_sockaddr((struct sockaddr *)&ss, len, &local);
			if (kb_addr_format(&local, addr, sizeof addr))
				kb_jw_str(w, "local", addr);
		}
	}
	if (s->peer && kb_addr_format(s->peer, addr, sizeof addr))
		kb_jw_str(w, "peer", addr);
}

/* Milliseconds from nanoseconds, to the microsecond. */
static void jw_ms(struct kb_jw *w, const char *key, uint64_t ns)
{
	kb_jw_fixed(w, key, ns / 1000000ULL, (ns % 1000000ULL) / 1000, 3);
}

/* The start and end of every line about a call: the shim's own work,
 * under the guard, leaving errno as the host had it. */
static void site_line_begin(struct kb_jw *w, char *line, size_t len, const char *event,
			    const struct kb_site *s, const struct kb_verdict *v)
{
	kb_guard_enter();
	kb_jw_begin(w, line, len);
	common_fields(w, event);
	site_fields(w, s, v);
}

static void site_line_end(struct kb_jw *w, int saved)
{
	kb_log_line(w->buf, kb_jw_end(w));
	kb_guard_leave();
	errno = saved;
}

void kb_log_inject(const struct kb_site *s, const struct kb_verdict *v, const struct kb_effect *e)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;
	const struct kb_rule *r = v->rule;
	int saved = errno;

	site_line_begin(&w, line, sizeof line, "inject", s, v);
	kb_jw_str(&w, "action", kb_action_name(r->action));
	if (r->action == KB_ACT_FAIL) {
		const char *name = kb_errno_name(r->err);
		if (name)
			kb_jw_str(&w, "errno", name);
		else
			kb_jw_i64(&w, "errno", r->err);
	}
	if ((r->action == KB_ACT_BACKLOG || r->action == KB_ACT_QUEUE) && e && !e->effect) {
		/* what listen() asked for and what it got: the cap, unless it
		 * asked for less (a negative backlog means "the most allowed") */
		bool capped = e->requested < 0 || e->requested > r->backlog;
		kb_jw_i64(&w, "requested", e->requested);
		if (r->action == KB_ACT_BACKLOG || r->queue_mode == KB_QUEUE_HANG)
			kb_jw_i64(&w, "backlog", capped ? r->backlog : e->requested);
	}
	if (r->action == KB_ACT_QUEUE) {
		kb_jw_i64(&w, "queue", r->backlog);
		kb_jw_str(&w, "mode", kb_queue_mode_name(r->queue_mode));
	}
	if (e && e->effect)
		kb_jw_str(&w, "effect", e->effect);
	if (e && e->reason)
		kb_jw_str(&w, "reason", e->reason);
	if (e && e->has_count)
		kb_jw_i64(&w, "count", e->count);
	if (e && e->queued >= 0 && e->effect)
		kb_jw_i64(&w, "queued", e->queued);
	if (e && e->attempt)
		kb_jw_u64(&w, "attempt", e->attempt);
	if (r->delay_ns)
		jw_ms(&w, "delay_ms", r->delay_ns);
	if (r->action == KB_ACT_STALL) {
		if (r->stall_ns == KB_FOREVER)
			kb_jw_str(&w, "stall", "forever");
		else
			jw_ms(&w, "stall_ms", r->stall_ns);
	}
	site_line_end(&w, saved);
}

void kb_log_mark(const struct kb_site *s, const struct kb_verdict *v, uint64_t until_ns, bool stored)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;
	int saved = errno;

	site_line_begin(&w, line, sizeof line, "mark", s, v);
	if (until_ns == KB_FOREVER)
		kb_jw_str(&w, "until", "exit");
	else
		kb_jw_fixed(&w, "until_t", until_ns / 1000000000ULL, (until_ns % 1000000000ULL) / 1000, 6);
	if (!stored)
		kb_jw_str(&w, "error", "mark table full: mark lost");
	site_line_end(&w, saved);
}

void kb_log_stall_end(const struct kb_site *s, const struct kb_verdict *v, uint64_t stalled_ns,
		      bool interrupted)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;
	int saved = errno;

	site_line_begin(&w, line, sizeof line, "stall-end", s, v);
	jw_ms(&w, "stalled_ms", stalled_ns);
	kb_jw_bool(&w, "interrupted", interrupted);
	site_line_end(&w, saved);
}
