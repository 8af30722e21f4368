/*
 * decide.h - from (call, socket, counters) to "which rules fire".
 *
 * A struct kb_plan is built once from a recipe for one program: rules that
 * are disabled or meant for other programs are left out, and the rest are
 * indexed by call and socket role, and within that by exact local port, so
 * a call only ever looks at the rules that could apply to it. Cost per
 * call does not grow with rules for other calls, roles or ports.
 *
 * The plan is immutable after kb_plan_build(); the only thing that changes
 * is each rule's struct kb_counter, updated with atomics. No locks, no
 * allocation and no system calls happen in kb_decide(), except the clock
 * read for rules that have a time window.
 */
#ifndef KBFAULT_DECIDE_H
#define KBFAULT_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbfault/addr.h"
#include "kbfault/diag.h"
#include "kbfault/marks.h"
#include "kbfault/model.h"

/* One per rule; 64 bytes so that counters of different rules never share a
 * cache line between threads. The sess_* fields are the state of an
 * `action sessions` rule (sessions.h); all are zero at start and after a
 * fork (process scope). */
struct kb_counter {
	uint64_t hits;  /* calls that passed the rule's filters */
	uint64_t fired; /* injections, counted only for rules with a limit */
	int64_t sess_delta;     /* the session counter, less the rule's `count` */
	uint64_t sess_attempts; /* connection requests seen */
	int64_t sess_active;    /* sessions admitted and not yet released */
	uint8_t pad[24];
};

struct kb_rule_list {
	uint32_t n;
	const struct kb_rule **rules; /* file order */
};

struct kb_port_slot {
	uint16_t port;
	bool used;
	struct kb_rule_list list; /* rules for this exact port, merged with `any` */
};

/*
 * A bucket holds the rules for one (call, role). Rules for every port are
 * in `any`; rules for one exact port are in a hash of slots, each slot
 * holding its port's rules merged with `any`; rules for a port range are
 * in `ranged`, behind a bitmap of the ports the ranges cover. So a call
 * looks only at rules that can apply to its port, however many rules there
 * are for other ports.
 */
struct kb_bucket {
	struct kb_rule_list any;    /* rules for every port */
	uint32_t bits;              /* log2 of the slot count; 0 when no slots */
	struct kb_port_slot *slots;
	struct kb_rule_list ranged; /* rules for a port range, file order */
	uint64_t *covered;          /* 65536 bits: a ranged rule covers this port */
};

/*
 * The quick count for a bucket whose rules can only be told apart by
 * their hit numbers: rules for every port, with no peer filter. Most hits
 * of such a rule are decided by the number alone - `nth 1000` fires on
 * none of the first 999 - so a hit below the first number on which the
 * rule could fire, or above the last, only needs counting. kb_tally()
 * does that from this one line and the counters, without the rule lists,
 * the rules or the plan's counter table, all of which the kernel's work
 * between two calls pushes out of the caches.
 */
#define KB_TALLY_MAX 2

struct kb_tally {
	uint32_t n; /* rules, in file order; 0: the bucket is decided by kb_decide() alone */
	struct {
		uint64_t *hits;       /* the rule's kb_counter.hits */
		uint64_t first_due;   /* the lowest hit number the rule could fire on */
		uint64_t last_due;    /* the highest (UINT64_MAX: no end) */
	} rule[KB_TALLY_MAX];
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct kb_tally) == 64, "a tally is one cache line");

/*
 * The bucket for accept() is split by phase: rules that must decide before
 * a connection is taken (an errno the kernel returns with the connection
 * still queued, and no peer filter) sit under role KB_ROLE_LISTENING; all
 * other accept rules decide on the connection once it is taken and sit
 * under KB_ROLE_ACCEPTED, where they can see the peer.
 */
struct kb_plan {
	const struct kb_recipe *recipe;
	uint64_t seed;
	size_t active;             /* rules in the index */
	uint32_t track_roles;      /* bit (1 << role): descriptors to track */
	bool uses_tree;            /* some active rule has tree-wide counters */
	struct kb_bucket bucket[KB_CALL_COUNT][KB_ROLE_COUNT];
	/* Per bucket, for the hooks' first test: KB_WANTS_NONE, _SOME, or
	 * _MARKED (only rules that want a marked peer). One byte, so the test
	 * is one load however the bucket's rules are indexed. */
	uint8_t wants[KB_CALL_COUNT][KB_ROLE_COUNT];
	struct kb_tally tally[KB_CALL_COUNT][KB_ROLE_COUNT];
	struct kb_counter **counter; /* per rule index */
	struct kb_marks *marks;      /* for peer-marked; NULL: nothing is marked */
};

struct kb_event {
	enum kb_call call;
	enum kb_role role;
	uint16_t lport;             /* 0 when unknown */
	const struct kb_addr *peer; /* NULL when unknown or not applicable */
};

