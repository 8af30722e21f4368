/*
 * prng.h - reproducible random decisions.
 *
 * A probabilistic rule fires on hit N if draw(seed, rule, N) is below its
 * threshold. The draw is a pure function: the same seed, rule name and hit
 * number always give the same answer, whatever the thread interleaving,
 * and the host's rand()/random() state is never touched.
 */
#ifndef KBFAULT_PRNG_H
#define KBFAULT_PRNG_H

#include <stdint.h>

/* FNV-1a of a rule name: a stable per-rule input to the draw. */
uint64_t kb_hash_name(const char *name);

/* A uniform 64-bit value for (seed, rule, hit): splitmix64's finaliser
 * applied to a combination of the three. */
static inline uint64_t kb_draw(uint64_t seed, uint64_t rule_hash, uint64_t hit)
{
	uint64_t z = seed ^ (rule_hash * 0x9e3779b97f4a7c15ULL) ^ (hit * 0xd1b54a32d192ed03ULL);
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif
