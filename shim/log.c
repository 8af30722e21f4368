/*
 * log.c - the injection log and the shim's own descriptors; see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kbfault/errnos.h"
#include "kbfault/json.h"
#include "kbfault/logfile.h"
#include "fdtable.h"
#include "guard.h"
#include "ownwrite.h"
#include "real.h"
#include "shim.h"

#define PROTECTED_MAX 4
#define LINE_MAX_BYTES 2048

/* How long one line may wait for room in a pipe, FIFO, socket or
 * terminal whose reader is slow (or gone to sleep), and how long start-up
 * waits for a FIFO's reader. A line that waits its whole time puts the
 * log in the stuck state: later lines are tried once, without waiting,
 * until one gets through, so a reader that never comes back costs the
 * host one wait, not one per line. */
#define LINE_WAIT_MS 1000
#define FIFO_WAIT_MS 1000

/* The protected set. A slot's number changes only under protect_lock;
 * host_closed says the host has closed that number once (kb_protect_close). */
static int protected_fds[PROTECTED_MAX] = { -1, -1, -1, -1 };
static int host_closed[PROTECTED_MAX];
static int protect_lock;

static int log_fd = -1;
static int log_kind = KB_OUT_FILE;
static unsigned log_writers; /* writes in flight: see kb_protect_evict */
static char log_path[1024];

/* What became of lines that did not get through (all per process; a
 * forked child starts afresh, but for need_newline, which is about the
 * file they share). */
static unsigned long long log_lost; /* lines not written whole since the last "lost" line */
static int log_stuck;               /* a line waited its whole time for room */
static int log_need_newline;        /* a cut line could not be ended: the next write ends it */
static int log_last_error;
/* Has this process written its start line? In a page the kernel clears in
 * every child it makes (MADV_WIPEONFORK): a child made by a raw clone(),
 * which runs no fork handler, reads zero and says it exists before its
 * first line. */
static int *said_start;
/* The default log, standard error, is the program's own output too: there
 * a start line waits for the process's first other line, so that the
 * helpers a command runs (a shell's, a version manager's) and the workers
 * that never see a fault do not fill it. A log that was named holds every
 * start line, at the start. */
static bool start_when_needed;
static bool start_forked;           /* the deferred line's "fork" */
static struct timespec start_real, start_mono; /* ... and its time: when the process started */
static int start_pid;               /* the process these are about (not a raw clone() child) */
static int log_warned;              /* the warning was written */
static int log_warn_tried;          /* ... or tried: later tries do not wait */

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

/* F_DUPFD_CLOEXEC as a system call of our own: no errno, and not the
 * cancellation point libc's fcntl() can be. */
static int dup_high(int fd, int base)
{
#if KB_HAVE_SYS
	long rc = kb_sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base, 0, 0, 0);
	return rc < 0 ? -1 : (int)rc;
#else
	int saved = errno;
	int rc = fcntl(fd, F_DUPFD_CLOEXEC, base);
	errno = saved;
	return rc;
#endif
}

/*
 * The lock that makes each change to the protected set one decision.
 * Without it, two threads that dup2() onto the log's number at once both
 * see the number protected and both move it - and the second one copies
 * whatever the first one's dup2() has put there by then: the host's file,
 * which then receives the log. It is taken inside the guard, so that a
 * signal handler interrupting its holder passes straight through every
 * hook instead of waiting for it, with cancellation disabled, and it is
 * held across nothing that can block: a few stores and one fcntl().
 */
struct held {
	int cancel_state;
};

static void protect_enter(struct held *h)
{
	kb_guard_enter();
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &h->cancel_state);
	while (__atomic_exchange_n(&protect_lock, 1, __ATOMIC_ACQUIRE))
		kb_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
}

static void protect_leave(struct held *h)
{
	__atomic_store_n(&protect_lock, 0, __ATOMIC_RELEASE);
	pthread_setcancelstate(h->cancel_state, NULL);
	kb_guard_leave();
}

