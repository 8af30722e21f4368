/*
 * recipe_text.h - parsing a recipe given as text, for the unit tests that
 * check what the parser accepts and how it words a refusal.
 */
#ifndef KBT_RECIPE_TEXT_H
#define KBT_RECIPE_TEXT_H

#include "kbfault/recipe.h"

/* The last kbt_parse()'s diagnostic, "" when it parsed. */
extern char kbt_message[2048];

/* Parses text as the recipe "t.kbf"; returns kb_recipe_parse()'s result. */
int kbt_parse(const char *text, struct kb_overrides *ov, struct kb_recipe *r);

/* Asserts the recipe is refused with exactly this "file:line:col: " prefix,
 * a message containing `needle`, and nothing left to free. */
void kbt_refused(const char *text, const char *where, const char *needle);

#endif
