/*
 * cli.h - what the kbfault command's parts share: exit codes, the
 * subcommands, and where the library and recipes are.
 */
#ifndef KBFAULT_CLI_H
#define KBFAULT_CLI_H

#include <getopt.h>
#include <stddef.h>

#include "kbfault/paths.h"

/* Exit codes, documented in kbfault(1) and the README. */
enum {
	KB_EXIT_OK = 0,
	KB_EXIT_FAIL = 1,      /* check: a recipe is invalid; report: bad log lines; gate: a gate failed */
	KB_EXIT_USAGE = 2,     /* bad flags or arguments */
	KB_EXIT_RUN_SETUP = 125, /* run: kbfault failed before the command started */
	KB_EXIT_NOEXEC = 126,  /* run: the command could not be executed */
	KB_EXIT_NOTFOUND = 127 /* run: the command was not found */
};

/* Each command's flags (getopt_long tables), ending with a NULL name. */
extern const struct option kb_run_options[], kb_check_options[], kb_report_options[], kb_list_options[],
	kb_gate_options[];

int kb_cmd_run(int argc, char **argv);
int kb_cmd_check(int argc, char **argv);
int kb_cmd_report(int argc, char **argv);
int kb_cmd_list(int argc, char **argv);
int kb_cmd_gate(int argc, char **argv);

/* Prints "kbfault: " and the message to stderr. */
void kb_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct kb_elf;

/* Path of libkbfault.so for this kbfault binary ($KBFAULT_LIB, or beside
 * it), checked to be a libkbfault.so this kbfault can preload (reach.h);
 * what it is in *lib. -1 with the message printed: a program started
 * with anything else would run without its faults. */
int kb_locate_library(char *out, size_t len, struct kb_elf *lib);

struct kb_recipe;

/* Prints r's warnings, rules that can never fire (kbfault/lint.h), on
 * standard error; how many there were. */
size_t kb_cli_lint(const struct kb_recipe *r);

/* The recipe directories, in lookup order. */
void kb_locate_recipe_dirs(char storage[KB_RECIPE_DIRS_MAX][4096],
			   const char *dirs[KB_RECIPE_DIRS_MAX + 1]);

#endif
