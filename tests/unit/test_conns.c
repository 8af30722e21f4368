/* The table of connections held across a process tree (conns.h), and the
 * rule that nothing in the shared tables waits on a slot another writer
 * (perhaps the very code a signal handler interrupted) is filling. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/conns.h"
#include "kbfault/decide.h"
#include "kbfault/marks.h"
#include "kbfault/model.h"

static struct kb_conn_id id_of(int port)
{
	struct kb_conn_id id;
	memset(&id, 0, sizeof id);
	id.role = KB_ROLE_ACCEPTED;
	id.peer.family = AF_INET;
	id.peer.port = (uint16_t)port;
	id.peer.bytes[0] = 127;
	id.peer.bytes[3] = 1;
	id.lport = 8080;
	return id;
}

static struct kb_conns *table(void)
{
	struct kb_conns *t = calloc(1, sizeof *t);
	cr_assert_not_null(t);
	return t;
}

Test(conns, one_holder_ends_it_by_dropping)
{
	struct kb_conns *t = table();
	struct kb_conn_id id = id_of(40000);
	struct kb_conn ended;

	uint64_t h = kb_conns_open(t, &id, 100, 5);
	cr_assert_neq(h, 0);
	cr_assert(kb_conns_read(t, h, &ended));
	cr_assert_eq(kb_conns_drop(t, h, 100, false, &ended), 0, "its only holder drops it: it has ended");
	cr_assert_eq(ended.id.peer.port, 40000, "and the caller learns which connection it was");
	cr_assert(!kb_conns_read(t, h, &ended), "the slot is free");
	free(t);
}

/* A fork-per-connection server: the parent counts the child before the
 * fork, the child records itself, the parent's close of its copy ends
 * nothing, and the child's end ends it. */
Test(conns, a_copy_dropped_ends_nothing)
{
	struct kb_conns *t = table();
	struct kb_conn_id id = id_of(40001);
	struct kb_conn ended;

	uint64_t h = kb_conns_open(t, &id, 100, 5);
	kb_conns_hold(t, h);
	kb_conns_record(t, h, 101, 5);
	cr_assert_eq(kb_conns_drop(t, h, 100, false, &ended), 1, "the parent's close: one holder left");
	cr_assert(kb_conns_read(t, h, &ended));
	cr_assert_eq(kb_conns_drop(t, h, 101, false, &ended), 0, "the child's close ends it");
	free(t);
}

Test(conns, a_failed_fork_takes_its_count_back)
{
	struct kb_conns *t = table();
	struct kb_conn_id id = id_of(40002);

	uint64_t h = kb_conns_open(t, &id, 100, 5);
	kb_conns_hold(t, h);
	kb_conns_unhold(t, h);
	cr_assert_eq(kb_conns_drop(t, h, 100, false, NULL), 0, "no child was made: the parent's close ends it");
	free(t);
}

/* Two sweepers that both find the same process dead: one of them takes
 * it off the count. */
Test(conns, a_dead_holder_is_dropped_once)
{
	struct kb_conns *t = table();
	struct kb_conn_id id = id_of(40003);
	struct kb_conn ended;

	uint64_t h = kb_conns_open(t, &id, 100, 5);
	kb_conns_hold(t, h);
	kb_conns_record(t, h, 101, 5);
	cr_assert_eq(kb_conns_drop(t, h, 101, true, NULL), 1, "the dead child is dropped");
	cr_assert_eq(kb_conns_drop(t, h, 101, true, NULL), 1, "not twice: the parent still holds it");
	cr_assert(kb_conns_read(t, h, &ended));
	cr_assert_eq(kb_conns_drop(t, h, 100, false, NULL), 0);
	free(t);
}

/* A slot reused for another connection is not the old handle's any
 * more: an old handle neither finds it nor drops its holders. */
Test(conns, an_old_handle_does_not_reach_a_reused_slot)
{
	struct kb_conns *t = table();
	struct kb_conn_id a = id_of(40004), b = id_of(40005);
	struct kb_conn c;

	uint64_t old = kb_conns_open(t, &a, 100, 5);
	kb_conns_drop(t, old, 100, false, NULL);
	__atomic_store_n(&t->next, kb_conns_index(old), __ATOMIC_RELAXED);
	uint64_t now = kb_conns_open(t, &b, 100, 6);
	cr_assert_eq(kb_conns_index(now), kb_conns_index(old), "the same slot");
	cr_assert_neq(now, old, "another generation");
	cr_assert(!kb_conns_read(t, old, &c));
	cr_assert_eq(kb_conns_drop(t, old, 100, false, NULL), 1, "an old handle ends nothing");
	cr_assert(kb_conns_read(t, now, &c));
	cr_assert(!kb_conns_claim_cut(t, old), "nor can it be cut");
	free(t);
}

