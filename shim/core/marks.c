/*
 * marks.c - the lock-free table of marked peers; see marks.h.
 */
#include "kbfault/marks.h"

#include <string.h>

#include "kbfault/prng.h"

static size_t home(const struct kb_addr *a)
{
	/* the address bytes are the key; the draw mixes them well enough */
	uint64_t lo, hi;
	memcpy(&lo, a->bytes, 8);
	memcpy(&hi, a->bytes + 8, 8);
	return (size_t)(kb_draw(lo, hi, a->family) % KB_MARKS_MAX);
}

static bool same(const struct kb_mark *m, const struct kb_addr *a)
{
	return m->family == a->family && memcmp(m->bytes, a->bytes, 16) == 0;
}

bool kb_marks_set(struct kb_marks *m, const struct kb_addr *addr, uint64_t until_ns)
{
	size_t i = home(addr);

	for (size_t n = 0; n < KB_MARKS_MAX; n++, i = (i + 1) % KB_MARKS_MAX) {
		struct kb_mark *s = &m->slot[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st == 0) {
			uint32_t expected = 0;
			if (!__atomic_compare_exchange_n(&s->state, &expected, 1, false, __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE)) {
				st = expected; /* someone else took it: look at what they wrote */
			} else {
				s->family = addr->family;
				memcpy(s->bytes, addr->bytes, 16);
				__atomic_store_n(&s->until_ns, until_ns, __ATOMIC_RELAXED);
				__atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
				__atomic_add_fetch(&m->count, 1, __ATOMIC_RELEASE);
				return true;
			}
		}
		/* A slot being written is passed by, never waited for: its
		 * writer may be the code a signal handler interrupted, in this
		 * very thread. Two threads marking one address at the same
		 * moment may then take two slots; a lookup finds the first. */
		if (st != 2)
			continue;
		if (same(s, addr)) {
			uint64_t old = __atomic_load_n(&s->until_ns, __ATOMIC_RELAXED);
			while (until_ns > old && !__atomic_compare_exchange_n(&s->until_ns, &old, until_ns, true,
									     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			return true;
		}
	}
	return false;
}

bool kb_marks_has(const struct kb_marks *m, const struct kb_addr *addr, uint64_t (*now)(void *ctx),
		  void *ctx)
{
	if (__atomic_load_n(&m->count, __ATOMIC_ACQUIRE) == 0)
		return false;
	size_t i = home(addr);

	for (size_t n = 0; n < KB_MARKS_MAX; n++, i = (i + 1) % KB_MARKS_MAX) {
		const struct kb_mark *s = &m->slot[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st == 0)
			return false;
		if (st == 2 && same(s, addr)) {
			uint64_t until = __atomic_load_n(&s->until_ns, __ATOMIC_RELAXED);
			return until == UINT64_MAX || now(ctx) < until;
		}
	}
	return false;
}
