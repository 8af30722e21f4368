/*
 * lint.h - rules that parse, and are valid, but can never fire as
 * written: a mistake the parser cannot call an error (the program might
 * bind its local port; a mark might be wanted later), which would
 * otherwise show only as a run with no faults. `kbfault check`, `run`
 * and `gate` print them as warnings; they stop nothing.
 */
#ifndef KBFAULT_LINT_H
#define KBFAULT_LINT_H

#include <stddef.h>

#include "kbfault/diag.h"
#include "kbfault/model.h"

#define KB_LINT_MAX 16

/* Up to max warnings about r, each at its rule's line; their number. */
size_t kb_recipe_lint(const struct kb_recipe *r, struct kb_diag *out, size_t max);

#endif
