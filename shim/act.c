/*
 * act.c - the common part of an injection, and the socket tricks some
 * actions need; see act.h.
 */
#include "act.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fdtable.h"
#include "guard.h"
#include "queue.h"
#include "real.h"
#include "shim.h"
#include "sock.h"
#include "termsig.h"

/* Set when a termination signal has ended a stall: from then on this
 * process no longer stalls, so a host that was told to stop gets back to
 * its event loop and stops, rather than stalling again on the next
 * queued connection. */
static int stalls_released;

/* How often a stalled thread looks up from its sleep: a stop shows within
 * this. */
#define STALL_SLICE_NS (10 * 1000 * 1000ULL)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Sleeps until `deadline` (CLOCK_MONOTONIC), whatever handlers run in
 * this thread meanwhile: an absolute sleep is never restarted after a
 * handler (signal(7)), so it is started again. A cancellation point, as
 * the host's call would have been. */
static void sleep_until(uint64_t deadline)
{
	struct timespec until = { (time_t)(deadline / 1000000000ULL), (long)(deadline % 1000000000ULL) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

/* The listeners a stalled accept() is on, to notice the host closing or
 * shutting them down: what a threaded server does to wake its acceptor
 * when it stops. For a connection already taken, every listener of this
 * process on its local port. */
#define WATCHED_MAX 8

struct watch {
	int n;
	uint16_t lport;
	int fd[WATCHED_MAX];
	struct kb_fd_info info[WATCHED_MAX];
};

static void watch_port(struct watch *w)
{
	int limit = kb_fd_limit();
	w->n = 0;
	for (int fd = 0; fd < limit && w->n < WATCHED_MAX; fd++) {
		uint64_t h = kb_fd_head(fd);
		if (KB_HEAD_ROLE(h) == KB_ROLE_LISTENING && KB_HEAD_LPORT(h) == w->lport &&
		    kb_fd_lookup(fd, &w->info[w->n]))
			w->fd[w->n++] = fd;
	}
}

/* Is fd still the listener it was, listening? The host's other threads
 * may close it at any moment: the kernel answers such a question safely
 * (EBADF, or about a file that has taken the number since, which its
 * inode gives away), and it is asked directly, not through libc, whose
 * wrappers ThreadSanitizer would see racing with the host's close(). */
static bool still_listening(int fd, const struct kb_fd_info *info)
{
	int on = 0;
	socklen_t l = sizeof on;
	if (KB_HEAD_ROLE(kb_fd_head(fd)) != KB_ROLE_LISTENING)
		return false; /* closed through us */
	if (KB_HAVE_SYS) {
		struct stat st;
		if (kb_sys(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) != 0 || !S_ISSOCK(st.st_mode) ||
		    (uint64_t)st.st_ino != info->ino)
			return false; /* closed behind our back */
		if (kb_sys(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, (long)&on, (long)&l, 0) != 0)
			on = 0;
	} else {
		if (!kb_fd_same(fd, info))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) != 0)
			on = 0;
	}
	/* shut down: no longer listening, unless the emulated queue paused it */
	return on || kb_queue_paused(fd);
}

/* Has the host closed or shut down every listener watched? A listener
 * moved to another number (dup2) is found again on its port. */
static bool listeners_gone(struct watch *w)
{
	for (int i = 0; i < w->n; i++)
		if (still_listening(w->fd[i], &w->info[i]))
			return false;
	watch_port(w);
	for (int i = 0; i < w->n; i++)
		if (still_listening(w->fd[i], &w->info[i]))
			return false;
	return true;
}

enum woken { WOKEN_NOT, WOKEN_BY_SIGNAL, WOKEN_BY_LISTENER };

/* A stall of ns (KB_FOREVER: until something ends it), in slices. What
 * ends it early: a termination signal received by the process since it
 * began, or one pending (termsig.h); with `w`, the listeners closed or
 * shut down. Any other signal's handler runs and the stall goes on,
 * keeping its deadline. */
static enum woken stall_for(uint64_t ns, struct watch *w, uint64_t *slept)
{
	uint64_t start = now_ns();
	uint64_t signals = kb_term_count();
	enum woken why = WOKEN_NOT;

