/*
 * hook_connect.c - connect(): outbound connections, the client side of
 * the faults (a node that cannot re-join, a dependency that refuses).
 *
 * `refuse` does not fake an errno: it sends the connect to a loopback
 * port that is bound but not listening, so the kernel itself refuses it -
 * synchronously for a blocking socket, through EINPROGRESS and SO_ERROR
 * for a non-blocking one - and the application takes the same code path
 * it takes in a real outage.
 */
#include <errno.h>
#include <sys/syscall.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "real.h"
#include "shim.h"

static int pass(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (kb_real.connect)
		return kb_real.connect(fd, addr, len);
	return (int)kb_raw_syscall(SYS_connect, fd, (long)addr, (long)len, 0, 0, 0);
}

static bool is_stream(int fd)
{
	int type = 0;
	socklen_t l = sizeof type;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM;
}

/* A connection under way to peer: track it, if this is TCP. Only on
 * success, so a connect that fails costs nothing more. */
static void track_outbound(int fd, const struct kb_addr *peer)
{
	int e = errno;
	if (is_stream(fd))
		kb_fd_track(fd, KB_ROLE_OUTBOUND, 0, peer);
	errno = e;
}

void kb_connected(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct kb_addr peer;
	if (addr == NULL || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return;
	kb_addr_from_sockaddr(addr, len, &peer);
	if (peer.family)
		track_outbound(fd, &peer);
}

int kb_connect_hook(int fd, const struct sockaddr *addr, socklen_t len, const char *via)
{
	struct kb_addr peer;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (!kb_armed() || kb_guarded() || addr == NULL)
		return pass(fd, addr, len);
	bool rules = kb_plan_may_apply(&kb_shim.plan, KB_CALL_CONNECT, KB_ROLE_OUTBOUND);
	bool track = kb_shim.plan.track_roles & (1u << KB_ROLE_OUTBOUND);
	/* only TCP/IP: unix sockets, AF_UNSPEC disconnects and the like pass */
	if ((!rules && !track) || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return pass(fd, addr, len);
	if (!rules) {
		/* only tracking: connect first, look at the socket only if a
		 * connection is under way */
		int rc = pass(fd, addr, len);
		if (rc == 0 || errno == EINPROGRESS) {
			kb_addr_from_sockaddr(addr, len, &peer);
			if (peer.family)
				track_outbound(fd, &peer);
		}
		return rc;
	}

	int saved = errno;
	kb_addr_from_sockaddr(addr, len, &peer);
	if (peer.family == 0) {
		errno = saved;
		return pass(fd, addr, len);
	}
	const struct sockaddr *target = addr;
	socklen_t target_len = len;
	struct sockaddr_storage sink;
	if (rules) {
		struct kb_site site = { .call = KB_CALL_CONNECT, .via = via, .fd = fd, .role = KB_ROLE_OUTBOUND, .peer = &peer };
		const struct kb_verdict *d = kb_inject(&site, 0, v, NULL);
		/* a verdict is only for TCP: a UDP "connect" just sets a default
		 * destination, and nothing about it can fail like this */
		if (d && !is_stream(fd))
			d = NULL;
		if (d && d->rule->action == KB_ACT_FAIL) {
			errno = d->rule->err;
			return -1;
		}
		if (d && d->rule->action == KB_ACT_REFUSE) {
			if (kb_sink_for(addr, len, &sink, &target_len)) {
				target = (struct sockaddr *)&sink;
			} else {
				/* no loopback to refuse through: the next best
				 * thing is the same errno, synchronously */
				errno = ECONNREFUSED;
				return -1;
			}
		}
	}
	errno = saved;
	int rc = pass(fd, target, target_len);
	if (track && (rc == 0 || errno == EINPROGRESS))
		track_outbound(fd, &peer);
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
