/*
 * arena.h - the shim's own memory for start-up: mmap'd, bump-allocated,
 * never returned. See include/kbfault/mem.h for why the shim must not use
 * the host's malloc while it starts.
 */
#ifndef KBFAULT_ARENA_H
#define KBFAULT_ARENA_H

#include "kbfault/mem.h"

extern const struct kb_allocator kb_arena;

#endif
