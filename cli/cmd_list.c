/*
 * cmd_list.c - `kbfault list`: the bundled recipes and their `about`
 * lines. A bundled recipe that does not parse is listed with its error
 * and makes the exit status 1: shipping a broken recipe is a bug.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kbfault/json.h"
#include "kbfault/recipe.h"

static const char usage[] =
	"Usage: kbfault list [--json]\n"
	"\n"
	"Lists the bundled recipes (the first recipe directory that has any:\n"
	"$KBFAULT_RECIPE_DIR, the source tree's recipes/, or the installed ones).\n"
	"\n"
	"  --json      one JSON object per recipe: name, path, about, rules\n"
	"  -h, --help  this text\n";

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The flags of `kbfault list`, which kbfault(1), the README and --help
 * must all show (tests/preload/test_docs.c). */
const struct option kb_list_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kb_cmd_list(int argc, char **argv)
{
	bool json = false;
	int c, status = KB_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", kb_list_options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(usage, stdout); return KB_EXIT_OK;
		default: fputs(usage, stderr); return KB_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		kb_cli_error("list: unexpected argument '%s'", argv[optind]);
		return KB_EXIT_USAGE;
	}

	char storage[KB_RECIPE_DIRS_MAX][4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	kb_locate_recipe_dirs(storage, dirs);
	for (size_t i = 0; dirs[i]; i++) {
		DIR *d = opendir(dirs[i]);
		char *names[512];
		size_t n = 0;
		struct dirent *e;

		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL && n < 512) {
			size_t l = strlen(e->d_name);
			if (l > 4 && strcmp(e->d_name + l - 4, ".kbf") == 0)
				names[n++] = strdup(e->d_name);
		}
		closedir(d);
		if (n == 0)
			continue;
		qsort(names, n, sizeof names[0], by_name);
		if (!json)
			printf("bundled recipes in %s:\n", dirs[i]);
		for (size_t k = 0; k < n; k++) {
			char path[4096 + 300], msg[2048];
			struct kb_recipe r;
			struct kb_diag diag;
			snprintf(path, sizeof path, "%s/%s", dirs[i], names[k]);
			bool ok = kb_recipe_load(path, NULL, &r, &diag) == 0;
			if (!ok) {
				kb_diag_format(&diag, msg, sizeof msg);
				status = KB_EXIT_FAIL;
			}
			if (json) {
				char a[600], b[600], p[9000];
				kb_json_escape(ok ? r.name : names[k], a, sizeof a);
				kb_json_escape(ok ? r.about : msg, b, sizeof b);
				kb_json_escape(path, p, sizeof p);
				printf("{\"name\":%s,\"path\":%s,\"%s\":%s,\"rules\":%zu}\n", a, p,
				       ok ? "about" : "error", b, ok ? r.nrules : 0);
			} else if (ok) {
				printf("  %-40s %s\n", r.name, r.about[0] ? r.about : "(no about line)");
			} else {
				printf("  %-40s INVALID: %s\n", names[k], msg);
			}
			if (ok)
				kb_recipe_free(&r);
			free(names[k]);
		}
		return status;
	}
	kb_cli_error("list: no recipe directory found (set KBFAULT_RECIPE_DIR)");
	return KB_EXIT_FAIL;
}
