/*
 * act.h - carrying out what a rule decided.
 *
 * kb_inject() is the one sequence every hook follows once kb_decide() has
 * spoken: for each rule that fired, log it first, wait out its delay,
 * then - for a stall or an abort - do that too. What is left (fail,
 * backlog, leak, reset, refuse) depends on the call, so the hook does it,
 * having been handed the deciding rule.
 */
#ifndef KBFAULT_ACT_H
#define KBFAULT_ACT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kbfault/decide.h"
#include "log.h"

/* Decides for `site` (local port lport) and runs the common part of every
 * verdict. Returns the rule that decides the call's outcome - one whose
 * action the hook must carry out - or NULL when the call should simply go
 * ahead. `effect` supplies action-specific fields for the log; may be
 * NULL. */
const struct kb_verdict *kb_inject(const struct kb_site *site, uint16_t lport,
				   struct kb_verdict verdicts[KB_VERDICTS_MAX],
				   const struct kb_effect *effect);

/* The same, for a call whose bucket's tally (decide.h) has counted the
 * first `counted` rules and found one due after them. */
const struct kb_verdict *kb_inject_from(const struct kb_site *site, uint16_t lport,
					struct kb_verdict verdicts[KB_VERDICTS_MAX],
					const struct kb_effect *effect, uint32_t counted);

/* A rule's mark-peer: remembers the peer of this call (marks.h) and logs
 * it; nothing for a close of a copy that ends no connection. */
void kb_mark_peer(const struct kb_site *site, const struct kb_verdict *v);

/* A hook's own part of an action, done before the action's line is
 * written so that the line says what was done (fclose()'s leak makes the
 * copy of the socket that stays open: the line names it, or says why
 * there is none). Called for the rule that decides the call - not for a
 * pass, a stall or an abort, which kb_inject carries out itself - with
 * copies of the site and the effect, which the line is then written from. */
struct kb_prepare {
	void (*fn)(const struct kb_verdict *v, struct kb_site *site, struct kb_effect *effect, void *ctx);
	void *ctx;
};

/* kb_inject(), with `prepare` run before the deciding rule's line. */
const struct kb_verdict *kb_inject_prepared(const struct kb_site *site, uint16_t lport,
					    struct kb_verdict verdicts[KB_VERDICTS_MAX],
					    const struct kb_effect *effect, const struct kb_prepare *prepare);

/* Closes fd so the peer gets a TCP reset rather than a FIN. */
void kb_close_with_reset(int fd);

/* Resets fd's connection but leaves the descriptor open for its owner:
 * the owner sees ECONNRESET/HUP and cleans up itself. */
void kb_reset_keep_open(int fd);

/* Opens the refusal sinks: sockets bound on loopback that never listen,
 * so a connect() sent to them is refused by the kernel itself. */
void kb_sinks_open(void);

/* The address of the sink that suits a connect() to `wanted` (same
 * family), so it can be refused the way a real outage is. Returns false
 * if there is none. */
bool kb_sink_for(const struct sockaddr *wanted, socklen_t wanted_len, struct sockaddr_storage *out,
		 socklen_t *len);

#endif
