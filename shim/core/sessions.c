/*
 * sessions.c - the miscounting session model; see sessions.h.
 */
#include "kbfault/sessions.h"

uint64_t kb_sessions_attempt(struct kb_counter *c, const struct kb_rule *r, bool *refused)
{
	uint64_t n = __atomic_add_fetch(&c->sess_attempts, 1, __ATOMIC_RELAXED);
	*refused = r->sess_slots && n > r->sess_slots;
	return n;
}

int64_t kb_sessions_admit(struct kb_counter *c, const struct kb_rule *r)
{
	__atomic_add_fetch(&c->sess_active, 1, __ATOMIC_RELAXED);
	return r->sess_count + __atomic_add_fetch(&c->sess_delta, 1 - r->sess_miscount, __ATOMIC_RELAXED);
}

int64_t kb_sessions_release(struct kb_counter *c, const struct kb_rule *r, bool was_cut)
{
	if (!was_cut)
		__atomic_sub_fetch(&c->sess_active, 1, __ATOMIC_RELAXED);
	return r->sess_count + __atomic_sub_fetch(&c->sess_delta, 1, __ATOMIC_RELAXED);
}

int64_t kb_sessions_count(const struct kb_counter *c, const struct kb_rule *r)
{
	return r->sess_count + __atomic_load_n(&c->sess_delta, __ATOMIC_RELAXED);
}

bool kb_sessions_must_cut(const struct kb_counter *c, const struct kb_rule *r)
{
	return kb_sessions_count(c, r) <= 0 && __atomic_load_n(&c->sess_active, __ATOMIC_RELAXED) > 0;
}

void kb_sessions_cut(struct kb_counter *c)
{
	__atomic_sub_fetch(&c->sess_active, 1, __ATOMIC_RELAXED);
}

void kb_sessions_uncut(struct kb_counter *c)
{
	__atomic_add_fetch(&c->sess_active, 1, __ATOMIC_RELAXED);
}
