/*
 * mem.c - the core's allocator indirection; see mem.h.
 */
#include "kbfault/mem.h"

#include <stdlib.h>
#include <string.h>

static void *heap_alloc(size_t size)
{
	return calloc(1, size ? size : 1);
}

static void heap_release(void *p, size_t size)
{
	(void)size;
	free(p);
}

static const struct kb_allocator heap = { heap_alloc, heap_release };
static const struct kb_allocator *current = &heap;

void kb_mem_use(const struct kb_allocator *a)
{
	current = a ? a : &heap;
}

void *kb_alloc(size_t size)
{
	return current->alloc(size);
}

void *kb_realloc(void *p, size_t old_size, size_t new_size)
{
	void *n = current->alloc(new_size);
	if (n == NULL)
		return NULL;
	if (p) {
		memcpy(n, p, old_size < new_size ? old_size : new_size);
		current->release(p, old_size);
	}
	return n;
}

void kb_free(void *p, size_t size)
{
	if (p)
		current->release(p, size);
}
