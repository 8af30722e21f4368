/*
 * sessions.h - the session model behind `action sessions` (Q124737).
 *
 * A gateway counts its active sessions: one up when a session is accepted,
 * one down when it is released. Its bug: every connection request on the
 * listening socket also takes `miscount` off the count. So the count
 * drifts down by one for every session that comes and goes, and once it
 * reaches zero while sessions are active, the gateway cuts one of them.
 * On top of that every attempt keeps a slot (and, optionally, memory) for
 * good, so once `slots` attempts have been made, every new session is
 * refused with "session limit exceeded".
 *
 * These functions are the arithmetic, on the rule's counter block; the
 * shim decides which socket to cut and does the cutting.
 */
#ifndef KBFAULT_SESSIONS_H
#define KBFAULT_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "kbfault/decide.h"

/* A connection request: returns its number (from 1); *refused says the
 * slots are used up. */
uint64_t kb_sessions_attempt(struct kb_counter *c, const struct kb_rule *r, bool *refused);

/* An admitted session: the count goes up by one, and down by the
 * miscount. Returns the count after. */
int64_t kb_sessions_admit(struct kb_counter *c, const struct kb_rule *r);

/* A session released: the count goes down by one. A session that was cut
 * stopped being active when it was cut. Returns the count. */
int64_t kb_sessions_release(struct kb_counter *c, const struct kb_rule *r, bool was_cut);

/* The count as the gateway sees it. */
int64_t kb_sessions_count(const struct kb_counter *c, const struct kb_rule *r);

/* Must an active session be cut? When the count is at or below zero and a
 * session is active. */
bool kb_sessions_must_cut(const struct kb_counter *c, const struct kb_rule *r);

/* A cut session will be released by its owner later; until then it is not
 * active as far as cutting is concerned. */
void kb_sessions_cut(struct kb_counter *c);

/* A cut that could not be made after all: the session is active again. */
void kb_sessions_uncut(struct kb_counter *c);

#endif
