/*
 * hook_accept.c - accept() and accept4(), sharing one slow path.
 *
 * A rule on accept decides in one of two phases (decide.h): before the
 * real call, for errors the kernel reports with the connection still
 * queued (EAGAIN, EMFILE, ...); or once a connection has been taken, when
 * the peer is known and the hit number counts connections. A connection
 * that a rule refuses after it was taken is reset, so the client sees
 * what it would see had the stack dropped it.
 *
 * The caller's address and length are the kernel's to check: a bad
 * pointer gets EFAULT from it. The peer's address is read only after a
 * successful call, and only the bytes the kernel wrote: as many as *len
 * held before the call, which is read then only if it is a variable of the
 * calling thread's stack (usermem.h: kb_on_stack, no system call). A
 * length kept anywhere else is not read before the call, and the peer is
 * asked of the kernel instead (getpeername).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "act.h"
#include "conn.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "queue.h"
#include "real.h"
#include "session.h"
#include "shim.h"
#include "sock.h"
#include "usermem.h"

static int pass(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four)
{
	return four ? kb_real.accept4(fd, addr, len, flags) : kb_real.accept(fd, addr, len);
}

/* Armed, and the listener has neither rules that decide before a
 * connection is taken nor an emulated queue: the real call can go first.
 * Most of an event loop's accepts end right there, in EAGAIN. */
static inline bool simple(uint64_t head)
{
	return !kb_plan_may_apply(&kb_shim.plan, KB_CALL_ACCEPT, KB_ROLE_LISTENING) &&
	       !(KB_HEAD_FLAGS(head) & KB_FD_QUEUE);
}

/* Anything to do once a connection is taken? */
static inline bool after_needed(void)
{
	return kb_plan_may_apply(&kb_shim.plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED) ||
	       (kb_shim.plan.track_roles & (1u << KB_ROLE_ACCEPTED));
}

/* What the fast path reads off a descriptor's header (fdtable.h): is it
 * a listener with anything to do at all, and is there nothing to do
 * before the real call? */
static inline bool listener_quiet(uint64_t head)
{
	return KB_HEAD_ROLE(head) != KB_ROLE_LISTENING ||
	       !(head & KB_HEAD_FLAG(KB_FD_ACCEPT_BEFORE | KB_FD_ACCEPT_AFTER | KB_FD_QUEUE));
}

static inline bool nothing_before(uint64_t head)
{
	return !(head & KB_HEAD_FLAG(KB_FD_ACCEPT_BEFORE | KB_FD_QUEUE));
}

/* *len before the call, when it cannot be known without trusting len:
 * a length the kernel accepts is never more than INT_MAX. */
#define LEN_UNKNOWN ((socklen_t)-1)

/* *len before the real call (afterwards it is the address's full size),
 * if len is the caller's local variable; `anchor` is one of the hook's. */
static inline socklen_t len_before(const socklen_t *len, const void *anchor)
{
	return kb_on_stack(len, sizeof *len, anchor) ? *len : LEN_UNKNOWN;
}

/* What a connection taken by the fast path needs afterwards. */
struct pending {
	struct sockaddr *addr;
	socklen_t *len;
	uint64_t head;
	int fd, flags;
	socklen_t given; /* len_before() */
};

__attribute__((noinline)) KB_HOT static int pending_taken(const struct pending *p, int c, bool four,
							 const char *via)
{
	return kb_accepted(p->fd, c, p->addr, p->len, p->given, p->flags, four, via, p->head);
}

/* A listener with nothing to decide before the call: the real call goes
 * first, and only a connection, if one comes, goes on to the rules and
 * the table; a thread inside the shim gets it as it is. Most of an event
 * loop's accepts end in EAGAIN right after the call, so that path is
 * kept short: the arguments wait in memory (the empty asm makes the
 * compiler put them there before the call) rather than in saved
 * registers that would have to be pushed and popped on every call. */
