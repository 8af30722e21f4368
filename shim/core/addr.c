/*
 * addr.c - socket address folding, formatting and CIDR matching. See
 * addr.h for the IPv4-mapped rule.
 */
#include "kbfault/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* hot: every accepted connection passes here (see KB_HOT, shim.h) */
__attribute__((hot)) void kb_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct kb_addr *out)
{
	out->family = 0;
	out->port = 0;
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof in);
		out->family = AF_INET;
		out->port = ntohs(in.sin_port);
		memcpy(out->bytes, &in.sin_addr, 4);
		memset(out->bytes + 4, 0, 12);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof in6);
		out->port = ntohs(in6.sin6_port);
		if (memcmp(in6.sin6_addr.s6_addr, v4_mapped_prefix, 12) == 0) {
			out->family = AF_INET;
			memcpy(out->bytes, in6.sin6_addr.s6_addr + 12, 4);
			memset(out->bytes + 4, 0, 12);
		} else {
			out->family = AF_INET6;
			memcpy(out->bytes, in6.sin6_addr.s6_addr, 16);
		}
	}
}

size_t kb_addr_format(const struct kb_addr *a, char *buf, size_t len)
{
	/* "[" + host + "]:" + 5 digits fits in this */
	char out[INET6_ADDRSTRLEN + 16];
	char digits[6];
	size_t n = 0, d = 0;
	unsigned port = a->port;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (a->family != AF_INET && a->family != AF_INET6)
		return 0;
	if (a->family == AF_INET6)
		out[n++] = '[';
	if (inet_ntop(a->family, a->bytes, out + n, INET6_ADDRSTRLEN) == NULL)
		return 0;
	n += strlen(out + n);
	if (a->family == AF_INET6)
		out[n++] = ']';
	out[n++] = ':';
	do {
		digits[d++] = (char)('0' + port % 10);
		port /= 10;
	} while (port);
	while (d)
		out[n++] = digits[--d];
	if (n >= len)
		n = len - 1;
	memcpy(buf, out, n);
	buf[n] = '\0';
	return n;
}

int kb_cidr_parse(const char *s, struct kb_cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	struct kb_cidr c;

	memset(&c, 0, sizeof c);
	if (n == 0 || n >= sizeof host)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';

	if (inet_pton(AF_INET, host, c.bytes) == 1) {
		c.family = AF_INET;
		c.prefix = 32;
	} else if (inet_pton(AF_INET6, host, c.bytes) == 1) {
		c.family = AF_INET6;
		c.prefix = 128;
		if (memcmp(c.bytes, v4_mapped_prefix, 12) == 0) {
			memmove(c.bytes, c.bytes + 12, 4);
			memset(c.bytes + 4, 0, 12);
			c.family = AF_INET;
			c.prefix = 32;
		}
	} else {
		return -EINVAL;
	}

	if (slash) {
		unsigned v = 0;
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > c.prefix)
			return -EINVAL;
		c.prefix = (uint8_t)v;
	}
	*out = c;
	return 0;
}

bool kb_cidr_match(const struct kb_cidr *c, const struct kb_addr *a)
{
	unsigned full, rest;

	if (c->family != a->family)
		return false;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(c->bytes, a->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->bytes[full] & mask) == (a->bytes[full] & mask);
}

void kb_cidr_format(const struct kb_cidr *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->bytes, host, sizeof host) == NULL)
		host[0] = '\0';
	snprintf(buf, len, "%s/%u", host, (unsigned)c->prefix);
}
