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
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>

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

#endif
