/*
 * cmd_run.c - `kbfault run`: start a command with the shim preloaded.
 *
 * Everything that can be checked before the command starts is checked
 * here (the recipe parses, the seed is a number, the log can be opened),
 * so a mistake is reported once, by kbfault, with exit status 125, rather
 * than by every process of the command; and so is a command the library
 * could not enter (reach.h), which would run without its faults. Parameters are checked as the
 * library will see them: the KBFAULT_SET it is handed, read back with the
 * library's own reader. Then kbfault becomes the command
 * (execvp): its exit status and signals are the command's own.
 */
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "reach.h"
#include "kbfault/json.h"
#include "kbfault/logfile.h"
#include "kbfault/recipe.h"
#include "kbfault/scan.h"

static const char usage[] =
	"Usage: kbfault run [-r RECIPE] [-l LOG] [--seed N] [--set NAME=VALUE]... -- CMD [ARGS...]\n"
	"\n"
	"Runs CMD with libkbfault.so preloaded (added in front of any LD_PRELOAD) and\n"
	"RECIPE's faults armed in CMD and every program it starts.\n"
	"\n"
	"  -r, --recipe RECIPE   a .kbf file or a bundled recipe name (default: $KBFAULT_RECIPE)\n"
	"  -l, --log LOG         append the injection log (JSON Lines) to LOG (default: stderr);\n"
	"                        /dev/stdout, /dev/stderr, /dev/fd/N: the command's descriptor\n"
	"      --seed N          seed for probabilistic rules\n"
	"      --set NAME=VALUE  override a recipe parameter; may be repeated\n"
	"  -h, --help            this text\n"
	"\n"
	"CMD must be a program the library can enter: a statically linked program or a\n"
	"Go program (which makes its own system calls) is refused, looked for through\n"
	"`env`, `sh -c 'exec ...'` and #! lines.\n"
	"\n"
	"Exit status: CMD's own; 125 if kbfault failed before CMD started (a bad recipe,\n"
	"log or library, or a program the library cannot enter), 126 if CMD cannot be\n"
	"executed, 127 if CMD is not found.\n";

/* Where the command's log would have gone: -l, else $KBFAULT_LOG. */
static const char *run_log;

/* A refusal, on standard error and, as the library writes its own
 * errors, as an "error" line in the log: a CI job that keeps only the log
 * sees why nothing ran. Returns 125. */
