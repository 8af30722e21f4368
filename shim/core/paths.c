/*
 * paths.c - recipe lookup; see paths.h for the rules.
 */
#include "kbfault/paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool kb_recipe_ref_is_path(const char *ref)
{
	size_t n = strlen(ref);
	return strchr(ref, '/') != NULL || (n > 4 && strcmp(ref + n - 4, ".kbf") == 0);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Does the recipe file at path name itself `name` (`recipe NAME` among
 * its header lines, before the first rule)? Reads its first 8 KiB with
 * plain system calls: the shim may ask while it starts. */
static bool declares(const char *path, const char *name)
{
	char text[8193];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	size_t nl = strlen(name);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "rule", 4) == 0 && (p[4] == ' ' || p[4] == '\t'))
			return false; /* past the header */
		if (strncmp(p, "recipe", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
			continue;
		p += 6 + strspn(p + 6, " \t");
		size_t end = strcspn(p, " \t\r\n#");
		return end == nl && strncmp(p, name, nl) == 0;
	}
	return false;
}

/* A bundled recipe's path without the "bin/../recipes" detours, so what
 * messages and logs show is the file a user would open. */
static int found(const char *path, char *out, size_t len, struct kb_diag *err)
{
	char real[PATH_MAX];
	const char *p = realpath(path, real) ? real : path;

	if ((size_t)snprintf(out, len, "%s", p) >= len)
		return kb_diag_set(err, path, 0, 0, "path too long");
	return 0;
}

int kb_recipe_find(const char *ref, const char *const *dirs, char *out, size_t len,
		   struct kb_diag *err)
{
	char tried[1024] = "";
	size_t used = 0;

	if (ref[0] == '\0')
		return kb_diag_set(err, "", 0, 0, "empty recipe name");
	if (kb_recipe_ref_is_path(ref)) {
		if ((size_t)snprintf(out, len, "%s", ref) >= len)
			return kb_diag_set(err, ref, 0, 0, "path too long");
		return 0;
	}
	for (size_t i = 0; dirs[i]; i++) {
		char exact[4096 + 80];
		char match[4096 + 300] = "";
		size_t matches = 0;
		/* getdents64 rather than opendir: the shim may look a recipe up
		 * while it starts, and must not call the host's malloc then */
		int d = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (d < 0)
			continue;
		kb_append(tried, sizeof tried, &used, "%s%s", used ? ", " : "", dirs[i]);
		snprintf(exact, sizeof exact, "%s/%s.kbf", dirs[i], ref);
		if (is_file(exact)) {
			close(d);
			return found(exact, out, len, err);
		}
		size_t rl = strlen(ref);
		char buf[4096] __attribute__((aligned(8)));
		ssize_t got;
		while ((got = getdents64(d, buf, sizeof buf)) > 0) {
			for (ssize_t off = 0; off < got;) {
				struct dirent64 *e = (struct dirent64 *)(buf + off);
				size_t n = strlen(e->d_name);
				if (n > 4 && strcmp(e->d_name + n - 4, ".kbf") == 0 &&
				    strncmp(e->d_name, ref, rl) == 0) {
					matches++;
					snprintf(match, sizeof match, "%s/%s", dirs[i], e->d_name);
				}
				off += e->d_reclen;
			}
		}
		if (matches == 0 && lseek(d, 0, SEEK_SET) == 0) {
			/* no file of that name: one that says `recipe NAME`, the
			 * name `kbfault list` shows */
			while ((got = getdents64(d, buf, sizeof buf)) > 0) {
				for (ssize_t off = 0; off < got;) {
					struct dirent64 *e = (struct dirent64 *)(buf + off);
					size_t n = strlen(e->d_name);
					char path[4096 + 300];
					snprintf(path, sizeof path, "%s/%s", dirs[i], e->d_name);
					if (n > 4 && strcmp(e->d_name + n - 4, ".kbf") == 0 && is_file(path) &&
					    declares(path, ref)) {
						matches++;
						snprintf(match, sizeof match, "%s", path);
					}
					off += e->d_reclen;
				}
			}
		}
		close(d);
		if (matches == 1)
			return found(match, out, len, err);
		if (matches > 1)
			return kb_diag_set(err, "", 0, 0,
					   "recipe name '%s' matches %zu bundled recipes in %s; give more of the name (see `kbfault list`)",
					   ref, matches, dirs[i]);
	}
	return kb_diag_set(err, "", 0, 0,
			   "no recipe file or bundled recipe named '%s' (looked in: %s; see `kbfault list`)",
			   ref, used ? tried : "no recipe directory exists");
}

void kb_recipe_dirs(const char *bin_dir, const char *share_rel, const char *env_dir,
		    const char *compiled_dir, char storage[KB_RECIPE_DIRS_MAX][4096],
		    const char *dirs[KB_RECIPE_DIRS_MAX + 1])
{
	size_t n = 0;

	if (env_dir && env_dir[0])
		snprintf(storage[n++], 4096, "%s", env_dir);
	if (bin_dir && bin_dir[0]) {
		snprintf(storage[n++], 4096, "%s/../recipes", bin_dir);
		snprintf(storage[n++], 4096, "%s/%s", bin_dir, share_rel);
	}
	if (compiled_dir && compiled_dir[0])
		snprintf(storage[n++], 4096, "%s", compiled_dir);
	for (size_t i = 0; i < n; i++) {
		/* canonical where it exists: "PREFIX/share/...", not "bin/../share/..." */
		char real[PATH_MAX];
		if (realpath(storage[i], real))
			snprintf(storage[i], 4096, "%s", real);
		dirs[i] = storage[i];
	}
	dirs[n] = NULL;
}