__attribute__((always_inline)) static inline int take_then_decide(int fd, struct sockaddr *addr,
								 socklen_t *len, int flags, bool four,
								 const char *via, uint64_t head)
{
	struct pending p = { addr, len, head, fd, flags, 0 };
	if (addr && len)
		p.given = len_before(len, &p);
	__asm__ volatile("" : : "r"(&p) : "memory");
	int c = four ? kb_real.accept4(fd, addr, len, flags) : kb_real.accept(fd, addr, len);
	if (c < 0 || kb_guarded())
		return c;
	return pending_taken(&p, c, four, via);
}

/* One copy per entry point, so that neither carries the other's
 * arguments across the call. */
__attribute__((noinline)) KB_HOT static int accept_then(int fd, struct sockaddr *addr, socklen_t *len,
						       uint64_t head)
{
	return take_then_decide(fd, addr, len, 0, false, NULL, head);
}

__attribute__((noinline)) KB_HOT static int accept4_then(int fd, struct sockaddr *addr, socklen_t *len,
							int flags, uint64_t head)
{
	return take_then_decide(fd, addr, len, flags, true, "accept4", head);
}

/* The exported functions decide from one header load, without a stack
 * frame: a descriptor that is no listener, or a listener with nothing to
 * do, goes straight to libc. */
KB_API KB_HOT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1))
		return kb_real.accept(fd, addr, len);
	if (kb_fd_fast_ok(fd)) {
		uint64_t head = kb_fd_head_fast(fd);
		if (listener_quiet(head))
			return kb_real.accept(fd, addr, len);
		if (nothing_before(head))
			return accept_then(fd, addr, len, head);
	}
	return kb_accept_hook(fd, addr, len, 0, false, NULL);
}

KB_API KB_HOT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1))
		return kb_real.accept4(fd, addr, len, flags);
	if (kb_fd_fast_ok(fd)) {
		uint64_t head = kb_fd_head_fast(fd);
		if (listener_quiet(head))
			return kb_real.accept4(fd, addr, len, flags);
		if (nothing_before(head))
			return accept4_then(fd, addr, len, flags, head);
	}
	return kb_accept_hook(fd, addr, len, flags, true, "accept4");
}

/* The peer of a freshly accepted connection, from the address the kernel
 * wrote into the caller's `given` bytes (or, if they could not hold it,
 * or how many there were is unknown, from getpeername). */
static void peer_of(int c, const struct sockaddr *a, socklen_t given, socklen_t got,
		    struct kb_addr *peer)
{
	bool whole = given != LEN_UNKNOWN && given >= got;
	kb_addr_from_sockaddr(a, whole ? got : given == LEN_UNKNOWN ? 0 : given, peer);
	if (peer->family == 0 && !whole)
		kb_peer_asked(c, peer);
}

/* A listener paused by another process (queue.h): wait a little, so an
 * event loop that sees it readable does not spin, then report what a
 * non-blocking accept reports; a blocking one waits until it listens. */
static bool wait_paused(int fd)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	if (!kb_blocking(fd)) {
		errno = EAGAIN;
		return false;
	}
	return true;
}

/* Writes a connection's address into the caller's buffer, as the kernel
 * does for a connection it hands out: the first *len bytes of it, and its
 * full length into *len. Returns 0, or the errno the kernel would return
 * (EFAULT for memory it cannot write, EINVAL for a negative length). */
static int hand_address(struct sockaddr *addr, socklen_t *len, const struct sockaddr_storage *ss, socklen_t l)
{
	socklen_t given;
	if (kb_peek(&given, len, sizeof given) < 0)
		return EFAULT;
	if ((int)given < 0)
		return EINVAL;
	if (kb_poke(addr, ss, given < l ? given : l) < 0 || kb_poke(len, &l, sizeof l) < 0)
		return EFAULT;
	return 0;
}

/* A connection the host's accept() cannot have after all: the kernel
 * closes one it could not report, and so do we. */
static void drop(int c)
{
	kb_guard_enter();
	kb_real.close(c);
	kb_guard_leave();
}

