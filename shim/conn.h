/*
 * conn.h - when a connection ends, across the process tree.
 *
 * The table is conns.h's, mapped MAP_SHARED at start-up when a recipe
 * needs to know when connections end: it has `action sessions` rules
 * (Q124737), or close rules that mark the peer (Q238009). A connection
 * enters it when it becomes a session, or when the process holding it
 * forks (before fork(), so that a parent closing its copy at once cannot
 * end it first). Its descriptor's entry then carries KB_FD_CONN and the
 * table's handle (fdtable.h).
 *
 * A connection ends when the last process holding it closes it, exits
 * with it open (exit(): our destructor), is found dead (killed, or gone
 * with _exit(): whoever looks next, kb_conn_sweep), or is found by a cut
 * no longer to hold it (its number closed or reused behind our back:
 * kb_conn_reach). Only then is a session released and, for a connection
 * that ended without a close the shim saw, are the close rules that mark
 * peers applied ("via":"exit", or "via":"unseen"); a mark for a
 * connection that ended in another process names it ("holder") and has
 * no "local", which cannot be asked of this process.
 *
 * A child made by a raw clone() or clone3() runs no fork handler, so no
 * handler records it as a holder: its close of a copy it inherited ends
 * nothing here (README, Limits).
 */
#ifndef KBFAULT_CONN_H
#define KBFAULT_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kbfault/conns.h"
#include "fdtable.h"

/* Set up at start-up, once the plan is built; no-op when the recipe needs
 * none of it. */
void kb_conn_init(void);

/* The table, or NULL when the recipe needs none. Hidden, so that the
 * accept path's test is one RIP-relative load. */
extern struct kb_conns *kb_conn_tbl __attribute__((visibility("hidden")));

static inline struct kb_conns *kb_conn_table(void)
{
	return __atomic_load_n(&kb_conn_tbl, __ATOMIC_ACQUIRE);
}

/* Enters fd (a tracked connection described by info) as held by this
 * process alone; returns its handle (0: table full or absent). */
uint64_t kb_conn_enter(int fd, const struct kb_fd_info *info);

/* This process is about to close (or has lost) its copy of the
 * connection `info` describes (a tracked descriptor). Returns true when
 * that ends the connection (always, for a connection not in the table:
 * its only holder is this process); false when another process still
 * holds it. A session that ends is released. */
bool kb_conn_closing(const struct kb_fd_info *info, const char *via);

/* fork() has just returned child's pid to this process: the child is the
 * holder of what the fork handlers counted for it (hook_fork.c). */
void kb_conn_forked(pid_t child);

/* Drops the holders that are no longer alive, ending what they alone
 * held. Cheap when nothing is held by another process. */
void kb_conn_sweep(void);

/* Before the rules look at a connection just accepted: what a process
 * that died has left behind must have ended first (a peer it held must
 * be marked before the peer's next connection is decided). */
static inline void kb_conn_before_accept(void)
{
	if (__builtin_expect(kb_conn_table() != NULL, 0))
		kb_conn_sweep();
}

/* A descriptor of this process's own for the connection `handle`,
 * checked to be that connection, or -1: errno ESRCH when no holder has it
 * any more (the connection has ended, and was ended here), EPERM when it
 * is held only by processes this one may not reach. *holder_pid and
 * *holder_fd say whose copy it is. The caller closes it (kb_real.close). */
int kb_conn_reach(uint64_t handle, struct kb_conn *copy, int *holder_pid, int *holder_fd);

#endif
