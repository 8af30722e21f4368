/*
 * queue.c - the emulated accept queue; see queue.h for what it does and
 * why.
 *
 * Two tables. What every process sharing a listener must agree on - is it
 * paused, and by whom - is in a small table in memory shared by a process
 * and its forks (MAP_SHARED, made at start-up; an exec'd program starts
 * afresh), keyed by the listener's sockfs inode: a prefork server's
 * workers see one state per listener, and a pause outlives the worker that
 * made it. What only one process can hold - the connections taken into a
 * paused queue, which are its own descriptors - is in a table of its own,
 * with the listener's number, the rule and where it was bound (copied into
 * a fork with the rest of its memory).
 *
 * Every operation on one listener happens under its lock, a word in the
 * shared entry holding the thread id of whoever is inside (0: free): the
 * host's accepting threads and processes all come through kb_queue_take(),
 * so while one drains the kernel's queue no other can take a connection
 * from under it. What keeps that lock from hurting the host:
 *
 *  - No thread is cancelled with it held. Cancellation is disabled from
 *    before the lock is taken until after it is given back, so a thread
 *    cancelled while it is in here (poll, accept4, bind, listen and close
 *    run under the lock, and are cancellation points otherwise) goes on
 *    to the end and is cancelled at its next cancellation point, in the
 *    host's own accept() or after it.
 *  - The guard (guard.h) is raised: a signal handler that calls accept()
 *    or listen() while its thread holds the lock passes straight through
 *    instead of waiting for itself.
 *  - Nobody spins: a waiter yields a few times, then sleeps in 1 ms
 *    steps. If the thread holding it is gone (a process killed inside),
 *    the waiter takes it over.
 *  - Nothing under it blocks, but for one case the kernel leaves no way
 *    round: on a blocking listener, a connection poll() has just shown may
 *    be taken by another thread's or process's accept() first, and ours
 *    then waits for the next connection.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "act.h"
#include "fdtable.h"
#include "guard.h"
#include "log.h"
#include "proc.h"
#include "real.h"
#include "shim.h"
#include "sock.h"

#define SHARED_MAX 64 /* emulated listeners per process tree */
#define LOCAL_MAX 16  /* per process */

/* One listener, as every process sharing it sees it. */
struct shared {
	uint64_t ino; /* its sockfs inode; 0: a free entry */
	int lock;     /* 0, or the thread id inside */
	int paused_by; /* 0: listening; else the pid whose queue holds its connections */
};

struct shared_table {
	int lock; /* for claiming entries */
	struct shared q[SHARED_MAX];
};

/* Until kb_queue_init() shares one (and if it cannot), a table of this
 * process's own: the queue then works, but a pause dies with its process. */
static struct shared_table own_table;
static struct shared_table *table = &own_table;

/* One listener, as this process holds it. */
struct queue {
	int fd; /* -1: free */
	uint64_t ino;
	struct shared *sh;
	struct kb_verdict v;
	int backlog;
	struct sockaddr_storage bound;
	socklen_t bound_len;
	int head, count;
	int *held; /* KB_QUEUE_MAX connections, a ring */
};

static struct queue queues[LOCAL_MAX] = { [0 ... LOCAL_MAX - 1] = { .fd = -1 } };
static int local_lock; /* claiming entries of queues[]: this process's threads only */

void kb_queue_init(const struct kb_recipe *recipe)
{
	bool needed = false;
	for (size_t i = 0; i < recipe->nrules; i++) {
		const struct kb_rule *r = &recipe->rules[i];
		needed |= r->enabled && r->action == KB_ACT_QUEUE && r->queue_mode != KB_QUEUE_HANG;
	}
	if (!needed)
		return;
	/* every queue's ring now, at start-up, as the arena's rule is: a
	 * listen() later allocates nothing (private: a fork's queues are its
	 * own, as queues[] is) */
	size_t ring = KB_QUEUE_MAX * sizeof *queues[0].held;
	void *rings = mmap(NULL, LOCAL_MAX * ring, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rings == MAP_FAILED)
		return; /* no queue is emulated: listeners stay plain */
	for (int i = 0; i < LOCAL_MAX; i++)
		queues[i].held = (int *)((char *)rings + (size_t)i * ring);
	void *p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		table = p;
}

static int my_tid(void)
{
	return (int)gettid(); /* libc's syscall() is ours to hook */
}

