/*
 * fdtable.h - where each descriptor came from.
 *
 * A flat table indexed by descriptor number, reserved once with mmap and
 * touched lazily (untouched pages cost no memory), so a lookup is one
 * bounds check and one load whatever the number of open descriptors.
 *
 * Each entry records the socket's identity (its inode number in sockfs)
 * taken when it was tracked. Descriptor numbers are reused quickly, and
 * some closes never reach a hook (glibc internals, raw system calls), so
 * before a rule acts on a descriptor its identity is checked again with
 * one fstat(): the shim never acts on something it did not track.
 *
 * Entries are written by the thread that creates or closes the
 * descriptor. The header word is published last (release) and cleared
 * first, and every field is accessed atomically, so a concurrent reader
 * sees either the old entry, no entry, or the new one.
 */
#ifndef KBFAULT_FDTABLE_H
#define KBFAULT_FDTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "kbfault/addr.h"
#include "kbfault/model.h"

enum {
	KB_FD_LEAKED = 1,  /* the application closed it; we kept it open */
	KB_FD_SESSION = 2, /* an admitted session of an `action sessions` rule */
	KB_FD_CUT = 4,     /* a session the model cut; its owner has not closed it yet */
	KB_FD_QUEUE = 8,   /* a listener with an emulated accept queue (queue.h) */
};

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

/* The table and its length; and the lowest descriptor the shim keeps for
 * itself (log.h), above which every call takes the slow path. Hidden, so
 * the hooks' fast paths reach them with RIP-relative loads. */
extern struct kb_fd_entry *kb_fdt __attribute__((visibility("hidden")));
extern int kb_fdt_len __attribute__((visibility("hidden")));
extern int kb_fd_floor __attribute__((visibility("hidden")));
extern int kb_fd_high __attribute__((visibility("hidden"))); /* one past the highest tracked fd */

/* The armed fast path: true when fd is certainly none of kbfault's
 * business - not tracked, and below every descriptor of the shim's own -
 * so a hook can hand the call to libc at once. A few loads, no calls. */
static inline bool kb_fd_untracked(int fd)
{
	if (fd >= __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED))
		return false;
	if ((unsigned)fd >= (unsigned)kb_fdt_len)
		return true; /* negative, or beyond the table: never tracked */
	return __atomic_load_n(&kb_fdt[fd].head, __ATOMIC_RELAXED) == 0;
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
	uint64_t tag;  /* KB_FD_SESSION: the rule's index + 1 in the low 16 bits,
			* the session's admission number above them */
};

#define KB_TAG(rule_index, seq) (((uint64_t)(seq) << 16) | (uint64_t)((rule_index) + 1))
#define KB_TAG_RULE(tag) ((uint32_t)((tag) & 0xffff))      /* index + 1 */
#define KB_TAG_SEQ(tag) ((tag) >> 16)

int kb_fdtable_init(void);

/* Records fd; takes its identity with fstat(). Returns false (and records
 * nothing) if fd is out of the table's range or not a socket. */
bool kb_fd_track(int fd, enum kb_role role, uint16_t lport, const struct kb_addr *peer);

/* Writes to's entry: the header cleared first and set last (release), so
 * a concurrent reader never sees half an entry. Inline, with kb_fd_copy,
 * because dup2() of a tracked socket is on a server's hot path. */
static inline void kb_fd_publish(int fd, uint64_t head, uint64_t ino, const uint64_t peer[2], uint64_t tag)
{
	struct kb_fd_entry *e = &kb_fdt[fd];

	__atomic_store_n(&e->head, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&e->ino, ino, __ATOMIC_RELAXED);
	__atomic_store_n(&e->peer[0], peer[0], __ATOMIC_RELAXED);
	__atomic_store_n(&e->peer[1], peer[1], __ATOMIC_RELAXED);
	__atomic_store_n(&e->tag, tag, __ATOMIC_RELAXED);
	__atomic_store_n(&e->head, head, __ATOMIC_RELEASE);

	int h = __atomic_load_n(&kb_fd_high, __ATOMIC_RELAXED);
	while (fd + 1 > h && !__atomic_compare_exchange_n(&kb_fd_high, &h, fd + 1, true, __ATOMIC_RELAXED,
							  __ATOMIC_RELAXED))
		;
}

/* Copies fd's entry to `to` (after dup2/dup3: same socket). */
static inline void kb_fd_copy(int fd, int to)
{
	uint64_t h = kb_fd_head(fd);

	if ((unsigned)to >= (unsigned)kb_fdt_len || h == 0)
		return;
	const struct kb_fd_entry *e = &kb_fdt[fd];
	uint64_t pb[2] = { __atomic_load_n(&e->peer[0], __ATOMIC_RELAXED),
			   __atomic_load_n(&e->peer[1], __ATOMIC_RELAXED) };
	/* the copy is the same socket, not another session of it */
	h &= ~((uint64_t)(KB_FD_SESSION | KB_FD_CUT) << 8);
	kb_fd_publish(to, h, __atomic_load_n(&e->ino, __ATOMIC_RELAXED), pb, 0);
}

/* Adds flags (KB_FD_*) to fd's entry. */
void kb_fd_mark(int fd, unsigned flags);

/* Sets one flag if it is not set yet; returns whether this call set it, so
 * two threads never both act on the same descriptor. */
bool kb_fd_claim(int fd, unsigned flag);

/* Adds flags and a tag (KB_TAG) for the mechanism that set them. */
void kb_fd_mark_tag(int fd, unsigned flags, uint64_t tag);

bool kb_fd_lookup(int fd, struct kb_fd_info *out);

static inline void kb_fd_forget(int fd)
{
	if ((unsigned)fd < (unsigned)kb_fdt_len)
		__atomic_store_n(&kb_fdt[fd].head, 0, __ATOMIC_RELEASE);
}

/* Is fd still the socket that was tracked? One fstat(). */
bool kb_fd_same(int fd, const struct kb_fd_info *info);

/* One past the highest descriptor ever tracked: bounds scans over ranges. */
int kb_fd_limit(void);

#endif
