/*
 * main.c - the kbfault command: dispatch, --help and --version.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kbfault/diag.h"

static const char usage[] =
	"kbfault - reproduce connection-handling failures in unmodified TCP servers and clients\n"
	"\n"
	"Usage:\n"
	"  kbfault run [-r RECIPE] [-l LOG] [--seed N] [--set NAME=VALUE]... -- CMD [ARGS...]\n"
	"  kbfault check [-q] [--set NAME=VALUE]... RECIPE...\n"
	"  kbfault report [--json] [--html FILE] LOG...\n"
	"  kbfault list [--json]\n"
	"  kbfault gate -r RECIPE --server CMD --ready tcp:HOST:PORT --probe CMD [...]\n"
	"  kbfault gate -f SUITE [--only NAME]... [--junit FILE] [--out DIR]\n"
	"  kbfault help [COMMAND]      kbfault --help      kbfault --version\n"
	"\n"
	"Commands:\n"
	"  run      run CMD with libkbfault.so preloaded and RECIPE's faults armed\n"
	"  check    validate recipes and print their rules as kbfault understands them\n"
	"  report   summarise an injection log by rule, call, action and process\n"
	"           (--html FILE: a page with a timeline of the injections)\n"
	"  list     list the bundled recipes with a line about each\n"
	"  gate     pass only if a service survives a recipe: the probe succeeds, faults\n"
	"           were injected that changed calls, the symptom was seen (--expect),\n"
	"           the server still runs (for CI; --junit FILE)\n"
	"  help     help [COMMAND]: this text, or COMMAND --help\n"
	"\n"
	"RECIPE is a .kbf file or the name of a bundled recipe; a unique prefix will do\n"
	"(`kbfault run -r q236565 -- ./server`).\n"
	"\n"
	"Environment (read once by the preloaded library when the program starts):\n"
	"  KBFAULT_RECIPE      recipe file or bundled name; unset means pass-through\n"
	"  KBFAULT_LOG         injection log, JSON Lines (default: stderr)\n"
	"  KBFAULT_SEED        seed for probabilistic rules (default: the recipe's, else 0)\n"
	"  KBFAULT_SET         parameter overrides: NAME=VALUE[,NAME=VALUE...]; a value\n"
	"                      with commas or blanks in double quotes\n"
	"  KBFAULT_RECIPE_DIR  a directory searched first for bundled recipe names\n"
	"  KBFAULT_LIB         libkbfault.so to preload (for `kbfault run` and `gate`)\n"
	"\n"
	"Exit status:\n"
	"  0    success\n"
	"  1    check: a recipe is invalid; list: a bundled recipe is invalid;\n"
	"       report: a log is unreadable or has lines that are not kbfault objects\n"
	"       (torn lines are not errors)\n"
	"  2    usage error (check, report, list)\n"
	"  gate: 0 every gate passed, 1 a gate failed, 2 bad flags or suite, a gate\n"
	"       that could not run as configured (recipe does not load, port taken,\n"
	"       server exited or never listened), or an interruption; 125 no library\n"
	"       to preload, or a server it cannot enter (static, Go)\n"
	"  run: the command's own status; 125 if kbfault failed before the command\n"
	"       started (bad recipe, flag, log or library, or a program the library\n"
	"       cannot enter: static, Go), 126 if it cannot be executed, 127 if it is\n"
	"       not found\n"
	"  A program started with a bad recipe or KBFAULT_* value exits with 125 before\n"
	"  its main() runs, after saying why on stderr.\n"
	"\n"
	"See kbfault(1) and kbfault-recipe(5).\n";

/* The commands, as git keeps its own: a name and what runs it. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "run", kb_cmd_run },
	{ "check", kb_cmd_check },
	{ "report", kb_cmd_report },
	{ "list", kb_cmd_list },
	{ "gate", kb_cmd_gate },
};

int main(int argc, char **argv)
{
	char *help_argv[3] = { NULL, (char *)"--help", NULL };

	if (argc < 2) {
		fputs(usage, stderr);
		return KB_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	bool help = strcmp(cmd, "help") == 0;
	if (help) /* `help X` is X --help, for the top level's words too */
		cmd = argc < 3 ? "--help" : argv[2];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return KB_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("kbfault %s\n", KB_VERSION);
		return KB_EXIT_OK;
	}
	if (help) {
		help_argv[0] = argv[2];
		argv = help_argv;
		argc = 2;
	} else {
		argv++;
		argc--;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc, argv);
	char names[128] = "";
	size_t used = 0;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		kb_append(names, sizeof names, &used, "%s, ", commands[i].name);
	kb_cli_error("unknown command '%s' (expected %shelp; see kbfault --help)", cmd, names);
	return KB_EXIT_USAGE;
}