	for (;;) {
		if (kb_term_count() != signals || kb_term_pending()) {
			why = WOKEN_BY_SIGNAL;
			break;
		}
		if (w && w->n > 0 && listeners_gone(w)) {
			why = WOKEN_BY_LISTENER;
			break;
		}
		uint64_t now = now_ns();
		if (ns != KB_FOREVER && now - start >= ns)
			break;
		uint64_t next = now + STALL_SLICE_NS;
		if (ns != KB_FOREVER && next > start + ns)
			next = start + ns;
		sleep_until(next);
	}
	*slept = now_ns() - start;
	return why;
}

static void stall(const struct kb_site *site, uint16_t lport, const struct kb_verdict *v)
{
	struct watch w = { .n = 0, .lport = lport };
	uint64_t slept;
	int e = errno; /* the watch's questions to the kernel may fail */

	if (site->call == KB_CALL_ACCEPT) {
		if (site->role == KB_ROLE_LISTENING) {
			if (kb_fd_lookup(site->fd, &w.info[0]))
				w.fd[w.n++] = site->fd;
		} else {
			watch_port(&w);
		}
	}
	enum woken why = stall_for(v->rule->stall_ns, &w, &slept);
	if (why == WOKEN_BY_SIGNAL)
		__atomic_store_n(&stalls_released, 1, __ATOMIC_RELAXED);
	kb_log_stall_end(site, v, slept, why != WOKEN_NOT);
	errno = e;
}

void kb_mark_peer(const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;

	/* a node is lost when its connection ends, not when one process of
	 * a fork-per-connection server drops its copy (conn.h) */
	if (!kb_shim.plan.marks || !site->peer || site->peer->family == 0 || site->copy)
		return;
	uint64_t until = r->mark_ns == KB_FOREVER ? KB_FOREVER : kb_since_start_ns(NULL) + r->mark_ns;
	bool stored = kb_marks_set(kb_shim.plan.marks, site->peer, until);
	kb_log_mark(site, v, until, stored);
}

/* The rules a hook carries out itself, having been handed the verdict. */
static bool deciding(enum kb_action a)
{
	return a != KB_ACT_PASS && a != KB_ACT_STALL && a != KB_ACT_ABORT;
}

/* Writes v's line, after the hook's preparation if it has one. */
static void log_inject(const struct kb_site *site, const struct kb_verdict *v, const struct kb_effect *effect,
		       const struct kb_prepare *prepare)
{
	if (prepare && deciding(v->rule->action)) {
		struct kb_site s = *site;
		struct kb_effect e = *effect;
		prepare->fn(v, &s, &e, prepare->ctx);
		kb_log_inject(&s, v, &e);
		return;
	}
	kb_log_inject(site, v, effect);
}

static inline __attribute__((always_inline)) const struct kb_verdict *
inject(const struct kb_site *site, uint16_t lport, struct kb_verdict verdicts[KB_VERDICTS_MAX],
       const struct kb_effect *effect, uint32_t counted, const struct kb_prepare *prepare);

const struct kb_verdict *kb_inject(const struct kb_site *site, uint16_t lport,
				   struct kb_verdict verdicts[KB_VERDICTS_MAX],
				   const struct kb_effect *effect)
{
	return kb_inject_from(site, lport, verdicts, effect, 0);
}

const struct kb_verdict *kb_inject_prepared(const struct kb_site *site, uint16_t lport,
					    struct kb_verdict verdicts[KB_VERDICTS_MAX],
					    const struct kb_effect *effect, const struct kb_prepare *prepare)
{
	return inject(site, lport, verdicts, effect, 0, prepare);
}

KB_HOT const struct kb_verdict *kb_inject_from(const struct kb_site *site, uint16_t lport,
					       struct kb_verdict verdicts[KB_VERDICTS_MAX],
					       const struct kb_effect *effect, uint32_t counted)
{
	return inject(site, lport, verdicts, effect, counted, NULL);
}

