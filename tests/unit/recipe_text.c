/* recipe_text.c - see recipe_text.h */
#include "recipe_text.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

char kbt_message[2048];

int kbt_parse(const char *text, struct kb_overrides *ov, struct kb_recipe *r)
{
	struct kb_diag d;
	char *copy = strdup(text);
	int rc = kb_recipe_parse("t.kbf", copy, strlen(copy), ov, r, &d);
	kbt_message[0] = '\0';
	if (rc < 0)
		kb_diag_format(&d, kbt_message, sizeof kbt_message);
	free(copy);
	return rc;
}

void kbt_refused(const char *text, const char *where, const char *needle)
{
	struct kb_recipe r;
	cr_assert_lt(kbt_parse(text, NULL, &r), 0, "recipe should be refused:\n%s", text);
	cr_assert_eq(strncmp(kbt_message, where, strlen(where)), 0, "expected '%s...', got '%s'", where, kbt_message);
	cr_assert(strstr(kbt_message, needle), "expected '%s' in '%s'", needle, kbt_message);
	cr_assert_null(r.rules, "a refused recipe holds nothing to free");
}
