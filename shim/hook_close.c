/*
 * hook_close.c - close(): where a connection is released, and so where a
 * rule can keep it from being released (Q236565), reset it, or make the
 * call report an error.
 *
 * Closing follows Linux: the descriptor is released even when close()
 * reports an error, so `fail` closes for real and then returns the error.
 * The entry is forgotten before the real close, never after: once the
 * number is free another thread may be handed it by accept(), and its new
 * entry must not be wiped.
 */
#include <errno.h>
#include <unistd.h>

#include "act.h"
#include "conn.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "log.h"
#include "queue.h"
#include "real.h"
#include "shim.h"

static int pass(int fd)
{
	return kb_real.close(fd);
}

/* A tracked descriptor that no close rule is about, neither leaked nor a
 * session: nothing to decide, no need even to know it is still ours.
 * One test of the header (fdtable.h: the entry carries what the plan
 * holds for its role). */
static inline bool nothing_to_decide(uint64_t head)
{
	return !(head & KB_HEAD_CLOSE_ASKS);
}

/* Close rules and nothing else: no leak or connection of the tree's to
 * answer for, and not one of the shim's own. */
static inline bool rules_only(uint64_t head)
{
	return (head & KB_HEAD_CLOSE_ASKS) == KB_HEAD_FLAG(KB_FD_CLOSE_RULES);
}

static int close_tracked(int fd, const char *via, bool rules, int saved, uint32_t counted);

/* A descriptor with close rules only, whose bucket has a tally
 * (decide.h): most closes are only counted, from one line, and go to
 * libc without the entry's other fields, the rules or a verdict. */
__attribute__((noinline)) KB_HOT static int close_tallied(int fd, uint64_t head)
{
	if (kb_guarded())
		return kb_close_hook(fd, NULL);
	const struct kb_tally *t = &kb_shim.plan.tally[KB_CALL_CLOSE][KB_HEAD_ROLE(head)];
	uint32_t counted = kb_tally(t);
	if (kb_tally_done(t, counted)) {
		kb_fd_forget_fast(fd);
		return kb_real.close(fd);
	}
	return close_tracked(fd, NULL, true, errno, counted);
}

/*
 * The fast path decides what most closes need, from one header load and
 * without a stack frame: an untracked descriptor, or a tracked one with
 * nothing to decide (a listener closed in a prefork server's children,
 * or after dup2()), goes to libc; the latter's entry is forgotten first -
 * but not inside the shim (guard.h): a vfork child runs guarded
 * (hook_vfork.c), and the entry it would forget is its parent's, for a
 * descriptor the parent still has. A stale entry left by a guarded close
 * of the shim's own (or a signal handler's) is one the table allows for
 * (fdtable.h). The guard costs one thread-local load, on this path only.
 */
KB_API KB_HOT int close(int fd)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1))
		return kb_real.close(fd);
	if (kb_fd_fast_ok(fd)) {
		uint64_t head = kb_fd_head_fast(fd);
		if (head == 0)
			return kb_real.close(fd);
		if (nothing_to_decide(head)) {
			if (!kb_guarded())
				kb_fd_forget_fast(fd);
			return kb_real.close(fd);
		}
		if (rules_only(head))
			return close_tallied(fd, head);
	} else if (m == KB_MODE_ARMED && kb_fd_below_floor(fd)) {
		return kb_real.close(fd); /* negative, or beyond the table */
	}
	return kb_close_hook(fd, NULL);
}

/* A tracked descriptor that rules, a leak or a session may concern. */
__attribute__((noinline)) KB_HOT static int close_tracked(int fd, const char *via, bool rules, int saved,
							 uint32_t counted)
{
	struct kb_fd_info info;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (!kb_fd_lookup(fd, &info))
		return pass(fd);
	if (info.flags & KB_FD_QUEUE)
		kb_queue_closing(fd);
	bool end = !(info.flags & KB_FD_COPY);
	if (info.flags & (KB_FD_LEAKED | KB_FD_CONN)) {
		/* What we kept open or share with the tree must still be that
		 * socket before we answer for it. A plain entry is checked
		 * only if a rule fires (kb_inject), which spares every other
		 * close a system call. */
		bool same = kb_fd_same(fd, &info);
		errno = saved;
		if (!same) {
			/* closed behind our back and reused: not ours any more
			 * (and this process no longer holds that connection) */
			kb_conn_closing(&info, via);
			kb_fd_forget(fd);
			return pass(fd);
		}
		if (info.flags & KB_FD_LEAKED) {
			/* the host closed this one before and we kept it open: to
			 * the host it is gone, so a second close is a bad
			 * descriptor */
			errno = EBADF;
			return -1;
		}
		/* a fork-per-connection parent's close of its copy ends
		 * nothing: the child still holds the connection (conn.h) */
		end = kb_conn_closing(&info, via) && end;
		errno = saved;
	}
	if (!rules) {
		kb_fd_forget(fd);
		errno = saved;
		return pass(fd);
	}

	struct kb_site site = { .call = KB_CALL_CLOSE, .via = via, .fd = fd, .role = info.role, .peer = &info.peer,
				.tracked = &info };
	site.copy = !end;
	const struct kb_verdict *d = kb_inject_from(&site, info.lport, v, NULL, counted);
	errno = saved;
	if (d && d->rule->action == KB_ACT_LEAK) {
		kb_fd_mark(fd, KB_FD_LEAKED);
		return 0;
	}
	kb_fd_forget(fd);
	if (d && d->rule->action == KB_ACT_RESET) {
		kb_close_with_reset(fd);
		errno = saved;
		return 0;
	}
	int rc = pass(fd);
	if (d && d->rule->action == KB_ACT_FAIL) {
		errno = d->rule->err;
		return -1;
	}
	return rc;
}

KB_HOT int kb_close_hook(int fd, const char *via)
{
	if (!kb_armed() || kb_guarded())
		return pass(fd);
	if (kb_fd_maybe_ours(fd) && kb_is_protected(fd)) {
		/* ours: the host's first close of it succeeds, and the shim
		 * keeps it; to the host it is closed from then on (log.h) */
		int r = kb_protect_close(fd);
		if (r > 0)
			return 0;
		if (r == 0) {
			errno = EBADF;
			return -1;
		}
		/* moved away meanwhile: the number is the host's again */
	}
	uint64_t head = kb_fd_head(fd);
	if (head == 0)
		return pass(fd);
	if (nothing_to_decide(head)) {
		kb_fd_forget(fd);
		return pass(fd);
	}
	return close_tracked(fd, via, KB_HEAD_FLAGS(head) & KB_FD_CLOSE_RULES, errno, 0);
}
