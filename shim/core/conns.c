/*
 * conns.c - the table of connections held across a process tree; see
 * conns.h.
 */
#include "kbfault/conns.h"

#include <string.h>

#define TAG_GEN(tag) ((uint32_t)((tag) >> 32))
#define TAG_FLAGS(tag) ((uint32_t)(tag))

static uint32_t handle_gen(uint64_t handle)
{
	return (uint32_t)(handle >> 32);
}

/* The identity, a word at a time: role, family, peer port and local port
 * in the first; the address in the next two; the inode in the last. */
static void id_store(struct kb_conn_slot *s, const struct kb_conn_id *id)
{
	uint64_t w[4];

	w[0] = (uint64_t)id->role | (uint64_t)id->peer.family << 8 | (uint64_t)id->peer.port << 16 |
	       (uint64_t)id->lport << 32;
	memcpy(&w[1], id->peer.bytes, 16);
	w[3] = id->ino;
	for (int i = 0; i < 4; i++)
		__atomic_store_n(&s->id[i], w[i], __ATOMIC_RELAXED);
}

static void id_load(const struct kb_conn_slot *s, struct kb_conn_id *id)
{
	uint64_t w[4];

	for (int i = 0; i < 4; i++)
		w[i] = __atomic_load_n(&s->id[i], __ATOMIC_RELAXED);
	memset(id, 0, sizeof *id);
	id->role = (uint8_t)w[0];
	id->peer.family = (uint8_t)(w[0] >> 8);
	id->peer.port = (uint16_t)(w[0] >> 16);
	id->lport = (uint16_t)(w[0] >> 32);
	memcpy(id->peer.bytes, &w[1], 16);
	id->ino = w[3];
}

uint64_t kb_conns_open(struct kb_conns *t, const struct kb_conn_id *id, int32_t pid, int32_t fd)
{
	uint32_t start = __atomic_load_n(&t->next, __ATOMIC_RELAXED);

	for (uint32_t n = 0; n < KB_CONNS_MAX; n++) {
		uint32_t i = (start + n) % KB_CONNS_MAX;
		struct kb_conn_slot *s = &t->slot[i];
		uint32_t expected = KB_CONN_FREE;
		if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != KB_CONN_FREE ||
		    !__atomic_compare_exchange_n(&s->state, &expected, KB_CONN_BUSY, false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		uint32_t gen = TAG_GEN(__atomic_load_n(&s->tag, __ATOMIC_RELAXED));
		id_store(s, id);
		__atomic_store_n(&s->rule, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->seq, 0, __ATOMIC_RELAXED);
		for (int k = 0; k < KB_CONN_WHO; k++)
			__atomic_store_n(&s->who[k].pid, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->who[0].fd, fd, __ATOMIC_RELAXED);
		__atomic_store_n(&s->who[0].pid, pid, __ATOMIC_RELAXED);
		__atomic_store_n(&s->holders, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&s->tag, (uint64_t)gen << 32, __ATOMIC_RELAXED);
		__atomic_store_n(&s->state, KB_CONN_LIVE, __ATOMIC_RELEASE);

		uint32_t h = __atomic_load_n(&t->high, __ATOMIC_RELAXED);
		while (i + 1 > h && !__atomic_compare_exchange_n(&t->high, &h, i + 1, true, __ATOMIC_RELEASE,
								  __ATOMIC_RELAXED))
			;
		__atomic_store_n(&t->next, (i + 1) % KB_CONNS_MAX, __ATOMIC_RELAXED);
		return kb_conns_handle(i, gen);
	}
	return 0;
}

/* The slot of a handle while it is live and still that connection. */
static struct kb_conn_slot *get(struct kb_conns *t, uint64_t handle)
{
	uint32_t i = kb_conns_index(handle);

	if (handle == 0 || i >= KB_CONNS_MAX)
		return NULL;
	struct kb_conn_slot *s = &t->slot[i];
	if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != KB_CONN_LIVE ||
	    TAG_GEN(__atomic_load_n(&s->tag, __ATOMIC_ACQUIRE)) != handle_gen(handle))
		return NULL;
	return s;
}

/* A copy of slot s, which was live with handle's generation: read field
 * by field, then checked to have been that connection all along. */
