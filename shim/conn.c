/*
 * conn.c - connections' ends across the process tree; see conn.h and,
 * for the table itself, conns.h.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "act.h"
#include "guard.h"
#include "log.h"
#include "proc.h"
#include "real.h"
#include "session.h"
#include "shim.h"

struct kb_conns *kb_conn_tbl;

/* Roles whose connections end something: close rules on them mark the
 * peer. (Sessions enter the table when admitted, whatever this says.) */
static uint32_t end_roles;

/* This process's pid, which a hook must not make a system call to learn.
 * It lives in a page the kernel clears in every child it makes
 * (MADV_WIPEONFORK): fork's child handler writes its own, and a child made
 * by a raw clone(), which runs no fork handler, finds zero (me()). A vfork
 * child runs guarded and never asks. */
static pid_t *self_page;
static pid_t self_fallback; /* where the page could not be had */

static void mark_copies(size_t counted);

/* This process's pid; *fresh says this call found the process to be a
 * raw clone()'s child (and marked what it inherited as copies). */
static pid_t me_fresh(bool *fresh)
{
	*fresh = false;
	if (self_page == NULL)
		return self_fallback;
	pid_t p = __atomic_load_n(self_page, __ATOMIC_RELAXED);
	if (p != 0)
		return p;
	p = (pid_t)kb_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	__atomic_store_n(self_page, p, __ATOMIC_RELAXED);
	mark_copies(0); /* no fork handler counted it for anything it inherited */
	*fresh = true;
	return p;
}

static pid_t me(void)
{
	bool fresh;
	return me_fresh(&fresh);
}

static void set_me(pid_t p)
{
	if (self_page)
		__atomic_store_n(self_page, p, __ATOMIC_RELAXED);
	self_fallback = p;
}

/*
 * What the fork handlers pass between them: the connections this process
 * held at fork(), counted for the child before the fork so that the
 * parent's close of its copy, which fork-per-connection servers make at
 * once, cannot end a connection the child holds. The child records itself
 * against each; the parent takes its count back if the fork failed. The
 * fork handlers run under glibc's atfork lock, one fork at a time.
 */
static struct held {
	uint64_t handle;
	int fd;
	int place; /* the child's place among the holders, kept for it (or -1) */
} held[KB_CONNS_MAX];
static size_t nheld;
static int fork_saved_errno;

/*
 * The child's pid is written into its places by whichever comes first:
 * the child's handler, or the parent as fork() returns the pid to it
 * (kb_conn_forked) - a child killed before it ran a line is then still
 * known, and a sweep finds it gone. fork_seq tells the parent whether
 * held[] is still its fork's: a prepare of another fork bumps it, under
 * fill_lock, before it touches held[]; a parent filling holds the lock.
 */
static uint64_t fork_seq;
static int fill_lock;
static __thread uint64_t my_fork_seq __attribute__((tls_model("initial-exec")));

/* errno across _Fork(), which sets it only when it fails: the parent
 * handler tells a failed fork by errno no longer being this. */
#define FORK_SENTINEL 0x6b62666b

static bool end_role(enum kb_role role)
{
	return role == KB_ROLE_ACCEPTED || role == KB_ROLE_OUTBOUND ? (end_roles >> role) & 1 : false;
}

