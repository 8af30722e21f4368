/*
 * locate.c - where the library and the bundled recipes are, relative to
 * the kbfault binary: build/ in a source tree, or PREFIX/bin beside
 * PREFIX/lib/kbfault and PREFIX/share/kbfault after `make install`.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "reach.h"

void kb_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kbfault: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void exe_dir(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	out[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(out, len, "%s", exe);
}

static int locate(char *out, size_t len)
{
	char dir[PATH_MAX];
	char cand[3][PATH_MAX + 64];
	const char *env = getenv("KBFAULT_LIB");

	if (env && env[0]) {
		if (access(env, R_OK) != 0) {
			kb_cli_error("KBFAULT_LIB=%s: no such readable file", env);
			return -1;
		}
		return realpath(env, out) ? 0 : (snprintf(out, len, "%s", env), 0);
	}
	exe_dir(dir, sizeof dir);
	snprintf(cand[0], sizeof cand[0], "%s/libkbfault.so", dir);
	snprintf(cand[1], sizeof cand[1], "%s/../lib/kbfault/libkbfault.so", dir);
	snprintf(cand[2], sizeof cand[2], "%s/libkbfault.so", KB_PKGLIBDIR);
	for (int i = 0; i < 3; i++) {
		char real[PATH_MAX];
		if (access(cand[i], R_OK) == 0 && realpath(cand[i], real)) {
			if ((size_t)snprintf(out, len, "%s", real) >= len)
				break;
			return 0;
		}
	}
	kb_cli_error("cannot find libkbfault.so (looked in %s, %s/../lib/kbfault and %s); set KBFAULT_LIB",
		     dir, dir, KB_PKGLIBDIR);
	return -1;
}

int kb_locate_library(char *out, size_t len, struct kb_elf *lib)
{
	char why[PATH_MAX + 200];
	if (locate(out, len) < 0)
		return -1;
	if (kb_elf_check_library(out, lib, why, sizeof why) < 0) {
		const char *env = getenv("KBFAULT_LIB");
		if (env && env[0])
			kb_cli_error("KBFAULT_LIB=%s: %s", env, why);
		else
			kb_cli_error("%s", why);
		return -1;
	}
	return 0;
}

void kb_locate_recipe_dirs(char storage[KB_RECIPE_DIRS_MAX][4096],
			   const char *dirs[KB_RECIPE_DIRS_MAX + 1])
{
	char dir[PATH_MAX];

	exe_dir(dir, sizeof dir);
	kb_recipe_dirs(dir, "../share/kbfault/recipes", getenv("KBFAULT_RECIPE_DIR"), KB_RECIPE_DIR,
		       storage, dirs);
}
