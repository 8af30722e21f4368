/*
 * fdtable.h - where each descriptor came from.
 *
 * A flat table indexed by descriptor number, reserved once with mmap and
 * touched lazily (untouched pages cost no memory), so a lookup is one
 * bounds check and one load whatever the number of open descriptors.
 *
 * Each entry records the socket's identity taken when it was tracked:
 * its inode number in sockfs, or for a connection accept() returned, the
 * peer accept() named and the local port (no system call per
 * connection). Descriptor numbers are reused quickly, and some closes
 * never reach a hook (glibc internals, raw system calls), so before a
 * rule acts on a descriptor its identity is checked again (kb_fd_same):
 * the shim never acts on something it did not track.
 *
 * Entries are written by the thread that creates or closes the
 * descriptor. The header word is published last (release) and cleared
 * first, and every field is accessed atomically, so a reader that sees a
 * header (acquire) sees the fields published with it, never half an
 * entry. kb_fd_lookup() reads the header again after the other fields,
 * and reads once more if it changed, so a lookup racing with a rewrite of
 * the same entry (the number closed and reused meanwhile by another
 * thread) does not mix two entries - unless the new header is the old one
 * bit for bit (same role, flags, ports), which no check short of the
 * kernel's can tell. So before a rule acts on a descriptor, kb_fd_same()
 * asks the kernel whether it is still the socket its entry describes.
 */
#ifndef KBFAULT_FDTABLE_H
#define KBFAULT_FDTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "kbfault/addr.h"
#include "kbfault/model.h"

enum {
	KB_FD_LEAKED = 1,  /* the application closed it; we kept it open */
	/* in the tree's table of connections (conn.h), its handle in the
	 * entry's tag: a session, or a connection held by more than one
	 * process whose end a rule waits for */
	KB_FD_CONN = 2,
	/* this process's copy of a connection that the tree's table does not
	 * count for it (it was inherited from a fork that could not count it:
	 * accepted by another thread while the fork was under way): closing
	 * it ends nothing, marks no peer, releases no session (conn.c) */
	KB_FD_COPY = 4,
	KB_FD_QUEUE = 8,   /* a listener with an emulated accept queue (queue.h) */
	/* What the plan holds for the descriptor's role, copied into the
	 * entry when it is tracked (kb_fd_role_flags), so that a hook's fast
	 * path learns from the one header load it makes anyway whether it
	 * has anything to ask: */
	KB_FD_CLOSE_RULES = 16,   /* close rules exist for this role */
	KB_FD_ACCEPT_BEFORE = 32, /* a listener: accept rules decide before the real call */
	KB_FD_ACCEPT_AFTER = 64,  /* a listener: something to do once a connection is taken */
	/* One of the shim's own descriptors (log.h), with an entry of its
	 * own so that every fast path sends it to the slow path wherever it
	 * lies, and the host's descriptors above it stay on the fast path. */
	KB_FD_OURS = 128,
};

/* The header's flag bits, in place, for masks tested against it. */
#define KB_HEAD_FLAG(f) ((uint64_t)(f) << 8)
/* close() must look closer: rules, a descriptor kept open, one whose end
 * the process tree's table must hear of, a listener with an emulated
 * queue (what it holds goes with it), or one of the shim's own */
#define KB_HEAD_CLOSE_ASKS \
	KB_HEAD_FLAG(KB_FD_CLOSE_RULES | KB_FD_LEAKED | KB_FD_CONN | KB_FD_QUEUE | KB_FD_OURS)

/* Header word: role (8 bits) | flags (8) | local port (16) | peer family
 * (8) | reserved (8) | peer port (16). Zero means "no entry". */
struct kb_fd_entry {
	uint64_t head;
	uint64_t ino;
	uint64_t peer[2];
	uint64_t tag;
};

#define KB_HEAD_ROLE(h) ((enum kb_role)((h) & 0xff))
#define KB_HEAD_FLAGS(h) ((unsigned)(((h) >> 8) & 0xff))
#define KB_HEAD_LPORT(h) ((uint16_t)((h) >> 16))

