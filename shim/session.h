/*
 * session.h - the session model's effects on real sockets (Q124737).
 *
 * The arithmetic is in shim/core/sessions.c, on the rule's counter block,
 * which for a sessions rule is always the process tree's: one model for a
 * server and the workers it forks, as the gateway had one count. Each
 * session is a connection in the tree's table (conn.h), so it ends when
 * its connection ends - not when a fork-per-connection server's parent
 * drops its copy - and it can be cut from any process of the tree that
 * may reach the one holding it.
 *
 * This is where a connection is refused once the slots are used up,
 * where memory is leaked per attempt, and where the oldest active session
 * is cut when the miscounted total reaches zero: its connection is reset
 * (connect(AF_UNSPEC)) while its descriptor stays its holder's, so the
 * peer sees the session drop and the server cleans up as after any reset.
 */
#ifndef KBFAULT_SESSION_H
#define KBFAULT_SESSION_H

#include <stdbool.h>

#include "kbfault/conns.h"
#include "fdtable.h"
#include "log.h"

/* A new connection under an `action sessions` rule: takes a slot and any
 * leaked memory. Returns true if it must be refused ("session limit
 * exceeded", logged). */
bool kb_session_refuse(const struct kb_site *site, const struct kb_verdict *v);

/* The connection c (tracked) is now an active session. */
void kb_session_admit(int c, const struct kb_site *site, const struct kb_verdict *v);

/* A session's connection has ended (conn.h): release it in the model,
 * which may then cut another session - unless may_cut is false (a cut
 * under way found this one ended, and goes on choosing itself). */
void kb_session_ended(const struct kb_conn *c, const char *via, bool may_cut);

/* After fork: the leak allocator's lock may have been held by a thread
 * that does not exist in the child. */
void kb_session_atfork_child(void);

#endif