uint64_t kb_conn_enter(int fd, const struct kb_fd_info *info)
{
	struct kb_conns *t = kb_conn_table();
	struct kb_conn_id id = { (uint8_t)info->role, info->peer, info->lport, info->ino };
	struct stat st;

	if (t == NULL)
		return 0;
	/* A connection in the table may be reached from another thread or
	 * process, through a number its holder may have closed and reused:
	 * it is known by its socket's inode, which no other socket has. An
	 * accepted connection's peer is not enough once the peer has gone
	 * (a reset one and another reset one on the same listener look the
	 * same). One fstat(), for a session or a fork, not per connection. */
	int saved = errno;
	if (id.ino == 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
		id.ino = (uint64_t)st.st_ino;
	errno = saved;
	uint64_t h = kb_conns_open(t, &id, me(), fd);
	if (h)
		kb_fd_mark_tag(fd, KB_FD_CONN, h);
	return h;
}

/* The close rules of a connection that ended without a close the shim
 * saw (its last holder exited, or died): only their marks apply, since
 * nothing is left to leak, reset or fail. `holder` held it by `fd`. */
static void mark_ended(const struct kb_conn *c, int fd, pid_t holder, const char *via)
{
	struct kb_verdict v[KB_VERDICTS_MAX];
	struct kb_event ev = { KB_CALL_CLOSE, (enum kb_role)c->id.role, c->id.lport, &c->id.peer };
	static const struct kb_clock clock = { kb_since_start_ns, NULL };

	if (!end_role((enum kb_role)c->id.role) || !kb_plan_wants(&kb_shim.plan, KB_CALL_CLOSE, c->id.role))
		return;
	size_t n = kb_decide(&kb_shim.plan, &ev, &clock, v);
	struct kb_site site = { .call = KB_CALL_CLOSE, .via = via, .fd = fd, .role = (enum kb_role)c->id.role,
				.peer = &c->id.peer, .holder = holder == me() ? 0 : holder };
	for (size_t i = 0; i < n; i++)
		if (v[i].rule->mark_peer)
			kb_mark_peer(&site, &v[i]);
}

/* What a connection's end does: a session is released (and the model may
 * cut another, unless a cut is what found this one ended). */
static void ended(const struct kb_conn *c, const char *via, bool may_cut)
{
	if (c->flags & KB_CONN_SESSION)
		kb_session_ended(c, via, may_cut);
}

bool kb_conn_closing(const struct kb_fd_info *info, const char *via)
{
	struct kb_conns *t = kb_conn_table();
	struct kb_conn copy;
	bool fresh;

	if (!(info->flags & KB_FD_CONN) || t == NULL)
		return true;
	pid_t p = me_fresh(&fresh);
	if (fresh)
		return true; /* inherited uncounted (mark_copies) */
	if (kb_conns_drop(t, info->tag, p, false, &copy) != 0)
		return false;
	ended(&copy, via, true);
	return true;
}

/* Is pid, a holder seen by a sweep before every accept, still alive? A
 * fork-per-connection server's holders are its own children, which one
 * waitid() answers for without reaping (a child that has exited, a
 * zombie, is gone); anyone else's are asked of /proc (proc.h). */
static bool holder_alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	long rc = kb_sys(SYS_waitid, P_PID, pid, (long)&si, WEXITED | WNOHANG | WNOWAIT, 0, 0);
	if (rc == 0)
		return si.si_pid != pid; /* 0: still running; pid: it has exited */
	return kb_proc_alive(pid);
}

void kb_conn_sweep(void)
{
	struct kb_conns *t = kb_conn_table();
	uint32_t high = __atomic_load_n(&t->high, __ATOMIC_ACQUIRE);
	int saved = errno;

	for (uint32_t i = 0; i < high && i < KB_CONNS_MAX; i++) {
		uint64_t h = kb_conns_live(t, i);
		for (int k = 0; h && k < KB_CONN_WHO; k++) {
			struct kb_conn_who w = kb_conns_holder(t, i, k);
			struct kb_conn copy;
			int32_t pid = w.pid;
			int fd = w.fd;
			if (pid <= 0 || pid == me() || holder_alive(pid))
				continue;
			/* a dead process holds nothing; only one sweeper takes
			 * its copy off the count */
			if (kb_conns_drop(t, h, pid, true, &copy) == 0) {
				ended(&copy, "exit", true);
				mark_ended(&copy, fd, pid, "exit");
				break;
			}
		}
	}
	errno = saved;
}

/* A descriptor of this process's own for holder k's copy, or -1 with
 * errno: that of pidfd_getfd for another process's (ESRCH: gone, EBADF:
 * its descriptor is closed, EPERM: not ours to reach). */
static int grab(pid_t pid, int fd)
{
	if (pid == me())
		return fcntl(fd, F_DUPFD_CLOEXEC, 0);
	long pidfd = kb_sys(SYS_pidfd_open, pid, 0, 0, 0, 0, 0);
	if (pidfd < 0) {
		errno = (int)-pidfd;
		return -1;
	}
	long got = kb_sys(SYS_pidfd_getfd, pidfd, fd, 0, 0, 0, 0);
	kb_sys(SYS_close, pidfd, 0, 0, 0, 0, 0);
	if (got < 0) {
		errno = (int)-got;
		return -1;
	}
	return (int)got;
}

