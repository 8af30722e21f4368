/*
 * lint.c - the rules that can never fire as written (lint.h). Each check
 * names what the rule asks for, why no call meets it, and what was most
 * likely meant.
 */
#include <stdio.h>
#include <string.h>

#include "kbfault/decide.h"
#include "kbfault/lint.h"

#define CLOSE_LIKE ((1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN))

/* Does r fire on every call it is on? No filter, no count, no chance. */
static bool every_call(const struct kb_rule *r)
{
	return !r->has_port && !r->has_peer_port && r->npeers == 0 && r->nprograms == 0 && r->roles == 0 &&
	       r->peer_marked == KB_MARKED_ANY && !r->has_window && r->nth == 0 && r->after == 0 && r->every <= 1 &&
	       r->chance == UINT64_MAX && r->limit == 0;
}

/* how: "never fires", or "will hardly fire" where the program could
 * still make it (by binding its local port) */
static void warn(const struct kb_recipe *r, const struct kb_rule *rule, struct kb_diag *out, size_t max, size_t *n,
		 const char *how, const char *why)
{
	if (*n < max)
		kb_diag_set(&out[(*n)++], r->path, rule->line, 0, "warning: rule '%s' %s: %s", rule->name, how, why);
}

size_t kb_recipe_lint(const struct kb_recipe *r, struct kb_diag *out, size_t max)
{
	size_t n = 0;
	bool marks = false;
	for (size_t i = 0; i < r->nrules; i++)
		marks |= r->rules[i].enabled && r->rules[i].mark_peer;

	for (size_t i = 0; i < r->nrules; i++) {
		const struct kb_rule *x = &r->rules[i];
		if (!x->enabled)
			continue;
		char why[400];
		if ((x->calls & (1u << KB_CALL_CONNECT)) && x->has_port && !x->has_peer_port) {
			char port[32];
			if (x->port.lo == x->port.hi)
				snprintf(port, sizeof port, "%u", x->port.lo);
			else
				snprintf(port, sizeof port, "%u-%u", x->port.lo, x->port.hi);
			snprintf(why, sizeof why,
				 "on connect, `port` is the local port, an ephemeral one the kernel picks (unless the "
				 "program binds it); for the server's port write `peer-port %s`",
				 port);
			warn(r, x, out, max, &n, "will hardly fire", why);
		}
		if (x->peer_marked == KB_MARKED_YES && !marks)
			warn(r, x, out, max, &n, "never fires",
			     "`peer-marked yes` matches only peers that a `mark-peer` rule remembered, and no rule of this "
			     "recipe has `mark-peer`");
		bool about_peers = x->npeers || x->has_peer_port || x->peer_marked != KB_MARKED_ANY;
		if ((x->calls & ~CLOSE_LIKE) == 0 && x->roles == (1u << KB_ROLE_LISTENING) && about_peers)
			warn(r, x, out, max, &n, "never fires", "it closes only listening sockets, which have no peer, and asks for one");
		for (size_t k = 0; k < i; k++) {
			const struct kb_rule *q = &r->rules[k];
			if (!q->enabled || q->action == KB_ACT_PASS || q->action == KB_ACT_STALL || !every_call(q) ||
			    (x->calls & ~q->calls) != 0 ||
			    ((x->calls & (1u << KB_CALL_ACCEPT)) &&
			     kb_rule_accept_before_dequeue(q) != kb_rule_accept_before_dequeue(x)))
				continue;
			snprintf(why, sizeof why,
				 "rule '%s' (line %u) before it acts on every call this one is on, and the first rule "
				 "that acts decides the call",
				 q->name, q->line);
			warn(r, x, out, max, &n, "never fires", why);
			break;
		}
	}
	return n;
}
