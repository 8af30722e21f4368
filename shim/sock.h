/*
 * sock.h - which sockets kbfault is about: TCP over IPv4 and IPv6.
 *
 * Asked before any rule counts or acts, so that a UDP connect() (which
 * only sets a default destination), an SCTP or MPTCP stream socket, or
 * listen() on a datagram socket goes to the kernel as if kbfault were not
 * there: not delayed, failed, redirected or counted, and not tracked.
 */
#ifndef KBFAULT_SOCK_H
#define KBFAULT_SOCK_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "kbfault/addr.h"
#include "real.h"

/* Is fd a TCP socket? One getsockopt(SO_PROTOCOL), which leaves errno
 * alone. The family is the caller's to check (an address it holds). */
static inline bool kb_is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof proto;

	if (KB_HAVE_SYS)
		return kb_sys(SYS_getsockopt, fd, SOL_SOCKET, SO_PROTOCOL, (long)&proto, (long)&len, 0) == 0 &&
		       proto == IPPROTO_TCP;
	int saved = errno;
	bool tcp = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP;
	errno = saved;
	return tcp;
}

/* fd's peer, asked of the kernel (family 0 if it has none, or none that
 * is IP); errno left alone. */
static inline void kb_peer_asked(int fd, struct kb_addr *peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int saved = errno;
	memset(peer, 0, sizeof *peer);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		kb_addr_from_sockaddr((struct sockaddr *)&ss, len, peer);
	errno = saved;
}

/* Has fd a connection (or data) waiting right now? poll() with no wait;
 * errno left alone. */
static inline bool kb_readable_now(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int saved = errno;
	bool ready = poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
	errno = saved;
	return ready;
}

/* Is fd in blocking mode (no O_NONBLOCK)? errno left alone. */
static inline bool kb_blocking(int fd)
{
	int saved = errno;
	int fl = fcntl(fd, F_GETFL);
	errno = saved;
	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* From now on, closing the socket (its last descriptor) sends a reset
 * rather than a FIN: SO_LINGER with a zero time. errno left alone. */
static inline void kb_reset_on_close(int fd)
{
	struct linger lg = { 1, 0 };
	int saved = errno;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	errno = saved;
}

#endif
