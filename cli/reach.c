/*
 * reach.c - reading just enough of an ELF file (reach.h): its header, its
 * program headers (PT_INTERP), its section names (Go's build info) and,
 * for the library, its dynamic symbols. Read with pread() and bounds
 * checked throughout: the file may be anything a user names.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reach.h"

/* A table of `count` entries of `size` bytes at `off`, read whole; NULL
 * if it lies outside the file or is absurdly large. */
static void *table(int fd, off_t file_size, uint64_t off, uint64_t count, uint64_t size)
{
	if (count == 0 || size == 0 || count > 65536 || size > 4096 || off > (uint64_t)file_size ||
	    count * size > (uint64_t)file_size - off)
		return NULL;
	void *p = malloc(count * size);
	if (p && pread(fd, p, count * size, (off_t)off) != (ssize_t)(count * size)) {
		free(p);
		return NULL;
	}
	return p;
}

static bool named(const char *strtab, uint64_t strsize, uint64_t at, const char *name)
{
	size_t n = strlen(name);
	return at < strsize && strsize - at > n && memcmp(strtab + at, name, n + 1) == 0;
}

/* ELF64 only: the library is built for the machine kbfault runs on, and a
 * 32-bit program is told apart by its class alone. */
static void read64(int fd, off_t size, const Elf64_Ehdr *h, struct kb_elf *e)
{
	Elf64_Phdr *ph = table(fd, size, h->e_phoff, h->e_phnum, sizeof *ph);
	for (unsigned i = 0; ph && i < h->e_phnum; i++)
		e->interp |= ph[i].p_type == PT_INTERP;
	free(ph);

	Elf64_Shdr *sh = table(fd, size, h->e_shoff, h->e_shnum, sizeof *sh);
	if (sh == NULL || h->e_shstrndx >= h->e_shnum) {
		free(sh);
		return;
	}
	const Elf64_Shdr *names = &sh[h->e_shstrndx];
	char *shstr = table(fd, size, names->sh_offset, names->sh_size, 1);
	for (unsigned i = 0; shstr && i < h->e_shnum; i++) {
		e->go |= named(shstr, names->sh_size, sh[i].sh_name, ".go.buildinfo") ||
			 named(shstr, names->sh_size, sh[i].sh_name, ".note.go.buildid");
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= h->e_shnum ||
		    sh[i].sh_entsize != sizeof(Elf64_Sym))
			continue;
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		Elf64_Sym *syms = table(fd, size, sh[i].sh_offset, sh[i].sh_size / sizeof *syms, sizeof *syms);
		char *str = table(fd, size, strs->sh_offset, strs->sh_size, 1);
		for (uint64_t k = 0; syms && str && k < sh[i].sh_size / sizeof *syms; k++)
			e->kbfault |= syms[k].st_shndx != SHN_UNDEF &&
				      named(str, strs->sh_size, syms[k].st_name, "kbfault_version");
		free(syms);
		free(str);
	}
	free(shstr);
	free(sh);
}

int kb_elf_read(const char *path, struct kb_elf *e)
{
	struct stat st;
	unsigned char ident[EI_NIDENT];

	memset(e, 0, sizeof *e);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		int err = fstat(fd, &st) != 0 ? errno : EINVAL; /* not a regular file: nothing to run */
		close(fd);
		errno = err;
		return -1;
	}
	if (pread(fd, ident, sizeof ident, 0) == (ssize_t)sizeof ident && memcmp(ident, ELFMAG, SELFMAG) == 0) {
		e->elf = true;
		e->cls = ident[EI_CLASS];
		if (e->cls == ELFCLASS64) {
			Elf64_Ehdr h;
			if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h) {
				e->machine = h.e_machine;
				e->type = h.e_type;
				read64(fd, st.st_size, &h, e);
			}
		} else if (e->cls == ELFCLASS32) {
			Elf32_Ehdr h;
			if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h) {
				e->machine = h.e_machine;
				e->type = h.e_type;
			}
		}
	}
	close(fd);
	return 0;
}

int kb_elf_reachable(const char *path, const struct kb_elf *lib, char *why, size_t len)
{
	struct kb_elf e;
	if (kb_elf_read(path, &e) < 0 || !e.elf)
		return -1;
	if (e.cls != lib->cls || e.machine != lib->machine) {
		snprintf(why, len, "%s is a %d-bit program for another machine than libkbfault.so (%d-bit, machine %u)",
			 path, e.cls == ELFCLASS32 ? 32 : 64, lib->cls == ELFCLASS32 ? 32 : 64, lib->machine);
		return 0;
	}
	if (e.go) {
		snprintf(why, len,
			 "%s is a Go program: it makes its own system calls, which a preloaded library never sees",
			 path);
		return 0;
	}
	if (!e.interp) {
		snprintf(why, len, "%s is statically linked (no program interpreter): it never loads a preloaded library",
			 path);
		return 0;
	}
	return 1;
}

