/*
 * describe.c - a rule in words, for `kbfault check`: what the parser
 * understood, so a user can compare it with what they meant.
 */
#include <stdio.h>
#include <string.h>

#include "kbfault/addr.h"
#include "kbfault/decide.h"
#include "kbfault/errnos.h"
#include "kbfault/recipe.h"
#include "kbfault/scan.h"

static const char *ordinal_suffix(uint64_t n)
{
	if (n % 100 >= 11 && n % 100 <= 13)
		return "th";
	switch (n % 10) {
	case 1: return "st";
	case 2: return "nd";
	case 3: return "rd";
	default: return "th";
	}
}

void kb_rule_describe(const struct kb_rule *r, char *buf, size_t len)
{
	size_t u = 0;
	char d1[32], d2[32];

	buf[0] = '\0';
	kb_append(buf, len, &u, "rule %s (line %u)%s\n", r->name, r->line, r->enabled ? "" : " [disabled]");

	kb_append(buf, len, &u, "  on    ");
	bool first = true;
	for (int c = 0; c < KB_CALL_COUNT; c++) {
		if (r->calls & (1u << c)) {
			kb_append(buf, len, &u, "%s%s", first ? "" : ", ", kb_call_name((enum kb_call)c));
			first = false;
		}
	}
	if (r->roles) {
		kb_append(buf, len, &u, " of");
		for (int k = 1; k < KB_ROLE_COUNT; k++)
			if (r->roles & (1u << k))
				kb_append(buf, len, &u, " %s", kb_role_name((enum kb_role)k));
		kb_append(buf, len, &u, " sockets");
	}
	if (r->has_port) {
		if (r->port.lo == r->port.hi)
			kb_append(buf, len, &u, ", local port %u", r->port.lo);
		else
			kb_append(buf, len, &u, ", local ports %u-%u", r->port.lo, r->port.hi);
	}
	for (unsigned i = 0; i < r->npeers; i++) {
		char c[64];
		kb_cidr_format(&r->peers[i], c, sizeof c);
		kb_append(buf, len, &u, "%s%s", i ? " or " : ", peer ", c);
	}
	if (r->has_peer_port)
		kb_append(buf, len, &u, ", peer port %u-%u", r->peer_port.lo, r->peer_port.hi);
	if (r->peer_marked == KB_MARKED_YES)
		kb_append(buf, len, &u, ", only peers marked by mark-peer");
	else if (r->peer_marked == KB_MARKED_NO)
		kb_append(buf, len, &u, ", only peers not marked");
	for (unsigned i = 0; i < r->nprograms; i++)
		kb_append(buf, len, &u, "%s%s", i ? " or " : ", only in program ", r->programs[i]);
	kb_append(buf, len, &u, "\n");

	kb_append(buf, len, &u, "  when  ");
	if (r->nth)
		kb_append(buf, len, &u, "the %llu%s hit only", (unsigned long long)r->nth,
			  ordinal_suffix(r->nth));
	else if (r->every > 1)
		kb_append(buf, len, &u, "every %llu%s hit", (unsigned long long)r->every,
			  ordinal_suffix(r->every));
	else
		kb_append(buf, len, &u, "every hit");
	if (r->after)
		kb_append(buf, len, &u, " after the first %llu", (unsigned long long)r->after);
	if (r->chance != UINT64_MAX) {
		/* per-mille from the 64-bit threshold, for display only */
		unsigned long long pm = (unsigned long long)(((unsigned __int128)r->chance * 100000) >> 64);
		kb_append(buf, len, &u, ", with probability %llu.%03llu%%", pm / 1000, pm % 1000);
	}
	if (r->has_window) {
		kb_format_duration(r->window_from_ns, d1, sizeof d1);
		kb_format_duration(r->window_to_ns, d2, sizeof d2);
		if (r->window_to_ns == KB_FOREVER)
			kb_append(buf, len, &u, ", from %s after start", d1);
		else
			kb_append(buf, len, &u, ", between %s and %s after start", d1, d2);
	}
	if (r->limit)
		kb_append(buf, len, &u, ", at most %llu time%s", (unsigned long long)r->limit,
			  r->limit == 1 ? "" : "s");
	kb_append(buf, len, &u, "; counters per %s\n", kb_rule_counts_tree(r) ? "process tree" : "process");

	kb_append(buf, len, &u, "  do    ");
	if (r->delay_ns) {
		kb_format_duration(r->delay_ns, d1, sizeof d1);
		kb_append(buf, len, &u, "wait %s, then ", d1);
	}
	switch (r->action) {
	case KB_ACT_PASS:
		kb_append(buf, len, &u, "let the call through (later rules still apply)");
		break;
	case KB_ACT_QUEUE:
		if (r->queue_mode == KB_QUEUE_HANG)
			kb_append(buf, len, &u, "cap the listen backlog at %d (clients beyond it hang)", r->backlog);
		else if (r->queue_mode == KB_QUEUE_RESET)
			kb_append(buf, len, &u, "emulate an accept queue of %d: connections waiting beyond it are reset", r->backlog);
		else
			kb_append(buf, len, &u, "emulate an accept queue of %d: while it is full the listener pauses and new clients are refused", r->backlog);
		break;
	case KB_ACT_SESSIONS:
		kb_append(buf, len, &u,
			  "count sessions from %lld, +1 per session, -%lld per connection request, -1 per close; "
			  "cut an active session when the count is <= 0",
			  (long long)r->sess_count, (long long)r->sess_miscount);
		if (r->sess_slots)
			kb_append(buf, len, &u, "; refuse every attempt after the %llu%s (\"session limit exceeded\")",
				  (unsigned long long)r->sess_slots, ordinal_suffix(r->sess_slots));
		if (r->sess_leak)
			kb_append(buf, len, &u, "; leak %llu bytes per attempt", (unsigned long long)r->sess_leak);
		break;
	case KB_ACT_FAIL:
		kb_append(buf, len, &u, "fail with %s", kb_errno_name(r->err) ? kb_errno_name(r->err) : "?");
		break;
	case KB_ACT_BACKLOG:
		kb_append(buf, len, &u, "cap the listen backlog at %d", r->backlog);
		break;
	case KB_ACT_LEAK:
		kb_append(buf, len, &u, "report success but keep the socket open (not released)");
		break;
	case KB_ACT_RESET:
		kb_append(buf, len, &u, "reset the connection (the peer gets a TCP RST)");
		break;
	case KB_ACT_REFUSE:
		kb_append(buf, len, &u, "let the kernel refuse the connection (ECONNREFUSED on the normal path)");
		break;
	case KB_ACT_STALL:
		kb_format_duration(r->stall_ns, d1, sizeof d1);
		kb_append(buf, len, &u, "stall the calling thread %s%s (a signal ends the stall)",
			  r->stall_ns == KB_FOREVER ? "" : "for ", d1);
		break;
	case KB_ACT_ABORT:
		kb_append(buf, len, &u, "abort the process (SIGABRT)");
		break;
	default:
		break;
	}
	if (r->mark_peer) {
		kb_format_duration(r->mark_ns, d1, sizeof d1);
		kb_append(buf, len, &u, "; and remember the peer %s%s", r->mark_ns == KB_FOREVER ? "until the process exits" : "for ",
			  r->mark_ns == KB_FOREVER ? "" : d1);
	}
	kb_append(buf, len, &u, "\n");
}
