/* Nothing runs silently without its faults: `kbfault run` and `kbfault
 * gate` refuse, with 125 and before anything starts, a library that is
 * not libkbfault.so and a program the library cannot enter (statically
 * linked here: /sbin/ldconfig, which every Debian has), looked for
 * through env, sh -c and #! wrappers. The Go programs are in e2e. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define STATIC_PROGRAM "/sbin/ldconfig"

static void refused(const char *const *args, const char *want)
{
	char *out, *err;
	int rc = kbt_kbfault(args, &out, &err);
	cr_assert_eq(rc, 125, "%s: rc %d: %s", args[3] ? args[3] : args[0], rc, err);
	cr_assert(strstr(err, want), "%s", err);
	free(out);
	free(err);
}

Test(reach, a_static_program_is_refused)
{
	refused((const char *[]){ "run", "-r", "demo", "--", STATIC_PROGRAM, "-p", NULL },
		"kbfault: run: not starting " STATIC_PROGRAM ": " STATIC_PROGRAM
		" is statically linked (no program interpreter): it never loads a preloaded library, so it would run "
		"without the faults that were asked for");
}

Test(reach, wrappers_are_looked_through)
{
	const char *want = STATIC_PROGRAM " is statically linked";
	refused((const char *[]){ "run", "-r", "demo", "--", "env", "A=1", STATIC_PROGRAM, "-p", NULL }, want);
	refused((const char *[]){ "run", "-r", "demo", "--", "/usr/bin/env", "--", "ldconfig", "-p", NULL }, want);
	refused((const char *[]){ "run", "-r", "demo", "--", "sh", "-c", "exec " STATIC_PROGRAM " -p", NULL }, want);
	refused((const char *[]){ "run", "-r", "demo", "--", "sh", "-c", "A=1 B=2 " STATIC_PROGRAM " -p", NULL }, want);
	const char *script = kbt_write("script", "#!" STATIC_PROGRAM " -p\n");
	chmod(script, 0755);
	refused((const char *[]){ "run", "-r", "demo", "--", script, NULL }, want);
	const char *via_env = kbt_write("via-env", "#!/usr/bin/env ldconfig\n");
	chmod(via_env, 0755);
	refused((const char *[]){ "run", "-r", "demo", "--", via_env, NULL }, want);
}

/* What only a shell can tell is left to run: a dynamic program, a
 * builtin, a compound command. */
Test(reach, programs_the_library_enters_still_run)
{
	char *out, *err;
	const char *log = kbt_logpath();
	const char *ok[][6] = {
		{ "/bin/true", NULL },
		{ "sh", "-c", "echo hi >/dev/null", NULL },
		{ "sh", "-c", "for i in 1; do true; done", NULL },
		{ "env", "A=1", "true", NULL },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		const char *args[12] = { "run", "-r", "demo", "-l", log, "--" };
		for (size_t k = 0; ok[i][k]; k++)
			args[6 + k] = ok[i][k];
		cr_assert_eq(kbt_kbfault(args, &out, &err), 0, "%s: %s", ok[i][0], err);
		free(out);
		free(err);
	}
}

/* kbfault ARGS with KBFAULT_LIB=lib: 125, and want on stderr. */
static void refused_with_lib(const char *lib, const char *const *args, const char *want)
{
	char *out, *err, env_lib[4200];
	const char *argv[16] = { kbt_build("kbfault") };
	for (size_t i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	snprintf(env_lib, sizeof env_lib, "KBFAULT_LIB=%s", lib);
	int rc = kbt_run(argv, (const char *[]){ env_lib, NULL }, false, 20000, &out, &err);
	cr_assert_eq(rc, 125, "%s: rc %d: %s", lib, rc, err);
	cr_assert(strstr(err, want), "%s", err);
	free(out);
	free(err);
}

Test(reach, a_library_that_is_not_libkbfault_is_refused)
{
	char want[1200];
	const char *readme = kbt_write("README.md", "# not a library\n");
	const char *run[] = { "run", "-r", "demo", "--", "/bin/true", NULL };
	snprintf(want, sizeof want, "kbfault: KBFAULT_LIB=%s: %s is not a shared library (not an ELF shared object)", readme,
		 readme);
	refused_with_lib(readme, run, want);
	char other[4096];
	snprintf(other, sizeof other, "%s", kbt_build("helpers/libkbt_early.so"));
	refused_with_lib(other, run, "is a shared library, but not libkbfault.so (it exports no kbfault_version)");
	refused_with_lib(other,
			 (const char *[]){ "gate", "-r", "demo", "--server", "sleep 5", "--ready", "tcp:127.0.0.1:1",
					   "--probe", "true", NULL },
			 "is a shared library, but not libkbfault.so");
}

Test(reach, a_gate_refuses_a_server_it_cannot_enter_before_any_gate_runs)
{
	char suite[600];
	snprintf(suite, sizeof suite,
		 "gate fine\n  recipe demo\n  server \"sleep 5\"\n  ready tcp:127.0.0.1:1\n  probe true\n"
		 "gate static\n  recipe demo\n  server \"exec %s -p\"\n  ready tcp:127.0.0.1:1\n  probe true\n",
		 STATIC_PROGRAM);
	refused((const char *[]){ "gate", "-f", kbt_write("s.kbg", suite), NULL },
		"kbfault: gate static: not starting the server: " STATIC_PROGRAM " is statically linked");
}
