/* make install / uninstall into a DESTDIR: the installed kbfault finds
 * its library and bundled recipes, and uninstall takes everything back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int make(const char *target, const char *destdir)
{
	char cmd[2048];
	const char *src = getenv("KB_SRC");
	snprintf(cmd, sizeof cmd, "make -s -C '%s' BUILD='%s' PREFIX=/usr DESTDIR='%s' %s >/dev/null",
		 src ? src : ".", kbt_build(""), destdir, target);
	return system(cmd);
}

Test(install, installs_runs_and_uninstalls, .timeout = 120)
{
	char dest[600], bin[700], cmd[2048];
	char *out, *err;
	snprintf(dest, sizeof dest, "%s/root", kbt_tmpdir());
	cr_assert_eq(make("install", dest), 0);
	snprintf(bin, sizeof bin, "%s/usr/bin/kbfault", dest);

	cr_assert_eq(kbt_run((const char *[]){ bin, "list", NULL }, NULL, false, 10000, &out, &err), 0, "%s", err);
	cr_assert(strstr(out, "/usr/share/kbfault/recipes"), "recipes found where install put them: %s", out);
	cr_assert(strstr(out, "demo"), "%s", out);

	/* the installed shim, from the installed CLI, with a bundled recipe */
	cr_assert_eq(kbt_run((const char *[]){ bin, "run", "-r", "demo", "--", kbt_build("helpers/kbt-probe"), "listen", "100",
					       NULL },
			     NULL, false, 10000, &out, &err),
		     0, "%s", err);
	cr_assert(strstr(out, "backlog 16"), "%s", out);
	char want[800];
	snprintf(want, sizeof want, "\"recipe_path\":\"%s/usr/share/kbfault/recipes/demo.kbf\"", dest);
	cr_assert(strstr(err, want), "the installed recipe was used: %s", err);
	cr_assert_eq(kbt_run((const char *[]){ bin, "run", "-r", "demo", "--", "/bin/sh", "-c", "echo $LD_PRELOAD", NULL },
			     NULL, false, 10000, &out, &err),
		     0, "%s", err);
	snprintf(want, sizeof want, "%s/usr/lib/kbfault/libkbfault.so", dest);
	cr_assert(strstr(out, want), "the installed library is preloaded: %s", out);

	snprintf(cmd, sizeof cmd, "test -f '%s/usr/share/man/man1/kbfault.1' && test -f '%s/usr/share/man/man5/kbfault-recipe.5'", dest, dest);
	cr_assert_eq(system(cmd), 0, "man pages installed");

	cr_assert_eq(make("uninstall", dest), 0);
	snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -type f)\"", dest);
	cr_assert_eq(system(cmd), 0, "uninstall leaves no file behind");
}
