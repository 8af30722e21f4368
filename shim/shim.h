/*
 * shim.h - the shim's process-wide state, shared by its files.
 *
 * Written once during start-up (init.c) and read by every hook after it;
 * see docs/design.md for how start-up, the guard and the shim's few locks
 * fit together.
 *
 * kb_mode is the one word every hook reads first:
 *   KB_MODE_OFF    (0) - pass-through: no recipe, or nothing applies here;
 *                        the real functions are resolved.
 *   KB_MODE_UNINIT (1) - start-up has not finished; the hook's slow path
 *                        runs it (or waits for the thread running it).
 *   KB_MODE_ARMED  (2) - a plan is loaded; hooks consult it.
 * Zero for "off" lets the fast path be a load, a test and a jump.
 */
#ifndef KBFAULT_SHIM_H
#define KBFAULT_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#include "kbfault/decide.h"
#include "kbfault/model.h"

#define KB_API __attribute__((visibility("default")))
#define KB_HIDDEN __attribute__((visibility("hidden")))
/* The functions every connection of a busy server goes through: GCC
 * puts them together in .text.hot, so that the few cache lines and the
 * page they take stay warm between one connection and the next, when the
 * kernel's own work in between has pushed most else out. */
#define KB_HOT __attribute__((hot))

enum { KB_MODE_OFF = 0, KB_MODE_UNINIT = 1, KB_MODE_ARMED = 2 };

extern int kb_mode KB_HIDDEN;

static inline int kb_mode_get(void)
{
	return __atomic_load_n(&kb_mode, __ATOMIC_ACQUIRE);
}

struct kb_shim {
	struct kb_recipe recipe;
	struct kb_plan plan;
	struct kb_counter *process_counters;
	struct kb_counter *tree_counters; /* MAP_SHARED: survives fork */
	uint64_t seed;
	uint64_t start_ns;   /* CLOCK_MONOTONIC at start-up; windows count from it */
	char program[64];    /* base name of the executable */
	char argv0[64];      /* base name of argv[0] */
	char overrides[512]; /* NAME=VALUE list that changed parameters, for the log */
	int sink4, sink6;    /* bound, never listening: see act.c, refuse */
};

extern struct kb_shim kb_shim KB_HIDDEN;

/* Runs start-up if it has not run; returns the mode after it. */
int kb_init_ensure(void);

/* Is a plan loaded? Starts up first if needed; once armed, one load. */
static inline bool kb_armed(void)
{
	return kb_mode_get() == KB_MODE_ARMED || kb_init_ensure() == KB_MODE_ARMED;
}

/* Nanoseconds since start-up, for windowed rules and the log. */
uint64_t kb_since_start_ns(void *ctx);

#endif
