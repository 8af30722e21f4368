/*
 * addr.h - socket addresses reduced to what rules match on.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack listener
 * reports for IPv4 clients) are folded to plain IPv4, so "peer
 * 127.0.0.0/8" matches a client whether the server listens on 0.0.0.0 or
 * on [::]. Reads of a sockaddr never go past the length the caller gives:
 * a 16-byte struct sockaddr is never read as IPv6.
 */
#ifndef KBFAULT_ADDR_H
#define KBFAULT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kbfault/model.h"

struct kb_addr {
	uint8_t family; /* AF_INET, AF_INET6, or 0 for anything else */
	uint16_t port;  /* host byte order */
	uint8_t bytes[16];
};

/* Fills *out from a socket address of `len` bytes; family 0 if the address
 * is not IP or is too short to be what it claims. */
void kb_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct kb_addr *out);

/* "127.0.0.1:8080", "[::1]:8080", or "" for family 0. Allocates nothing
 * and takes no lock, so the log can use it from any hook. */
size_t kb_addr_format(const struct kb_addr *a, char *buf, size_t len);

/* "10.0.0.0/8", "::1", "2001:db8::/32"; a bare address is a /32 or /128.
 * Returns 0 or -EINVAL. */
int kb_cidr_parse(const char *s, struct kb_cidr *out);

bool kb_cidr_match(const struct kb_cidr *c, const struct kb_addr *a);

void kb_cidr_format(const struct kb_cidr *c, char *buf, size_t len);

#endif