int kb_elf_check_library(const char *lib, struct kb_elf *out, char *why, size_t len)
{
	if (kb_elf_read(lib, out) < 0) {
		snprintf(why, len, "%s: %s", lib, strerror(errno));
		return -1;
	}
	if (!out->elf || out->type != ET_DYN) {
		snprintf(why, len, "%s is not a shared library (not an ELF shared object)", lib);
		return -1;
	}
	if (!out->kbfault) {
		snprintf(why, len, "%s is a shared library, but not libkbfault.so (it exports no kbfault_version)", lib);
		return -1;
	}
	struct kb_elf self;
	if (kb_elf_read("/proc/self/exe", &self) == 0 && self.elf &&
	    (self.cls != out->cls || self.machine != out->machine)) {
		snprintf(why, len, "%s is built for another machine or word size than this kbfault", lib);
		return -1;
	}
	return 0;
}

/* name as execvp() finds it: itself if it has a slash, else the first
 * executable regular file of that name along PATH. */
static bool resolve(const char *name, char *out, size_t len)
{
	struct stat st;
	if (name[0] == '\0')
		return false;
	if (strchr(name, '/'))
		return (size_t)snprintf(out, len, "%s", name) < len;
	const char *path = getenv("PATH");
	if (path == NULL || path[0] == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if ((size_t)snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", name) < len && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

static const char *base(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The first simple word of a shell command, past NAME=VALUE assignments
 * and `exec`: false if the command starts with anything else (a quote,
 * an expansion, a compound command), which only a shell can tell. */
static bool first_word(const char *cmd, char *out, size_t len)
{
	static const char simple[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@%,";
	const char *p = cmd;
	for (;;) {
		p += strspn(p, " \t\n");
		size_t n = strspn(p, simple);
		if (n == 0 || n >= len || !(p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\n' || p[n] == '=' ||
					    p[n] == ';' || p[n] == '&' || p[n] == '|'))
			return false;
		if (p[n] == '=') { /* NAME=VALUE: a simple value only */
			size_t v = strspn(p + n + 1, simple);
			p += n + 1 + v;
			if (*p && *p != ' ' && *p != '\t')
				return false;
			continue;
		}
		if (n == 4 && strncmp(p, "exec", 4) == 0) {
			p += 4;
			continue;
		}
		memcpy(out, p, n);
		out[n] = '\0';
		return true;
	}
}

/* The `#!` line of path: its interpreter and the one argument after it. */
static bool shebang(const char *path, char *interp, size_t ilen, char *arg, size_t alen)
{
	char line[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	ssize_t n = pread(fd, line, sizeof line - 1, 0);
	close(fd);
	if (n < 3 || line[0] != '#' || line[1] != '!')
		return false;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	char *p = line + 2 + strspn(line + 2, " \t");
	size_t w = strcspn(p, " \t");
	snprintf(interp, ilen, "%.*s", (int)w, p);
	p += w;
	p += strspn(p, " \t");
	snprintf(arg, alen, "%.*s", (int)strcspn(p, " \t"), p);
	return interp[0] != '\0';
}

static int reachable_at(const char *const *argv, const struct kb_elf *lib, char *why, size_t len, int depth)
{
	char path[4096], word[256];
	if (depth > 4 || argv[0] == NULL || !resolve(argv[0], path, sizeof path))
		return -1;
	char interp[256], arg[256];
	if (shebang(path, interp, sizeof interp, arg, sizeof arg)) {
		/* #!/usr/bin/env [-S] PROG: the program env will run */
		if (strcmp(base(interp), "env") == 0 && arg[0] && (arg[0] != '-' || strcmp(arg, "-S") == 0))
			return arg[0] == '-' ? -1 : reachable_at((const char *[]){ arg, NULL }, lib, why, len, depth + 1);
		return reachable_at((const char *[]){ interp, NULL }, lib, why, len, depth + 1);
	}
	int here = kb_elf_reachable(path, lib, why, len);
	if (here != 1)
		return here;
	const char *name = base(path);
	if (strcmp(name, "env") == 0) {
		size_t i = 1;
		while (argv[i] && (strchr(argv[i], '=') || strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-") == 0))
			i++;
		if (argv[i] && strcmp(argv[i], "--") == 0)
			i++;
		if (argv[i] == NULL || argv[i][0] == '-')
			return 1; /* options we do not follow: env itself is reachable */
		int next = reachable_at(argv + i, lib, why, len, depth + 1);
		return next == 0 ? 0 : 1;
	}
	if ((strcmp(name, "sh") == 0 || strcmp(name, "bash") == 0 || strcmp(name, "dash") == 0) && argv[1] &&
	    strcmp(argv[1], "-c") == 0 && argv[2] && first_word(argv[2], word, sizeof word)) {
		int next = reachable_at((const char *[]){ word, NULL }, lib, why, len, depth + 1);
		return next == 0 ? 0 : 1;
	}
	return 1;
}

int kb_command_reachable(const char *const *argv, const struct kb_elf *lib, char *why, size_t len)
{
	return reachable_at(argv, lib, why, len, 0);
}
