/*
 * guard.h - the per-thread "inside the shim" flag.
 *
 * Set first thing in start-up and around everything the shim does on its
 * own behalf (logging, resolving symbols, closing its own descriptors).
 * While it is set every hook is a pure pass-through, so nothing the shim
 * calls can recurse into fault injection. A signal handler that runs
 * while the flag is set and calls close() also passes straight through,
 * which is what keeps a signal from deadlocking a hook.
 *
 * initial-exec TLS: a thread-local access in a preloaded library then
 * never calls __tls_get_addr, which may allocate.
 */
#ifndef KBFAULT_GUARD_H
#define KBFAULT_GUARD_H

#include <stdbool.h>

extern __thread int kb_guard_depth __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline bool kb_guarded(void)
{
	return kb_guard_depth != 0;
}

static inline void kb_guard_enter(void)
{
	kb_guard_depth++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void kb_guard_leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	kb_guard_depth--;
}

#endif
