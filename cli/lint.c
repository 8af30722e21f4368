/*
 * lint.c - the recipe's warnings (kbfault/lint.h) on standard error, as
 * check, run and gate print them: one line each, FILE:LINE: warning: ...
 */
#include <stdio.h>

#include "cli.h"
#include "kbfault/lint.h"

size_t kb_cli_lint(const struct kb_recipe *r)
{
	struct kb_diag w[KB_LINT_MAX];
	char msg[2048];
	size_t n = kb_recipe_lint(r, w, KB_LINT_MAX);
	for (size_t i = 0; i < n; i++) {
		kb_diag_format(&w[i], msg, sizeof msg);
		fprintf(stderr, "%s\n", msg);
	}
	return n;
}
