/* The errno table: names, which call may return what, accept's phase. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "kbfault/errnos.h"

Test(errnos, names_round_trip)
{
	cr_assert_eq(kb_errno_from_name("ECONNREFUSED"), ECONNREFUSED);
	cr_assert_str_eq(kb_errno_name(ECONNREFUSED), "ECONNREFUSED");
	cr_assert_eq(kb_errno_from_name("EWOULDBLOCK"), EAGAIN);
	cr_assert_eq(kb_errno_from_name("ENOPE"), -1);
	cr_assert_eq(kb_errno_from_name("econnrefused"), -1, "names are case-sensitive, like the C macros");
	cr_assert_null(kb_errno_name(EDOM));
}

Test(errnos, only_what_the_real_call_can_return)
{
	cr_assert(kb_errno_valid_for(KB_CALL_CONNECT, ECONNREFUSED));
	cr_assert_not(kb_errno_valid_for(KB_CALL_ACCEPT, ECONNREFUSED));
	cr_assert(kb_errno_valid_for(KB_CALL_ACCEPT, ECONNABORTED));
	cr_assert(kb_errno_valid_for(KB_CALL_ACCEPT, EMFILE));
	cr_assert_not(kb_errno_valid_for(KB_CALL_CLOSE, ECONNRESET));
	cr_assert(kb_errno_valid_for(KB_CALL_CLOSE, EIO));
	cr_assert(kb_errno_valid_for(KB_CALL_LISTEN, EADDRINUSE));
	cr_assert_not(kb_errno_valid_for(KB_CALL_LISTEN, EINTR));
	cr_assert(kb_errno_valid_for(KB_CALL_SHUTDOWN, ENOTCONN));
	cr_assert_not(kb_errno_valid_for(KB_CALL_SHUTDOWN, EIO));
}

Test(errnos, accept_phase)
{
	cr_assert(kb_accept_errno_keeps_connection(EAGAIN));
	cr_assert(kb_accept_errno_keeps_connection(EMFILE));
	cr_assert_not(kb_accept_errno_keeps_connection(ECONNABORTED));
	cr_assert_not(kb_accept_errno_keeps_connection(EPROTO));
}

Test(errnos, list_for_messages)
{
	char buf[512];
	kb_errnos_list(KB_CALL_LISTEN, buf, sizeof buf);
	cr_assert_str_eq(buf, "EADDRINUSE, EBADF, ENOTSOCK, EOPNOTSUPP");
	kb_errnos_list(KB_CALL_CONNECT, buf, 20);
	cr_assert_eq(strlen(buf), 19, "cut to the buffer, still terminated");
}
