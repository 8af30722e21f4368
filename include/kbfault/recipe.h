/*
 * recipe.h - turning a .kbf file into an immutable struct kb_recipe.
 *
 * The grammar is documented for users in recipes/README.md and
 * kbfault-recipe(5). Parameters (`set NAME VALUE`) can be overridden from
 * outside without editing the file: struct kb_overrides carries
 * NAME=VALUE pairs from KBFAULT_SET or `kbfault run --set`.
 */
#ifndef KBFAULT_RECIPE_H
#define KBFAULT_RECIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "kbfault/diag.h"
#include "kbfault/model.h"

struct kb_override {
	char name[KB_NAME_MAX];
	char value[256];
	bool used;
};

struct kb_overrides {
	char origin[32]; /* "KBFAULT_SET" or "--set", for messages */
	size_t n;
	struct kb_override item[KB_MAX_PARAMS];
};

void kb_overrides_init(struct kb_overrides *ov, const char *origin);

/* Adds one NAME=VALUE; a later one for the same NAME replaces it. */
int kb_overrides_add(struct kb_overrides *ov, const char *assignment, struct kb_diag *err);

/* Adds a list of NAME=VALUE separated by commas or blanks (KBFAULT_SET).
 * A value may be double-quoted, to hold blanks and commas; inside the
 * quotes \" and \\ stand for " and \, as in a recipe. */
int kb_overrides_add_list(struct kb_overrides *ov, const char *list, struct kb_diag *err);

/* Writes ov as a list kb_overrides_add_list reads back as it is, quoting
 * the values that need it: what `kbfault run` puts in KBFAULT_SET.
 * Returns 0, or -1 if it does not fit in len bytes. */
int kb_overrides_format(const struct kb_overrides *ov, char *buf, size_t len);

/* Parses `text` (len bytes, NUL-terminated, modified in place) as the
 * recipe file `path`. `ov` may be NULL. On failure *out is left empty
 * (nothing to free) and err says where and why. */
int kb_recipe_parse(const char *path, char *text, size_t len, struct kb_overrides *ov,
		    struct kb_recipe *out, struct kb_diag *err);

/* Reads and parses a recipe file. */
int kb_recipe_load(const char *path, struct kb_overrides *ov, struct kb_recipe *out,
		   struct kb_diag *err);

void kb_recipe_free(struct kb_recipe *r);

/* A human description of a rule, several lines, for `kbfault check`. */
void kb_rule_describe(const struct kb_rule *rule, char *buf, size_t len);

#endif
