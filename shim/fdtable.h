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

/* Copies fd's entry to `to` (after dup2/dup3: same socket). */
void kb_fd_copy(int fd, int to);

/* Adds flags (KB_FD_*) to fd's entry. */
void kb_fd_mark(int fd, unsigned flags);

/* Sets one flag if it is not set yet; returns whether this call set it, so
 * two threads never both act on the same descriptor. */
bool kb_fd_claim(int fd, unsigned flag);

/* Adds flags and a tag (KB_TAG) for the mechanism that set them. */
void kb_fd_mark_tag(int fd, unsigned flags, uint64_t tag);

bool kb_fd_lookup(int fd, struct kb_fd_info *out);

void kb_fd_forget(int fd);

/* Is fd still the socket that was tracked? One fstat(). */
bool kb_fd_same(int fd, const struct kb_fd_info *info);

/* One past the highest descriptor ever tracked: bounds scans over ranges. */
int kb_fd_limit(void);

/* Nothing is tracked at all yet: a close needs no lookup. */
bool kb_fd_empty(void);

#endif
