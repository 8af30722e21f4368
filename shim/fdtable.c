/*
 * fdtable.c - the descriptor table; see fdtable.h for the design.
 */
#include "fdtable.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define TABLE_MAX (1 << 21) /* descriptors beyond this are never tracked */

struct kb_fd_entry *kb_fdt;
int kb_fdt_len;
int kb_fd_floor = 0x7fffffff; /* lowered by kb_fd_mark_ours() */
int kb_fd_fast;               /* kb_fdt_len once armed; 0 before */
int kb_fd_high;               /* one past the highest tracked fd */
static uint8_t role_flags[KB_ROLE_COUNT];

static bool in_range(int fd)
{
	return (unsigned)fd < (unsigned)kb_fdt_len;
}

void kb_fd_mark_ours(int fd)
{
	int cur = __atomic_load_n(&kb_fd_floor, __ATOMIC_RELAXED);
	while (fd < cur && !__atomic_compare_exchange_n(&kb_fd_floor, &cur, fd, true, __ATOMIC_RELEASE,
							 __ATOMIC_RELAXED))
		;
	if (!in_range(fd))
		return;
	/* no identity, no port, no high-water mark: nothing but the flag is
	 * ever read from it, and close_range() knows its own bound for ours */
	__atomic_store_n(&kb_fdt[fd].head, 0, __ATOMIC_RELEASE);
	kb_fd_store(fd, KB_HEAD_FLAG(KB_FD_OURS), 0, 0, 0, 0);
}

void kb_fd_role_flags(enum kb_role role, unsigned flags)
{
	if ((unsigned)role < KB_ROLE_COUNT)
		role_flags[role] = (uint8_t)flags;
}

int kb_fdtable_init(void)
{
	struct rlimit rl;
	size_t n = 65536;

	/* size for the hard limit: a host may raise its soft limit later */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max > n)
		n = rl.rlim_max;
	if (n > TABLE_MAX)
		n = TABLE_MAX;
	void *p = mmap(NULL, n * sizeof(struct kb_fd_entry), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	kb_fdt = p;
	__atomic_store_n(&kb_fdt_len, (int)n, __ATOMIC_RELEASE);
	return 0;
}

void kb_fd_arm_fast_paths(void)
{
	__atomic_store_n(&kb_fd_fast, __atomic_load_n(&kb_fdt_len, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

static uint64_t pack(enum kb_role role, unsigned flags, uint16_t lport, const struct kb_addr *peer)
{
	uint64_t h = (uint64_t)role | ((uint64_t)(flags & 0xff) << 8) | ((uint64_t)lport << 16);
	if (peer)
		h |= ((uint64_t)peer->family << 32) | ((uint64_t)peer->port << 48);
	return h;
}

bool kb_fd_track(int fd, enum kb_role role, uint16_t lport, const struct kb_addr *peer)
{
	struct stat st;
	uint64_t pb[2] = { 0, 0 };

	if (!in_range(fd) || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (peer)
		memcpy(pb, peer->bytes, sizeof pb);
	kb_fd_publish(fd, pack(role, role_flags[role], lport, peer), (uint64_t)st.st_ino, pb, 0);
	return true;
}

__attribute__((hot)) bool kb_fd_track_accepted(int fd, uint16_t lport, const struct kb_addr *peer)
{
	uint64_t pb[2];

	if (peer->family != AF_INET && peer->family != AF_INET6)
		return kb_fd_track(fd, KB_ROLE_ACCEPTED, lport, peer);
	if (!in_range(fd))
		return false;
	memcpy(pb, peer->bytes, sizeof pb);
	kb_fd_publish(fd, pack(KB_ROLE_ACCEPTED, role_flags[KB_ROLE_ACCEPTED], lport, peer), 0, pb, 0);
	return true;
}

bool kb_fd_lookup(int fd, struct kb_fd_info *out)
{
	/* the header again after the fields: a rewrite of the entry in
	 * between (its number closed and reused meanwhile) is read again,
	 * and one that will not settle counts as no entry */
	for (int tries = 0; tries < 4; tries++) {
		uint64_t h = kb_fd_head(fd);
		if (h == 0)
			return false;
		const struct kb_fd_entry *e = &kb_fdt[fd];
		uint64_t pb[2] = { __atomic_load_n(&e->peer[0], __ATOMIC_RELAXED),
				   __atomic_load_n(&e->peer[1], __ATOMIC_RELAXED) };
		out->role = KB_HEAD_ROLE(h);
		out->flags = KB_HEAD_FLAGS(h);
		out->lport = KB_HEAD_LPORT(h);
		out->ino = __atomic_load_n(&e->ino, __ATOMIC_RELAXED);
		out->peer.family = (uint8_t)(h >> 32);
		out->peer.port = (uint16_t)(h >> 48);
		memcpy(out->peer.bytes, pb, sizeof pb);
		out->tag = __atomic_load_n(&e->tag, __ATOMIC_RELAXED);
		if (__atomic_load_n(&e->head, __ATOMIC_ACQUIRE) == h)
			return true;
	}
	return false;
}

/* Sets and clears flags in fd's header, if it has an entry. */
static void change_flags(int fd, unsigned set, unsigned clear)
{
	if (!in_range(fd))
		return;
	struct kb_fd_entry *e = &kb_fdt[fd];
	uint64_t h = __atomic_load_n(&e->head, __ATOMIC_ACQUIRE);
	/* never resurrect an entry another thread has just forgotten */
	while (h != 0 && !__atomic_compare_exchange_n(&e->head, &h, (h & ~KB_HEAD_FLAG(clear & 0xff)) |
								    KB_HEAD_FLAG(set & 0xff),
						      true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

void kb_fd_mark(int fd, unsigned flags)
{
	change_flags(fd, flags, 0);
}

void kb_fd_unmark(int fd, unsigned flags)
{
	change_flags(fd, 0, flags);
}

void kb_fd_mark_tag(int fd, unsigned flags, uint64_t tag)
{
	if (!in_range(fd))
		return;
	__atomic_store_n(&kb_fdt[fd].tag, tag, __ATOMIC_RELAXED);
	kb_fd_mark(fd, flags);
}

/* An accepted connection tracked without its inode number: the same
 * socket is still connected to the same peer. Once the connection has
 * ended (reset by the peer, or both sides done) the kernel no longer
 * names the peer (ENOTCONN), but the socket keeps its local port, which a
 * socket created since on that number does not have (it is unbound, or
 * connected elsewhere, which getpeername() would have shown). */
static bool same_connection(int fd, const struct kb_fd_info *info)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct kb_addr now;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		kb_addr_from_sockaddr((struct sockaddr *)&ss, len, &now);
		return now.family == info->peer.family && now.port == info->peer.port &&
		       memcmp(now.bytes, info->peer.bytes, sizeof now.bytes) == 0;
	}
	if (errno != ENOTCONN)
		return false; /* not a socket any more, or not open */
	len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	kb_addr_from_sockaddr((struct sockaddr *)&ss, len, &now);
	return now.family == info->peer.family && now.port == info->lport && now.port != 0;
}

bool kb_fd_same(int fd, const struct kb_fd_info *info)
{
	struct stat st;

	if (info->ino == 0 && info->role == KB_ROLE_ACCEPTED)
		return same_connection(fd, info);
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && (uint64_t)st.st_ino == info->ino;
}

int kb_fd_limit(void)
{
	return __atomic_load_n(&kb_fd_high, __ATOMIC_RELAXED);
}
