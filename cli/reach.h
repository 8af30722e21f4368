/*
 * reach.h - what an executable's ELF headers say about whether a preloaded
 * library can reach its calls, read before it is started: a program with
 * no program interpreter (static, static-pie) never loads LD_PRELOAD, a
 * Go program makes its own system calls even when it is dynamically
 * linked (cgo), and a program of another ELF class or machine cannot load
 * the library at all - the dynamic linker says so and runs it anyway.
 * Each of those would run without the faults that were asked for.
 */
#ifndef KBFAULT_REACH_H
#define KBFAULT_REACH_H

#include <stdbool.h>
#include <stddef.h>

struct kb_elf {
	bool elf;         /* an ELF file at all */
	unsigned char cls; /* ELFCLASS32 or ELFCLASS64 */
	unsigned machine; /* e_machine */
	unsigned type;    /* e_type: ET_EXEC, ET_DYN */
	bool interp;      /* has a PT_INTERP: the dynamic linker runs it */
	bool go;          /* has Go's build information (.go.buildinfo or its build id note) */
	bool kbfault;     /* exports kbfault_version (the library, not a look-alike) */
};

/* Reads path's headers. 0, or -1 with errno (cannot be opened or read). A
 * file that is not ELF is not an error: e->elf is false. */
int kb_elf_read(const char *path, struct kb_elf *e);

/* Can a library preloaded from lib reach the calls of the program at
 * path? 1: yes; 0: no, with why (a sentence); -1: it cannot be told (not
 * ELF, unreadable): the caller lets the program's own start decide. */
int kb_elf_reachable(const char *path, const struct kb_elf *lib, char *why, size_t len);

/* Is lib a libkbfault.so this kbfault can preload? 0, or -1 with why. */
int kb_elf_check_library(const char *lib, struct kb_elf *out, char *why, size_t len);

/* The program a command will run, looked for through what only wraps it:
 * `env [NAME=VALUE]... PROG`, `sh -c 'exec PROG ...'` (the first simple
 * word of the string, past assignments and `exec`), and `#!` lines
 * (`#!/usr/bin/env python3` names python3). Then, as kb_elf_reachable():
 * 1 reachable, 0 not (why says which program and why), -1 cannot be told.
 * PATH is searched as execvp() searches it. */
int kb_command_reachable(const char *const *argv, const struct kb_elf *lib, char *why, size_t len);

#endif
