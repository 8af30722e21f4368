/*
 * decide.c - the per-call decision: filters, then counters, then the
 * rule's "when". This is on the hot path of every intercepted call that
 * has candidate rules, so it allocates nothing, takes no lock and touches
 * only the candidate rules and their counters.
 */
#include "kbfault/decide.h"

#include "kbfault/prng.h"

/* The rules for every port merged with those for exactly this port. */
static const struct kb_rule_list *candidates(const struct kb_bucket *b, uint16_t lport)
{
	if (b->bits) {
		uint32_t mask = (1u << b->bits) - 1;
		uint32_t i = (lport * 2654435761u) >> (32 - b->bits);
		while (b->slots[i].used) {
			if (b->slots[i].port == lport)
				return &b->slots[i].list;
			i = (i + 1) & mask;
		}
	}
	return &b->any;
}

/* Does a rule for a port range cover lport? */
static bool covered(const struct kb_bucket *b, uint16_t lport)
{
	return b->covered && (b->covered[lport / 64] >> (lport % 64)) & 1;
}

bool kb_plan_applies_to_port(const struct kb_plan *plan, enum kb_call call, enum kb_role role,
			     uint16_t lport)
{
	const struct kb_bucket *b = &plan->bucket[call][role];

	if (candidates(b, lport)->n > 0)
		return true;
	return b->ranged.n > 0 && covered(b, lport);
}

static bool filters_match(const struct kb_plan *plan, const struct kb_rule *r,
			  const struct kb_event *ev, const struct kb_clock *clk)
{
	if (r->has_port && (ev->lport < r->port.lo || ev->lport > r->port.hi))
		return false;
	if (r->peer_marked != KB_MARKED_ANY) {
		bool marked = plan->marks && ev->peer && ev->peer->family &&
			      kb_marks_has(plan->marks, ev->peer, clk->since_start_ns, clk->ctx);
		if (marked != (r->peer_marked == KB_MARKED_YES))
			return false;
	}
	if (r->npeers == 0 && !r->has_peer_port)
		return true;
	if (ev->peer == NULL || ev->peer->family == 0)
		return false;
	if (r->has_peer_port && (ev->peer->port < r->peer_port.lo || ev->peer->port > r->peer_port.hi))
		return false;
	if (r->npeers == 0)
		return true;
	for (unsigned i = 0; i < r->npeers; i++)
		if (kb_cidr_match(&r->peers[i], ev->peer))
			return true;
	return false;
}

/* Counts the hit and decides whether the rule fires on it. The hit is
 * counted whatever the outcome: hit numbers are "the Nth matching call". */
static bool fires(const struct kb_plan *plan, const struct kb_rule *r, const struct kb_clock *clk,
		  uint64_t *hit_out)
{
	struct kb_counter *c = plan->counter[r->index];
	uint64_t hit = __atomic_add_fetch(&c->hits, 1, __ATOMIC_RELAXED);

	*hit_out = hit;
	if (r->nth && hit != r->nth)
		return false;
	if (hit <= r->after)
		return false;
	if (r->every && (hit - r->after) % r->every != 0)
		return false;
	if (r->has_window) {
		uint64_t t = clk->since_start_ns(clk->ctx);
		if (t < r->window_from_ns || t >= r->window_to_ns)
			return false;
	}
	if (r->chance != UINT64_MAX && kb_draw(plan->seed, r->name_hash, hit) >= r->chance)
		return false;
	if (r->limit && __atomic_add_fetch(&c->fired, 1, __ATOMIC_RELAXED) > r->limit)
		return false;
	return true;
}

size_t kb_decide(const struct kb_plan *plan, const struct kb_event *ev, const struct kb_clock *clk,
		 struct kb_verdict *out)
{
	return kb_decide_from(plan, ev, clk, out, 0);
}

/* hot: with the hooks a server's every connection goes through (KB_HOT,
 * shim.h), in .text.hot */
__attribute__((hot)) size_t kb_decide_from(const struct kb_plan *plan, const struct kb_event *ev,
					    const struct kb_clock *clk, struct kb_verdict *out,
					    uint32_t counted)
{
	const struct kb_bucket *b = &plan->bucket[ev->call][ev->role];
	const struct kb_rule_list *list = candidates(b, ev->lport);
	/* rules for a range join only if a range covers this port */
	const struct kb_rule_list *ranged = covered(b, ev->lport) ? &b->ranged : NULL;
	/* rules a tally counted are the first of `any`, the bucket's only
	 * list (plan.c: tally_build) */
	uint32_t i = counted, j = 0;
	size_t n = 0;

	while (n < KB_VERDICTS_MAX) {
		const struct kb_rule *r;
		/* the two lists in file order */
		if (i < list->n && (!ranged || j >= ranged->n || list->rules[i]->index < ranged->rules[j]->index))
			r = list->rules[i++];
		else if (ranged && j < ranged->n)
			r = ranged->rules[j++];
		else
			break;
		uint64_t hit;
		if (!filters_match(plan, r, ev, clk) || !fires(plan, r, clk, &hit))
			continue;
		out[n].rule = r;
		out[n].hit = hit;
		n++;
		if (r->action != KB_ACT_PASS)
			break;
	}
	return n;
}
