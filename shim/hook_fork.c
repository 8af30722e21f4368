/*
 * hook_fork.c - fork(): the one call that tells a parent its child's pid.
 *
 * The fork handlers (conn.c) count a child as a holder of each connection
 * the process holds, before the fork, so that the parent's close of its
 * copy cannot end what the child still holds. The child then says which
 * process it is - unless it is killed before it has run a line, and then
 * nobody could find it gone. So the parent says it too, as fork() returns
 * the pid. Forks made inside the C library (daemon()) are not seen here;
 * their children say it themselves.
 */
#include <errno.h>
#include <unistd.h>

#include "conn.h"
#include "real.h"
#include "shim.h"

/* Out of line: the exported function keeps no stack frame in the
 * pass-through. */
__attribute__((noinline)) static pid_t fork_armed(void)
{
	pid_t pid = kb_real.fork();
	if (pid > 0) {
		int saved = errno;
		kb_conn_forked(pid);
		errno = saved;
	}
	return pid;
}

KB_API pid_t fork(void)
{
	if (__builtin_expect(kb_mode_get() == KB_MODE_OFF, 1) || kb_conn_table() == NULL)
		return kb_real.fork();
	return fork_armed();
}
