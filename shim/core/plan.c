/*
 * plan.c - building the per-program rule index described in decide.h.
 * Runs once at start-up, so it may allocate; nothing here is on a hot path.
 */
#include "kbfault/decide.h"

#include <string.h>

#include "kbfault/errnos.h"
#include "kbfault/mem.h"

bool kb_rule_for_program(const struct kb_rule *r, const char *const *names)
{
	if (r->nprograms == 0)
		return true;
	for (size_t i = 0; i < r->nprograms; i++)
		for (size_t k = 0; names && names[k]; k++)
			if (strcmp(r->programs[i], names[k]) == 0)
				return true;
	return false;
}

bool kb_rule_accept_before_dequeue(const struct kb_rule *r)
{
	return r->action == KB_ACT_FAIL && kb_accept_errno_keeps_connection(r->err) &&
	       r->npeers == 0 && !r->has_peer_port && r->peer_marked == KB_MARKED_ANY;
}

static bool exact_port(const struct kb_rule *r)
{
	return r->has_port && r->port.lo == r->port.hi;
}

/* `port 0-65535`, the bundled recipes' default, filters nothing: such a
 * rule is indexed as a rule for every port. */
static bool ranged_port(const struct kb_rule *r)
{
	return r->has_port && r->port.lo != r->port.hi && !(r->port.lo == 0 && r->port.hi == 65535);
}

static bool has_peer_filter(const struct kb_rule *r)
{
	return r->npeers || r->has_peer_port || r->peer_marked != KB_MARKED_ANY;
}

static int list_add(struct kb_rule_list *l, const struct kb_rule *r)
{
	const struct kb_rule **n = kb_realloc(l->rules, l->n * sizeof *n, (l->n + 1) * sizeof *n);

	if (n == NULL)
		return -1;
	l->rules = n;
	l->rules[l->n++] = r;
	return 0;
}

/* The high bits of a multiplicative hash: consecutive ports spread over
 * the whole table instead of clustering (decide.c looks them up the same
 * way). */
static struct kb_port_slot *slot_for(struct kb_bucket *b, uint16_t port)
{
	uint32_t mask = (1u << b->bits) - 1;
	uint32_t i = (port * 2654435761u) >> (32 - b->bits);

	while (b->slots[i].used && b->slots[i].port != port)
		i = (i + 1) & mask;
	return &b->slots[i];
}

/* Rules are added in file order, so lists built by appending stay sorted;
 * a port slot starts as a copy of `any` taken at the point it is created
 * and gets later `any` rules appended as they come. */
static int bucket_build(struct kb_bucket *b, const struct kb_rule **rules, size_t n)
{
	size_t nports = 0;

	for (size_t i = 0; i < n; i++)
		if (exact_port(rules[i]))
			nports++;
	if (nports) {
		/* at most a quarter full: probes stay short */
		b->bits = 2;
		while ((1u << b->bits) < nports * 4)
			b->bits++;
		b->slots = kb_alloc(((size_t)1 << b->bits) * sizeof *b->slots);
		if (b->slots == NULL)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct kb_rule *r = rules[i];
		if (exact_port(r)) {
			struct kb_port_slot *s = slot_for(b, r->port.lo);
			if (!s->used) {
				s->used = true;
				s->port = r->port.lo;
				for (uint32_t k = 0; k < b->any.n; k++)
					if (list_add(&s->list, b->any.rules[k]) < 0)
						return -1;
			}
			if (list_add(&s->list, r) < 0)
				return -1;
		} else if (ranged_port(r)) {
			if (b->covered == NULL && (b->covered = kb_alloc(65536 / 8)) == NULL)
				return -1;
			for (uint32_t p = r->port.lo; p <= r->port.hi; p++)
				b->covered[p / 64] |= 1ULL << (p % 64);
			if (list_add(&b->ranged, r) < 0)
				return -1;
		} else {
			if (list_add(&b->any, r) < 0)
				return -1;
			for (uint32_t k = 0; b->bits && k < (1u << b->bits); k++)
				if (b->slots[k].used && list_add(&b->slots[k].list, r) < 0)
					return -1;
		}
	}
	return 0;
}

/* The hit numbers r could fire on, as far as nth, after and every tell:
 * [*first, *last]. nth stands alone (a recipe cannot combine it with
 * after or every). The window, chance and limit only ever rule out more. */
static void due_range(const struct kb_rule *r, uint64_t *first, uint64_t *last)
{
	uint64_t step = r->every ? r->every : 1;

	if (r->nth) {
		*first = *last = r->nth;
		return;
	}
	*first = r->after > UINT64_MAX - step ? UINT64_MAX : r->after + step;
	*last = UINT64_MAX;
}

/* A bucket gets a tally (decide.h) when its rules are few, for every
 * port and without peer filters: then hit numbers alone tell them apart. */
static void tally_build(struct kb_tally *t, const struct kb_bucket *b, struct kb_counter *const *counter)
{
	memset(t, 0, sizeof *t);
	if (b->bits || b->ranged.n || b->any.n == 0 || b->any.n > KB_TALLY_MAX)
		return;
	for (uint32_t i = 0; i < b->any.n; i++)
		if (has_peer_filter(b->any.rules[i]))
			return;
	for (uint32_t i = 0; i < b->any.n; i++) {
		const struct kb_rule *r = b->any.rules[i];
		t->rule[i].hits = &counter[r->index]->hits;
		due_range(r, &t->rule[i].first_due, &t->rule[i].last_due);
	}
	t->n = b->any.n;
}

