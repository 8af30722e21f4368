/* The docs keep up with the parser: every flag each command accepts is
 * in its --help, in kbfault(1) and in the README, so that a flag added to
 * the code and nowhere else fails here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	char *text = NULL;
	size_t cap = 0, n = 0;
	for (int c; (c = fgetc(f)) != EOF;) {
		if (n + 2 > cap) {
			cap = cap ? 2 * cap : 65536;
			text = realloc(text, cap);
			cr_assert_not_null(text);
		}
		text[n++] = (char)c;
	}
	fclose(f);
	text = text ? text : calloc(1, 1);
	text[n] = '\0';
	return text;
}

static const char *src(const char *name)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/%s", getenv("KB_SRC") ? getenv("KB_SRC") : ".", name);
	return path;
}

/* What `kbfault CMD --help` prints, the command run in this process. */
static char *help_of(int (*cmd)(int, char **), const char *name)
{
	char path[] = "/tmp/kbhelp-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	fflush(stdout);
	int saved = dup(1);
	dup2(fd, 1);
	char *argv[] = { (char *)name, (char *)"--help", NULL };
	cr_assert_eq(cmd(2, argv), 0, "%s --help", name);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(fd);
	char *text = slurp(path);
	unlink(path);
	return text;
}

/* "--set" as roff writes it: "\-\-set". */
static void roff(const char *flag, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = flag; *p && o + 3 < len; p++) {
		if (*p == '-')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o] = '\0';
}

Test(docs, every_flag_is_in_help_the_man_page_and_the_readme)
{
	const struct {
		const char *name;
		int (*cmd)(int, char **);
		const struct option *opts;
	} cmds[] = {
		{ "run", kb_cmd_run, kb_run_options },	     { "check", kb_cmd_check, kb_check_options },
		{ "report", kb_cmd_report, kb_report_options }, { "list", kb_cmd_list, kb_list_options },
		{ "gate", kb_cmd_gate, kb_gate_options },
	};
	char *man = slurp(src("man/kbfault.1")), *readme = slurp(src("README.md"));
	for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
		char *help = help_of(cmds[c].cmd, cmds[c].name);
		for (const struct option *o = cmds[c].opts; o->name; o++) {
			char flag[96], in_roff[200];
			snprintf(flag, sizeof flag, "--%s", o->name);
			roff(flag, in_roff, sizeof in_roff);
			cr_expect(strstr(help, flag), "kbfault %s --help does not show %s", cmds[c].name, flag);
			cr_expect(strstr(man, in_roff), "kbfault(1) does not show %s of %s", flag, cmds[c].name);
			if (strcmp(o->name, "help") != 0)
				cr_expect(strstr(readme, flag), "the README does not show %s of %s", flag, cmds[c].name);
		}
		free(help);
	}
	free(man);
	free(readme);
}

/* kbfault(1) and the README name every event the log holds. */
Test(docs, every_log_event_is_documented)
{
	const char *events[] = { "start", "inject", "mark", "stall-end", "error", "lost" };
	char *man = slurp(src("man/kbfault.1")), *readme = slurp(src("README.md"));
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		char roffed[64], entry[80], md[64];
		roff(events[i], roffed, sizeof roffed);
		snprintf(entry, sizeof entry, "\n.B %s\n", roffed); /* the event's own entry, not a word */
		snprintf(md, sizeof md, "| `%s` |", events[i]);
		cr_expect(strstr(man, entry), "kbfault(1) does not name the %s event", events[i]);
		cr_expect(strstr(readme, md), "the README's table does not name the %s event", events[i]);
	}
	free(man);
	free(readme);
}