static void nap_1ms(void)
{
	struct timespec ts = { 0, 1000 * 1000 };
	/* inline: not a cancellation point, and it leaves errno alone */
	if (KB_HAVE_SYS)
		kb_sys(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
	else
		sched_yield();
}

/* A lock held by a thread id. Its holder may be a thread of another
 * process in the tree; if that thread is gone - its process killed while
 * inside - the lock is taken over. Caller: cancellation disabled, guard
 * raised. */
static void lock_take(int *l)
{
	int me = my_tid();
	for (unsigned n = 0;; n++) {
		int holder = 0;
		if (__atomic_compare_exchange_n(l, &holder, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		if (n < 50) {
			sched_yield();
			continue;
		}
		if (holder != 0 && !kb_proc_alive(holder) &&
		    __atomic_compare_exchange_n(l, &holder, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		nap_1ms();
	}
}

static void lock_give(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* Around every locked region: no cancellation point may act inside. */
struct outside {
	int cancel_state, saved_errno;
};

static struct outside enter(void)
{
	struct outside o = { 0, errno };
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &o.cancel_state);
	kb_guard_enter();
	return o;
}

static void leave(struct outside o)
{
	kb_guard_leave();
	pthread_setcancelstate(o.cancel_state, NULL);
	errno = o.saved_errno;
}

void kb_queue_atfork_child(void)
{
	local_lock = 0;
	/* the parent's paused queues are the parent's to hand out: the
	 * child's copies of those descriptors go (the shared state still
	 * names the parent, who resumes the listener) */
	for (int i = 0; i < LOCAL_MAX; i++) {
		struct queue *q = &queues[i];
		for (; q->count > 0; q->count--, q->head = (q->head + 1) % KB_QUEUE_MAX)
			kb_raw_syscall(SYS_close, q->held[q->head], 0, 0, 0, 0, 0);
		q->head = 0;
	}
}

/* Is q's listener no longer there - its number closed, or holding another
 * file by now? Asked only when every entry is taken. */
static bool listener_gone(const struct queue *q)
{
	struct stat st;
	int fd = __atomic_load_n(&q->fd, __ATOMIC_ACQUIRE);
	int saved = errno;
	bool gone = fd >= 0 && (fstat(fd, &st) != 0 || (uint64_t)st.st_ino != q->ino);
	errno = saved;
	return gone;
}

static struct queue *find(int fd)
{
	for (int i = 0; i < LOCAL_MAX; i++)
		if (__atomic_load_n(&queues[i].fd, __ATOMIC_ACQUIRE) == fd)
			return &queues[i];
	return NULL;
}

/* The shared entry for a listener, claimed if it has none. With the
 * table full, an entry nobody has paused is reused: a process still
 * using it finds another inode there and claims one afresh. */
static struct shared *shared_for(uint64_t ino)
{
	struct shared *found = NULL, *spare = NULL;

	lock_take(&table->lock);
	for (int i = 0; i < SHARED_MAX && !found; i++) {
		struct shared *s = &table->q[i];
		uint64_t have = __atomic_load_n(&s->ino, __ATOMIC_ACQUIRE);
		if (have == ino)
			found = s;
		else if (have == 0 && !spare)
			spare = s;
	}
	for (int i = 0; i < SHARED_MAX && !found && !spare; i++) {
		struct shared *s = &table->q[i];
		if (__atomic_load_n(&s->paused_by, __ATOMIC_RELAXED) == 0 &&
		    __atomic_load_n(&s->lock, __ATOMIC_RELAXED) == 0)
			spare = s;
	}
	if (!found && spare) {
		__atomic_store_n(&spare->paused_by, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&spare->ino, ino, __ATOMIC_RELEASE);
		found = spare;
	}
	lock_give(&table->lock);
	return found;
}

/* In refuse mode the listener must be able to take its port back after a
 * pause (queue.h): connections accepted from now on inherit the option. */
static void allow_rebind(int fd)
{
	int on = 0;
	socklen_t l = sizeof on;
	if (getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &l) == 0 && !on) {
		on = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	}
}

void kb_queue_listen(int fd, const struct kb_verdict *v, int backlog, const struct sockaddr *bound,
		     socklen_t bound_len)
{
	struct kb_fd_info info;

	if (!kb_fd_lookup(fd, &info))
		return;
	struct outside o = enter();
	while (__atomic_exchange_n(&local_lock, 1, __ATOMIC_ACQUIRE))
		sched_yield(); /* this process's listen() calls only, over in moments */
	struct queue *q = find(fd);
	for (int i = 0; q == NULL && i < LOCAL_MAX; i++)
		if (queues[i].fd < 0)
			q = &queues[i];
	/* none free: take back one whose listener has been closed since (a
	 * server that listens anew on new numbers, a reload), rather than
	 * leave every later listener plain */
	for (int i = 0; q == NULL && i < LOCAL_MAX; i++)
		if (listener_gone(&queues[i]))
			q = &queues[i];
	struct shared *sh = q && q->held ? shared_for(info.ino) : NULL;
	if (sh == NULL) {
		__atomic_store_n(&local_lock, 0, __ATOMIC_RELEASE);
		leave(o);
		return; /* more listeners than we emulate: this one stays plain */
	}
	if (q->ino != info.ino) {
		/* another socket on this number: what was held for the old one
		 * went with it */
		for (; q->count > 0; q->count--, q->head = (q->head + 1) % KB_QUEUE_MAX)
			kb_close_with_reset(q->held[q->head]);
		q->head = 0;
	}
	q->ino = info.ino;
	q->sh = sh;
	q->v = *v;
	q->backlog = backlog;
	memcpy(&q->bound, bound, bound_len);
	q->bound_len = bound_len;
	if (v->rule->queue_mode == KB_QUEUE_REFUSE)
		allow_rebind(fd);
	__atomic_store_n(&q->fd, fd, __ATOMIC_RELEASE);
	__atomic_store_n(&local_lock, 0, __ATOMIC_RELEASE);
	leave(o);
	kb_fd_mark(fd, KB_FD_QUEUE);
}

/* Takes q's listener's lock; returns its shared entry, or NULL if none
 * can be had. */
static struct shared *lock_listener(struct queue *q)
{
	for (;;) {
		struct shared *sh = __atomic_load_n(&q->sh, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&sh->ino, __ATOMIC_ACQUIRE) != q->ino) {
			sh = shared_for(q->ino);
			if (sh == NULL)
				return NULL;
			__atomic_store_n(&q->sh, sh, __ATOMIC_RELEASE);
		}
		lock_take(&sh->lock);
		if (__atomic_load_n(&sh->ino, __ATOMIC_ACQUIRE) == q->ino)
			return sh;
		lock_give(&sh->lock); /* reused for another listener meanwhile */
	}
}

bool kb_queue_paused(int fd)
{
	struct queue *q = find(fd);
	if (q == NULL)
		return false;
	const struct shared *sh = __atomic_load_n(&q->sh, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&sh->ino, __ATOMIC_ACQUIRE) == q->ino &&
	       __atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE) != 0;
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

/* Takes one connection off the kernel's queue for the shim itself. */
static int take_one(int fd)
{
	if (!kb_readable_now(fd))
		return -1; /* never block: the host may not have asked to */
	return kb_real.accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

static void log_effect(struct queue *q, int fd, const char *via, const char *effect, int queued,
		       const struct kb_addr *peer, const char *reason)
{
	struct kb_site site = { .call = KB_CALL_ACCEPT, .via = via, .fd = fd,
				.role = peer ? KB_ROLE_ACCEPTED : KB_ROLE_LISTENING, .peer = peer };
	struct kb_effect e = KB_EFFECT_NONE;
	e.effect = effect;
	e.queued = queued;
	e.reason = reason;
	kb_log_inject(&site, &q->v, &e);
}

static void reset_taken(struct queue *q, int c, const char *via, int queued)
{
	struct kb_addr peer;
	kb_peer_asked(c, &peer);
	log_effect(q, c, via, "reset", queued, &peer, "accept queue full");
	kb_close_with_reset(c);
}

/* Listening again after a pause. A listener bound to port 0 lost its port
 * when it was shut down: it is bound back to it first (a listener bound
 * to an explicit port keeps it, and bind says EINVAL). If the port cannot
 * be had back yet, the listener stays paused rather than listen on
 * another (which listen() would pick): returns false, and a later
 * accept() tries again. */
static bool resume(struct queue *q, struct shared *sh, const char *via, const char *reason)
{
	if (q->bound.ss_family == AF_INET || q->bound.ss_family == AF_INET6) {
		if (bind(q->fd, (struct sockaddr *)&q->bound, q->bound_len) < 0 && errno != EINVAL)
			return false;
	}
	kb_real.listen(q->fd, q->backlog);
	__atomic_store_n(&sh->paused_by, 0, __ATOMIC_RELEASE);
	log_effect(q, q->fd, via, "resume", 0, NULL, reason);
	return true;
}

/* Takes everything waiting now, and no more than it, into our queue (the
 * rest are refused from the moment the listener pauses), then pauses. */
static void pause_listener(struct queue *q, struct shared *sh, int fd, const char *via, int limit)
{
	int n = waiting(fd);
	for (int i = 0; i < n; i++) {
		int c = take_one(fd);
		if (c < 0)
			break;
		if (q->count < limit)
			q->held[(q->head + q->count++) % KB_QUEUE_MAX] = c;
		else
			reset_taken(q, c, via, n);
	}
	if (q->count == 0)
		return;
	/* who holds it, first: a process that dies from here on leaves a
	 * pause the others can see and undo */
	__atomic_store_n(&sh->paused_by, (int)getpid(), __ATOMIC_RELEASE);
	kb_real.shutdown(fd, SHUT_RD);
	log_effect(q, fd, via, "pause", q->count, NULL, NULL);
}

void kb_queue_closing(int fd)
{
	struct queue *q = find(fd);

	if (q == NULL)
		return;
	struct outside o = enter();
	bool there = !listener_gone(q); /* still the listener, not a number reused */
	struct shared *sh = lock_listener(q);
	for (; q->count > 0; q->count--, q->head = (q->head + 1) % KB_QUEUE_MAX) {
		int c = q->held[q->head];
		struct kb_addr peer;
		kb_peer_asked(c, &peer);
		log_effect(q, c, "close", "reset", q->count, &peer, "its listener closed");
		kb_close_with_reset(c);
	}
	q->head = 0;
	if (sh) {
		if (__atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE) == (int)getpid()) {
			/* listening again, for the processes that share it (or
			 * until the kernel closes it); a pause that outlived
			 * this would be nobody's to undo */
			if (!there || !resume(q, sh, "close", "its listener closed"))
				__atomic_store_n(&sh->paused_by, 0, __ATOMIC_RELEASE);
		}
		lock_give(&sh->lock);
	}
	__atomic_store_n(&q->fd, -1, __ATOMIC_RELEASE);
	leave(o);
}

/* Gives the host connection c as accept4(flags) would have. */
static void as_accepted(int c, int flags)
{
	if (flags & SOCK_NONBLOCK)
		fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
	if (!(flags & SOCK_CLOEXEC))
		fcntl(c, F_SETFD, 0);
}

static enum kb_queue_take refuse_mode(struct queue *q, struct shared *sh, int fd, int flags, int *conn,
				      const char *via)
{
	int limit = q->v.rule->backlog;
	int me = (int)getpid();
	int by = __atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE);
	char why[96];

	if (by == me && q->count == 0) {
		resume(q, sh, via, NULL); /* nothing of ours holds it (again, if it failed before) */
	} else if (by != 0 && by != me && !kb_proc_alive(by)) {
		snprintf(why, sizeof why, "the process that paused it (pid %d) is gone", by);
		resume(q, sh, via, why);
	}
	if (__atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE) == 0 && q->count == 0 && waiting(fd) >= limit)
		pause_listener(q, sh, fd, via, limit);
	if (q->count > 0) {
		*conn = q->held[q->head];
		q->head = (q->head + 1) % KB_QUEUE_MAX;
		q->count--;
		as_accepted(*conn, flags);
		if (q->count == 0 && __atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE) == me)
			resume(q, sh, via, NULL);
		return KB_QUEUE_GIVEN;
	}
	/* paused by a live process, or waiting to get its port back */
	return __atomic_load_n(&sh->paused_by, __ATOMIC_ACQUIRE) != 0 ? KB_QUEUE_BUSY : KB_QUEUE_REAL;
}

enum kb_queue_take kb_queue_take(int fd, int flags, int *conn, const char *via)
{
	struct queue *q = find(fd);
	enum kb_queue_take out = KB_QUEUE_REAL;

	if (q == NULL)
		return KB_QUEUE_REAL;
	struct outside o = enter();
	struct shared *sh = lock_listener(q);
	if (sh == NULL) {
		leave(o);
		return KB_QUEUE_REAL;
	}
	if (q->v.rule->queue_mode == KB_QUEUE_RESET) {
		int n = waiting(fd);
		for (int excess = n - q->v.rule->backlog; excess > 0; excess--) {
			int c = take_one(fd);
			if (c < 0)
				break;
			reset_taken(q, c, via, n);
		}
	} else {
		out = refuse_mode(q, sh, fd, flags, conn, via);
	}
	lock_give(&sh->lock);
	leave(o);
	return out;
}