/* The roles whose descriptors a close or shutdown rule can act on. */
static uint32_t roles_of(const struct kb_rule *r)
{
	uint32_t tracked = (1u << KB_ROLE_LISTENING) | (1u << KB_ROLE_ACCEPTED) | (1u << KB_ROLE_OUTBOUND);
	return r->roles ? r->roles : tracked;
}

bool kb_rule_counts_tree(const struct kb_rule *r)
{
	return r->scope == KB_SCOPE_TREE || r->action == KB_ACT_SESSIONS;
}

int kb_plan_build(struct kb_plan *plan, const struct kb_recipe *recipe, uint64_t seed,
		  const char *const *names, struct kb_counter *process_ctr,
		  struct kb_counter *tree_ctr, struct kb_diag *err)
{
	const struct kb_rule **scratch = NULL;

	memset(plan, 0, sizeof *plan);
	plan->recipe = recipe;
	plan->seed = seed;
	size_t nrules = recipe->nrules ? recipe->nrules : 1;
	plan->counter = kb_alloc(nrules * sizeof *plan->counter);
	scratch = kb_alloc(nrules * sizeof *scratch);
	if (plan->counter == NULL || scratch == NULL)
		goto oom;

	/* listeners are always tracked: accept rules need their port */
	plan->track_roles = 1u << KB_ROLE_LISTENING;
	for (size_t i = 0; i < recipe->nrules; i++) {
		const struct kb_rule *r = &recipe->rules[i];
		if (kb_rule_counts_tree(r) && tree_ctr == NULL) {
			kb_free(scratch, nrules * sizeof *scratch);
			kb_plan_free(plan);
			return kb_diag_set(err, recipe->path, r->line, 1,
					   "rule '%s' wants tree counters, but no shared memory was given",
					   r->name);
		}
		plan->counter[i] = kb_rule_counts_tree(r) ? &tree_ctr[i] : &process_ctr[i];
	}

	for (int call = 0; call < KB_CALL_COUNT; call++) {
		for (int role = 0; role < KB_ROLE_COUNT; role++) {
			size_t n = 0;
			for (size_t i = 0; i < recipe->nrules; i++) {
				const struct kb_rule *r = &recipe->rules[i];
				if (!r->enabled || !(r->calls & (1u << call)) || !kb_rule_for_program(r, names))
					continue;
				bool fits;
				switch (call) {
				case KB_CALL_LISTEN:
					fits = role == KB_ROLE_LISTENING;
					break;
				case KB_CALL_ACCEPT:
					fits = kb_rule_accept_before_dequeue(r) ? role == KB_ROLE_LISTENING
										: role == KB_ROLE_ACCEPTED;
					/* sessions end when their sockets close */
					if (fits && r->action == KB_ACT_SESSIONS)
						plan->track_roles |= 1u << KB_ROLE_ACCEPTED;
					break;
				case KB_CALL_CONNECT:
					fits = role == KB_ROLE_OUTBOUND;
					break;
				default:
					/* a listening socket has no peer: a rule about
					 * peers can never apply to one */
					fits = (roles_of(r) & (1u << role)) != 0 &&
					       !(role == KB_ROLE_LISTENING && has_peer_filter(r));
					if (fits)
						plan->track_roles |= 1u << role;
					break;
				}
				if (fits)
					scratch[n++] = r;
			}
			if (bucket_build(&plan->bucket[call][role], scratch, n) < 0)
				goto oom;
			tally_build(&plan->tally[call][role], &plan->bucket[call][role], plan->counter);
			bool marked_only = n > 0;
			for (size_t i = 0; i < n; i++)
				marked_only &= scratch[i]->peer_marked == KB_MARKED_YES;
			plan->wants[call][role] = n == 0 ? KB_WANTS_NONE : marked_only ? KB_WANTS_MARKED : KB_WANTS_SOME;
		}
	}
	for (size_t i = 0; i < recipe->nrules; i++) {
		const struct kb_rule *r = &recipe->rules[i];
		if (r->enabled && kb_rule_for_program(r, names)) {
			plan->active++;
			if (kb_rule_counts_tree(r))
				plan->uses_tree = true;
		}
	}
	kb_free(scratch, nrules * sizeof *scratch);
	return 0;
oom:
	kb_free(scratch, nrules * sizeof *scratch);
	kb_plan_free(plan);
	return kb_diag_set(err, recipe->path, 0, 0, "out of memory while indexing rules");
}

void kb_plan_free(struct kb_plan *plan)
{
	for (int c = 0; c < KB_CALL_COUNT; c++) {
		for (int r = 0; r < KB_ROLE_COUNT; r++) {
			struct kb_bucket *b = &plan->bucket[c][r];
			size_t nslots = b->bits ? (size_t)1 << b->bits : 0;
			kb_free(b->any.rules, b->any.n * sizeof *b->any.rules);
			kb_free(b->ranged.rules, b->ranged.n * sizeof *b->ranged.rules);
			kb_free(b->covered, 65536 / 8);
			for (size_t k = 0; k < nslots; k++)
				kb_free(b->slots[k].list.rules, b->slots[k].list.n * sizeof *b->slots[k].list.rules);
			kb_free(b->slots, nslots * sizeof *b->slots);
		}
	}
	kb_free(plan->counter, (plan->recipe && plan->recipe->nrules ? plan->recipe->nrules : 1) * sizeof *plan->counter);
	memset(plan, 0, sizeof *plan);
}
