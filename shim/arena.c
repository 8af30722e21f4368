/*
 * arena.c - a bump allocator over mmap for start-up (arena.h). Only the
 * thread running start-up allocates (under pthread_once), so it needs no
 * lock. Released memory is not reused: start-up allocates once, and a
 * recipe of the maximum size fits in a few megabytes.
 */
#include "arena.h"

#include <stdint.h>
#include <sys/mman.h>

#define CHUNK (1u << 20)

static uint8_t *next;
static size_t left;

static void *arena_alloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size > left) {
		size_t want = size > CHUNK ? size : CHUNK;
		void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		next = p;
		left = want;
	}
	void *p = next;
	next += size;
	left -= size;
	return p; /* fresh anonymous pages are zero */
}

static void arena_release(void *p, size_t size)
{
	(void)p;
	(void)size;
}

const struct kb_allocator kb_arena = { arena_alloc, arena_release };