static bool read_slot(const struct kb_conn_slot *s, uint64_t handle, struct kb_conn *out)
{
	id_load(s, &out->id);
	out->rule = __atomic_load_n(&s->rule, __ATOMIC_RELAXED);
	out->seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	for (int k = 0; k < KB_CONN_WHO; k++) {
		out->who[k].fd = __atomic_load_n(&s->who[k].fd, __ATOMIC_RELAXED);
		out->who[k].pid = __atomic_load_n(&s->who[k].pid, __ATOMIC_ACQUIRE);
	}
	uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
	out->flags = TAG_FLAGS(tag);
	return TAG_GEN(tag) == handle_gen(handle) && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == KB_CONN_LIVE;
}

bool kb_conns_read(struct kb_conns *t, uint64_t handle, struct kb_conn *out)
{
	struct kb_conn_slot *s = get(t, handle);
	return s != NULL && read_slot(s, handle, out);
}

uint64_t kb_conns_live(struct kb_conns *t, uint32_t i)
{
	if (i >= KB_CONNS_MAX || __atomic_load_n(&t->slot[i].state, __ATOMIC_ACQUIRE) != KB_CONN_LIVE)
		return 0;
	return kb_conns_handle(i, TAG_GEN(__atomic_load_n(&t->slot[i].tag, __ATOMIC_ACQUIRE)));
}

struct kb_conn_who kb_conns_holder(struct kb_conns *t, uint32_t i, int k)
{
	struct kb_conn_who w = { 0, -1 };
	if (i < KB_CONNS_MAX && k >= 0 && k < KB_CONN_WHO) {
		w.pid = __atomic_load_n(&t->slot[i].who[k].pid, __ATOMIC_ACQUIRE);
		w.fd = __atomic_load_n(&t->slot[i].who[k].fd, __ATOMIC_RELAXED);
	}
	return w;
}

void kb_conns_hold(struct kb_conns *t, uint64_t handle)
{
	struct kb_conn_slot *s = get(t, handle);
	if (s)
		__atomic_add_fetch(&s->holders, 1, __ATOMIC_ACQ_REL);
}

void kb_conns_unhold(struct kb_conns *t, uint64_t handle)
{
	/* the forking process still holds it, so the count cannot reach 0 */
	struct kb_conn_slot *s = get(t, handle);
	if (s)
		__atomic_sub_fetch(&s->holders, 1, __ATOMIC_ACQ_REL);
}

