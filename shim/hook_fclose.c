/*
 * hook_fclose.c - fclose() on a stream wrapped around a socket
 * (fdopen(sock)): it closes the socket too, so a leak rule must see it.
 *
 * The FILE itself is always freed - keeping it would leak memory the host
 * can never reclaim and change nothing on the wire. To keep the connection
 * from being released, the socket is first duplicated onto another
 * descriptor that stays open, tracked as leaked. That copy is made before
 * the leak is logged (act.h: kb_inject_prepared), so the line names the
 * descriptor kept; at the descriptor limit there is none to make, the
 * stream's socket is closed after all, and the line says so ("effect":
 * "none", with the reason).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "conn.h"
#include "fdtable.h"
#include "guard.h"
#include "hooks.h"
#include "real.h"
#include "shim.h"
#include "sock.h"

static int pass(FILE *fp)
{
	return kb_real.fclose(fp);
}

/* A leak's copy of the stream's socket, made before the line is written. */
struct keep {
	int fd, kept;
	char reason[96];
};

static void keep_copy(const struct kb_verdict *v, struct kb_site *site, struct kb_effect *effect, void *ctx)
{
	struct keep *k = ctx;

	if (v->rule->action != KB_ACT_LEAK)
		return;
	int fdflags = fcntl(k->fd, F_GETFD);
	k->kept = fcntl(k->fd, fdflags >= 0 && (fdflags & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	if (k->kept >= 0) {
		site->fd = k->kept;
		return;
	}
	snprintf(k->reason, sizeof k->reason, "no copy of the socket could be kept (%s): fclose() closed it",
		 strerrorname_np(errno) ? strerrorname_np(errno) : "error");
	effect->effect = "none";
	effect->reason = k->reason;
}

static int fclose_slow(FILE *fp)
{
	struct kb_fd_info info;
	struct kb_verdict v[KB_VERDICTS_MAX];

	if (!kb_armed() || kb_guarded() || fp == NULL)
		return pass(fp);
	int saved = errno;
	int fd = fileno(fp);
	if (fd < 0 || !kb_fd_lookup(fd, &info)) {
		errno = saved;
		return pass(fp);
	}
	if (!kb_fd_same(fd, &info)) {
		kb_conn_closing(&info, "fclose");
		kb_fd_forget(fd);
		errno = saved;
		return pass(fp);
	}
	bool end = kb_conn_closing(&info, "fclose") && !(info.flags & KB_FD_COPY);
	if (!kb_plan_wants(&kb_shim.plan, KB_CALL_CLOSE, info.role)) {
		kb_fd_forget(fd);
		errno = saved;
		return pass(fp);
	}

	struct kb_site site = { .call = KB_CALL_CLOSE, .via = "fclose", .fd = fd, .role = info.role,
				.peer = &info.peer };
	site.copy = !end;
	struct keep keep = { fd, -1, "" };
	struct kb_prepare prepare = { keep_copy, &keep };
	const struct kb_verdict *d = kb_inject_prepared(&site, info.lport, v, NULL, &prepare);
	if (d && d->rule->action == KB_ACT_LEAK && keep.kept >= 0) {
		kb_fd_copy(fd, keep.kept);
		kb_fd_mark(keep.kept, KB_FD_LEAKED);
	}
	if (d && d->rule->action == KB_ACT_RESET)
		kb_reset_on_close(fd);
	kb_fd_forget(fd);
	errno = saved;
	int rc = pass(fp);
	if (d && d->rule->action == KB_ACT_FAIL) {
		errno = d->rule->err;
		return EOF;
	}
	return rc;
}

/* Out of line: the exported function keeps no stack frame, so its
 * pass-through stays a load, a test and a jump. */
__attribute__((noinline)) static int fclose_armed(FILE *fp)
{
	if (kb_mode_get() == KB_MODE_ARMED && fp && kb_fd_untracked(fileno(fp)))
		return kb_real.fclose(fp);
	return fclose_slow(fp);
}

KB_API int fclose(FILE *fp)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1))
		return kb_real.fclose(fp);
	return fclose_armed(fp);
}