int kb_conn_reach(uint64_t handle, struct kb_conn *copy, int *holder_pid, int *holder_fd)
{
	struct kb_conns *t = kb_conn_table();
	bool denied = false;

	if (t == NULL || !kb_conns_read(t, handle, copy)) {
		errno = ESRCH;
		return -1;
	}
	struct kb_fd_info info = { (enum kb_role)copy->id.role, 0, copy->id.lport, copy->id.ino, copy->id.peer, 0 };
	for (int k = 0; k < KB_CONN_WHO; k++) {
		int32_t pid = copy->who[k].pid;
		int fd = copy->who[k].fd;
		if (pid <= 0)
			continue;
		int mine = grab(pid, fd);
		if (mine >= 0) {
			/* act on the socket that was checked, not on a number:
			 * the check and the action below are on `mine` */
			if (kb_fd_same(mine, &info)) {
				*holder_pid = pid;
				*holder_fd = fd;
				return mine;
			}
			kb_real.close(mine);
		} else if (errno == EPERM || errno == EACCES) {
			denied = true;
			continue;
		}
		/* gone (ESRCH), or its number closed (EBADF) or holding
		 * something else now: that process does not hold this
		 * connection any more */
		const char *how = kb_proc_alive(pid) ? "unseen" : "exit";
		struct kb_conn gone;
		if (kb_conns_drop(t, handle, pid, true, &gone) == 0) {
			ended(&gone, how, false);
			mark_ended(&gone, fd, pid, how);
			errno = ESRCH;
			return -1;
		}
	}
	errno = denied ? EPERM : ESRCH;
	return -1;
}

/* Before fork(): every connection this process holds whose end matters is
 * counted once more, for the child. One not in the table yet enters it
 * now (held by this process) if it still is what was tracked. */
static void fork_prepare(void)
{
	struct kb_fd_info info;
	int limit = kb_fd_limit();

	fork_saved_errno = errno;
	if (kb_conn_table() == NULL || kb_guarded())
		return;
	kb_guard_enter();
	while (__atomic_exchange_n(&fill_lock, 1, __ATOMIC_ACQUIRE))
		kb_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0); /* a parent filling: a few stores */
	__atomic_add_fetch(&fork_seq, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&fill_lock, 0, __ATOMIC_RELEASE);
	kb_guard_leave();
	nheld = 0;
	for (int fd = 0; fd < limit && nheld < KB_CONNS_MAX; fd++) {
		/* a copy this process was never counted for (KB_FD_COPY) is
		 * not its to count for a child either */
		if (!kb_fd_lookup(fd, &info) || (info.flags & (KB_FD_LEAKED | KB_FD_COPY)))
			continue;
		uint64_t h = 0;
		if (info.flags & KB_FD_CONN)
			h = info.tag;
		else if (end_role(info.role) && kb_fd_same(fd, &info))
			h = kb_conn_enter(fd, &info);
		if (h == 0)
			continue;
		kb_conns_hold(kb_conn_table(), h);
		held[nheld].handle = h;
		held[nheld].fd = fd;
		held[nheld].place = kb_conns_reserve(kb_conn_table(), h, fd);
		nheld++;
	}
	errno = FORK_SENTINEL;
}

static void fork_parent(void)
{
	if (errno != FORK_SENTINEL) {
		/* the fork failed: no child holds anything */
		for (size_t i = 0; i < nheld; i++) {
			kb_conns_unreserve(kb_conn_table(), held[i].handle, held[i].place);
			kb_conns_unhold(kb_conn_table(), held[i].handle);
		}
		nheld = 0;
		return; /* glibc puts the fork's errno back */
	}
	my_fork_seq = __atomic_load_n(&fork_seq, __ATOMIC_ACQUIRE);
	errno = fork_saved_errno;
}

void kb_conn_forked(pid_t child)
{
	if (kb_conn_table() == NULL || child <= 0 || kb_guarded())
		return;
	kb_guard_enter();
	while (__atomic_exchange_n(&fill_lock, 1, __ATOMIC_ACQUIRE))
		kb_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
	if (__atomic_load_n(&fork_seq, __ATOMIC_ACQUIRE) == my_fork_seq)
		for (size_t i = 0; i < nheld; i++)
			kb_conns_fill(kb_conn_table(), held[i].handle, held[i].place, child);
	__atomic_store_n(&fill_lock, 0, __ATOMIC_RELEASE);
	kb_guard_leave();
}

/* In a child: the copies of connections (in the tree's table, or of a role
 * whose end matters) that no fork handler counted for this process - all
 * but the first `counted` of held[], which is in descriptor order - end
 * nothing when it closes them (KB_FD_COPY). */
static void mark_copies(size_t counted)
{
	struct kb_fd_info info;
	int limit = kb_fd_limit();
	size_t next = 0;

	for (int fd = 0; fd < limit; fd++) {
		while (next < counted && held[next].fd < fd)
			next++;
		if ((next < counted && held[next].fd == fd) || !kb_fd_lookup(fd, &info) ||
		    (info.flags & KB_FD_COPY) || !((info.flags & KB_FD_CONN) || end_role(info.role)))
			continue;
		kb_fd_unmark(fd, KB_FD_CONN);
		kb_fd_mark(fd, KB_FD_COPY);
	}
}