/* One connection for the host: from the emulated queue when the listener
 * has one and it has something to hand out, else from the kernel. The
 * caller's address buffer is filled as accept() would. Returns the
 * descriptor or -1 with errno.
 *
 * `dropped`: a rule has dropped the connection this accept() took (-2
 * below). May it wait for another? Not on a blocking listener: the host's
 * own call would have returned with the connection it took, and a host
 * that polled first (postgresql: select(), then accept() with its signals
 * blocked) would hang until the next client, deaf to SIGTERM. There
 * another connection is taken only if one is already waiting; else the
 * call fails with ECONNABORTED, which accept() reports for a connection
 * aborted before it was taken, and which servers retry as a passing
 * failure. A non-blocking listener's call answers EAGAIN by itself. */
static int take(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four, bool queue,
		const char *via, struct kb_addr *peer, int saved, bool dropped)
{
	bool no_wait = dropped && kb_blocking(fd);
	for (;;) {
		if (queue) {
			int c;
			switch (kb_queue_take(fd, four ? flags : 0, &c, via)) {
			case KB_QUEUE_GIVEN: {
				struct sockaddr_storage ss;
				socklen_t l = sizeof ss;
				memset(peer, 0, sizeof *peer);
				if (getpeername(c, (struct sockaddr *)&ss, &l) == 0) {
					kb_addr_from_sockaddr((struct sockaddr *)&ss, l, peer);
					int e = addr && len ? hand_address(addr, len, &ss, l) : 0;
					if (e) {
						drop(c);
						errno = e;
						return -1;
					}
				}
				errno = saved;
				return c;
			}
			case KB_QUEUE_BUSY:
				if (no_wait)
					goto aborted;
				if (!wait_paused(fd))
					return -1;
				continue;
			case KB_QUEUE_REAL:
				break;
			}
		}
		struct sockaddr_storage own;
		socklen_t own_len = sizeof own;
		struct sockaddr *a = addr ? addr : (struct sockaddr *)&own;
		socklen_t *al = addr ? len : &own_len;
		socklen_t given = addr ? (len ? len_before(len, &own_len) : 0) : own_len;

		if (no_wait && !kb_readable_now(fd))
			goto aborted;
		errno = saved;
		int c = pass(fd, a, al, flags, four);
		if (c < 0) {
			/* EINVAL from a listener the queue paused meanwhile; one
			 * the host shut down itself reports it */
			if (queue && errno == EINVAL && kb_queue_paused(fd)) {
				if (no_wait)
					goto aborted;
				if (wait_paused(fd))
					continue;
			}
			return -1;
		}
		peer_of(c, a, given, *al, peer);
		return c;
	}
aborted:
	errno = ECONNABORTED;
	return -1;
}

/* What the rules make of connection c, just taken, once its tally has
 * found a rule due (or the bucket has none): returns c for the host, -1
 * with errno for a failure to report, or -2 when the connection was
 * dropped, and the host's accept() takes another only as blocking() says.
 * errno is as it was, but for -1. */
__attribute__((noinline)) static int rules_on_taken(int c, const struct kb_addr *peer, uint16_t lport,
						    bool track, const char *via, uint32_t counted)
{
	struct kb_verdict v[KB_VERDICTS_MAX];
	struct kb_site site = { .call = KB_CALL_ACCEPT, .via = via, .fd = c, .role = KB_ROLE_ACCEPTED, .peer = peer };
	const struct kb_verdict *session = NULL;
	int e = errno;
	const struct kb_verdict *d = kb_inject_from(&site, lport, v, NULL, counted);

	if (d && d->rule->action == KB_ACT_FAIL) {
		kb_close_with_reset(c);
		errno = d->rule->err;
		return -1;
	}
	if (d && d->rule->action == KB_ACT_RESET) {
		/* dropped as if the stack had refused it: the application
		 * never sees this connection; its accept() takes another if
		 * one is waiting, and else fails rather than wait where its own
		 * call would have returned (blocking()) */
		kb_close_with_reset(c);
		errno = e;
		return -2;
	}
	if (d && d->rule->action == KB_ACT_SESSIONS) {
		if (kb_session_refuse(&site, d)) {
			kb_close_with_reset(c);
			errno = e;
			return -2;
		}
		session = d;
	}
	if (track)
		kb_fd_track_accepted(c, lport, peer);
	if (session)
		kb_session_admit(c, &site, session);
	errno = e;
	return c;
}

