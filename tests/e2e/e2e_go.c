/* Go programs make their own system calls: a preloaded library is never
 * asked, even when the program is dynamically linked (cgo). kbfault run
 * and kbfault gate refuse them (125) instead of running them without the
 * faults that were asked for - static, cgo and stripped alike. Built here
 * with Debian's golang-go, offline (the standard library only). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "servers.h"

static const char server_go[] = "package main\n"
				"\n"
				"import (\n"
				"\t\"fmt\"\n"
				"\t\"net\"\n"
				")\n"
				"\n"
				"func main() {\n"
				"\tl, err := net.Listen(\"tcp\", \"127.0.0.1:0\")\n"
				"\tif err != nil {\n"
				"\t\tpanic(err)\n"
				"\t}\n"
				"\tfmt.Println(\"listening\")\n"
				"\tl.Close()\n"
				"}\n";

/* go build with CGO_ENABLED=cgo and ldflags into DIR/name. */
static const char *build(const char *name, int cgo, const char *ldflags)
{
	static char out[4][1024];
	static int k;
	k = (k + 1) % 4;
	char cmd[4096];
	int st;
	const char *dir = kbt_tmpdir(), *src = kbt_write("server.go", server_go);
	snprintf(out[k], sizeof out[k], "%s/%s", dir, name);
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && HOME='%s' GOCACHE='%s/gocache' GOPATH='%s/gopath' GO111MODULE=off GOFLAGS= CGO_ENABLED=%d "
		 "go build -ldflags='%s' -o '%s' '%s' 2>&1",
		 dir, dir, dir, dir, cgo, ldflags, out[k], src);
	char *res = kbt_sh(cmd, 120000, &st);
	cr_assert_eq(st, 0, "go build: %s", res);
	free(res);
	return out[k];
}

static void refused(const char *program)
{
	char cmd[4096], want[1200];
	int st;
	/* it runs on its own */
	char *res = kbt_sh(program, 10000, &st);
	cr_assert_eq(st, 0, "%s: %s", program, res);
	cr_assert(strstr(res, "listening"), "%s", res);
	free(res);

	snprintf(want, sizeof want,
		 "kbfault: run: not starting %s: %s is a Go program: it makes its own system calls, which a preloaded "
		 "library never sees, so it would run without the faults that were asked for",
		 program, program);
	snprintf(cmd, sizeof cmd, "'%s' run -r q236565 -- '%s' 2>&1", kbt_build("kbfault"), program);
	res = kbt_sh(cmd, 10000, &st);
	cr_assert_eq(st, 125, "%s", res);
	cr_assert(strstr(res, want), "%s", res);
	cr_assert_null(strstr(res, "listening"), "it did not start: %s", res);
	free(res);

	snprintf(cmd, sizeof cmd,
		 "'%s' gate -r q236565 --server 'exec %s' --ready tcp:127.0.0.1:1 --probe true 2>&1", kbt_build("kbfault"),
		 program);
	res = kbt_sh(cmd, 10000, &st);
	cr_assert_eq(st, 125, "%s", res);
	cr_assert(strstr(res, "not starting the server"), "%s", res);
	cr_assert(strstr(res, "is a Go program"), "%s", res);
	free(res);
}

Test(go, a_static_go_program_is_refused, .timeout = 180)
{
	refused(build("static", 0, ""));
}

Test(go, a_cgo_program_is_refused_though_it_loads_the_library, .timeout = 180)
{
	const char *p = build("cgo", 1, "");
	char cmd[2048];
	int st;
	snprintf(cmd, sizeof cmd, "readelf -l '%s' | grep -c 'Requesting program interpreter'", p);
	char *res = kbt_sh(cmd, 10000, &st);
	cr_assert_eq(st, 0, "a cgo build is dynamically linked: %s", res);
	free(res);
	refused(p);
}

Test(go, a_stripped_go_program_is_refused, .timeout = 180)
{
	refused(build("stripped", 0, "-s -w"));
}
