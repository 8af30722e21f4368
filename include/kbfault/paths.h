/*
 * paths.h - finding a recipe by file name or by bundled name.
 *
 * KBFAULT_RECIPE and `kbfault run -r` accept either a path or the name of
 * a bundled recipe. A value that contains a '/' or ends in ".kbf" is a
 * path. Anything else is looked up in the recipe directories, in order,
 * as NAME.kbf or as the unique file whose name starts with NAME (so
 * "q181350" finds "q181350-backlog-of-five.kbf").
 */
#ifndef KBFAULT_PATHS_H
#define KBFAULT_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "kbfault/diag.h"

#define KB_RECIPE_DIRS_MAX 4

bool kb_recipe_ref_is_path(const char *ref);

/* Resolves ref against dirs (NULL-terminated; missing directories are
 * skipped) into out. */
int kb_recipe_find(const char *ref, const char *const *dirs, char *out, size_t len,
		   struct kb_diag *err);

/* The recipe directories for a library or program that lives in
 * `bin_dir`: $KBFAULT_RECIPE_DIR when given (env_dir), then the build
 * tree's recipes/ beside bin_dir, then bin_dir/share_rel (where `make
 * install` puts them relative to that binary), then the compiled-in
 * default. Writes the paths into storage and the NULL-terminated list
 * into dirs. */
void kb_recipe_dirs(const char *bin_dir, const char *share_rel, const char *env_dir,
		    const char *compiled_dir, char storage[KB_RECIPE_DIRS_MAX][4096],
		    const char *dirs[KB_RECIPE_DIRS_MAX + 1]);

#endif
