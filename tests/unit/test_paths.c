/* Finding recipes by path, by bundled name, and by unique prefix. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kbfault/paths.h"

static char dir[64];

static void touch(const char *name)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/kbpaths-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	touch("q181350-backlog-of-five.kbf");
	touch("q181350-backlog-reset.kbf");
	touch("q236565-connections-not-released.kbf");
	touch("demo.kbf");
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(paths, .init = setup, .fini = teardown);

Test(paths, names_prefixes_and_paths)
{
	const char *dirs[] = { "/nonexistent", dir, NULL };
	char out[4096], want[4096];
	struct kb_diag d;

	cr_assert_eq(kb_recipe_find("demo", dirs, out, sizeof out, &d), 0, "%s", d.msg);
	snprintf(want, sizeof want, "%s/demo.kbf", dir);
	cr_assert_str_eq(out, want);
	cr_assert_eq(kb_recipe_find("q236565", dirs, out, sizeof out, &d), 0, "%s", d.msg);
	snprintf(want, sizeof want, "%s/q236565-connections-not-released.kbf", dir);
	cr_assert_str_eq(out, want);
	cr_assert_eq(kb_recipe_find("q181350-backlog-of-five", dirs, out, sizeof out, &d), 0);
	cr_assert_lt(kb_recipe_find("q181350", dirs, out, sizeof out, &d), 0);
	cr_assert(strstr(d.msg, "matches 2 bundled recipes"), "%s", d.msg);
	cr_assert_lt(kb_recipe_find("q999", dirs, out, sizeof out, &d), 0);
	cr_assert(strstr(d.msg, "no recipe file or bundled recipe named 'q999'"), "%s", d.msg);
	cr_assert(strstr(d.msg, dir), "the message lists where it looked: %s", d.msg);
	cr_assert_eq(kb_recipe_find("./mine.kbf", dirs, out, sizeof out, &d), 0);
	cr_assert_str_eq(out, "./mine.kbf", "a path is taken as it is");
}

Test(paths, directory_order)
{
	char storage[KB_RECIPE_DIRS_MAX][4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	kb_recipe_dirs("/opt/kb/bin", "../share/kbfault/recipes", "/env/dir", "/compiled", storage, dirs);
	cr_assert_str_eq(dirs[0], "/env/dir");
	cr_assert_str_eq(dirs[1], "/opt/kb/bin/../recipes");
	cr_assert_str_eq(dirs[2], "/opt/kb/bin/../share/kbfault/recipes");
	cr_assert_str_eq(dirs[3], "/compiled");
	cr_assert_null(dirs[4]);
}