/* A rule that fired, and on which of its hits. */
struct kb_verdict {
	const struct kb_rule *rule;
	uint64_t hit;
};

/* Milliseconds are not fine enough for tests; the clock is a callback so
 * unit tests can drive time and the shim can read CLOCK_MONOTONIC only
 * when a windowed rule needs it. */
struct kb_clock {
	uint64_t (*since_start_ns)(void *ctx);
	void *ctx;
};

#define KB_VERDICTS_MAX 8

/* Is this rule meant for a process whose names are `names` (NULL-terminated:
 * the executable's base name, argv[0]'s base name)? */
bool kb_rule_for_program(const struct kb_rule *r, const char *const *names);

/* Are the rule's counters the process tree's? Asked with `counters
 * tree`; always for a session model, which is the service's (a server and
 * the workers it forks keep one count, as the gateway did). */
bool kb_rule_counts_tree(const struct kb_rule *r);

/* Which accept phase a rule decides in (see struct kb_plan). */
bool kb_rule_accept_before_dequeue(const struct kb_rule *r);

/* Builds the plan for a recipe in a process called `names`. process_ctr
 * and tree_ctr each hold recipe->nrules counters (tree_ctr may be NULL if
 * no rule asks for tree counters). The plan points into the recipe: keep
 * the recipe alive as long as the plan. */
int kb_plan_build(struct kb_plan *plan, const struct kb_recipe *recipe, uint64_t seed,
		  const char *const *names, struct kb_counter *process_ctr,
		  struct kb_counter *tree_ctr, struct kb_diag *err);

void kb_plan_free(struct kb_plan *plan);

/* The rules that might apply to (call, role) at all: lets a hook skip its
 * slow work with one load and one branch. */
enum { KB_WANTS_NONE, KB_WANTS_SOME, KB_WANTS_MARKED };

static inline bool kb_plan_wants(const struct kb_plan *plan, enum kb_call call, enum kb_role role)
{
	return plan->wants[call][role] != KB_WANTS_NONE;
}

/* Can a rule for (call, role) apply at all right now? Like kb_plan_wants,
 * and also false when every such rule wants a peer marked by mark-peer and
 * nothing is marked: the usual state of a Q238009-style recipe, decided
 * in a few loads. */
static inline bool kb_plan_may_apply(const struct kb_plan *plan, enum kb_call call, enum kb_role role)
{
	uint8_t w = plan->wants[call][role];
	if (w != KB_WANTS_MARKED)
		return w != KB_WANTS_NONE;
	return plan->marks && __atomic_load_n(&plan->marks->count, __ATOMIC_ACQUIRE) != 0;
}

/* Can any rule for (call, role) apply to a socket on local port lport,
 * as far as the rules' `port` filters go? Asked once per listener, when
 * it starts listening: the rules of a recipe aimed at other ports then
 * cost its connections nothing. */
bool kb_plan_applies_to_port(const struct kb_plan *plan, enum kb_call call, enum kb_role role,
			     uint16_t lport);

/* Evaluates the rules for ev in file order. Rules whose action is `pass`
 * (a delay only) fire and let evaluation continue; the first rule that
 * fires with any other action ends it. Returns how many rules fired (at
 * most KB_VERDICTS_MAX), in order, in out[]. */
size_t kb_decide(const struct kb_plan *plan, const struct kb_event *ev, const struct kb_clock *clk,
		 struct kb_verdict *out);

/* The same, for a call whose first `counted` rules kb_tally() has already
 * counted, none of them due: evaluation goes on from the next one. */
size_t kb_decide_from(const struct kb_plan *plan, const struct kb_event *ev, const struct kb_clock *clk,
		      struct kb_verdict *out, uint32_t counted);

/* Counts a hit on the rules of t in file order while none of them is
 * due on it. Returns how many were counted: when that is t->n, and t->n
 * is not 0, no rule fires and the call is decided (kb_tally_done);
 * otherwise kb_decide_from() goes on from there, where the first rule not
 * counted gets its hit. A hit is only counted by compare-and-swap from a
 * number known not to be due, so no thread skips a due hit that another
 * counted concurrently. */
static inline uint32_t kb_tally(const struct kb_tally *t)
{
	uint32_t i;

	for (i = 0; i < t->n; i++) {
		uint64_t h = __atomic_load_n(t->rule[i].hits, __ATOMIC_RELAXED);
		do {
			if (h + 1 >= t->rule[i].first_due && h + 1 <= t->rule[i].last_due)
				return i;
		} while (!__atomic_compare_exchange_n(t->rule[i].hits, &h, h + 1, true, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED));
	}
	return i;
}

static inline bool kb_tally_done(const struct kb_tally *t, uint32_t counted)
{
	return t->n != 0 && counted == t->n;
}

#endif