/* The table and its length; the lowest descriptor the shim keeps for
 * itself (log.h); and the fast range: the table's length once the shim is
 * armed, zero before. So a fast path's one unsigned comparison with
 * kb_fd_fast says "armed, and in the table" (and rejects negative numbers
 * too). The shim's own descriptors in the table have KB_FD_OURS entries;
 * beyond the table, those at or above the floor take the slow path.
 * Hidden, so the hooks' fast paths reach them with RIP-relative loads. */
extern struct kb_fd_entry *kb_fdt __attribute__((visibility("hidden")));
extern int kb_fdt_len __attribute__((visibility("hidden")));
extern int kb_fd_floor __attribute__((visibility("hidden")));
extern int kb_fd_fast __attribute__((visibility("hidden")));
extern int kb_fd_high __attribute__((visibility("hidden"))); /* one past the highest tracked fd */

static inline unsigned kb_fd_fast_limit(void)
{
	return (unsigned)__atomic_load_n(&kb_fd_fast, __ATOMIC_RELAXED);
}

/* Is the shim armed and fd one the fast paths may look up? Then
 * kb_fd_head_fast(fd) reads its header. */
static inline bool kb_fd_fast_ok(int fd)
{
	return (unsigned)fd < kb_fd_fast_limit();
}

static inline uint64_t kb_fd_head_fast(int fd)
{
	return __atomic_load_n(&kb_fdt[fd].head, __ATOMIC_RELAXED);
}

/* Outside the fast range (beyond the table, or negative): is fd below
 * the shim's own descriptors, and so none of kbfault's business? */
static inline bool kb_fd_below_floor(int fd)
{
	return fd < __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED);
}

/* Might fd be one of the shim's own (log.h's kb_is_protected decides)?
 * In the table its entry says so; beyond it, the floor. So the slow
 * paths ask the list only about the shim's own, not about every
 * descriptor above the lowest of them. */
static inline bool kb_fd_maybe_ours(int fd)
{
	if ((unsigned)fd < (unsigned)kb_fdt_len)
		return __atomic_load_n(&kb_fdt[fd].head, __ATOMIC_ACQUIRE) & KB_HEAD_FLAG(KB_FD_OURS);
	return !kb_fd_below_floor(fd);
}

/* The armed fast path: true when fd is certainly none of kbfault's
 * business - not tracked, and not the shim's own - so a hook can hand the
 * call to libc at once. A few loads, no calls. */
static inline bool kb_fd_untracked(int fd)
{
	if (kb_fd_fast_ok(fd))
		return kb_fd_head_fast(fd) == 0;
	return kb_fd_below_floor(fd);
}

/* fd's header word (0: untracked), for hooks that need only its role,
 * flags and port. */
static inline uint64_t kb_fd_head(int fd)
{
	if ((unsigned)fd >= (unsigned)kb_fdt_len)
		return 0;
	return __atomic_load_n(&kb_fdt[fd].head, __ATOMIC_ACQUIRE);
}

struct kb_fd_info {
	enum kb_role role;
	unsigned flags;
	uint16_t lport;
	uint64_t ino;
	struct kb_addr peer;
	uint64_t tag;  /* KB_FD_CONN: the connection's handle in the table (conns.h) */
};

int kb_fdtable_init(void);

/* Opens the fast range: called once the shim is armed. */
void kb_fd_arm_fast_paths(void);

/* fd is one of the shim's own (log.h): lowers the floor to it, and gives
 * it a KB_FD_OURS entry if it is in the table (once the table exists). */
void kb_fd_mark_ours(int fd);

/* The KB_FD_CLOSE_RULES / _ACCEPT_* bits every entry of `role` gets when
 * tracked: set once at start-up, from the plan, before the shim arms. */
void kb_fd_role_flags(enum kb_role role, unsigned flags);

/* Records fd; takes its identity with fstat(). Returns false (and records
 * nothing) if fd is out of the table's range or not a socket. */
bool kb_fd_track(int fd, enum kb_role role, uint16_t lport, const struct kb_addr *peer);

/* Records a connection accept() has just returned, whose peer (IPv4 or
 * IPv6) and local port are its identity: no system call, since this runs
 * once per connection a server takes. An entry without an inode number
 * is checked by kb_fd_same() against its peer instead. Falls back to
 * kb_fd_track() when the peer is not IP. */
bool kb_fd_track_accepted(int fd, uint16_t lport, const struct kb_addr *peer);

/* Fills fd's entry, whose header is zero, and publishes it: the header
 * last (release), so a concurrent reader never sees half an entry. */
