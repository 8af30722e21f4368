/*
 * hook_dup.c - dup2() and dup3(): bookkeeping only. Replacing a
 * descriptor closes what was there (so its entry goes), the new number
 * refers to the same socket as the old (so the entry is copied), and a
 * host that dup2()s over the log's number gets it after the log has moved
 * away (log.h).
 */
#include <errno.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "shim.h"

static int pass(int oldfd, int newfd, int flags, bool three)
{
	if (three)
		return kb_real.dup3 ? kb_real.dup3(oldfd, newfd, flags)
				    : (int)kb_raw_syscall(SYS_dup3, oldfd, newfd, flags, 0, 0, 0);
	if (kb_real.dup2)
		return kb_real.dup2(oldfd, newfd);
	/* dup3 refuses oldfd == newfd; dup2 just checks oldfd is valid */
	if (oldfd == newfd)
		return (int)kb_raw_syscall(SYS_fcntl, oldfd, F_GETFD, 0, 0, 0, 0) < 0 ? -1 : newfd;
	return (int)kb_raw_syscall(SYS_dup3, oldfd, newfd, 0, 0, 0, 0);
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

/* Neither descriptor is ours to track or protect: nothing to keep. */
static inline bool untouched(int oldfd, int newfd)
{
	return kb_mode_get() == KB_MODE_ARMED && kb_fd_untracked(oldfd) && kb_fd_untracked(newfd);
}

/* The usual armed case: a tracked socket copied onto a free number of the
 * host's (a prefork server's listener, a socket handed to a child's
 * stdin). Nothing there to forget or protect, so: the real call, then the
 * entry copied. Out of line, so that the exported functions keep no stack
 * frame; everything else goes to kb_dup_hook. */
__attribute__((noinline)) static int dup_armed(int oldfd, int newfd, int flags, bool three)
{
	if (kb_mode_get() != KB_MODE_ARMED || kb_guarded() || oldfd == newfd ||
	    newfd >= __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED) || kb_fd_head(newfd) != 0)
		return kb_dup_hook(oldfd, newfd, flags, three, NULL);
	return pass_and_copy(oldfd, newfd, flags, three);
}

KB_API int dup2(int oldfd, int newfd)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1) || untouched(oldfd, newfd))
		return kb_real.dup2(oldfd, newfd);
	return dup_armed(oldfd, newfd, 0, false);
}

KB_API int dup3(int oldfd, int newfd, int flags)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1) || untouched(oldfd, newfd))
		return kb_real.dup3(oldfd, newfd, flags);
	return dup_armed(oldfd, newfd, flags, true);
}

int kb_dup_hook(int oldfd, int newfd, int flags, bool three, const char *via)
{
	(void)via;
	if (!kb_armed() || kb_guarded() || oldfd == newfd)
		return pass(oldfd, newfd, flags, three);
	int saved = errno;
	if (newfd >= __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED)) {
		kb_guard_enter();
		kb_protect_evict(newfd);
		kb_guard_leave();
	}
	if (kb_fd_head(newfd)) {
		struct kb_fd_info info;
		if (kb_fd_lookup(newfd, &info))
			kb_session_closing(newfd, &info, via ? via : three ? "dup3" : "dup2");
		kb_fd_forget(newfd);
	}
	errno = saved;
	return pass_and_copy(oldfd, newfd, flags, three);
}
