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
#include <sys/syscall.h>
#include <unistd.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "shim.h"

static int pass(int fd)
{
	if (kb_real.close)
		return kb_real.close(fd);
	return (int)kb_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* A tracked descriptor that no close rule is about, neither leaked nor a
 * session: nothing to decide, no need even to know it is still ours. */
static inline bool nothing_to_decide(uint64_t head)
{
	return !kb_plan_wants(&kb_shim.plan, KB_CALL_CLOSE, KB_HEAD_ROLE(head)) &&
	       !(KB_HEAD_FLAGS(head) & (KB_FD_LEAKED | KB_FD_SESSION));
}

/* Armed, fd tracked and below the shim's own: the common case of
 * kb_close_hook (a listener closed in a prefork server's children, or
 * after dup2()) without its other checks. Out of line, so the exported
 * close() keeps no stack frame. */
__attribute__((noinline)) static int close_armed(int fd)
{
	if (kb_mode_get() == KB_MODE_ARMED && !kb_guarded() &&
	    fd < __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED)) {
		uint64_t head = kb_fd_head(fd);
		if (head != 0 && nothing_to_decide(head)) {
			kb_fd_forget(fd);
			return pass(fd);
		}
	}
	return kb_close_hook(fd, NULL);
}

KB_API int close(int fd)
{
	int m = kb_mode_get();
	/* off, or armed and fd is none of ours: straight to libc */
	if (__builtin_expect(m == KB_MODE_OFF, 1) || (m == KB_MODE_ARMED && kb_fd_untracked(fd)))
		return kb_real.close(fd);
	return close_armed(fd);
}

/* A tracked descriptor that rules, a leak or a session may concern. */
__attribute__((noinline)) static int close_tracked(int fd, const char *via, bool rules, int saved)
{
	struct kb_fd_info info;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (!kb_fd_lookup(fd, &info))
		return pass(fd);
	bool same = kb_fd_same(fd, &info);
	errno = saved;
	if (!same) {
		/* closed behind our back and reused: not ours any more */
		kb_fd_forget(fd);
		return pass(fd);
	}
	if (info.flags & KB_FD_LEAKED) {
		/* the host closed this one before and we kept it open: to the
		 * host it is gone, so a second close is a bad descriptor */
		errno = EBADF;
		return -1;
	}
	kb_session_closing(fd, &info, via);
	if (!rules) {
		kb_fd_forget(fd);
		errno = saved;
		return pass(fd);
	}

	struct kb_site site = { KB_CALL_CLOSE, via, fd, info.role, &info.peer };
	const struct kb_verdict *d = kb_inject(&site, info.lport, v, NULL);
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

int kb_close_hook(int fd, const char *via)
{
	if (!kb_armed() || kb_guarded())
		return pass(fd);
	if (fd >= __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED) && kb_is_protected(fd)) {
		/* ours, not the host's: to the host it is not open */
		errno = EBADF;
		return -1;
	}
	uint64_t head = kb_fd_head(fd);
	if (head == 0)
		return pass(fd);
	if (nothing_to_decide(head)) {
		kb_fd_forget(fd);
		return pass(fd);
	}
	return close_tracked(fd, via, kb_plan_wants(&kb_shim.plan, KB_CALL_CLOSE, KB_HEAD_ROLE(head)), errno);
}
