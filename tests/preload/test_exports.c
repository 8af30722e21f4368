/* The library exports exactly the hooks and kbfault_*: nothing that could
 * collide with a host's own symbols. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(exports, exactly_the_hooks)
{
	static const char *const expected[] = {
		"__sysv_signal", "accept", "accept4", "bsd_signal", "close", "close_range", "closefrom",
		"connect", "dup2", "dup3", "fclose", "fork", "kbfault_version", "listen", "shutdown", "sigaction",
		"signal", "sigset", "sigtimedwait", "sigwait", "sigwaitinfo", "syscall", "sysv_signal",
#if defined(__x86_64__)
		"vfork", /* hook_vfork.c: x86_64 only */
#endif
	};
	char cmd[4200], name[256], type[8];
	unsigned long long addr;
	size_t n = 0;

	snprintf(cmd, sizeof cmd, "nm -D --defined-only %s", kbt_build("libkbfault.so"));
	FILE *nm = popen(cmd, "r");
	cr_assert_not_null(nm);
	while (fscanf(nm, "%llx %7s %255s", &addr, type, name) == 3) {
		cr_assert_lt(n, sizeof expected / sizeof expected[0], "unexpected export %s", name);
		cr_assert_str_eq(name, expected[n], "export %zu: %s, expected %s", n, name, expected[n]);
		cr_assert_str_eq(type, "T", "%s should be a function", name);
		n++;
	}
	cr_assert_eq(pclose(nm), 0, "nm failed");
	cr_assert_eq(n, sizeof expected / sizeof expected[0], "only %zu exports", n);
}
