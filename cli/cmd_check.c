/*
 * cmd_check.c - `kbfault check`: parse recipes exactly as the shim would
 * and print what was understood, or file:line:col: message for what was
 * not.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kbfault/recipe.h"

static const char usage[] =
	"Usage: kbfault check [-q] [--set NAME=VALUE]... RECIPE...\n"
	"\n"
	"Validates each RECIPE (a .kbf file or a bundled name) and prints its rules as\n"
	"kbfault understands them. Errors are printed as FILE:LINE:COLUMN: MESSAGE; a\n"
	"rule that is valid but can never fire as written gets FILE:LINE: warning: ...\n"
	"(on standard error; a warning does not make the recipe invalid).\n"
	"\n"
	"  -q, --quiet           print only errors and warnings\n"
	"      --set NAME=VALUE  check with a parameter overridden, as `run --set` would\n"
	"  -h, --help            this text\n"
	"\n"
	"Exit status: 0 if every recipe is valid, 1 if any is not, 2 on usage errors.\n";

/* The flags of `kbfault check`, which kbfault(1), the README and --help
 * must all show (tests/preload/test_docs.c). */
const struct option kb_check_options[] = {
	{ "quiet", no_argument, NULL, 'q' },
	{ "set", required_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kb_cmd_check(int argc, char **argv)
{
	struct kb_overrides ov;
	struct kb_diag d;
	char msg[2048];
	bool quiet = false;
	int c, status = KB_EXIT_OK;

	kb_overrides_init(&ov, "--set");
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", kb_check_options, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 's':
			if (kb_overrides_add(&ov, optarg, &d) < 0) {
				kb_diag_format(&d, msg, sizeof msg);
				kb_cli_error("%s", msg);
				return KB_EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return KB_EXIT_OK;
		default:
			fputs(usage, stderr);
			return KB_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		kb_cli_error("check: no recipe given");
		fputs(usage, stderr);
		return KB_EXIT_USAGE;
	}

	char storage[KB_RECIPE_DIRS_MAX][4096], path[4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	kb_locate_recipe_dirs(storage, dirs);
	for (int i = optind; i < argc; i++) {
		struct kb_recipe r;
		struct kb_overrides mine = ov; /* `used` marks are per recipe */

		if (kb_recipe_find(argv[i], dirs, path, sizeof path, &d) < 0 ||
		    kb_recipe_load(path, &mine, &r, &d) < 0) {
			kb_diag_format(&d, msg, sizeof msg);
			fprintf(stderr, "%s\n", msg);
			status = KB_EXIT_FAIL;
			continue;
		}
		fflush(stdout); /* the warnings after what came before them */
		kb_cli_lint(&r);
		if (!quiet) {
			printf("%s: ok: recipe %s, %zu rule%s, seed %llu%s\n", path, r.name, r.nrules,
			       r.nrules == 1 ? "" : "s", (unsigned long long)r.seed,
			       r.has_seed ? "" : " (default)");
			if (r.about[0])
				printf("  about: %s\n", r.about);
			for (size_t k = 0; k < r.nparams; k++)
				printf("  param %s = %s%s\n", r.params[k].name, r.params[k].value,
				       r.params[k].overridden ? " (overridden)" : "");
			for (size_t k = 0; k < r.nrules; k++) {
				char buf[4096];
				kb_rule_describe(&r.rules[k], buf, sizeof buf);
				for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
					printf("  %s\n", line);
			}
		}
		kb_recipe_free(&r);
	}
	return status;
}
