/*
 * marks.h - peers a rule has marked (mark-peer), for rules that filter on
 * them (peer-marked yes|no).
 *
 * This is the state behind "once a node's session ends, it can never
 * re-join until this server restarts" (Q238009): a rule on close marks the
 * peer's address, a rule on accept or connect refuses marked peers.
 *
 * A fixed table of addresses in memory the caller provides - MAP_SHARED in
 * the shim, so a process and its forks (nginx's workers) share marks, and
 * an exec'd or restarted program starts with none. Lock-free: a slot is
 * claimed with one compare-and-swap and never freed; re-marking an address
 * updates its expiry. Ports are not part of a mark: a node is its address.
 */
#ifndef KBFAULT_MARKS_H
#define KBFAULT_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbfault/addr.h"

struct kb_mark {
	uint32_t state;     /* 0 free, 1 being written, 2 in use */
	uint8_t family;
	uint8_t bytes[16];
	uint64_t until_ns;  /* on the marking process's start clock; UINT64_MAX: for ever */
};

#define KB_MARKS_MAX 1024

struct kb_marks {
	uint32_t count; /* slots in use: a lookup in an empty table is one load */
	struct kb_mark slot[KB_MARKS_MAX];
};

/* Marks addr until until_ns (UINT64_MAX: for ever). Returns false if the
 * table is full (the mark is then lost, and the caller logs it). */
bool kb_marks_set(struct kb_marks *m, const struct kb_addr *addr, uint64_t until_ns);

/* Is addr marked now? The clock is read (now(ctx)) only when addr is
 * found with a mark that expires: a hot path asking about unmarked peers
 * never reads it. */
bool kb_marks_has(const struct kb_marks *m, const struct kb_addr *addr, uint64_t (*now)(void *ctx),
		  void *ctx);

#endif
