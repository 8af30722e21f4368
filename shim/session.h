/*
 * session.h - the session model's effects on real sockets (Q124737).
 *
 * The arithmetic is in shim/core/sessions.c; this is where a connection
 * is refused once the slots are used up, where memory is leaked per
 * attempt, and where an active session is cut when the miscounted total
 * reaches zero: its connection is reset (connect(AF_UNSPEC)) while its
 * descriptor stays the host's, so the peer sees the session drop and the
 * host cleans up as it would after any reset.
 */
#ifndef KBFAULT_SESSION_H
#define KBFAULT_SESSION_H

#include <stdbool.h>

#include "fdtable.h"
#include "log.h"

/* A new connection under an `action sessions` rule: takes a slot and any
 * leaked memory. Returns true if it must be refused ("session limit
 * exceeded", logged). */
bool kb_session_refuse(const struct kb_site *site, const struct kb_verdict *v);

/* The connection c (tracked) is now an active session. */
void kb_session_admit(int c, const struct kb_site *site, const struct kb_verdict *v);

/* The host is closing a session socket (info.flags has KB_FD_SESSION). */
void kb_session_end(int fd, const struct kb_fd_info *info, const char *via);

/* After fork: the leak allocator's lock may have been held by a thread
 * that does not exist in the child. */
void kb_session_atfork_child(void);

/* For every path that closes a tracked descriptor. */
static inline void kb_session_closing(int fd, const struct kb_fd_info *info, const char *via)
{
	if (info->flags & KB_FD_SESSION)
		kb_session_end(fd, info, via);
}

#endif
