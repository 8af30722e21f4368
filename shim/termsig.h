/*
 * termsig.h - has the host been told to stop? What ends a stall.
 *
 * The termination signals are the four a user (or a supervisor) sends to
 * stop a program: SIGTERM, SIGINT, SIGHUP and SIGQUIT. A stall (act.c)
 * ends when one of them reaches the process, whichever thread receives it
 * and however:
 *
 *  - a handler the host installed with sigaction(), signal(),
 *    bsd_signal(), sysv_signal() or sigset() runs, in any thread: while
 *    stall rules are armed, kbfault's wrapper stands in front of it
 *    (hook_signal.c), counts the signal, and calls it as the kernel would
 *    have;
 *  - sigwait(), sigwaitinfo() or sigtimedwait() returns one, in any
 *    thread;
 *  - one is pending, blocked and not ignored (a host that blocks signals
 *    outside its poll, as postgresql's postmaster does, or one reading
 *    them from a signalfd that nobody has read yet).
 *
 * Not seen: a signalfd another thread reads at once (that would take
 * hooking read(), on every host's hot path), and a handler installed by
 * other means (ssignal(), a raw system call, a static binary) that runs
 * in another thread. Other signals - timers, SIGCHLD, SIGUSR1 - never
 * end a stall.
 */
#ifndef KBFAULT_TERMSIG_H
#define KBFAULT_TERMSIG_H

#include <stdbool.h>
#include <stdint.h>

bool kb_is_term_signal(int sig);

/* Termination signals the process has received so far, by the ways
 * above but the pending one. A stall compares it with its value when it
 * began. */
uint64_t kb_term_count(void);

/* Is a termination signal pending for this thread or the process, and
 * not ignored? */
bool kb_term_pending(void);

#endif
