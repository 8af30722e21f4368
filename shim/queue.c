/*
 * queue.c - the emulated accept queue; see queue.h for what it does and
 * why.
 *
 * State per emulated listener lives in a small table (a server has few
 * listeners). Every operation on one listener happens under its spin lock:
 * the host's accepting threads all come through kb_queue_take(), so while
 * one drains the kernel's queue no other thread of this process can take
 * a connection from under it. The lock is never held across anything that
 * blocks.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbfault/mem.h"
#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "log.h"
#include "real.h"
#include "shim.h"

#define QUEUES_MAX 16

struct queue {
	int fd; /* -1: free */
	uint64_t ino;
	struct kb_verdict v;
	int backlog;
	struct sockaddr_storage bound;
	socklen_t bound_len;
	int lock;
	bool paused;
	uint64_t paused_at;
	int head, count;
	int *held; /* KB_QUEUE_MAX connections, a ring */
};

static struct queue queues[QUEUES_MAX] = { [0 ... QUEUES_MAX - 1] = { .fd = -1 } };
static int table_lock;

static void spin_lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void spin_unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

void kb_queue_atfork_child(void)
{
	table_lock = 0;
	for (int i = 0; i < QUEUES_MAX; i++)
		queues[i].lock = 0;
}

static struct queue *find(int fd)
{
	for (int i = 0; i < QUEUES_MAX; i++)
		if (__atomic_load_n(&queues[i].fd, __ATOMIC_ACQUIRE) == fd)
			return &queues[i];
	return NULL;
}

void kb_queue_listen(int fd, const struct kb_verdict *v, int backlog, const struct sockaddr *bound,
		     socklen_t bound_len)
{
	struct kb_fd_info info;

	if (!kb_fd_lookup(fd, &info))
		return;
	spin_lock(&table_lock);
	struct queue *q = find(fd);
	for (int i = 0; q == NULL && i < QUEUES_MAX; i++)
		if (queues[i].fd < 0)
			q = &queues[i];
	if (q && q->held == NULL)
		q->held = kb_alloc(KB_QUEUE_MAX * sizeof *q->held);
	if (q == NULL || q->held == NULL) {
		spin_unlock(&table_lock);
		return; /* more listeners than we emulate: this one stays plain */
	}
	q->ino = info.ino;
	q->v = *v;
	q->backlog = backlog;
	memcpy(&q->bound, bound, bound_len);
	q->bound_len = bound_len;
	__atomic_store_n(&q->fd, fd, __ATOMIC_RELEASE);
	spin_unlock(&table_lock);
	kb_fd_mark(fd, KB_FD_QUEUE);
}

/* Connections waiting on the listener: tcpi_unacked is the accept queue's
 * length for a listening socket. */
static int waiting(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return 0;
	return (int)ti.tcpi_unacked;
}

static bool readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Takes one connection off the kernel's queue for the shim itself. */
static int take_one(int fd)
{
	if (!readable(fd))
		return -1; /* never block: the host may not have asked to */
	return kb_real.accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

static void log_effect(struct queue *q, int fd, const char *via, const char *effect, int queued,
		       const struct kb_addr *peer)
{
	struct kb_site site = { .call = KB_CALL_ACCEPT, .via = via, .fd = fd,
				.role = peer ? KB_ROLE_ACCEPTED : KB_ROLE_LISTENING, .peer = peer };
	struct kb_effect e = KB_EFFECT_NONE;
	e.effect = effect;
	e.queued = queued;
	e.reason = strcmp(effect, "reset") == 0 ? "accept queue full" : NULL;
	kb_log_inject(&site, &q->v, &e);
}

static void reset_taken(struct queue *q, int c, const char *via, int queued)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	struct kb_addr peer;
	memset(&peer, 0, sizeof peer);
	if (getpeername(c, (struct sockaddr *)&ss, &l) == 0)
		kb_addr_from_sockaddr((struct sockaddr *)&ss, l, &peer);
	log_effect(q, c, via, "reset", queued, &peer);
	kb_close_with_reset(c);
}

/* Listening again after a pause. A listener bound to port 0 lost its port
 * when it was shut down, and would get a new one: bind it back first (a
 * listener bound to an explicit port keeps it, and bind says EINVAL). */
static void resume(struct queue *q, const char *via)
{
	if (q->bound.ss_family == AF_INET || q->bound.ss_family == AF_INET6)
		bind(q->fd, (struct sockaddr *)&q->bound, q->bound_len);
	kb_real.listen(q->fd, q->backlog);
	q->paused = false;
	log_effect(q, q->fd, via, "resume", 0, NULL);
}

/* Gives the host connection c as accept4(flags) would have. */
static void as_accepted(int c, int flags)
{
	if (flags & SOCK_NONBLOCK)
		fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
	if (!(flags & SOCK_CLOEXEC))
		fcntl(c, F_SETFD, 0);
}

enum kb_queue_take kb_queue_take(int fd, int flags, bool nonblocking_listener, int *conn, const char *via)
{
	struct queue *q = find(fd);
	enum kb_queue_take out = KB_QUEUE_REAL;
	int saved = errno;

	(void)nonblocking_listener;
	if (q == NULL)
		return KB_QUEUE_REAL;
	kb_guard_enter();
	spin_lock(&q->lock);
	int limit = q->v.rule->backlog;

	if (q->v.rule->queue_mode == KB_QUEUE_RESET) {
		int n = waiting(fd);
		for (int excess = n - limit; excess > 0; excess--) {
			int c = take_one(fd);
			if (c < 0)
				break;
			reset_taken(q, c, via, n);
		}
	} else if (q->count == 0 && !q->paused && waiting(fd) >= limit) {
		int n = waiting(fd);
		/* everything waiting now, and no more than it: the rest are
		 * refused from the moment the listener pauses */
		for (int i = 0; i < n; i++) {
			int c = take_one(fd);
			if (c < 0)
				break;
			if (q->count < limit)
				q->held[(q->head + q->count++) % KB_QUEUE_MAX] = c;
			else
				reset_taken(q, c, via, n);
		}
		if (q->count > 0) {
			shutdown(fd, SHUT_RD);
			q->paused = true;
			q->paused_at = now_ns();
			log_effect(q, fd, via, "pause", q->count, NULL);
		}
	}
	if (q->count > 0) {
		*conn = q->held[q->head];
		q->head = (q->head + 1) % KB_QUEUE_MAX;
		q->count--;
		as_accepted(*conn, flags);
		out = KB_QUEUE_GIVEN;
		if (q->count == 0 && q->paused)
			resume(q, via);
	} else if (q->paused) {
		out = KB_QUEUE_BUSY; /* not ours to resume; see queue.h */
	}
	spin_unlock(&q->lock);
	kb_guard_leave();
	errno = saved;
	return out;
}