static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...)
{
	char msg[4096], line[4600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kb_cli_error("%s", msg);
	int fd;
	int dest = kb_logdest_parse(run_log, &fd);
	if (dest == KB_LOGDEST_PATH) {
		char why[400];
		fd = kb_logfile_open(run_log, 0, why, sizeof why);
	} else if (dest == KB_LOGDEST_FD) {
		fd = fcntl(fd, F_GETFD) < 0 ? -1 : dup(fd);
	} else {
		return KB_EXIT_RUN_SETUP; /* standard error: said above */
	}
	if (fd < 0)
		return KB_EXIT_RUN_SETUP;
	struct timespec now;
	struct kb_jw w;
	clock_gettime(CLOCK_REALTIME, &now);
	kb_jw_begin(&w, line, sizeof line);
	kb_jw_str(&w, "event", "error");
	kb_jw_fixed(&w, "ts", (uint64_t)now.tv_sec, (uint64_t)now.tv_nsec / 1000, 6);
	kb_jw_fixed(&w, "t", 0, 0, 6);
	kb_jw_i64(&w, "pid", getpid());
	kb_jw_i64(&w, "tid", gettid());
	kb_jw_str(&w, "program", "kbfault");
	kb_jw_str(&w, "message", msg);
	kb_jw_str(&w, "version", KB_VERSION);
	size_t n = kb_jw_end(&w);
	if (write(fd, line, n) != (ssize_t)n)
		kb_cli_error("run: could not write the error to the log %s either", run_log);
	close(fd);
	return KB_EXIT_RUN_SETUP;
}

/* The flags of `kbfault run`, which kbfault(1), the README and --help
 * must all show (tests/preload/test_docs.c). */
const struct option kb_run_options[] = {
	{ "recipe", required_argument, NULL, 'r' },
	{ "log", required_argument, NULL, 'l' },
	{ "seed", required_argument, NULL, 'S' },
	{ "set", required_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kb_cmd_run(int argc, char **argv)
{
	const char *recipe = getenv("KBFAULT_RECIPE");
	const char *log = NULL, *seed = NULL;
	struct kb_overrides ov;
	struct kb_diag d;
	char msg[2048];
	int c;

	kb_overrides_init(&ov, "--set");
	const char *env_set = getenv("KBFAULT_SET");
	if (env_set && kb_overrides_add_list(&ov, env_set, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		kb_cli_error("KBFAULT_SET: %s", msg);
		return KB_EXIT_RUN_SETUP;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "+r:l:h", kb_run_options, NULL)) != -1) {
		switch (c) {
		case 'r': recipe = optarg; break;
		case 'l': log = optarg; break;
		case 'S': seed = optarg; break;
		case 's':
			if (kb_overrides_add(&ov, optarg, &d) < 0) {
				kb_diag_format(&d, msg, sizeof msg);
				kb_cli_error("%s", msg);
				return KB_EXIT_RUN_SETUP;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return KB_EXIT_OK;
		default:
			fputs(usage, stderr);
			return KB_EXIT_RUN_SETUP;
		}
	}
	run_log = log ? log : getenv("KBFAULT_LOG");
	if (optind >= argc)
		return refuse("run: no command given (kbfault run -r RECIPE -- CMD [ARGS...])");
	if (recipe == NULL || recipe[0] == '\0')
		return refuse("run: no recipe (give -r RECIPE, or set KBFAULT_RECIPE; `kbfault list` shows the bundled ones)");

	char storage[KB_RECIPE_DIRS_MAX][4096], path[4096], abs[PATH_MAX];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	kb_locate_recipe_dirs(storage, dirs);
	if (kb_recipe_find(recipe, dirs, path, sizeof path, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		return refuse("%s", msg);
	}
	/* What the library will read: KBFAULT_SET as written below, read back
	 * with the library's own reader, and the recipe checked with that */
	char set_list[KB_MAX_PARAMS * 600];
	struct kb_overrides as_read;
	kb_overrides_init(&as_read, "--set");
	if (kb_overrides_format(&ov, set_list, sizeof set_list) < 0)
		return refuse("--set: the parameters do not fit in KBFAULT_SET");
	if (kb_overrides_add_list(&as_read, set_list, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		return refuse("%s", msg);
	}
	struct kb_recipe r;
	if (kb_recipe_load(path, &as_read, &r, &d) < 0) {
		kb_diag_format(&d, msg, sizeof msg);
		return refuse("%s", msg);
	}
	kb_cli_lint(&r); /* rules that can never fire: said, not refused */
	kb_recipe_free(&r);
	if (realpath(path, abs) == NULL)
		snprintf(abs, sizeof abs, "%s", path);

	uint64_t seed_value;
	if (seed && kb_scan_u64(seed, UINT64_MAX, &seed_value) < 0)
		return refuse("--seed: expected a whole number, got '%s'", seed);

	char log_abs[PATH_MAX + 2];
	int log_fd;
	int dest = kb_logdest_parse(log, &log_fd);
	if (dest == KB_LOGDEST_FD) {
		/* the command's own descriptor: it inherits kbfault's */
		int fl = fcntl(log_fd, F_GETFD);
		if (fl < 0 || (fl & FD_CLOEXEC)) {
			kb_cli_error("--log %s: descriptor %d is not open%s", log, log_fd,
				     fl < 0 ? "" : " for the command (it is close-on-exec)");
			return KB_EXIT_RUN_SETUP;
		}
	} else if (dest == KB_LOGDEST_PATH) {
		/* absolute, so a daemon that changes directory logs to the same file */
		char cwd[PATH_MAX];
		if (log[0] != '/' && getcwd(cwd, sizeof cwd))
			snprintf(log_abs, sizeof log_abs, "%s/%s", cwd, log);
		else
			snprintf(log_abs, sizeof log_abs, "%s", log);
		log = log_abs;
		/* Opened here, with the library's rules, so that a log that
		 * cannot be is refused before the command starts - but not a
		 * FIFO: opening and closing it would end the stream for its
		 * reader before the command writes a line. The library waits
		 * for a FIFO's reader itself (logfile.h). */
		struct stat st;
		if (lstat(log, &st) != 0 || !S_ISFIFO(st.st_mode)) {
			char why[400];
			int fd = kb_logfile_open(log, 0, why, sizeof why);
			if (fd < 0) {
				kb_cli_error("--log %s: %s", log, why);
				return KB_EXIT_RUN_SETUP;
			}
			close(fd);
		}
	}

	char lib[PATH_MAX], why[4400];
	struct kb_elf libinfo;
	if (kb_locate_library(lib, sizeof lib, &libinfo) < 0)
		return KB_EXIT_RUN_SETUP;
	if (kb_command_reachable((const char *const *)argv + optind, &libinfo, why, sizeof why) == 0) {
		return refuse("run: not starting %s: %s, so it would run without the faults that were asked for",
			      argv[optind], why);
	}
	const char *old = getenv("LD_PRELOAD");
	size_t plen = strlen(lib) + (old ? strlen(old) + 2 : 1);
	char *preload = malloc(plen);
	if (preload == NULL)
		return KB_EXIT_RUN_SETUP;
	snprintf(preload, plen, "%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");

	setenv("LD_PRELOAD", preload, 1);
	setenv("KBFAULT_RECIPE", abs, 1);
	if (log)
		setenv("KBFAULT_LOG", log, 1);
	if (seed)
		setenv("KBFAULT_SEED", seed, 1);
	if (ov.n)
		setenv("KBFAULT_SET", set_list, 1);
	else
		unsetenv("KBFAULT_SET");

	execvp(argv[optind], argv + optind);
	int e = errno;
	free(preload);
	kb_cli_error("run: cannot execute %s: %s", argv[optind], strerror(e));
	return e == ENOENT ? KB_EXIT_NOTFOUND : KB_EXIT_NOEXEC;
}
