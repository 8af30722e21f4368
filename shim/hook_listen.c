/*
 * hook_listen.c - listen(): where listening sockets become tracked, and
 * where a backlog can be capped (Q181350: a server that asks the stack
 * for a queue of five).
 *
 * Only TCP sockets over IP (sock.h), asked before any rule counts or acts:
 * listen() on a UDP socket gets the kernel's EOPNOTSUPP, whatever a rule
 * says, and only TCP listeners are tracked.
 */
#include <errno.h>
#include <sys/syscall.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "queue.h"
#include "real.h"
#include "shim.h"
#include "sock.h"

static int pass(int fd, int backlog)
{
	return kb_real.listen(fd, backlog);
}

/* No rule to ask: listen first; a listener is tracked. Out of line, so
 * that the exported function keeps no stack frame. */
__attribute__((noinline)) static int listen_then_track(int fd, int backlog)
{
	int rc = kb_real.listen(fd, backlog);
	if (rc == 0 && !kb_guarded())
		kb_listened(fd, backlog);
	return rc;
}

/* fd's local address, if it is a socket; errno is left alone. */
static bool local_name(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	if (KB_HAVE_SYS)
		return kb_sys(SYS_getsockname, fd, (long)ss, (long)len, 0, 0, 0) == 0;
	int saved = errno;
	bool ok = getsockname(fd, (struct sockaddr *)ss, len) == 0;
	errno = saved;
	return ok;
}

/* The flags a listener got for its role that no rule can use on its
 * port: with a recipe aimed at other ports, its accepts then go straight
 * to libc and its connections are not even tracked. */
static unsigned not_for_port(uint16_t port)
{
	const struct kb_plan *p = &kb_shim.plan;
	unsigned off = 0;

	if (!kb_plan_applies_to_port(p, KB_CALL_CLOSE, KB_ROLE_LISTENING, port))
		off |= KB_FD_CLOSE_RULES;
	if (!kb_plan_applies_to_port(p, KB_CALL_ACCEPT, KB_ROLE_LISTENING, port))
		off |= KB_FD_ACCEPT_BEFORE;
	/* a connection is worth taking through the shim if a rule may act
	 * on taking it, or later on closing or shutting it down */
	if (!kb_plan_applies_to_port(p, KB_CALL_ACCEPT, KB_ROLE_ACCEPTED, port) &&
	    !kb_plan_applies_to_port(p, KB_CALL_CLOSE, KB_ROLE_ACCEPTED, port) &&
	    !kb_plan_applies_to_port(p, KB_CALL_SHUTDOWN, KB_ROLE_ACCEPTED, port))
		off |= KB_FD_ACCEPT_AFTER;
	return off;
}

/* listen() succeeded on fd: track it (listeners always are, for the
 * rules on accept and close), if it is TCP/IP. */
static void track_listener(int fd, const struct sockaddr_storage *ss, socklen_t len,
			   const struct kb_verdict *d, int backlog)
{
	struct kb_addr local;
	int e = errno;

	kb_addr_from_sockaddr((const struct sockaddr *)ss, len, &local);
	if (!local.family || !kb_fd_track(fd, KB_ROLE_LISTENING, local.port, NULL)) {
		errno = e;
		return;
	}
	kb_fd_unmark(fd, not_for_port(local.port));
	if (d && d->rule->action == KB_ACT_QUEUE && d->rule->queue_mode != KB_QUEUE_HANG)
		kb_queue_listen(fd, d, backlog, (const struct sockaddr *)ss, len);
	errno = e;
}

void kb_listened(int fd, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int e = errno;
	if (kb_is_tcp(fd) && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		track_listener(fd, &ss, len, NULL, backlog);
	errno = e;
}

/* listen() on a TCP/IP socket, with rules to ask. */
__attribute__((noinline)) static int listen_decide(int fd, int backlog, const char *via,
						   const struct sockaddr_storage *ss, socklen_t len,
						   uint16_t port, int saved)
{
	struct kb_verdict v[KB_VERDICTS_MAX];
	int effective = backlog;
	struct kb_site site = { .call = KB_CALL_LISTEN, .via = via, .fd = fd, .role = KB_ROLE_LISTENING };
	struct kb_effect effect = KB_EFFECT_NONE;

	effect.requested = backlog;
	const struct kb_verdict *d = kb_inject(&site, port, v, &effect);
	if (d && d->rule->action == KB_ACT_FAIL) {
		errno = d->rule->err;
		return -1;
	}
	/* a cap: the kernel reads a negative backlog as "as large as
	 * allowed"; an emulated queue keeps the host's backlog, since it is
	 * the shim that limits what waits (queue.h) */
	bool cap = d && (d->rule->action == KB_ACT_BACKLOG ||
			 (d->rule->action == KB_ACT_QUEUE && d->rule->queue_mode == KB_QUEUE_HANG));
	if (cap && (backlog < 0 || backlog > d->rule->backlog))
		effective = d->rule->backlog;
	errno = saved;
	int rc = pass(fd, effective);
	if (rc == 0)
		track_listener(fd, ss, len, d, backlog);
	return rc;
}

/* listen() on a TCP/IP socket whose local address is ss. */
__attribute__((noinline)) static int listen_tcp(int fd, int backlog, const char *via,
						const struct sockaddr_storage *ss, socklen_t len)
{
	int saved = errno;
	struct kb_addr local;
	kb_addr_from_sockaddr((const struct sockaddr *)ss, len, &local);
	if (local.family == 0) {
		errno = saved;
		return pass(fd, backlog);
	}
	return listen_decide(fd, backlog, via, ss, len, local.port, saved);
}

/* Armed, with listen rules: rules only for TCP/IP sockets, so a pipe, a
 * unix socket or a bad descriptor goes to the real call as it is, after
 * one question to the kernel that leaves errno alone (two for a UDP
 * socket, or another socket over IP). */
__attribute__((always_inline)) static inline int ask(int fd, int backlog, const char *via)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (!local_name(fd, &ss, &len) || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
	    !kb_is_tcp(fd))
		return kb_real.listen(fd, backlog); /* armed: resolved */
	return listen_tcp(fd, backlog, via, &ss, len);
}

/* The exported function's copy, which has no `via` to keep. */
__attribute__((noinline)) static int listen_ask(int fd, int backlog)
{
	return ask(fd, backlog, NULL);
}

int kb_listen_hook(int fd, int backlog, const char *via)
{
	if (!kb_armed() || kb_guarded())
		return pass(fd, backlog);
	if (!kb_plan_wants(&kb_shim.plan, KB_CALL_LISTEN, KB_ROLE_LISTENING))
		return listen_then_track(fd, backlog);
	return ask(fd, backlog, via);
}

KB_API int listen(int fd, int backlog)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1))
		return kb_real.listen(fd, backlog);
	if (m == KB_MODE_ARMED) {
		if (!kb_plan_wants(&kb_shim.plan, KB_CALL_LISTEN, KB_ROLE_LISTENING))
			return listen_then_track(fd, backlog);
		if (!kb_guarded())
			return listen_ask(fd, backlog);
	}
	return kb_listen_hook(fd, backlog, NULL);
}
