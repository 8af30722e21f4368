/*
 * hook_dup.c - dup2() and dup3(): bookkeeping only. Replacing a
 * descriptor closes what was there (so its entry goes), the new number
 * refers to the same socket as the old (so the entry is copied), and a
 * host that dup2()s over the log's number gets it after the log has moved
 * away (log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "conn.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "log.h"
#include "queue.h"
#include "real.h"
#include "shim.h"

static int pass(int oldfd, int newfd, int flags, bool three)
{
	return three ? kb_real.dup3(oldfd, newfd, flags) : kb_real.dup2(oldfd, newfd);
}

/* The real call; then newfd is the same socket as oldfd, so it gets a copy
 * of oldfd's entry, if oldfd has one. */
static inline int pass_and_copy(int oldfd, int newfd, int flags, bool three)
{
	int rc = pass(oldfd, newfd, flags, three);
	if (rc >= 0)
		kb_fd_copy(oldfd, newfd);
	return rc;
}

/*
 * Is the bookkeeping of dup2/dup3(oldfd, newfd) done, so that the real
 * call may go now? Never before the shim is armed. True when neither is tracked, and in the usual
 * armed case: a tracked socket copied onto a free number of the host's
 * (a prefork server's listener, a socket handed to a child's stdin);
 * then newfd gets its copy of the entry first. Should the call still
 * fail (it cannot for a tracked oldfd, short of a race with the host's
 * own open()), that copy is stale, like the entry of a descriptor closed
 * behind the shim's back, which the table already allows for (fdtable.h).
 * False - the slow path - when newfd's entry must go first (it may be a
 * session, or the shim's own, to be moved away), and when oldfd is one
 * the host closed and the shim kept open, or the shim's own. Inside the
 * shim (guard.h) nothing is copied: the call is a pass-through there, and
 * in a vfork child (hook_vfork.c) the table is its parent's.
 *
 * Inline, so that the exported functions keep no stack frame: the copy
 * before the call is what lets them jump to libc rather than call it.
 */
__attribute__((always_inline)) static inline bool settled(int oldfd, int newfd, int mode)
{
	unsigned fast = kb_fd_fast_limit(); /* zero unless armed */
	if ((unsigned)oldfd >= fast || (unsigned)newfd >= fast)
		return mode == KB_MODE_ARMED && kb_fd_untracked(oldfd) && kb_fd_untracked(newfd);
	uint64_t from = kb_fd_head_fast(oldfd), to = kb_fd_head_fast(newfd);
	if (to != 0) /* also oldfd == newfd, tracked */
		return false;
	if (from == 0)
		return true;
	if (from & KB_HEAD_FLAG(KB_FD_LEAKED | KB_FD_OURS))
		return false;
	if (!kb_guarded())
		kb_fd_copy_into_empty(oldfd, newfd, from);
	return true;
}

KB_API int dup2(int oldfd, int newfd)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1) || settled(oldfd, newfd, m))
		return kb_real.dup2(oldfd, newfd);
	return kb_dup_hook(oldfd, newfd, 0, false, NULL);
}

KB_API int dup3(int oldfd, int newfd, int flags)
{
	int m = kb_mode_get();
	/* dup3 refuses oldfd == newfd: settled() lets an untracked pair
	 * through to say so, and sends a tracked one to the slow path, which
	 * passes it through too */
	if (__builtin_expect(m == KB_MODE_OFF, 1) || settled(oldfd, newfd, m))
		return kb_real.dup3(oldfd, newfd, flags);
	return kb_dup_hook(oldfd, newfd, flags, true, NULL);
}

int kb_dup_hook(int oldfd, int newfd, int flags, bool three, const char *via)
{
	(void)via;
	if (!kb_armed() || kb_guarded() || oldfd == newfd)
		return pass(oldfd, newfd, flags, three);
	int saved = errno;
	if (kb_fd_head(oldfd) & KB_HEAD_FLAG(KB_FD_LEAKED)) {
		struct kb_fd_info info;
		/* closed by the host and kept open by a rule: to the host it
		 * is not open, so it cannot be copied either */
		if (kb_fd_lookup(oldfd, &info) && kb_fd_same(oldfd, &info)) {
			errno = EBADF;
			return -1;
		}
		errno = saved;
	}
	if (kb_fd_maybe_ours(newfd)) {
		kb_guard_enter();
		kb_protect_evict(newfd);
		kb_guard_leave();
	}
	if (kb_fd_head(newfd)) {
		struct kb_fd_info info;
		/* replacing it closes it: this process's copy is gone */
		if (kb_fd_lookup(newfd, &info)) {
			if (info.flags & KB_FD_QUEUE)
				kb_queue_closing(newfd);
			kb_conn_closing(&info, via ? via : three ? "dup3" : "dup2");
		}
		kb_fd_forget(newfd);
	}
	errno = saved;
	return pass_and_copy(oldfd, newfd, flags, three);
}
