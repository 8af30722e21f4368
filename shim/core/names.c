/*
 * names.c - the printable names of calls, roles and actions, and which
 * action makes sense for which call. One table each, so the parser, the
 * log and `kbfault check` always agree on spelling.
 */
#include "kbfault/model.h"
#include "kbfault/prng.h"

static const char *const call_names[KB_CALL_COUNT] = {
	[KB_CALL_LISTEN] = "listen",
	[KB_CALL_ACCEPT] = "accept",
	[KB_CALL_CONNECT] = "connect",
	[KB_CALL_CLOSE] = "close",
	[KB_CALL_SHUTDOWN] = "shutdown",
};

static const char *const role_names[KB_ROLE_COUNT] = {
	[KB_ROLE_NONE] = "untracked",
	[KB_ROLE_LISTENING] = "listening",
	[KB_ROLE_ACCEPTED] = "accepted",
	[KB_ROLE_OUTBOUND] = "outbound",
};

static const char *const action_names[KB_ACT_COUNT] = {
	[KB_ACT_PASS] = "pass",
	[KB_ACT_FAIL] = "fail",
	[KB_ACT_BACKLOG] = "backlog",
	[KB_ACT_LEAK] = "leak",
	[KB_ACT_RESET] = "reset",
	[KB_ACT_REFUSE] = "refuse",
	[KB_ACT_STALL] = "stall",
	[KB_ACT_ABORT] = "abort",
	[KB_ACT_QUEUE] = "queue",
	[KB_ACT_SESSIONS] = "sessions",
};

/* What a rule that fired did to the call, for the log's "effect": a word
 * per action, for the lines whose hook has no more precise one ("none",
 * when the call came out as it would have without kbfault). A pass rule
 * is logged only when it delays. */
static const char *const action_effects[KB_ACT_COUNT] = {
	[KB_ACT_PASS] = "delayed",
	[KB_ACT_FAIL] = "failed",
	[KB_ACT_BACKLOG] = "capped",
	[KB_ACT_LEAK] = "leaked",
	[KB_ACT_RESET] = "reset",
	[KB_ACT_REFUSE] = "refused",
	[KB_ACT_STALL] = "stalled",
	[KB_ACT_ABORT] = "aborted",
	[KB_ACT_QUEUE] = "emulated",
	[KB_ACT_SESSIONS] = "counted",
};

#define ALL_CALLS ((1u << KB_CALL_COUNT) - 1)

/* Bit (1 << call) set where the action means something for that call. */
static const unsigned action_calls[KB_ACT_COUNT] = {
	[KB_ACT_PASS] = ALL_CALLS,
	[KB_ACT_FAIL] = ALL_CALLS,
	[KB_ACT_BACKLOG] = 1u << KB_CALL_LISTEN,
	[KB_ACT_LEAK] = (1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN),
	[KB_ACT_RESET] = (1u << KB_CALL_ACCEPT) | (1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN),
	[KB_ACT_REFUSE] = 1u << KB_CALL_CONNECT,
	[KB_ACT_STALL] = ALL_CALLS,
	[KB_ACT_ABORT] = ALL_CALLS,
	[KB_ACT_QUEUE] = 1u << KB_CALL_LISTEN,
	[KB_ACT_SESSIONS] = 1u << KB_CALL_ACCEPT,
};

static const char *const queue_mode_names[KB_QUEUE_MODES] = {
	[KB_QUEUE_HANG] = "hang",
	[KB_QUEUE_RESET] = "reset",
	[KB_QUEUE_REFUSE] = "refuse",
};

const char *kb_queue_mode_name(enum kb_queue_mode mode)
{
	return (unsigned)mode < KB_QUEUE_MODES ? queue_mode_names[mode] : "?";
}

const char *kb_call_name(enum kb_call call)
{
	return (unsigned)call < KB_CALL_COUNT ? call_names[call] : "?";
}

const char *kb_role_name(enum kb_role role)
{
	return (unsigned)role < KB_ROLE_COUNT ? role_names[role] : "?";
}

const char *kb_action_name(enum kb_action action)
{
	return (unsigned)action < KB_ACT_COUNT ? action_names[action] : "?";
}

const char *kb_action_effect(enum kb_action action)
{
	return (unsigned)action < KB_ACT_COUNT ? action_effects[action] : "?";
}

bool kb_action_valid_for(enum kb_action action, enum kb_call call)
{
	if ((unsigned)action >= KB_ACT_COUNT || (unsigned)call >= KB_CALL_COUNT)
		return false;
	return (action_calls[action] & (1u << call)) != 0;
}

uint64_t kb_hash_name(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}