void kb_protect(int fd)
{
	/* its entry in the table (and, beyond it, the floor) sends it to
	 * every hook's slow path, where kb_is_protected() decides */
	kb_fd_mark_ours(fd);
	for (int i = 0; i < PROTECTED_MAX; i++) {
		int expected = -1;
		if (__atomic_compare_exchange_n(&protected_fds[i], &expected, fd, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&host_closed[i], 0, __ATOMIC_RELAXED);
			return;
		}
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
	int moved = dup_high(fd, high_fd_base());
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

int kb_protect_close(int fd)
{
	struct held h;
	int rc = -1;

	protect_enter(&h);
	for (int i = 0; i < PROTECTED_MAX; i++) {
		if (fd < 0 || __atomic_load_n(&protected_fds[i], __ATOMIC_RELAXED) != fd)
			continue;
		rc = __atomic_exchange_n(&host_closed[i], 1, __ATOMIC_RELAXED) ? 0 : 1;
		break;
	}
	protect_leave(&h);
	return rc;
}

void kb_protect_evict(int fd)
{
	struct held h;
	bool log_moved = false;

	if (fd < 0)
		return;
	int base = high_fd_base();
	protect_enter(&h);
	for (int i = 0; i < PROTECTED_MAX; i++) {
		if (__atomic_load_n(&protected_fds[i], __ATOMIC_SEQ_CST) != fd)
			continue;
		int moved = dup_high(fd, base);
		if (moved < 0)
			break; /* nothing better to do: the host wins the number */
		kb_fd_mark_ours(moved);
		__atomic_store_n(&protected_fds[i], moved, __ATOMIC_SEQ_CST);
		__atomic_store_n(&host_closed[i], 0, __ATOMIC_RELAXED); /* a number the host never had */
		if (__atomic_load_n(&log_fd, __ATOMIC_SEQ_CST) == fd) {
			__atomic_store_n(&log_fd, moved, __ATOMIC_SEQ_CST);
			log_moved = true;
		}
		if (__atomic_load_n(&kb_shim.sink4, __ATOMIC_RELAXED) == fd)
			__atomic_store_n(&kb_shim.sink4, moved, __ATOMIC_RELAXED);
		if (__atomic_load_n(&kb_shim.sink6, __ATOMIC_RELAXED) == fd)
			__atomic_store_n(&kb_shim.sink6, moved, __ATOMIC_RELAXED);
		/* the old number is about to be replaced by the host's dup2 */
		kb_fd_forget(fd);
		break;
	}
	protect_leave(&h);
	/* A writer that read the old number before the store may be about
	 * to write(); wait for it, or its line would go into whatever the
	 * host puts at `fd`. Writers count only from reading the number to
	 * the end of that one write (never across a wait for room), so this
	 * is short; it is bounded anyway, and outside the lock. */
	for (int spin = 0; log_moved && spin < 100000 && __atomic_load_n(&log_writers, __ATOMIC_SEQ_CST); spin++)
		kb_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
}

void kb_log_atfork_child(void)
{
	/* the parent's other threads are gone: whatever they held */
	__atomic_store_n(&protect_lock, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&log_writers, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&log_lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&log_stuck, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&log_warned, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&log_warn_tried, 0, __ATOMIC_RELAXED);
}

int kb_log_open(const char *path, char *why, size_t why_len)
{
	int fd, n;
	int dest = kb_logdest_parse(path, &n);

	why[0] = '\0';
	snprintf(log_path, sizeof log_path, "%s", dest == KB_LOGDEST_STDERR ? "stderr" : path);
	if (dest != KB_LOGDEST_PATH) {
		/* this process's descriptor (standard error: 2), copied rather
		 * than opened again by a name: /proc/self/fd/N of a socket
		 * cannot be opened, and a copy shares the host's offset, so
		 * nothing either writes is overwritten */
		if (dest == KB_LOGDEST_STDERR)
			n = 2;
		fd = dup_high(n, high_fd_base());
		if (fd < 0) {
			snprintf(why, why_len, "descriptor %d is not open", n);
			return -EBADF;
		}
	} else {
		int tmp = kb_logfile_open(path, FIFO_WAIT_MS, why, why_len);
		if (tmp < 0)
			return tmp;
		fd = dup_high(tmp, high_fd_base());
		kb_real.close(tmp);
		if (fd < 0) {
			snprintf(why, why_len, "no descriptor free for it");
			return -EMFILE;
		}
	}
	__atomic_store_n(&log_kind, kb_out_kind_of(fd), __ATOMIC_RELAXED);
	start_when_needed = dest == KB_LOGDEST_STDERR;
	kb_protect(fd);
	__atomic_store_n(&log_fd, fd, __ATOMIC_SEQ_CST);
	return 0;
}

const char *kb_log_path(void)
{
	return log_path;
}

/* Says once per process that lines are being lost - truthfully: the
 * faults go on, later lines are still tried, and the log counts what it
 * lost once it takes a line again. The first try may wait a little for
 * room on standard error (which may be the log itself); until one try
 * gets through, later losses try again without waiting. */
static void warn_lost(void)
{
	char msg[1400];
	int err = __atomic_load_n(&log_last_error, __ATOMIC_RELAXED);

	if (__atomic_load_n(&log_warned, __ATOMIC_RELAXED))
		return;
	int wait = __atomic_exchange_n(&log_warn_tried, 1, __ATOMIC_RELAXED) ? 0 : 100;
	snprintf(msg, sizeof msg,
		 "kbfault: warning: cannot write the injection log %s: %s; that line of process %d is lost, "
		 "but faults are still injected and later lines are still tried; the log counts the lines it "
		 "lost in a \"lost\" line once it takes one again\n",
		 log_path, strerrordesc_np(err) ? strerrordesc_np(err) : "error", (int)getpid());
	if (kb_say(msg, wait))
		__atomic_store_n(&log_warned, 1, __ATOMIC_RELAXED);
}

/* One line (iov), given up to wait_ms for room: the bytes written, or
 * -errno (-EAGAIN: no room in time). Waiting happens before the number is
 * read for the write, never between the two, so that kb_protect_evict()
 * waits for no writer longer than one write takes. */
static long put(const struct iovec *iov, int n, int wait_ms)
{
	long long deadline = kb_out_now_ms() + wait_ms;
	int kind = __atomic_load_n(&log_kind, __ATOMIC_RELAXED);

	for (;;) {
		int fd = __atomic_load_n(&log_fd, __ATOMIC_SEQ_CST);
		if (fd < 0)
			return -EBADF;
		long long left = deadline - kb_out_now_ms();
		if (kind != KB_OUT_FILE && !kb_out_room(fd, left > 0 ? (int)left : 0))
			return -EAGAIN;
		__atomic_add_fetch(&log_writers, 1, __ATOMIC_SEQ_CST);
		long rc = -ESTALE;
		if (__atomic_load_n(&log_fd, __ATOMIC_SEQ_CST) == fd)
			rc = kb_out_try(fd, (enum kb_out_kind)kind, iov, n);
		__atomic_sub_fetch(&log_writers, 1, __ATOMIC_SEQ_CST);
		if (rc == -ESTALE || rc == -EINTR)
			continue; /* moved meanwhile, or a handler ran before anything was written */
		if (rc == -EAGAIN && deadline > kb_out_now_ms())
			continue; /* the room went to another writer */
		return rc;
	}
}

/*
 * Writes one line: whole, or not at all as far as the next line is
 * concerned. A write that stops short (a full filesystem, RLIMIT_FSIZE)
 * is never finished: other processes may have appended since, and the
 * rest would land in the middle of their lines. The piece is ended with
 * a newline instead, so that the next line starts on a line of its own;
 * if even that fails, the next write that gets through starts with one.
 * A line cut by a fatal signal (a write to a regular file can stop at a
 * page boundary when one is pending) stays cut: the process runs nothing
 * after it. Readers resynchronise on the next line. Returns whether the
 * line was written whole; *rc is what the write returned.
 */
static char newline[] = "\n";

static bool write_line(const char *line, size_t len, int wait_ms, long *rc)
{
	struct iovec iov[2];
	int n = 0;
	bool lead = __atomic_load_n(&log_need_newline, __ATOMIC_RELAXED);

	if (lead)
		iov[n++] = (struct iovec){ newline, 1 };
	iov[n++] = (struct iovec){ (void *)line, len };
	*rc = put(iov, n, wait_ms);
	if (*rc > 0 && lead)
		__atomic_store_n(&log_need_newline, 0, __ATOMIC_RELAXED); /* the newline went first */
	if (*rc == (long)(len + lead))
		return true;
	if (*rc > (long)lead) {
		/* a piece of this line is in the log: end it there */
		struct iovec nl = { newline, 1 };
		if (put(&nl, 1, 0) != 1)
			__atomic_store_n(&log_need_newline, 1, __ATOMIC_RELAXED);
	}
	return false;
}

static void log_lost_line(unsigned long long lines);
static void start_now(bool forked);

void kb_log_line(const char *line, size_t len)
{
	long rc;

	if (__atomic_load_n(&log_fd, __ATOMIC_RELAXED) < 0)
		return;
	/* one thread says the process started: two threads whose first lines
	 * come at once (a deferred start, a raw clone() child) write it once */
	if (said_start && !__atomic_load_n(said_start, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(said_start, 1, __ATOMIC_ACQ_REL) == 0)
		start_now(start_forked);
	int wait = __atomic_load_n(&log_stuck, __ATOMIC_RELAXED) ? 0 : LINE_WAIT_MS;
	if (write_line(line, len, wait, &rc)) {
		__atomic_store_n(&log_stuck, 0, __ATOMIC_RELAXED);
		unsigned long long lost = __atomic_exchange_n(&log_lost, 0, __ATOMIC_RELAXED);
		if (lost) {
			log_lost_line(lost);
			warn_lost(); /* if it could not be said when it happened */
		}
		return;
	}
	__atomic_add_fetch(&log_lost, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&log_last_error, rc < 0 ? (int)-rc : ENOSPC, __ATOMIC_RELAXED);
	if (rc == -EAGAIN && wait > 0)
		__atomic_store_n(&log_stuck, 1, __ATOMIC_RELAXED);
	warn_lost();
}

/* The fields every line starts with, at a given time. */
static void common_fields_at(struct kb_jw *w, const char *event, struct timespec real, struct timespec mono)
{
	uint64_t since = (uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec - kb_shim.start_ns;
	kb_jw_str(w, "event", event);
	kb_jw_fixed(w, "ts", (uint64_t)real.tv_sec, (uint64_t)real.tv_nsec / 1000, 6);
	kb_jw_fixed(w, "t", since / 1000000000ULL, (since % 1000000000ULL) / 1000, 6);
	kb_jw_i64(w, "pid", getpid());
	kb_jw_i64(w, "tid", gettid());
	kb_jw_str(w, "program", kb_shim.program);
}

static void common_fields(struct kb_jw *w, const char *event)
{
	struct timespec real, mono;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	common_fields_at(w, event, real, mono);
}

/* How many lines this process lost before this one; counted back if it
 * is lost too. */
static void log_lost_line(unsigned long long lines)
{
	char line[512];
	struct kb_jw w;
	long rc;

	kb_jw_begin(&w, line, sizeof line);
	common_fields(&w, "lost");
	kb_jw_u64(&w, "lines", lines);
	size_t len = kb_jw_end(&w);
	if (!write_line(line, len, 0, &rc))
		__atomic_add_fetch(&log_lost, lines, __ATOMIC_RELAXED);
}

void kb_log_start(bool forked)
{
	if (said_start == NULL) {
		void *p = mmap(NULL, sizeof *said_start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED && madvise(p, sizeof *said_start, MADV_WIPEONFORK) == 0)
			said_start = p;
	}
	/* a child made by a raw clone() reads a zero flag, and says "fork" */
	start_forked = true;
	clock_gettime(CLOCK_REALTIME, &start_real);
	clock_gettime(CLOCK_MONOTONIC, &start_mono);
	start_pid = (int)getpid();
	if (said_start && start_when_needed) {
		start_forked = forked;
		__atomic_store_n(said_start, 0, __ATOMIC_RELAXED);
		return;
	}
	start_now(forked);
}

static void start_now(bool forked)
{
	char line[LINE_MAX_BYTES];
	struct kb_jw w;

	if (said_start)
		__atomic_store_n(said_start, 1, __ATOMIC_RELAXED);

	/* a child made by a raw clone() shares none of this: it was forked,
	 * and it starts now */
	bool mine = (int)getpid() == start_pid;
	forked |= !mine;
	kb_jw_begin(&w, line, sizeof line);
	if (start_when_needed && mine) /* deferred: the time it happened */
		common_fields_at(&w, "start", start_real, start_mono);
	else
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
	if (v->hit) /* hits count from 1; a cut made for a close has none */
		kb_jw_u64(w, "hit", v->hit);
	kb_jw_str(w, "call", kb_call_name(s->call));
	if (s->via)
		kb_jw_str(w, "via", s->via);
	kb_jw_i64(w, "fd", s->fd);
	if (s->holder)
		kb_jw_i64(w, "holder", s->holder);
	if (s->role != KB_ROLE_NONE)
		kb_jw_str(w, "role", kb_role_name(s->role));
	if (s->local) {
		if (kb_addr_format(s->local, addr, sizeof addr))
			kb_jw_str(w, "local", addr);
	} else if (s->fd >= 0 && s->call != KB_CALL_CONNECT && s->holder == 0) {
		/* a descriptor number of another process's is not ours to ask */
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
	char why[96];
	const char *effect = e && e->effect ? e->effect : NULL, *reason = e ? e->reason : NULL;
	if ((r->action == KB_ACT_BACKLOG || r->action == KB_ACT_QUEUE) && e && !e->effect) {
		/* what listen() asked for and what it got: the cap, unless it
		 * asked for less (a negative backlog means "the most allowed") */
		bool capped = e->requested < 0 || e->requested > r->backlog;
		bool cap_only = r->action == KB_ACT_BACKLOG || r->queue_mode == KB_QUEUE_HANG;
		kb_jw_i64(&w, "requested", e->requested);
		if (cap_only)
			kb_jw_i64(&w, "backlog", capped ? r->backlog : e->requested);
		if (cap_only && !capped) {
			snprintf(why, sizeof why, "the program asked for a backlog of %d, no more than the cap of %d",
				 e->requested, r->backlog);
			effect = "none";
			reason = why;
		}
	}
	if (r->action == KB_ACT_QUEUE) {
		kb_jw_i64(&w, "queue", r->backlog);
		kb_jw_str(&w, "mode", kb_queue_mode_name(r->queue_mode));
	}
	if (effect == NULL) /* a hang queue is the kernel's own, capped */
		effect = r->action == KB_ACT_QUEUE && r->queue_mode == KB_QUEUE_HANG ? "capped"
										     : kb_action_effect(r->action);
	kb_jw_str(&w, "effect", effect);
	if (reason)
		kb_jw_str(&w, "reason", reason);
	if (e && e->has_count)
		kb_jw_i64(&w, "count", e->count);
	if (e && e->queued >= 0 && e->effect)
		kb_jw_i64(&w, "queued", e->queued);
	if (e && e->attempt)
		kb_jw_u64(&w, "attempt", e->attempt);
	if (e && e->session)
		kb_jw_u64(&w, "session", e->session);
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