void kb_conns_record(struct kb_conns *t, uint64_t handle, int32_t pid, int32_t fd)
{
	struct kb_conn_slot *s = get(t, handle);

	if (s == NULL)
		return;
	for (int k = 0; k < KB_CONN_WHO; k++) {
		int32_t expected = 0;
		if (__atomic_load_n(&s->who[k].pid, __ATOMIC_RELAXED) != 0)
			continue;
		/* claimed with -1, then the descriptor, then the pid: a reader
		 * that sees the pid sees its descriptor */
		if (__atomic_compare_exchange_n(&s->who[k].pid, &expected, -1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			__atomic_store_n(&s->who[k].fd, fd, __ATOMIC_RELAXED);
			__atomic_store_n(&s->who[k].pid, pid, __ATOMIC_RELEASE);
			return;
		}
	}
	/* more holders than we record: still counted, just not reachable */
}

int kb_conns_reserve(struct kb_conns *t, uint64_t handle, int32_t fd)
{
	struct kb_conn_slot *s = get(t, handle);

	for (int k = 0; s && k < KB_CONN_WHO; k++) {
		int32_t expected = 0;
		if (__atomic_load_n(&s->who[k].pid, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&s->who[k].pid, &expected, -1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			__atomic_store_n(&s->who[k].fd, fd, __ATOMIC_RELAXED);
			return k;
		}
	}
	return -1;
}

void kb_conns_fill(struct kb_conns *t, uint64_t handle, int place, int32_t pid)
{
	struct kb_conn_slot *s = get(t, handle);
	int32_t expected = -1;

	/* whoever comes first, the child or its parent: the same pid */
	if (s && place >= 0 && place < KB_CONN_WHO)
		__atomic_compare_exchange_n(&s->who[place].pid, &expected, pid, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
}

void kb_conns_unreserve(struct kb_conns *t, uint64_t handle, int place)
{
	struct kb_conn_slot *s = get(t, handle);
	int32_t expected = -1;

	if (s && place >= 0 && place < KB_CONN_WHO)
		__atomic_compare_exchange_n(&s->who[place].pid, &expected, 0, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
}

uint32_t kb_conns_drop(struct kb_conns *t, uint64_t handle, int32_t pid, bool recorded,
		       struct kb_conn *ended)
{
	struct kb_conn_slot *s = get(t, handle);
	bool found = false;

	if (s == NULL)
		return 1; /* not ours to end: whoever ended it has */
	for (int k = 0; k < KB_CONN_WHO && !found; k++) {
		int32_t expected = pid;
		found = __atomic_compare_exchange_n(&s->who[k].pid, &expected, 0, false, __ATOMIC_ACQ_REL,
						    __ATOMIC_RELAXED);
	}
	if (recorded && !found)
		return 1;
	uint32_t left = __atomic_sub_fetch(&s->holders, 1, __ATOMIC_ACQ_REL);
	if (left != 0)
		return left;
	/* the last copy: this caller alone frees the slot */
	struct kb_conn dummy;
	read_slot(s, handle, ended ? ended : &dummy);
	__atomic_store_n(&s->state, KB_CONN_BUSY, __ATOMIC_RELAXED);
	/* the generation moves on: an old handle's flag update fails */
	uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&s->tag, &tag, (uint64_t)(TAG_GEN(tag) + 1) << 32, true,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	if (ended)
		ended->flags = TAG_FLAGS(tag);
	__atomic_store_n(&s->state, KB_CONN_FREE, __ATOMIC_RELEASE);
	return 0;
}

/* Sets `flag` on the live connection `handle`, if it is not set; true if
 * this call set it. */
static bool set_flag(struct kb_conns *t, uint64_t handle, uint32_t flag)
{
	struct kb_conn_slot *s = get(t, handle);

	if (s == NULL)
		return false;
	uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
	while (TAG_GEN(tag) == handle_gen(handle) && !(TAG_FLAGS(tag) & flag)) {
		if (__atomic_compare_exchange_n(&s->tag, &tag, tag | flag, true, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
	}
	return false;
}

uint64_t kb_conns_admit(struct kb_conns *t, uint64_t handle, uint32_t rule)
{
	struct kb_conn_slot *s = get(t, handle);

	if (s == NULL)
		return 0;
	uint64_t seq = __atomic_add_fetch(&t->seq, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->rule, rule, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
	/* published by the flag: a reader that sees it sees rule and seq */
	set_flag(t, handle, KB_CONN_SESSION);
	return seq;
}

uint64_t kb_conns_oldest(struct kb_conns *t, uint32_t rule, uint64_t except,
			 bool (*skip)(uint64_t handle, void *ctx), void *ctx)
{
	uint32_t high = __atomic_load_n(&t->high, __ATOMIC_ACQUIRE);
	uint64_t best = 0, best_seq = UINT64_MAX;

	for (uint32_t i = 0; i < high && i < KB_CONNS_MAX; i++) {
		struct kb_conn_slot *s = &t->slot[i];
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != KB_CONN_LIVE)
			continue;
		uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
		if ((TAG_FLAGS(tag) & (KB_CONN_SESSION | KB_CONN_CUT)) != KB_CONN_SESSION ||
		    __atomic_load_n(&s->rule, __ATOMIC_RELAXED) != rule)
			continue;
		uint64_t h = kb_conns_handle(i, TAG_GEN(tag));
		uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		if (h == except || seq >= best_seq || (skip && skip(h, ctx)))
			continue;
		best = h;
		best_seq = seq;
	}
	return best;
}

bool kb_conns_claim_cut(struct kb_conns *t, uint64_t handle)
{
	return set_flag(t, handle, KB_CONN_CUT);
}

bool kb_conns_unclaim_cut(struct kb_conns *t, uint64_t handle)
{
	struct kb_conn_slot *s = get(t, handle);

	if (s == NULL)
		return false;
	uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
	while (TAG_GEN(tag) == handle_gen(handle) && (TAG_FLAGS(tag) & KB_CONN_CUT)) {
		if (__atomic_compare_exchange_n(&s->tag, &tag, tag & ~(uint64_t)KB_CONN_CUT, true,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	}
	return false;
}
