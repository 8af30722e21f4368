/*
 * fuzz_recipe.c - libFuzzer target for the recipe parser (make fuzz).
 *
 * Any bytes at all: the parser must either accept them, build a plan and
 * describe every rule, or refuse them with a message that names a file,
 * a line and a column - never crash, hang or read out of bounds. The
 * first line of the input may carry parameter overrides, the way
 * KBFAULT_SET would, so the override path is fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/decide.h"
#include "kbfault/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_recipe r;
	struct kb_diag d;
	struct kb_overrides ov;
	char msg[2048];

	if (size > (1u << 20))
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';

	/* "#set a=1,b=2\n" at the start: overrides, as from KBFAULT_SET */
	kb_overrides_init(&ov, "KBFAULT_SET");
	if (size > 5 && memcmp(text, "#set ", 5) == 0) {
		char *nl = memchr(text, '\n', size);
		if (nl) {
			*nl = '\0';
			if (kb_overrides_add_list(&ov, text + 5, &d) < 0)
				kb_overrides_init(&ov, "KBFAULT_SET");
			*nl = '\n';
		}
	}

	memset(&d, 0, sizeof d);
	if (kb_recipe_parse("fuzz.kbf", text, size, &ov, &r, &d) == 0) {
		static struct kb_counter ctr[KB_MAX_RULES];
		struct kb_plan plan;
		const char *names[] = { "fuzz", NULL };
		if (r.nrules == 0)
			abort(); /* a recipe without rules must be refused */
		if (kb_plan_build(&plan, &r, 1, names, ctr, ctr, &d) == 0)
			kb_plan_free(&plan);
		for (size_t i = 0; i < r.nrules; i++)
			kb_rule_describe(&r.rules[i], msg, sizeof msg);
		kb_recipe_free(&r);
	} else {
		kb_diag_format(&d, msg, sizeof msg);
		/* every refusal says where, and what */
		if (d.msg[0] == '\0' || strncmp(msg, "fuzz.kbf:", 9) != 0)
			abort();
		if (r.rules != NULL)
			abort(); /* a refused recipe holds nothing */
	}
	free(text);
	return 0;
}