static inline void kb_fd_store(int fd, uint64_t head, uint64_t ino, uint64_t peer0, uint64_t peer1, uint64_t tag)
{
	struct kb_fd_entry *e = &kb_fdt[fd];

	__atomic_store_n(&e->ino, ino, __ATOMIC_RELAXED);
	__atomic_store_n(&e->peer[0], peer0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->peer[1], peer1, __ATOMIC_RELAXED);
	__atomic_store_n(&e->tag, tag, __ATOMIC_RELAXED);
	__atomic_store_n(&e->head, head, __ATOMIC_RELEASE);
}

/* The same, then the high-water mark. Inline, with the copies below,
 * because dup2() of a tracked socket is on a server's hot path. */
static inline void kb_fd_fill(int fd, uint64_t head, uint64_t ino, uint64_t peer0, uint64_t peer1, uint64_t tag)
{
	kb_fd_store(fd, head, ino, peer0, peer1, tag);
	int h = __atomic_load_n(&kb_fd_high, __ATOMIC_RELAXED);
	while (fd + 1 > h && !__atomic_compare_exchange_n(&kb_fd_high, &h, fd + 1, true, __ATOMIC_RELAXED,
							  __ATOMIC_RELAXED))
		;
}

/* Writes fd's entry, whatever it held: the header cleared first. */
static inline void kb_fd_publish(int fd, uint64_t head, uint64_t ino, const uint64_t peer[2], uint64_t tag)
{
	__atomic_store_n(&kb_fdt[fd].head, 0, __ATOMIC_RELEASE);
	kb_fd_fill(fd, head, ino, peer[0], peer[1], tag);
}

/* After dup2/dup3, `to` is the same socket as fd, whose header is h (not
 * zero): `to` gets a copy of fd's entry - the same socket, not another
 * holder of it in the tree's table: closing one of the two copies ends
 * nothing. `to`'s entry must be empty. */
static inline void kb_fd_copy_into_empty(int fd, int to, uint64_t h)
{
	const struct kb_fd_entry *e = &kb_fdt[fd];

	kb_fd_fill(to, h & ~KB_HEAD_FLAG(KB_FD_CONN), __atomic_load_n(&e->ino, __ATOMIC_RELAXED),
		   __atomic_load_n(&e->peer[0], __ATOMIC_RELAXED), __atomic_load_n(&e->peer[1], __ATOMIC_RELAXED),
		   0);
}

/* The same, for any `to` in the table and any fd. */
static inline void kb_fd_copy(int fd, int to)
{
	uint64_t h = kb_fd_head(fd);

	if ((unsigned)to >= (unsigned)kb_fdt_len || h == 0 || (h & KB_HEAD_FLAG(KB_FD_OURS)))
		return; /* a copy of the shim's own is the host's */
	__atomic_store_n(&kb_fdt[to].head, 0, __ATOMIC_RELEASE);
	kb_fd_copy_into_empty(fd, to, h);
}

/* Adds flags (KB_FD_*) to fd's entry. */
void kb_fd_mark(int fd, unsigned flags);

/* Clears flags from fd's entry, if it has one. */
void kb_fd_unmark(int fd, unsigned flags);

/* Adds flags and a tag for the mechanism that set them (KB_FD_CONN: the
 * connection's handle). */
void kb_fd_mark_tag(int fd, unsigned flags, uint64_t tag);

bool kb_fd_lookup(int fd, struct kb_fd_info *out);

/* fd, in the fast range, is untracked from now on. */
static inline void kb_fd_forget_fast(int fd)
{
	__atomic_store_n(&kb_fdt[fd].head, 0, __ATOMIC_RELEASE);
}

static inline void kb_fd_forget(int fd)
{
	if ((unsigned)fd < (unsigned)kb_fdt_len)
		kb_fd_forget_fast(fd);
}

/* Is fd still the socket that was tracked? One fstat() for an entry with
 * an inode number; for an accepted connection, getpeername(), and
 * getsockname() too once the connection has ended. Callers ask only
 * before something is done to the descriptor, not on every call. */
bool kb_fd_same(int fd, const struct kb_fd_info *info);

/* One past the highest descriptor ever tracked: bounds scans over ranges. */
int kb_fd_limit(void);

#endif
