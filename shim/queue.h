/*
 * queue.h - an accept queue of N connections, emulated on a Linux listener
 * (`action queue N reset|refuse`, Q181350).
 *
 * Linux does not refuse when a listener's queue is full: with a small
 * backlog, a burst of clients completes its handshakes (SYN cookies) and
 * then waits unanswered. That is `queue N hang` (just the backlog cap).
 * The old stacks the article describes answered with resets instead; two
 * modes reproduce that from inside the process, checked each time the host
 * calls accept():
 *
 * reset   The connections waiting beyond N are taken off the queue and
 *         reset; the host then accepts as usual. The kernel's queue cannot
 *         be cut from the middle, so the ones reset are those at its head
 *         (the longest waiting), not the newest: the count and timing are
 *         a queue of N's, the choice of victims is not.
 *
 * refuse  Once N connections wait, the shim takes them into its own queue
 *         (extras are reset) and pauses the listener (shutdown(SHUT_RD)):
 *         every new connection attempt is refused by the kernel
 *         (ECONNREFUSED). The host's accept() calls are served from the
 *         shim's queue - a paused listener polls readable, so event loops
 *         keep calling - and when it is empty the listener listens again.
 *         The connections taken are descriptors of the process that paused
 *         the listener, so only it can hand them out; another process
 *         sharing the listener (a prefork server's sibling) waits briefly
 *         and gets EAGAIN instead of spinning on EINVAL. Whether a
 *         listener is paused, and by whom, is shared by a process and its
 *         forks: if the pausing process is gone (it crashed, or a worker
 *         exited at its connection limit), the next process to accept on
 *         the listener resumes it.
 *
 *         A listener bound to port 0 loses its port when it pauses, and
 *         connections accepted from it keep the port taken unless the
 *         listener had SO_REUSEADDR when they arrived: refuse mode sets
 *         it on the listener when it starts listening, so it can be bound
 *         back to its port.
 */
#ifndef KBFAULT_QUEUE_H
#define KBFAULT_QUEUE_H

#include <stdbool.h>
#include <sys/socket.h>

#include "kbfault/decide.h"
#include "kbfault/recipe.h"

/* Start-up, before any fork: the table of pause states a process shares
 * with its forks, if the recipe has queues in reset or refuse mode. */
void kb_queue_init(const struct kb_recipe *recipe);

/* listen() succeeded on fd under a queue rule (reset or refuse mode);
 * `backlog` is what the host asked for, `bound` its local address. */
void kb_queue_listen(int fd, const struct kb_verdict *v, int backlog, const struct sockaddr *bound,
		     socklen_t bound_len);

enum kb_queue_take {
	KB_QUEUE_REAL,  /* nothing to hand out: do the real accept */
	KB_QUEUE_GIVEN, /* *conn is a connection for the host */
	KB_QUEUE_BUSY,  /* paused by another process: fail with EAGAIN */
};

/* accept() on an emulated listener, before the real call. `flags` are
 * accept4's (SOCK_NONBLOCK, SOCK_CLOEXEC), applied to a connection handed
 * out from the shim's queue. */
enum kb_queue_take kb_queue_take(int fd, int flags, int *conn, const char *via);

/* Is listener fd paused by the emulated queue (by any process sharing
 * it)? Then it is shut down on purpose, and will listen again. */
bool kb_queue_paused(int fd);

/* The host is closing (or dup2()ing over) fd, an emulated listener: what
 * this process holds for it is reset - as the kernel resets what waits on
 * a listener that closes, and nobody can accept it any more - and a
 * pause of this process's is given up (the listener listens again, for
 * the processes that share it). The entry is free from then on. */
void kb_queue_closing(int fd);

/* After fork: the per-process lock may have been held by a thread that
 * does not exist in the child, and the connections held for a paused
 * listener are the parent's to hand out. */
void kb_queue_atfork_child(void);

#endif
