/*
 * mem.h - where the core gets its memory.
 *
 * The core allocates only while loading a recipe and building its plan.
 * In the CLI and the tests that is plain malloc. In the shim it must not
 * be: start-up can be triggered from inside the host's allocator (jemalloc
 * calls syscall() while holding its initialisation lock, and our hook for
 * it would then wait on that lock for ever), so the shim points the core
 * at an mmap arena of its own (shim/arena.c) before it loads anything.
 *
 * kb_realloc takes the old size, so an arena that cannot resize in place
 * can still copy.
 */
#ifndef KBFAULT_MEM_H
#define KBFAULT_MEM_H

#include <stddef.h>

struct kb_allocator {
	void *(*alloc)(size_t size);  /* zeroed memory, or NULL */
	void (*release)(void *p, size_t size);
};

/* Switches the core's allocator (NULL: back to malloc). Call before any
 * allocation whose memory will be released through the other one. */
void kb_mem_use(const struct kb_allocator *a);

void *kb_alloc(size_t size);
void *kb_realloc(void *p, size_t old_size, size_t new_size);
void kb_free(void *p, size_t size);

#endif