/* The same, for every connection: most are only counted (decide.h:
 * kb_tally) and tracked, which sets no errno, so only the rest pay for
 * keeping it. */
KB_HOT static int decide_taken(int c, const struct kb_addr *peer, uint16_t lport, bool post, bool track,
			       const char *via)
{
	if (post) {
		const struct kb_tally *t = &kb_shim.plan.tally[KB_CALL_ACCEPT][KB_ROLE_ACCEPTED];
		uint32_t counted = kb_tally(t);
		if (!kb_tally_done(t, counted))
			return rules_on_taken(c, peer, lport, track, via, counted);
	}
	/* an IP peer is tracked without a system call; any other with an
	 * fstat() that succeeds on a descriptor just accepted, leaving errno
	 * alone */
	if (track)
		kb_fd_track_accepted(c, lport, peer);
	return c;
}

/* Everything but the common case: rules that decide before a connection
 * is taken, an emulated queue, or a connection dropped by a rule. */
__attribute__((noinline)) static int accept_slow(int fd, struct sockaddr *addr, socklen_t *len,
						 int flags, bool four, const char *via, uint64_t head,
						 int saved, bool dropped)
{
	const struct kb_plan *plan = &kb_shim.plan;
	struct kb_verdict v[KB_VERDICTS_MAX];
	uint16_t lport = KB_HEAD_LPORT(head);

	if (kb_plan_wants(plan, KB_CALL_ACCEPT, KB_ROLE_LISTENING)) {
		struct kb_site site = { .call = KB_CALL_ACCEPT, .via = via, .fd = fd, .role = KB_ROLE_LISTENING };
		const struct kb_verdict *d = kb_inject(&site, lport, v, NULL);
		if (d && d->rule->action == KB_ACT_FAIL) {
			errno = d->rule->err;
			return -1;
		}
	}
	kb_conn_before_accept();
	bool post = kb_plan_may_apply(plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED);
	bool track = plan->track_roles & (1u << KB_ROLE_ACCEPTED);
	bool queue = KB_HEAD_FLAGS(head) & KB_FD_QUEUE;
	for (;; dropped = true) {
		struct kb_addr peer;
		int c = take(fd, addr, len, flags, four, queue, via, &peer, saved, dropped);
		if (c < 0)
			return -1;
		int r = decide_taken(c, &peer, lport, post, track, via);
		if (r != -2)
			return r;
	}
}

int kb_accept_hook(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four,
		   const char *via)
{
	if (!kb_armed() || kb_guarded())
		return pass(fd, addr, len, flags, four);
	uint64_t head = kb_fd_head(fd);
	if (KB_HEAD_ROLE(head) != KB_ROLE_LISTENING)
		return pass(fd, addr, len, flags, four);
	if (!simple(head))
		return accept_slow(fd, addr, len, flags, four, via, head, errno, false);
	socklen_t given = 0;
	if (addr && len)
		given = len_before(len, &given);
	int c = pass(fd, addr, len, flags, four);
	if (c < 0 || !after_needed())
		return c;
	return kb_accepted(fd, c, addr, len, given, flags, four, via, head);
}

KB_HOT int kb_accepted(int fd, int c, struct sockaddr *addr, socklen_t *len, socklen_t given, int flags,
		       bool four, const char *via, uint64_t head)
{
	const struct kb_plan *plan = &kb_shim.plan;
	struct kb_addr peer;

	if (addr && len) {
		peer_of(c, addr, given, *len, &peer);
	} else {
		kb_peer_asked(c, &peer); /* the host did not want the address; the rules may */
	}
	/* a peer whose last connection died with its holder is marked
	 * before this one is decided */
	kb_conn_before_accept();
	bool post = kb_plan_may_apply(plan, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED);
	bool track = plan->track_roles & (1u << KB_ROLE_ACCEPTED);
	int r = decide_taken(c, &peer, KB_HEAD_LPORT(head), post, track, via);
	if (r != -2)
		return r; /* errno as the real call left it, but for a failure */
	return accept_slow(fd, addr, len, flags, four, via, head, errno, true);
}
