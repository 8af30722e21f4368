/*
 * log.h - the injection log and the shim's own, protected descriptors.
 *
 * JSON Lines, one object per line, each line one write(2) (ownwrite.h:
 * no signal, no cancellation point, errno untouched) to a descriptor
 * opened O_APPEND|O_CLOEXEC (mode 0600 when created; where it may be
 * opened and how is logfile.h's): lines from many threads and processes
 * never interleave. What can still happen to a line, and what the shim
 * does about it:
 *
 *  - no room (a slow or stopped reader of a pipe, FIFO, socket or
 *    terminal, or a non-blocking standard error): the line waits for
 *    room, up to a second; one that waits in vain makes the log "stuck",
 *    and later lines are tried once, without waiting, until one gets
 *    through;
 *  - cut short (a full filesystem, RLIMIT_FSIZE): the rest is never
 *    written, the piece is ended with a newline (or the next line starts
 *    with one). A line cut by a fatal signal (the kernel can stop a write
 *    at a page boundary when one is pending) stays cut, since the process
 *    runs nothing after it, and the next line written is glued to it:
 *    readers resynchronise on the next `{"event":"`;
 *  - lost (no room in time, a line cut short but for one a fatal signal
 *    cut, or any error): counted, and the count written as a "lost" line
 *    once the log takes a line again; one warning per process on
 *    standard error.
 *
 * The descriptors the shim keeps for itself (the log; the refusal sinks
 * of act.h) are out of the host's reach. To a host they look like its
 * own until it closes them: the first close() of one reports success and
 * leaves it open for the shim - so a strict host that closes whatever
 * /proc/self/fd lists and asserts that nothing says EBADF (systemd's
 * safe_close) is satisfied - and a later close() of that number reports
 * EBADF, as for any number closed already. close_range()/closefrom() skip
 * them, and dup2()/dup3() onto one moves it away first, as one decision
 * taken under a lock (kb_protect_evict).
 */
#ifndef KBFAULT_LOG_H
#define KBFAULT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbfault/addr.h"
#include "kbfault/decide.h"

/* Opens the log at path (logfile.h says what a path may name). Returns 0,
 * or a negative errno and why (for the caller's warning). */
int kb_log_open(const char *path, char *why, size_t why_len);
const char *kb_log_path(void);

/* Adds fd to the protected set. */
void kb_protect(int fd);

/* Gives every protected descriptor its entry in the descriptor table
 * (fdtable.h), for those protected before the table existed. */
void kb_protected_to_table(void);

/* Moves a descriptor of the shim's own up, out of the host's way
 * (close-on-exec); returns the new number, or fd if it cannot. */
int kb_move_high(int fd);
bool kb_is_protected(int fd);
/* The highest protected descriptor, or -1. */
int kb_protected_max(void);
/* The host is about to replace descriptor fd (dup2/dup3 onto it): if it
 * is ours, move ours to another number first. */
void kb_protect_evict(int fd);

/* The host close()s fd: 1 if it is ours and the host had not closed it
 * yet (report success, keep it), 0 if it is ours and the host closed it
 * before (report EBADF), -1 if it is not ours (any more). */
int kb_protect_close(int fd);

/* In a forked child: what the parent's other threads held is released. */
void kb_log_atfork_child(void);

void kb_log_line(const char *line, size_t len);

/* The start line of a process; forked says it began as a fork. */
void kb_log_start(bool forked);

/* A configuration error, for the log, before the host is stopped. */
void kb_log_error(const char *message);

struct kb_fd_info;

struct kb_site {
	enum kb_call call;
	const char *via;            /* entry point when not the call itself */
	int fd;
	enum kb_role role;
	const struct kb_addr *peer; /* may be NULL */
	/* fd's table entry, when the call is on a tracked descriptor: before
	 * a rule acts (or is logged), kb_inject() checks that fd is still
	 * that socket. Checking only then spares the system call on every
	 * call that no rule fires on. NULL: nothing to check. */
	const struct kb_fd_info *tracked;
	/* The local address, when the shim knows it already (a connection
	 * reached in another process, whose `fd` is that process's number);
	 * NULL: asked of fd. */
	const struct kb_addr *local;
	/* A close of one process's copy of a connection that others in the
	 * tree still hold (conn.h): not the connection's end, so rules do not
	 * mark its peer. */
	bool copy;
	/* The process whose copy of the connection the line is about, when
	 * it is not this one (conn.h: a session cut in a sibling, a link
	 * that ended with a process found gone); 0: this one. */
	int holder;
};

/* Facts about the call that only the hook knows, for the log line. Zero
 * (NULL, -1 for the fds and counts) leaves a field out. */
struct kb_effect {
	int requested;      /* listen(): the backlog the host asked for */
	const char *effect; /* what a stateful action did: "reset", "cut", "refused", "pause", "resume", "none" */
	const char *reason; /* why, in words: "session limit exceeded" */
	bool has_count;
	int64_t count;      /* sessions: the counter after the event */
	int queued;         /* queue: connections waiting (-1: leave out) */
	uint64_t attempt;   /* sessions: the connection request's number (0: leave out) */
	uint64_t session;   /* sessions: the cut session's admission number (0: leave out) */
};

#define KB_EFFECT_NONE ((struct kb_effect){ .queued = -1 })

void kb_log_inject(const struct kb_site *s, const struct kb_verdict *v, const struct kb_effect *e);
void kb_log_stall_end(const struct kb_site *s, const struct kb_verdict *v, uint64_t stalled_ns,
		      bool interrupted);

/* A peer marked by a rule's mark-peer (until_ns since start; KB_FOREVER). */
void kb_log_mark(const struct kb_site *s, const struct kb_verdict *v, uint64_t until_ns, bool stored);

#endif
