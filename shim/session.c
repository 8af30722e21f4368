/*
 * session.c - the session model on real sockets; see session.h.
 */
#include "session.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kbfault/sessions.h"
#include "act.h"
#include "guard.h"
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

static void leak(uint64_t bytes)
{
	while (bytes) {
		if (leak_left == 0) {
			size_t size = 4u << 20;
			void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				return;
			leak_chunk = p;
			leak_left = size;
		}
		size_t n = bytes < leak_left ? (size_t)bytes : leak_left;
		memset(leak_chunk, 0xa5, n);
		leak_chunk += n;
		leak_left -= n;
		bytes -= n;
	}
}

bool kb_session_refuse(const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	bool refused;
	int saved = errno;

	uint64_t attempt = kb_sessions_attempt(c, r, &refused);
	if (r->sess_leak) {
		/* the bump allocator is shared by every accepting thread; a
		 * leak is a few memsets long, so a spin is the right lock */
		while (__atomic_exchange_n(&leak_lock, 1, __ATOMIC_ACQUIRE))
			;
		leak(r->sess_leak);
		__atomic_store_n(&leak_lock, 0, __ATOMIC_RELEASE);
	}
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

/* Admission order, so that a cut takes the oldest session: the one
 * furthest into its conversation, as a gateway dropping "an existing
 * session" would. (The lowest descriptor number would be the newest one,
 * since numbers are reused at once.) */
static uint64_t admitted;

/* Cuts the oldest active session of rule r other than `except`, if any. */
static void cut_one(const struct kb_verdict *v, enum kb_call call, const char *via, int except)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	int limit = kb_fd_limit();
	struct kb_fd_info info;

	for (int tries = 0; tries < 4; tries++) {
		int victim = -1;
		uint64_t oldest = UINT64_MAX;
		for (int fd = 0; fd < limit; fd++) {
			if (fd == except || !kb_fd_lookup(fd, &info) || !(info.flags & KB_FD_SESSION) ||
			    (info.flags & KB_FD_CUT) || KB_TAG_RULE(info.tag) != r->index + 1)
				continue;
			if (KB_TAG_SEQ(info.tag) < oldest) {
				oldest = KB_TAG_SEQ(info.tag);
				victim = fd;
			}
		}
		if (victim < 0)
			return;
		if (!kb_fd_claim(victim, KB_FD_CUT) || !kb_fd_lookup(victim, &info))
			continue; /* another thread took it first: look again */
		int saved = errno;
		bool same = kb_fd_same(victim, &info);
		errno = saved;
		if (!same) {
			/* closed behind our back, its number reused: whatever is
			 * there now is not a session to cut */
			kb_fd_forget(victim);
			continue;
		}
		kb_sessions_cut(c);
		struct kb_site site = { call, via, victim, KB_ROLE_ACCEPTED, &info.peer, NULL };
		struct kb_effect e = KB_EFFECT_NONE;
		e.effect = "cut";
		e.reason = "session count reached zero";
		e.has_count = true;
		e.count = kb_sessions_count(c, r);
		kb_log_inject(&site, v, &e);
		kb_reset_keep_open(victim);
		return;
	}
}

void kb_session_admit(int conn, const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	int saved = errno;

	kb_fd_mark_tag(conn, KB_FD_SESSION, KB_TAG(r->index, __atomic_add_fetch(&admitted, 1, __ATOMIC_RELAXED)));
	kb_sessions_admit(c, r);
	if (kb_sessions_must_cut(c, r))
		cut_one(v, site->call, site->via, conn);
	errno = saved;
}

void kb_session_end(int fd, const struct kb_fd_info *info, const char *via)
{
	uint32_t rule = KB_TAG_RULE(info->tag);
	if (rule == 0 || rule > kb_shim.recipe.nrules)
		return;
	const struct kb_rule *r = &kb_shim.recipe.rules[rule - 1];
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	struct kb_verdict v = { r, __atomic_load_n(&c->hits, __ATOMIC_RELAXED) };
	int saved = errno;

	kb_sessions_release(c, r, (info->flags & KB_FD_CUT) != 0);
	if (kb_sessions_must_cut(c, r))
		cut_one(&v, KB_CALL_CLOSE, via, fd);
	errno = saved;
}
