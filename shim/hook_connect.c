/*
 * hook_connect.c - connect(): outbound connections, the client side of
 * the faults (a node that cannot re-join, a dependency that refuses).
 *
 * `refuse` does not fake an errno: it sends the connect to a loopback
 * port that is bound but not listening, so the kernel itself refuses it -
 * synchronously for a blocking socket, through EINPROGRESS and SO_ERROR
 * for a non-blocking one - and the application takes the same code path
 * it takes in a real outage.
 *
 * Rules decide before the call, so they need the destination before the
 * kernel has read it: it is copied without trusting the pointer
 * (usermem.h), and a bad one goes to the kernel, which says EFAULT. Only
 * TCP sockets are asked about (sock.h). Tracking alone waits for the
 * call: the address is read once the kernel has taken it.
 */
#include <errno.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "real.h"
#include "shim.h"
#include "sock.h"
#include "usermem.h"

static int pass(int fd, const struct sockaddr *addr, socklen_t len)
{
	return kb_real.connect(fd, addr, len);
}

/* A connection under way to peer: track it, if this is TCP. Only on
 * success, so a connect that fails costs nothing more. */
static void track_outbound(int fd, const struct kb_addr *peer)
{
	if (kb_is_tcp(fd)) {
		int e = errno;
		kb_fd_track(fd, KB_ROLE_OUTBOUND, 0, peer);
		errno = e;
	}
}

/* After a connect that succeeded or is under way: the kernel has read
 * addr, so it can be read here too. */
void kb_connected(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct kb_addr peer;
	if (addr == NULL || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return;
	kb_addr_from_sockaddr(addr, len, &peer);
	if (peer.family)
		track_outbound(fd, &peer);
}

/* The destination, before the kernel has looked at it: copied without
 * trusting the pointer (usermem.h). False for anything the rules are not
 * about, or cannot see: no address the kernel would take, memory that is
 * not readable (the kernel says EFAULT), a family other than IP. */
static bool destination(const struct sockaddr *addr, socklen_t len, struct sockaddr_storage *copy,
			struct kb_addr *peer)
{
	if (len < (socklen_t)sizeof(sa_family_t) || len > (socklen_t)sizeof *copy ||
	    kb_peek(copy, addr, len) < 0)
		return false;
	const struct sockaddr *a = (const struct sockaddr *)copy;
	if (a->sa_family != AF_INET && a->sa_family != AF_INET6)
		return false;
	kb_addr_from_sockaddr(a, len, peer);
	return peer->family != 0;
}

int kb_connect_hook(int fd, const struct sockaddr *addr, socklen_t len, const char *via)
{
	struct kb_addr peer;
	struct kb_verdict v[KB_VERDICTS_MAX];
	struct sockaddr_storage copy;

	if (!kb_armed() || kb_guarded() || addr == NULL)
		return pass(fd, addr, len);
	bool rules = kb_plan_may_apply(&kb_shim.plan, KB_CALL_CONNECT, KB_ROLE_OUTBOUND);
	bool track = kb_shim.plan.track_roles & (1u << KB_ROLE_OUTBOUND);
	if (!rules && !track)
		return pass(fd, addr, len);
	if (!rules) {
		/* only tracking: connect first, look at the socket only if a
		 * connection is under way */
		int rc = pass(fd, addr, len);
		if (rc == 0 || errno == EINPROGRESS)
			kb_connected(fd, addr, len);
		return rc;
	}

	/* only TCP over IP, asked before any rule counts or acts: a UDP
	 * "connect" just sets a default destination, a unix socket or an
	 * AF_UNSPEC disconnect is none of ours, and a bad address is the
	 * kernel's to refuse */
	int saved = errno;
	if (!kb_is_tcp(fd) || !destination(addr, len, &copy, &peer)) {
		errno = saved;
		return pass(fd, addr, len);
	}
	const struct sockaddr *target = addr;
	socklen_t target_len = len;
	struct sockaddr_storage sink;
	struct kb_site site = { .call = KB_CALL_CONNECT, .via = via, .fd = fd, .role = KB_ROLE_OUTBOUND,
				.peer = &peer };
	const struct kb_verdict *d = kb_inject(&site, 0, v, NULL);
	if (d && d->rule->action == KB_ACT_FAIL) {
		errno = d->rule->err;
		return -1;
	}
	if (d && d->rule->action == KB_ACT_REFUSE) {
		if (kb_sink_for((const struct sockaddr *)&copy, len, &sink, &target_len)) {
			target = (struct sockaddr *)&sink;
		} else {
			/* no loopback to refuse through: the next best
			 * thing is the same errno, synchronously */
			errno = ECONNREFUSED;
			return -1;
		}
	}
	errno = saved;
	int rc = pass(fd, target, target_len);
	if (track && (rc == 0 || errno == EINPROGRESS)) {
		int e = errno;
		kb_fd_track(fd, KB_ROLE_OUTBOUND, 0, &peer);
		errno = e;
	}
	return rc;
}

/* What a connection the fast path let through needs afterwards. */
struct pending {
	const struct sockaddr *addr;
	socklen_t len;
	int fd;
};

__attribute__((noinline)) static int track_pending(const struct pending *p, int rc)
{
	kb_connected(p->fd, p->addr, p->len);
	return rc;
}

/* No rule can decide this connect, but outbound connections are
 * tracked: connect, then track what is under way. A connect that fails
 * ends right after the call, so the arguments wait in memory (see
 * take_then_decide() in hook_accept.c) and nothing else is saved. */
__attribute__((noinline)) static int connect_then_track(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pending p = { addr, len, fd };
	__asm__ volatile("" : : "r"(&p) : "memory");
	int rc = kb_real.connect(fd, addr, len);
	if ((rc == 0 || errno == EINPROGRESS) && !kb_guarded())
		return track_pending(&p, rc);
	return rc;
}

/* The exported function keeps no stack frame: with no connect rule that
 * can apply now (none, or only rules for peers marked lost while none
 * is), it goes to libc, or tracks after it. */
KB_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1))
		return kb_real.connect(fd, addr, len);
	if (m == KB_MODE_ARMED && !kb_plan_may_apply(&kb_shim.plan, KB_CALL_CONNECT, KB_ROLE_OUTBOUND)) {
		if (!(kb_shim.plan.track_roles & (1u << KB_ROLE_OUTBOUND)))
			return kb_real.connect(fd, addr, len);
		return connect_then_track(fd, addr, len);
	}
	return kb_connect_hook(fd, addr, len, NULL);
}
