/*
 * model.h - what a recipe means once it is parsed: calls, socket roles,
 * actions and the immutable rule.
 *
 * Shared by the shim, the CLI and the tests. Nothing here knows about
 * preloading; a rule is plain data that the parser fills once and nobody
 * writes again. Mutable state (hit counters) lives apart, in
 * struct kb_counter (decide.h), so a rule can be read by any thread
 * without a lock.
 */
#ifndef KBFAULT_MODEL_H
#define KBFAULT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The call families a rule can be attached to. accept covers accept() and
 * accept4(); close covers close(), fclose() on a socket stream,
 * close_range(), closefrom() and syscall(SYS_close). */
enum kb_call {
	KB_CALL_LISTEN,
	KB_CALL_ACCEPT,
	KB_CALL_CONNECT,
	KB_CALL_CLOSE,
	KB_CALL_SHUTDOWN,
	KB_CALL_COUNT
};

/* Where a tracked descriptor came from. KB_ROLE_NONE means untracked: no
 * rule ever acts on such a descriptor. */
enum kb_role {
	KB_ROLE_NONE,
	KB_ROLE_LISTENING, /* listen() succeeded on it */
	KB_ROLE_ACCEPTED,  /* returned by accept()/accept4() */
	KB_ROLE_OUTBOUND,  /* connect() was called on it */
	KB_ROLE_COUNT
};

enum kb_action {
	KB_ACT_PASS,    /* nothing but the rule's delay; later rules still apply */
	KB_ACT_FAIL,    /* return -1 with an errno the real call can return */
	KB_ACT_BACKLOG, /* listen(): cap the backlog */
	KB_ACT_LEAK,    /* close()/shutdown(): report success, release nothing */
	KB_ACT_RESET,   /* send a TCP reset to the peer */
	KB_ACT_REFUSE,  /* connect(): a genuine refusal from the kernel */
	KB_ACT_STALL,   /* block the calling thread (interruptible by signals) */
	KB_ACT_ABORT,   /* abort() the process */
	KB_ACT_QUEUE,   /* listen(): emulate an accept queue of N (queue.c) */
	KB_ACT_SESSIONS, /* accept(): the miscounting session model (sessions.c) */
	KB_ACT_COUNT
};

/* What an emulated accept queue does with connections beyond its length. */
enum kb_queue_mode {
	KB_QUEUE_HANG,   /* only cap the kernel's backlog: clients hang */
	KB_QUEUE_RESET,  /* reset the connections waiting beyond N */
	KB_QUEUE_REFUSE, /* stop listening while N wait: new clients are refused */
	KB_QUEUE_MODES
};

/* peer-marked filter */
enum { KB_MARKED_ANY, KB_MARKED_YES, KB_MARKED_NO };

enum kb_scope {
	KB_SCOPE_PROCESS, /* counters start at zero in every process */
	KB_SCOPE_TREE     /* counters shared by a process and its forks */
};

#define KB_NAME_MAX 64      /* rule, recipe and parameter names, with NUL */
#define KB_MAX_PEERS 16     /* peer CIDRs per rule */
#define KB_MAX_PROGRAMS 8   /* program names per rule */
#define KB_MAX_RULES 1024   /* rules per recipe */
#define KB_MAX_PARAMS 64    /* parameters per recipe */
#define KB_FOREVER UINT64_MAX
#define KB_QUEUE_MAX 1024   /* longest emulated accept queue */

struct kb_cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix; /* significant leading bits */
	uint8_t bytes[16];
};

struct kb_port_range {
	uint16_t lo, hi; /* inclusive; lo = 0 and hi = 65535 when absent */
};

struct kb_rule {
	/* What every decision reads (decide.c), first and within 64 bytes:
	 * a call that a rule sees touches these one or two cache lines and
	 * its counter, not the name, the peer list or the programs further
	 * down. (Not aligned to a line: rules live in arrays that the
	 * allocator aligns to 16 bytes.) */
	uint32_t index; /* position in the recipe: evaluation order */
	enum kb_action action;
	bool has_port, has_peer_port;
	uint8_t npeers;
	uint8_t peer_marked; /* KB_MARKED_*: only peers marked (or not) by mark-peer */
	bool has_window;
	bool mark_peer;      /* side effect of firing: remember the peer (marks.h) */
	struct kb_port_range port;      /* local port */
	struct kb_port_range peer_port;
	uint64_t nth;        /* 0 = any hit */
	uint64_t after;      /* skip this many hits */
	uint64_t every;      /* 0 = every hit */
	uint64_t chance;     /* fire if prng < chance; UINT64_MAX = always */
	uint64_t limit;      /* 0 = unlimited injections */

	char name[KB_NAME_MAX];
	unsigned line;   /* where `rule NAME` stands, for messages */
	uint64_t name_hash; /* feeds the reproducible random decisions */
	bool enabled;

	/* which calls and sockets (with the filters above) */
	uint32_t calls;  /* bit (1u << enum kb_call) */
	uint32_t roles;  /* bit (1u << enum kb_role); 0 = every tracked role */
	struct kb_cidr peers[KB_MAX_PEERS];
	uint8_t nprograms;
	char programs[KB_MAX_PROGRAMS][KB_NAME_MAX];

	/* when (with nth .. limit above) */
	uint64_t window_from_ns, window_to_ns; /* since start; to = KB_FOREVER open */
	enum kb_scope scope;

	/* what (with action above) */
	uint64_t delay_ns;   /* before the action */
	int err;             /* KB_ACT_FAIL */
	int backlog;         /* KB_ACT_BACKLOG, and the length for KB_ACT_QUEUE */
	enum kb_queue_mode queue_mode; /* KB_ACT_QUEUE */
	uint64_t stall_ns;   /* KB_ACT_STALL; KB_FOREVER = until a signal */

	/* KB_ACT_SESSIONS: the gateway's session counter (see sessions.h) */
	int64_t sess_count;    /* where the counter starts */
	int64_t sess_miscount; /* taken off it wrongly on each connection request */
	uint64_t sess_slots;   /* slots; each attempt takes one for good (0: no limit) */
	uint64_t sess_leak;    /* bytes each attempt never gives back */

	uint64_t mark_ns;    /* mark-peer: how long; KB_FOREVER: as long as the process (tree) lives */
};
_Static_assert(offsetof(struct kb_rule, limit) + sizeof(uint64_t) <= 64,
	       "what a decision reads fits in the rule's first 64 bytes");

struct kb_param {
	char name[KB_NAME_MAX];
	char value[256];
	unsigned line;
	bool overridden; /* value came from KBFAULT_SET / --set */
};

struct kb_recipe {
	char path[4096];
	char name[KB_NAME_MAX];
	char about[256];
	uint64_t seed;
	bool has_seed;
	size_t nrules;
	struct kb_rule *rules; /* nrules entries, file order */
	size_t rules_cap;      /* entries allocated */
	size_t nparams;
	struct kb_param params[KB_MAX_PARAMS];
};

const char *kb_call_name(enum kb_call call);
const char *kb_role_name(enum kb_role role);
const char *kb_action_name(enum kb_action action);
const char *kb_queue_mode_name(enum kb_queue_mode mode);
/* The log's "effect" of an action that did what it says (names.c). */
const char *kb_action_effect(enum kb_action action);

/* Is `action` meaningful for `call`? Used by the parser to reject recipes
 * that ask for something a call cannot do. */
bool kb_action_valid_for(enum kb_action action, enum kb_call call);

#endif