static inline __attribute__((always_inline)) const struct kb_verdict *
inject(const struct kb_site *site, uint16_t lport, struct kb_verdict verdicts[KB_VERDICTS_MAX],
       const struct kb_effect *effect, uint32_t counted, const struct kb_prepare *prepare)
{
	static const struct kb_clock clock = { kb_since_start_ns, NULL };
	struct kb_event ev = { site->call, site->role, lport, site->peer };
	size_t n = kb_decide_from(&kb_shim.plan, &ev, &clock, verdicts, counted);
	const struct kb_effect none = KB_EFFECT_NONE;

	/* A descriptor closed behind our back (a raw system call, glibc
	 * internals) may carry another file by now: no rule acts on it. The
	 * call still counted towards its rules' hits; see docs/design.md. */
	if (n > 0 && site->tracked && !kb_fd_same(site->fd, site->tracked))
		return NULL;

	for (size_t i = 0; i < n; i++) {
		const struct kb_verdict *v = &verdicts[i];
		const struct kb_rule *r = v->rule;

		if (r->action == KB_ACT_STALL && __atomic_load_n(&stalls_released, __ATOMIC_RELAXED))
			continue; /* see stalls_released */
		if (r->mark_peer)
			kb_mark_peer(site, v);
		/* Only what changes the call is an injection. A pass rule with
		 * no delay is bookkeeping (a mark), and a session model logs the
		 * failures it causes, not every connection it counts. */
		bool injects = !(r->action == KB_ACT_PASS && r->delay_ns == 0) && r->action != KB_ACT_SESSIONS;
		if (injects)
			log_inject(site, v, effect ? effect : &none, prepare);
		/* a delay lasts what the log says: signals do not shorten it */
		if (r->delay_ns)
			sleep_until(now_ns() + r->delay_ns);
		switch (r->action) {
		case KB_ACT_PASS:
			continue;
		case KB_ACT_STALL:
			stall(site, lport, v);
			return NULL; /* after a stall the call completes as usual */
		case KB_ACT_ABORT:
			abort();
		default:
			return v;
		}
	}
	return NULL;
}

void kb_close_with_reset(int fd)
{
	kb_guard_enter();
	kb_reset_on_close(fd);
	kb_real.close(fd);
	kb_guard_leave();
}

void kb_reset_keep_open(int fd)
{
	struct sockaddr sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNSPEC;
	kb_guard_enter();
	kb_reset_on_close(fd);
	/* connect(AF_UNSPEC) disconnects an established TCP socket with a
	 * reset while the descriptor stays valid */
	kb_real.connect(fd, &sa, sizeof sa);
	kb_guard_leave();
}

static int sink_open(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		len = sizeof *in6;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		kb_real.close(fd);
		return -1;
	}
	/* high, beside the log: the low numbers are the host's; once
	 * protected, its table entry sends every hook's call on it to the
	 * slow path (fdtable.h, KB_FD_OURS) */
	int high = kb_move_high(fd);
	kb_protect(high);
	return high;
}

void kb_sinks_open(void)
{
	kb_shim.sink4 = sink_open(AF_INET);
	kb_shim.sink6 = sink_open(AF_INET6);
}

/* [::ffff:a.b.c.d]:port for an IPv4 sink address */
static void map_v4(const struct sockaddr_in *v4, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

	memset(in6, 0, sizeof *in6);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = v4->sin_port;
	in6->sin6_addr.s6_addr[10] = 0xff;
	in6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&in6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
	*len = sizeof *in6;
}

bool kb_sink_for(const struct sockaddr *wanted, socklen_t wanted_len, struct sockaddr_storage *out,
		 socklen_t *len)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	int s4 = __atomic_load_n(&kb_shim.sink4, __ATOMIC_RELAXED);
	int s6 = __atomic_load_n(&kb_shim.sink6, __ATOMIC_RELAXED);
	struct sockaddr_in v4;
	socklen_t l4 = sizeof v4;

	if (wanted->sa_family == AF_INET6 && wanted_len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *w6 = (const struct sockaddr_in6 *)wanted;
		/* a native IPv6 destination goes to the IPv6 sink; a mapped
		 * IPv4 one (or one on a host without IPv6 loopback) to the
		 * IPv4 sink through a mapped address, which a dual-stack
		 * socket can reach */
		if (memcmp(w6->sin6_addr.s6_addr, mapped, 12) != 0 && s6 >= 0) {
			socklen_t l = sizeof *out;
			if (getsockname(s6, (struct sockaddr *)out, &l) < 0)
				return false;
			*len = l;
			return true;
		}
		if (s4 < 0 || getsockname(s4, (struct sockaddr *)&v4, &l4) < 0)
			return false;
		map_v4(&v4, out, len);
		return true;
	}
	if (s4 < 0 || getsockname(s4, (struct sockaddr *)&v4, &l4) < 0)
		return false;
	memcpy(out, &v4, sizeof v4);
	*len = sizeof v4;
	return true;
}
