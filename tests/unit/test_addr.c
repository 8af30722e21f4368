/* Address folding, formatting and CIDR matching. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "kbfault/addr.h"

static struct kb_addr v4(const char *ip, uint16_t port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct kb_addr a;
	inet_pton(AF_INET, ip, &in.sin_addr);
	kb_addr_from_sockaddr((struct sockaddr *)&in, sizeof in, &a);
	return a;
}

static struct kb_addr v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct kb_addr a;
	inet_pton(AF_INET6, ip, &in6.sin6_addr);
	kb_addr_from_sockaddr((struct sockaddr *)&in6, sizeof in6, &a);
	return a;
}

Test(addr, formats_both_families)
{
	char buf[64];
	struct kb_addr a = v4("127.0.0.1", 8080);
	cr_assert_eq(kb_addr_format(&a, buf, sizeof buf), strlen("127.0.0.1:8080"));
	cr_assert_str_eq(buf, "127.0.0.1:8080");
	a = v6("::1", 443);
	kb_addr_format(&a, buf, sizeof buf);
	cr_assert_str_eq(buf, "[::1]:443");
	a = v4("10.1.2.3", 0);
	kb_addr_format(&a, buf, 6);
	cr_assert_str_eq(buf, "10.1.", "formatting truncates to the buffer");
}

Test(addr, folds_v4_mapped_to_v4)
{
	struct kb_addr a = v6("::ffff:127.0.0.5", 1234);
	cr_assert_eq(a.family, AF_INET);
	cr_assert_eq(a.port, 1234);
	struct kb_cidr c;
	cr_assert_eq(kb_cidr_parse("127.0.0.0/8", &c), 0);
	cr_assert(kb_cidr_match(&c, &a));
}

Test(addr, refuses_short_or_foreign_addresses)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct kb_addr a;
	kb_addr_from_sockaddr((struct sockaddr *)&in6, sizeof(struct sockaddr_in), &a);
	cr_assert_eq(a.family, 0, "16 bytes are never read as an IPv6 address");
	struct sockaddr un = { .sa_family = AF_UNIX };
	kb_addr_from_sockaddr(&un, sizeof un, &a);
	cr_assert_eq(a.family, 0);
	kb_addr_from_sockaddr(NULL, 0, &a);
	cr_assert_eq(a.family, 0);
}

Test(addr, cidr_parse_and_match)
{
	struct kb_cidr c;
	char buf[64];
	cr_assert_eq(kb_cidr_parse("10.0.0.0/8", &c), 0);
	cr_assert(kb_cidr_match(&c, &(struct kb_addr){ 0 }) == false);
	struct kb_addr in = v4("10.200.1.1", 1), out = v4("11.0.0.1", 1);
	cr_assert(kb_cidr_match(&c, &in));
	cr_assert_not(kb_cidr_match(&c, &out));
	cr_assert_eq(kb_cidr_parse("127.0.0.2", &c), 0);
	cr_assert_eq(c.prefix, 32);
	struct kb_addr two = v4("127.0.0.2", 9), three = v4("127.0.0.3", 9);
	cr_assert(kb_cidr_match(&c, &two));
	cr_assert_not(kb_cidr_match(&c, &three));
	cr_assert_eq(kb_cidr_parse("2001:db8::/32", &c), 0);
	struct kb_addr x = v6("2001:db8:1::1", 1), y = v6("2001:db9::1", 1);
	cr_assert(kb_cidr_match(&c, &x));
	cr_assert_not(kb_cidr_match(&c, &y));
	cr_assert_eq(kb_cidr_parse("192.168.1.0/23", &c), 0);
	struct kb_addr z = v4("192.168.0.77", 1);
	cr_assert(kb_cidr_match(&c, &z), "a prefix that is not a whole byte");
	kb_cidr_format(&c, buf, sizeof buf);
	cr_assert_str_eq(buf, "192.168.1.0/23");
	cr_assert_eq(kb_cidr_parse("0.0.0.0/0", &c), 0);
	cr_assert(kb_cidr_match(&c, &out));
	cr_assert_lt(kb_cidr_parse("10.0.0.0/33", &c), 0);
	cr_assert_lt(kb_cidr_parse("10.0.0/8", &c), 0);
	cr_assert_lt(kb_cidr_parse("localhost", &c), 0);
	cr_assert_lt(kb_cidr_parse("10.0.0.0/", &c), 0);
	cr_assert_lt(kb_cidr_parse("", &c), 0);
}
