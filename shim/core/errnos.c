/*
 * errnos.c - the errno table behind errnos.h. Sources: the Linux man
 * pages of listen(2), accept(2), connect(2), close(2) and shutdown(2), and
 * accept(2)'s note that pending network errors of the new socket are
 * reported by accept() itself.
 */
#include "kbfault/errnos.h"
#include "kbfault/stanza.h"

#include "kbfault/diag.h"

#include <errno.h>
#include <string.h>

#define BIT(call) (1u << (call))
#define L BIT(KB_CALL_LISTEN)
#define A BIT(KB_CALL_ACCEPT)
#define C BIT(KB_CALL_CONNECT)
#define X BIT(KB_CALL_CLOSE)
#define S BIT(KB_CALL_SHUTDOWN)

static const struct {
	const char *name;
	int value;
	unsigned calls;     /* which calls may return it */
	bool keeps_conn;    /* accept(): reported before dequeuing */
} table[] = {
	{ "EACCES", EACCES, C, false },
	{ "EADDRINUSE", EADDRINUSE, L | C, false },
	{ "EADDRNOTAVAIL", EADDRNOTAVAIL, C, false },
	{ "EAFNOSUPPORT", EAFNOSUPPORT, C, false },
	{ "EAGAIN", EAGAIN, A | C, true },
	{ "EALREADY", EALREADY, C, false },
	{ "EBADF", EBADF, L | A | C | X | S, true },
	{ "ECONNABORTED", ECONNABORTED, A, false },
	{ "ECONNREFUSED", ECONNREFUSED, C, false },
	{ "ECONNRESET", ECONNRESET, C, false },
	{ "EDQUOT", EDQUOT, X, false },
	{ "EHOSTDOWN", EHOSTDOWN, A, false },
	{ "EHOSTUNREACH", EHOSTUNREACH, A | C, false },
	{ "EINPROGRESS", EINPROGRESS, C, false },
	{ "EINTR", EINTR, A | C | X, true },
	{ "EINVAL", EINVAL, A | S, true },
	{ "EIO", EIO, X, false },
	{ "EISCONN", EISCONN, C, false },
	{ "EMFILE", EMFILE, A, true },
	{ "ENETDOWN", ENETDOWN, A, false },
	{ "ENETUNREACH", ENETUNREACH, A | C, false },
	{ "ENFILE", ENFILE, A, true },
	{ "ENOBUFS", ENOBUFS, A | C, true },
	{ "ENOMEM", ENOMEM, A, true },
	{ "ENONET", ENONET, A, false },
	{ "ENOPROTOOPT", ENOPROTOOPT, A, false },
	{ "ENOSPC", ENOSPC, X, false },
	{ "ENOTCONN", ENOTCONN, S, false },
	{ "ENOTSOCK", ENOTSOCK, L | A | C | S, true },
	{ "EOPNOTSUPP", EOPNOTSUPP, L | A, true },
	{ "EPERM", EPERM, A | C, false },
	{ "EPROTO", EPROTO, A, false },
	{ "EPROTOTYPE", EPROTOTYPE, C, false },
	{ "ETIMEDOUT", ETIMEDOUT, A | C, false },
};

#define TABLE_LEN (sizeof table / sizeof table[0])

int kb_errno_from_name(const char *name)
{
	if (strcmp(name, "EWOULDBLOCK") == 0)
		return EWOULDBLOCK; /* the same value as EAGAIN on Linux */
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].value;
	return -1;
}

const char *kb_errno_closest(const char *name)
{
	const char *names[TABLE_LEN + 2];
	for (size_t i = 0; i < TABLE_LEN; i++)
		names[i] = table[i].name;
	names[TABLE_LEN] = "EWOULDBLOCK";
	names[TABLE_LEN + 1] = NULL;
	return kb_suggest(name, names);
}

const char *kb_errno_name(int err)
{
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].value == err)
			return table[i].name;
	return NULL;
}

bool kb_errno_valid_for(enum kb_call call, int err)
{
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].value == err)
			return (table[i].calls & BIT(call)) != 0;
	return false;
}

void kb_errnos_list(enum kb_call call, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].calls & BIT(call))
			kb_append(buf, len, &used, "%s%s", used ? ", " : "", table[i].name);
}

bool kb_accept_errno_keeps_connection(int err)
{
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].value == err)
			return table[i].keeps_conn;
	return false;
}