/* The oldest session is the one admitted first, whatever its slot; a cut
 * one is not a candidate; a claim is for one caller; a claim given back
 * makes it a candidate again. */
Test(conns, the_oldest_session_is_cut_once)
{
	struct kb_conns *t = table();
	uint64_t h[3];

	for (int i = 0; i < 3; i++) {
		struct kb_conn_id id = id_of(41000 + i);
		__atomic_store_n(&t->next, (uint32_t)(10 - 3 * i), __ATOMIC_RELAXED); /* later ones in lower slots */
		h[i] = kb_conns_open(t, &id, 100, 5 + i);
		cr_assert_eq(kb_conns_admit(t, h[i], 7), (uint64_t)i + 1);
	}
	cr_assert_eq(kb_conns_oldest(t, 7, 0, NULL, NULL), h[0]);
	cr_assert_eq(kb_conns_oldest(t, 7, h[0], NULL, NULL), h[1], "`except` is never chosen");
	cr_assert_eq(kb_conns_oldest(t, 8, 0, NULL, NULL), 0, "another rule's sessions are not candidates");
	cr_assert(kb_conns_claim_cut(t, h[0]));
	cr_assert(!kb_conns_claim_cut(t, h[0]), "claimed once");
	cr_assert_eq(kb_conns_oldest(t, 7, 0, NULL, NULL), h[1], "a cut session is no candidate");
	cr_assert(kb_conns_unclaim_cut(t, h[0]));
	cr_assert_eq(kb_conns_oldest(t, 7, 0, NULL, NULL), h[0], "given back, it is again");
	struct kb_conn ended;
	kb_conns_claim_cut(t, h[0]);
	cr_assert_eq(kb_conns_drop(t, h[0], 100, false, &ended), 0);
	cr_assert(ended.flags & KB_CONN_CUT, "its end knows it was cut");
	cr_assert(!kb_conns_unclaim_cut(t, h[0]), "a claim on an ended session cannot be given back");
	free(t);
}

static bool skip_first(uint64_t handle, void *ctx)
{
	return handle == *(uint64_t *)ctx;
}

Test(conns, the_oldest_skips_what_the_caller_cannot_reach)
{
	struct kb_conns *t = table();
	struct kb_conn_id a = id_of(42000), b = id_of(42001);
	uint64_t ha = kb_conns_open(t, &a, 100, 5), hb = kb_conns_open(t, &b, 100, 6);

	kb_conns_admit(t, ha, 0);
	kb_conns_admit(t, hb, 0);
	cr_assert_eq(kb_conns_oldest(t, 0, 0, skip_first, &ha), hb);
	free(t);
}

Test(conns, a_full_table_says_so)
{
	struct kb_conns *t = table();
	struct kb_conn_id id = id_of(43000);

	for (int i = 0; i < KB_CONNS_MAX; i++)
		cr_assert_neq(kb_conns_open(t, &id, 100, i), 0);
	cr_assert_eq(kb_conns_open(t, &id, 100, 1), 0);
	free(t);
}

/* A mark being written (state 1) is someone else's slot: marking must go
 * on to the next one, not wait for it. The writer may be the very code a
 * signal handler interrupted, in the same thread: waiting there is
 * waiting for ever. */
Test(marks, a_slot_being_written_is_passed_by, .timeout = 5)
{
	struct kb_marks *m = calloc(1, sizeof *m);
	struct kb_addr a;

	cr_assert_not_null(m);
	memset(&a, 0, sizeof a);
	a.family = AF_INET;
	a.bytes[0] = 10;
	a.bytes[3] = 9;
	for (int i = 0; i < KB_MARKS_MAX; i++)
		m->slot[i].state = 1; /* every slot in the middle of a write */
	m->slot[KB_MARKS_MAX / 2].state = 0;
	cr_assert(kb_marks_set(m, &a, UINT64_MAX), "marked in the one slot free");
	free(m);
}