/* Is fd, in this child, still the connection `handle` its parent counted
 * it for? */
static bool still_held(int fd, uint64_t handle)
{
	struct kb_fd_info info;
	return kb_fd_lookup(fd, &info) && (info.flags & KB_FD_CONN) && info.tag == handle;
}

/*
 * In the child. Each connection counted for it: the child says it holds
 * it - or, if its parent closed it between the count and the fork, that
 * it does not, which may end it (the parent's close ended nothing, the
 * count being this child's). Then what the parent held but could not
 * count for this child, having accepted or entered it while the fork was
 * under way: the child's copies of those end nothing (KB_FD_COPY).
 */
static void fork_child(void)
{
	struct kb_conns *t = kb_conn_table();
	pid_t p = (pid_t)kb_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);

	set_me(p);
	fill_lock = 0; /* a thread of the parent's may have held it */
	if (t == NULL)
		goto out;
	for (size_t i = 0; i < nheld; i++) {
		struct kb_conn gone;
		if (still_held(held[i].fd, held[i].handle)) {
			if (held[i].place >= 0)
				kb_conns_fill(t, held[i].handle, held[i].place, p);
			else
				kb_conns_record(t, held[i].handle, p, held[i].fd);
			continue;
		}
		kb_conns_unreserve(t, held[i].handle, held[i].place);
		if (kb_conns_drop(t, held[i].handle, p, false, &gone) == 0) {
			ended(&gone, "close", true);
			mark_ended(&gone, held[i].fd, p, "close");
		}
	}
	mark_copies(nheld);
out:
	if (errno == FORK_SENTINEL)
		errno = fork_saved_errno;
}

/* exit(): the connections this process still holds end with it, as far
 * as it is concerned; the last holder's end is the connection's end. A
 * vfork child that calls exit() runs this on its parent's memory, under
 * the guard: it must leave it alone. */
__attribute__((destructor)) static void at_exit(void)
{
	struct kb_fd_info info;

	if (kb_mode_get() != KB_MODE_ARMED || kb_conn_table() == NULL || kb_guarded())
		return;
	int saved = errno;
	int limit = kb_fd_limit();
	for (int fd = 0; fd < limit; fd++) {
		if (!kb_fd_lookup(fd, &info) || (info.role != KB_ROLE_ACCEPTED && info.role != KB_ROLE_OUTBOUND))
			continue;
		if ((info.flags & KB_FD_COPY) || (!(info.flags & KB_FD_CONN) && !end_role(info.role)))
			continue; /* a copy that was never counted for this process ends nothing */
		if (!kb_fd_same(fd, &info))
			continue;
		struct kb_conn c = { .id = { (uint8_t)info.role, info.peer, info.lport, info.ino } };
		if (info.flags & KB_FD_CONN) {
			if (kb_conns_drop(kb_conn_table(), info.tag, me(), false, &c) != 0)
				continue;
			/* a process on its way out releases its sessions but
			 * cuts none: at a server's stop every worker would
			 * otherwise cut what the others are ending anyway */
			ended(&c, "exit", false);
		}
		if (!(info.flags & KB_FD_LEAKED))
			mark_ended(&c, fd, me(), "exit");
	}
	errno = saved;
}

void kb_conn_init(void)
{
	const struct kb_recipe *r = &kb_shim.recipe;
	bool sessions = false;

	for (size_t i = 0; i < r->nrules; i++) {
		const struct kb_rule *rule = &r->rules[i];
		sessions |= rule->action == KB_ACT_SESSIONS;
		if (!rule->mark_peer || !(rule->calls & (1u << KB_CALL_CLOSE)))
			continue;
		uint32_t roles = rule->roles ? rule->roles : ~0u;
		end_roles |= roles & ((1u << KB_ROLE_ACCEPTED) | (1u << KB_ROLE_OUTBOUND));
	}
	if (!sessions && end_roles == 0)
		return;
	void *p = mmap(NULL, sizeof(struct kb_conns), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	void *page = mmap(NULL, sizeof *self_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page != MAP_FAILED && madvise(page, sizeof *self_page, MADV_WIPEONFORK) == 0)
		self_page = page;
	set_me(getpid());
	__atomic_store_n(&kb_conn_tbl, p, __ATOMIC_RELEASE);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
