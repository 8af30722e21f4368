/*
 * hook_close_range.c - close_range() and closefrom(): daemons and
 * spawners close every descriptor at once. The shim's own descriptors are
 * skipped, and so are sockets a rule keeps open; every other descriptor
 * in the range is closed by the real call, in as few calls as the kept
 * ones allow.
 *
 * close_range() cannot report per-descriptor errors, so a `fail` rule
 * there closes the socket and is logged, but changes no return value.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
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
#include "sock.h"

static int pass(unsigned first, unsigned last, int flags)
{
	int rc = kb_real.close_range(first, last, flags);

	if (rc < 0 && errno == ENOSYS && !(flags & ~CLOSE_RANGE_UNSHARE)) {
		/* a kernel before 5.9: one close at a time, up to the limit */
		long max = sysconf(_SC_OPEN_MAX);
		for (unsigned fd = first; fd <= last && (long)fd < max; fd++)
			kb_real.close((int)fd);
		return 0;
	}
	return rc;
}

KB_API int close_range(unsigned first, unsigned last, int flags)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1))
		return pass(first, last, flags);
	return kb_close_range_hook(first, last, flags, NULL);
}

KB_API void closefrom(int lowfd)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1)) {
		kb_real.closefrom(lowfd);
		return;
	}
	int saved = errno;
	kb_close_range_hook(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0, "closefrom");
	errno = saved;
}

/* Decides, for one tracked descriptor in the range, whether it stays
 * open. */
static bool keep_open(int fd, const char *via)
{
	struct kb_fd_info info;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (kb_is_protected(fd))
		return true;
	if (!kb_fd_lookup(fd, &info))
		return false;
	if (info.flags & KB_FD_QUEUE)
		kb_queue_closing(fd);
	if (!kb_fd_same(fd, &info)) {
		kb_conn_closing(&info, via);
		kb_fd_forget(fd);
		return false;
	}
	if (info.flags & KB_FD_LEAKED)
		return true; /* already "closed" as far as the host knows */
	bool end = kb_conn_closing(&info, via) && !(info.flags & KB_FD_COPY);
	if (!kb_plan_wants(&kb_shim.plan, KB_CALL_CLOSE, info.role)) {
		kb_fd_forget(fd);
		return false;
	}
	struct kb_site site = { .call = KB_CALL_CLOSE, .via = via, .fd = fd, .role = info.role, .peer = &info.peer };
	site.copy = !end;
	const struct kb_verdict *d = kb_inject(&site, info.lport, v, NULL);
	if (d && d->rule->action == KB_ACT_LEAK) {
		kb_fd_mark(fd, KB_FD_LEAKED);
		return true;
	}
	if (d && d->rule->action == KB_ACT_RESET)
		kb_reset_on_close(fd);
	kb_fd_forget(fd);
	return false;
}

int kb_close_range_hook(unsigned first, unsigned last, int flags, const char *via)
{
	if (!kb_armed() || kb_guarded() || first > last ||
	    (flags & CLOSE_RANGE_CLOEXEC))
		return pass(first, last, flags);
	if (via == NULL)
		via = "close_range";

	int saved = errno;
	/* past the highest tracked or protected descriptor nothing is kept,
	 * so the scan is bounded by what the shim knows, not by the range */
	unsigned limit = (unsigned)kb_fd_limit();
	unsigned prot = (unsigned)(kb_protected_max() + 1);
	if (prot > limit)
		limit = prot;
	int rc = 0, err = 0;
	unsigned seg = first; /* first descriptor not yet handed to the real call */
	for (unsigned fd = first; fd <= last && fd < limit; fd++) {
		if (!keep_open((int)fd, via))
			continue;
		if (fd > seg && pass(seg, fd - 1, flags) < 0 && !err) {
			err = errno;
			rc = -1;
		}
		seg = fd + 1;
	}
	if (seg <= last && pass(seg, last, flags) < 0 && !err) {
		err = errno;
		rc = -1;
	}
	errno = rc ? err : saved;
	return rc;
}
