/*
 * conns.h - connections held by more than one process of a tree.
 *
 * A descriptor is not a connection. A fork-per-connection server (socat,
 * postgresql's postmaster) accepts a connection, forks, and closes its
 * copy at once: that close ends nothing, the child still talks to the
 * peer. A session (Q124737) or a node's link (Q238009) ends when the last
 * copy in the whole process tree goes, or when the last process holding
 * it exits. So a connection that matters for an ending (a session, or a
 * connection whose close marks its peer) is entered here, in memory the
 * shim maps MAP_SHARED (a process and its forks share it; an exec'd
 * program starts afresh), with a count of the processes that hold it and,
 * for a few of them, which descriptor they hold it by: a session model
 * deciding in one process may have to cut a session another process
 * holds (a prefork pool's sibling), and reaches it through that.
 *
 * This is the bookkeeping only, on memory the caller provides: the shim
 * (shim/conn.c) decides when a process gains or drops a copy. Lock-free:
 * a slot is claimed by compare-and-swap; counts and flags are atomics;
 * nothing waits, so a hook interrupted by a signal handler that calls
 * another hook can never deadlock here.
 */
#ifndef KBFAULT_CONNS_H
#define KBFAULT_CONNS_H

#include <stdbool.h>
#include <stdint.h>

#include "kbfault/addr.h"

#define KB_CONNS_MAX 4096
#define KB_CONN_WHO 16 /* holders recorded by pid and descriptor */

enum { KB_CONN_FREE, KB_CONN_BUSY, KB_CONN_LIVE };

enum {
	KB_CONN_SESSION = 1, /* an admitted session of an `action sessions` rule */
	KB_CONN_CUT = 2,     /* a session the model cut (or is cutting) */
};

/* What the connection is, for checking that a descriptor still is it. */
struct kb_conn_id {
	uint8_t role; /* enum kb_role: accepted or outbound */
	struct kb_addr peer;
	uint16_t lport;
	uint64_t ino; /* 0 for an accepted connection known by its peer */
};

struct kb_conn_who {
	int32_t pid; /* 0: free; -1: being written */
	int32_t fd;
};

/* A connection as its readers see it: a copy taken field by field. */
struct kb_conn {
	struct kb_conn_id id;
	uint32_t flags; /* KB_CONN_SESSION, KB_CONN_CUT */
	uint32_t rule;  /* a session's rule index */
	uint64_t seq;   /* a session's admission number, tree-wide, from 1 */
	struct kb_conn_who who[KB_CONN_WHO];
};

/* A slot of the table. Every field is read and written atomically (the
 * connection's identity a word at a time), so that a reader racing with a
 * slot's reuse gets stale words, which the generation then rejects, and
 * never a torn value. */
struct kb_conn_slot {
	uint32_t state;   /* KB_CONN_* */
	uint32_t holders; /* processes holding a copy (some perhaps not in who[]) */
	/* generation (high 32 bits: bumped at every reuse, so an old handle
	 * no longer matches) and flags (low 32), in one word so that a flag
	 * is only ever set on the connection it was meant for */
	uint64_t tag;
	uint32_t rule;
	uint64_t seq;
	struct kb_conn_who who[KB_CONN_WHO];
	uint64_t id[4]; /* struct kb_conn_id, packed (conns.c) */
};

struct kb_conns {
	uint64_t seq;  /* the last admission number given */
	uint32_t high; /* one past the highest slot ever used: bounds scans */
	uint32_t next; /* where the next search for a free slot starts */
	struct kb_conn_slot slot[KB_CONNS_MAX];
};

/* A handle names a slot and its generation; 0 is no handle. */
static inline uint64_t kb_conns_handle(uint32_t index, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (index + 1);
}

static inline uint32_t kb_conns_index(uint64_t handle)
{
	return (uint32_t)handle - 1;
}

/* Enters a connection held by (pid, fd) alone. Returns its handle, or 0
 * when the table is full (the connection is then handled as one held by
 * a single process). */
uint64_t kb_conns_open(struct kb_conns *t, const struct kb_conn_id *id, int32_t pid, int32_t fd);

/* A copy of the connection `handle` names, if it is live and still that
 * connection (true). */
bool kb_conns_read(struct kb_conns *t, uint64_t handle, struct kb_conn *out);

/* The handle of slot i if it is live (0 if not), and its holder k. For
 * scans of the whole table. */
uint64_t kb_conns_live(struct kb_conns *t, uint32_t i);
struct kb_conn_who kb_conns_holder(struct kb_conns *t, uint32_t i, int k);

/* Counting a holder that has no descriptor recorded yet (a fork under
 * way, counted before it so that the parent's close cannot end the
 * connection first), and undoing that when the fork failed. */
void kb_conns_hold(struct kb_conns *t, uint64_t handle);
void kb_conns_unhold(struct kb_conns *t, uint64_t handle);

/* The new holder (already counted by kb_conns_hold) says which process
 * it is and by which descriptor it holds the connection. */
void kb_conns_record(struct kb_conns *t, uint64_t handle, int32_t pid, int32_t fd);

/* A holder's place kept before its pid is known (a fork under way: the
 * child, or its parent once fork() has returned its pid, fills it in).
 * Returns the place, or -1 when every place is taken (the holder is then
 * counted but not known). A place kept and not filled is never taken for
 * another holder, nor taken for a dead one. */
int kb_conns_reserve(struct kb_conns *t, uint64_t handle, int32_t fd);
void kb_conns_fill(struct kb_conns *t, uint64_t handle, int place, int32_t pid);
void kb_conns_unreserve(struct kb_conns *t, uint64_t handle, int place);

/* pid drops its copy. Returns the number of holders left: 0 means the
 * connection has ended, and *ended (if not NULL) gets the slot as it was,
 * before the slot was freed for reuse. With `recorded`, only a holder
 * found in who[] is taken off the count (a sweep dropping a dead process:
 * of two sweepers, one does); without, the caller holds a copy whether
 * or not it was recorded. A handle no longer live returns 1: not this
 * caller's to end. */
uint32_t kb_conns_drop(struct kb_conns *t, uint64_t handle, int32_t pid, bool recorded,
		       struct kb_conn *ended);

/* Makes a live connection a session of rule `rule`; returns its
 * admission number. */
uint64_t kb_conns_admit(struct kb_conns *t, uint64_t handle, uint32_t rule);

/* The oldest live session of `rule` that is not cut, other than
 * `except`; 0 if none. `skip` (may be NULL) is asked about each candidate
 * and can rule it out (one this process cannot reach right now). */
uint64_t kb_conns_oldest(struct kb_conns *t, uint32_t rule, uint64_t except,
			 bool (*skip)(uint64_t handle, void *ctx), void *ctx);

/* Claims a session for cutting: true for exactly one caller. */
bool kb_conns_claim_cut(struct kb_conns *t, uint64_t handle);
/* Gives a claim back; true if the session was still that connection and
 * claimed (false: it has ended meanwhile). */
bool kb_conns_unclaim_cut(struct kb_conns *t, uint64_t handle);

#endif
