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

/* Cuts one active session of rule r other than `except`, if there is one. */
static void cut_one(const struct kb_verdict *v, enum kb_call call, const char *via, int except)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	int limit = kb_fd_limit();
	struct kb_fd_info info;

	for (int fd = 0; fd < limit; fd++) {
		if (fd == except || !kb_fd_lookup(fd, &info) || !(info.flags & KB_FD_SESSION) ||
		    (info.flags & KB_FD_CUT) || info.rule != r->index + 1)
			continue;
		if (!kb_fd_claim(fd, KB_FD_CUT))
			continue; /* another thread is cutting it */
		kb_sessions_cut(c);
		struct kb_site victim = { call, via, fd, KB_ROLE_ACCEPTED, &info.peer };
		struct kb_effect e = KB_EFFECT_NONE;
		e.effect = "cut";
		e.reason = "session count reached zero";
		e.has_count = true;
		e.count = kb_sessions_count(c, r);
		kb_log_inject(&victim, v, &e);
		kb_reset_keep_open(fd);
		return;
	}
}

void kb_session_admit(int conn, const struct kb_site *site, const struct kb_verdict *v)
{
	const struct kb_rule *r = v->rule;
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	int saved = errno;

	kb_fd_mark_rule(conn, KB_FD_SESSION, r->index + 1);
	kb_sessions_admit(c, r);
	if (kb_sessions_must_cut(c, r))
		cut_one(v, site->call, site->via, conn);
	errno = saved;
}

void kb_session_end(int fd, const struct kb_fd_info *info, const char *via)
{
	if (info->rule == 0 || info->rule > kb_shim.recipe.nrules)
		return;
	const struct kb_rule *r = &kb_shim.recipe.rules[info->rule - 1];
	struct kb_counter *c = kb_shim.plan.counter[r->index];
	struct kb_verdict v = { r, __atomic_load_n(&c->hits, __ATOMIC_RELAXED) };
	int saved = errno;

	kb_sessions_release(c, r, (info->flags & KB_FD_CUT) != 0);
	if (kb_sessions_must_cut(c, r))
		cut_one(&v, KB_CALL_CLOSE, via, fd);
	errno = saved;
}
