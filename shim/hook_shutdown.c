/*
 * hook_shutdown.c - shutdown(): half of how some servers end a
 * connection (Python's http.server sends SHUT_WR before close), so a leak
 * must swallow it too or the peer still sees the end of the stream.
 */
#include <errno.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "real.h"
#include "shim.h"

static int pass(int fd, int how)
{
	return kb_real.shutdown(fd, how);
}

KB_API int shutdown(int fd, int how)
{
	int m = kb_mode_get();
	if (__builtin_expect(m == KB_MODE_OFF, 1) || (m == KB_MODE_ARMED && kb_fd_untracked(fd)))
		return kb_real.shutdown(fd, how);
	return kb_shutdown_hook(fd, how, NULL);
}

int kb_shutdown_hook(int fd, int how, const char *via)
{
	struct kb_fd_info info;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (!kb_armed() || kb_guarded())
		return pass(fd, how);
	if (!kb_fd_lookup(fd, &info) || !kb_plan_wants(&kb_shim.plan, KB_CALL_SHUTDOWN, info.role))
		return pass(fd, how);
	int saved = errno;
	if (info.flags & KB_FD_LEAKED) {
		/* kept open after the host closed it: gone, to the host, unless
		 * the number has been reused since */
		bool same = kb_fd_same(fd, &info);
		errno = saved;
		if (!same)
			return pass(fd, how);
		errno = EBADF;
		return -1;
	}

	/* identity is checked only if a rule fires (kb_inject) */
	struct kb_site site = { .call = KB_CALL_SHUTDOWN, .via = via, .fd = fd, .role = info.role, .peer = &info.peer,
				.tracked = &info };
	const struct kb_verdict *d = kb_inject(&site, info.lport, v, NULL);
	errno = saved;
	if (d == NULL)
		return pass(fd, how);
	switch (d->rule->action) {
	case KB_ACT_LEAK:
		return 0;
	case KB_ACT_RESET:
		kb_reset_keep_open(fd);
		errno = saved;
		return 0;
	case KB_ACT_FAIL:
		errno = d->rule->err;
		return -1;
	default:
		return pass(fd, how);
	}
}
