/*
 * act.c - the common part of an injection, and the socket tricks some
 * actions need; see act.h.
 */
#include "act.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdtable.h"
#include "guard.h"
#include "real.h"
#include "shim.h"

/* Set when a signal handler has run during a stall: from then on this
 * process no longer stalls, so a host that was told to stop (SIGTERM,
 * SIGINT, SIGQUIT) gets back to its event loop and stops, rather than
 * stalling again on the next queued connection. */
static int stalls_released;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Sleeps for ns (KB_FOREVER: until a signal). Returns false if a signal
 * handler ran and cut the sleep short. One absolute-deadline sleep:
 * clock_nanosleep is never restarted after a handler (signal(7)), so a
 * handled signal always ends it. */
static bool sleep_for(uint64_t ns, uint64_t *slept)
{
	uint64_t start = now_ns();
	struct timespec until;
	bool completed = true;

	for (;;) {
		uint64_t left_from = now_ns();
		uint64_t chunk = ns == KB_FOREVER ? 3600ULL * 1000000000ULL : ns - (left_from - start);
		if (ns != KB_FOREVER && left_from - start >= ns)
			break;
		uint64_t deadline = left_from + chunk;
		until.tv_sec = (time_t)(deadline / 1000000000ULL);
		until.tv_nsec = (long)(deadline % 1000000000ULL);
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
		if (rc == EINTR) {
			completed = false;
			break;
		}
		if (rc != 0)
			break;
	}
	*slept = now_ns() - start;
	return completed;
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
		uint64_t slept;

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
		if (r->delay_ns)
			sleep_for(r->delay_ns, &slept);
		switch (r->action) {
		case KB_ACT_PASS:
			continue;
		case KB_ACT_STALL: {
			bool done = sleep_for(r->stall_ns, &slept);
			if (!done)
				__atomic_store_n(&stalls_released, 1, __ATOMIC_RELAXED);
			kb_log_stall_end(site, v, slept, !done);
			return NULL; /* after a stall the call completes as usual */
		}
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
	struct linger lg = { 1, 0 };

	kb_guard_enter();
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	kb_real.close(fd);
	kb_guard_leave();
}

void kb_reset_keep_open(int fd)
{
	struct linger lg = { 1, 0 };
	struct sockaddr sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNSPEC;
	kb_guard_enter();
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
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
