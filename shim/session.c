/*
 * session.c - the session model on real sockets; see session.h.
 */
#include "session.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kbfault/sessions.h"
#include "act.h"
#include "conn.h"
#include "guard.h"
#include "real.h"
#include "shim.h"

/* Memory leaked on purpose, carved from large mappings: one mmap per
 * attempt would run into the kernel's limit on mappings long before the
 * leak itself showed. Touched page by page, so it is resident: the host's
 * memory really grows, as the gateway's did. */
static uint8_t *leak_chunk;
static size_t leak_left;
static int leak_lock;

void kb_session_atfork_child(void)
{
	leak_lock = 0;
}

static void *leak_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void leak_from_chunks(uint64_t bytes)
{
	while (bytes) {
		if (leak_left == 0) {
			size_t size = 4u << 20;
			if ((leak_chunk = leak_map(size)) == NULL)
				return;
			leak_left = size;
		}
		size_t n = bytes < leak_left ? (size_t)bytes : leak_left;
		memset(leak_chunk, 0xa5, n);
		leak_chunk += n;
		leak_left -= n;
		bytes -= n;
	}
}

/*
 * The chunks are shared by every accepting thread, behind a lock that is
 * only ever tried, never waited for: a signal handler that accepts while
 * its thread is in here (or another thread is) must not spin on a lock
 * the code it interrupted holds. Whoever finds it taken leaks a mapping
 * of its own instead - the same memory, one mapping more.
 */
static void leak(uint64_t bytes)
{
	if (__atomic_exchange_n(&leak_lock, 1, __ATOMIC_ACQUIRE) == 0) {
		leak_from_chunks(bytes);
		__atomic_store_n(&leak_lock, 0, __ATOMIC_RELEASE);
		return;
	}
	uint8_t *p = bytes <= SIZE_MAX ? leak_map((size_t)bytes) : NULL;
	if (p)
		memset(p, 0xa5, (size_t)bytes);
}

static struct kb_counter *counter_of(const struct kb_rule *r)
{
	return kb_shim.plan.counter[r->index];
}

bool kb_session_refuse(const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;
	bool refused;
	int saved = errno;

	uint64_t attempt = kb_sessions_attempt(counter_of(r), r, &refused);
	if (r->sess_leak)
		leak(r->sess_leak);
	if (refused) {
		struct kb_effect e = KB_EFFECT_NONE;
		e.effect = "refused";
		e.reason = "session limit exceeded";
		e.attempt = attempt;
		kb_log_inject(site, v, &e);
	}
	errno = saved;
	return refused;
}

/* Candidates a cut cannot reach this time (held only by processes this
 * one may not reach into), so the next oldest is tried instead. */
struct unreachable {
	size_t n;
	uint64_t handle[8];
};

static bool is_unreachable(uint64_t handle, void *ctx)
{
	const struct unreachable *u = ctx;
	for (size_t i = 0; i < u->n; i++)
		if (u->handle[i] == handle)
			return true;
	return false;
}

/* Logs the cut of session `c`, reached through `mine` (a descriptor of
 * this process's own for it), then resets it there: the socket that was
 * checked is the one reset, whatever its holder's number holds by now. */
static void cut(const struct kb_verdict *v, enum kb_call call, const char *via, const struct kb_conn *c,
		int mine, int holder_pid, int holder_fd)
{
	const struct kb_rule *r = v->rule;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct kb_addr local;

	memset(&local, 0, sizeof local);
	if (getsockname(mine, (struct sockaddr *)&ss, &len) == 0)
		kb_addr_from_sockaddr((struct sockaddr *)&ss, len, &local);
	struct kb_site site = { .call = call, .via = via, .fd = holder_fd, .role = KB_ROLE_ACCEPTED,
				.peer = &c->id.peer };
	site.local = local.family ? &local : NULL;
	struct kb_effect e = KB_EFFECT_NONE;
	e.effect = "cut";
	e.reason = "session count reached zero";
	e.has_count = true;
	e.count = kb_sessions_count(counter_of(r), r);
	e.session = c->seq;
	site.holder = holder_pid == (int)getpid() ? 0 : holder_pid;
	kb_log_inject(&site, v, &e);
	kb_reset_keep_open(mine);
}

/* Cuts the oldest active session of v's rule other than `except`, in
 * whichever process of the tree holds it. */
static void cut_one(const struct kb_verdict *v, enum kb_call call, const char *via, uint64_t except)
{
	const struct kb_rule *r = v->rule;
	struct kb_conns *t = kb_conn_table();
	struct kb_counter *ctr = counter_of(r);
	struct unreachable skip = { 0, { 0 } };

	for (int tries = 0; tries < 16; tries++) {
		uint64_t h = kb_conns_oldest(t, r->index, except, is_unreachable, &skip);
		if (h == 0)
			return;
		if (!kb_conns_claim_cut(t, h))
			continue; /* another thread or process took it first */
		/* a cut session stops being active at once; should it end
		 * before we reach it, its release then knows it was cut */
		kb_sessions_cut(ctr);
		struct kb_conn c;
		int holder_pid, holder_fd;
		kb_guard_enter();
		int mine = kb_conn_reach(h, &c, &holder_pid, &holder_fd);
		if (mine < 0) {
			if (errno == EPERM && kb_conns_unclaim_cut(t, h)) {
				kb_sessions_uncut(ctr);
				if (skip.n < sizeof skip.handle / sizeof skip.handle[0])
					skip.handle[skip.n++] = h;
			}
			kb_guard_leave();
			continue; /* ended unseen (and released now), or out of reach */
		}
		cut(v, call, via, &c, mine, holder_pid, holder_fd);
		kb_real.close(mine);
		kb_guard_leave();
		return;
	}
}

void kb_session_admit(int conn, const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *ctr = counter_of(r);
	struct kb_fd_info info;
	int saved = errno;

	if (!kb_fd_lookup(conn, &info))
		return;
	uint64_t h = kb_conn_enter(conn, &info);
	if (h == 0) {
		/* no table, or no slot left: the model cannot follow this
		 * session, so it counts as one that came and went at once */
		kb_sessions_admit(ctr, r);
		kb_sessions_release(ctr, r, false);
		if (kb_sessions_must_cut(ctr, r))
			cut_one(v, site->call, site->via, 0);
		errno = saved;
		return;
	}
	kb_conns_admit(kb_conn_table(), h, r->index);
	kb_sessions_admit(ctr, r);
	if (kb_sessions_must_cut(ctr, r))
		cut_one(v, site->call, site->via, h);
	errno = saved;
}

void kb_session_ended(const struct kb_conn *c, const char *via, bool may_cut)
{
	if (c->rule >= kb_shim.recipe.nrules)
		return;
	const struct kb_rule *r = &kb_shim.recipe.rules[c->rule];
	struct kb_counter *ctr = counter_of(r);
	/* a cut made on behalf of a close has no hit of the rule's own */
	struct kb_verdict v = { r, 0 };
	int saved = errno;

	kb_sessions_release(ctr, r, (c->flags & KB_CONN_CUT) != 0);
	if (may_cut && kb_sessions_must_cut(ctr, r))
		cut_one(&v, KB_CALL_CLOSE, via, 0);
	errno = saved;
}
