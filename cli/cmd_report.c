/*
 * cmd_report.c - `kbfault report`: an injection log in a table a person
 * reads, or in one JSON object a program reads (--json).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kbfault/json.h"
#include "logsum.h"
#include "report_html.h"

static const char usage[] =
	"Usage: kbfault report [--json] [--html FILE] LOG...\n"
	"\n"
	"Summarises injection logs: the processes that ran under kbfault, and how many\n"
	"faults each rule injected, per call, action and process.\n"
	"\n"
	"  --json       print one JSON object instead of tables\n"
	"  --html FILE  also write a self-contained HTML page: the totals, the\n"
	"               processes and a timeline of the injections per rule and\n"
	"               process (a CI artifact)\n"
	"  -h, --help   this text\n"
	"\n"
	"A line cut short (a process killed while writing it, a full filesystem) is\n"
	"skipped, counted as torn and reported as LOG:LINE:COLUMN; a line glued after\n"
	"it is still read. Lines the library could not write are counted as lost.\n"
	"\n"
	"Exit status: 0 if the logs were read (torn lines included), 1 if a log is\n"
	"unreadable or has lines that are not kbfault log objects (each is reported as\n"
	"LOG:LINE:COLUMN), 2 on usage errors.\n";

static void print_text(const struct kb_logsum *s)
{
	printf("processes: %zu   injections: %llu   malformed lines: %llu", s->nprocs,
	       (unsigned long long)s->injections, (unsigned long long)s->malformed);
	/* what damage the log had: lines cut short, lines the shim lost */
	if (s->noops)
		printf("   no-ops: %llu", (unsigned long long)s->noops); /* rules that fired and changed nothing */
	if (s->torn)
		printf("   torn lines: %llu", (unsigned long long)s->torn);
	if (s->lost)
		printf("   lost lines: %llu", (unsigned long long)s->lost);
	printf("\n");
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct kb_logsum_proc *p = &s->procs[i];
		printf("  pid %-7ld %-20s recipe %s, seed %s%s%s%s\n", p->pid, p->program, p->recipe, p->seed,
		       p->params[0] ? ", set " : "", p->params, p->fork ? " (forked)" : "");
		if (i == 0 || strcmp(p->recipe_path, s->procs[i - 1].recipe_path) != 0)
			printf("  %-11s %-20s %s\n", "", "", p->recipe_path); /* where that recipe is */
	}
	for (size_t i = 0; i < s->nerrors; i++)
		printf("  error: %s\n", s->errors[i]);
	if (s->nrows == 0) {
		printf("\nno faults were injected\n");
		return;
	}
	printf("\n%-28s %-9s %-9s %-8s %-26s %8s %8s %12s %12s\n", "RULE", "CALL", "ACTION", "EFFECT", "DETAIL",
	       "PID", "COUNT", "FIRST_S", "LAST_S");
	for (size_t i = 0; i < s->nrows; i++) {
		const struct kb_logsum_row *r = &s->rows[i];
		printf("%-28s %-9s %-9s %-8s %-26s %8ld %8llu %12s %12s\n", r->rule, r->call, r->action,
		       r->effect[0] ? r->effect : "-", r->detail[0] ? r->detail : "-", r->pid,
		       (unsigned long long)r->count, r->first_t, r->last_t);
	}
	printf("\nby rule:\n");
	for (size_t i = 0; i < s->nrows; i++)
		if (i == 0 || strcmp(s->rows[i].rule, s->rows[i - 1].rule) != 0)
			printf("  %-28s %8llu\n", s->rows[i].rule,
			       (unsigned long long)kb_logsum_rule_total(s, s->rows[i].rule));
}

static void print_json(const struct kb_logsum *s)
{
	char a[600], b[600], c[600];

	printf("{\"processes\":[");
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct kb_logsum_proc *p = &s->procs[i];
		kb_json_escape(p->program, a, sizeof a);
		kb_json_escape(p->recipe, b, sizeof b);
		char path[1200], params[1200];
		kb_json_escape(p->recipe_path, path, sizeof path);
		kb_json_escape(p->params, params, sizeof params);
		printf("%s{\"pid\":%ld,\"ppid\":%ld,\"program\":%s,\"recipe\":%s,\"recipe_path\":%s,\"params\":%s,"
		       "\"seed\":%s,\"fork\":%s}",
		       i ? "," : "", p->pid, p->ppid, a, b, path, params, p->seed[0] ? p->seed : "null",
		       p->fork ? "true" : "false");
	}
	printf("],\"injections\":%llu,\"noops\":%llu,\"malformed\":%llu,\"torn\":%llu,\"lost\":%llu,\"errors\":[",
	       (unsigned long long)s->injections, (unsigned long long)s->noops, (unsigned long long)s->malformed,
	       (unsigned long long)s->torn, (unsigned long long)s->lost);
	for (size_t i = 0; i < s->nerrors; i++) {
		kb_json_escape(s->errors[i], a, sizeof a);
		printf("%s%s", i ? "," : "", a);
	}
	printf("],\"rows\":[");
	for (size_t i = 0; i < s->nrows; i++) {
		const struct kb_logsum_row *r = &s->rows[i];
		char d[64];
		kb_json_escape(r->rule, a, sizeof a);
		kb_json_escape(r->call, b, sizeof b);
		kb_json_escape(r->action, c, sizeof c);
		char e[128];
		kb_json_escape(r->effect, d, sizeof d);
		kb_json_escape(r->detail, e, sizeof e);
		printf("%s{\"rule\":%s,\"call\":%s,\"action\":%s,\"effect\":%s,\"detail\":%s,\"pid\":%ld,"
		       "\"count\":%llu}",
		       i ? "," : "", a, b, c, d, e, r->pid, (unsigned long long)r->count);
	}
	printf("],\"by_rule\":{");
	bool first = true;
	for (size_t i = 0; i < s->nrows; i++) {
		if (i > 0 && strcmp(s->rows[i].rule, s->rows[i - 1].rule) == 0)
			continue;
		kb_json_escape(s->rows[i].rule, a, sizeof a);
		printf("%s%s:%llu", first ? "" : ",", a,
		       (unsigned long long)kb_logsum_rule_total(s, s->rows[i].rule));
		first = false;
	}
	printf("}}\n");
}

/* The flags of `kbfault report`, which kbfault(1), the README and --help
 * must all show (tests/preload/test_docs.c). */
const struct option kb_report_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "html", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kb_cmd_report(int argc, char **argv)
{
	bool json = false;
	const char *html = NULL;
	int c, status = KB_EXIT_OK;
	struct kb_logsum s;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", kb_report_options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'H': html = optarg; break;
		case 'h': fputs(usage, stdout); return KB_EXIT_OK;
		default: fputs(usage, stderr); return KB_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		kb_cli_error("report: no log given");
		fputs(usage, stderr);
		return KB_EXIT_USAGE;
	}
	/* A log that cannot be read at all: no summary, which would pass for
	 * one of everything that was asked for (an empty one, for one log). */
	for (int i = optind; i < argc; i++)
		if (access(argv[i], R_OK) != 0) {
			kb_cli_error("report: %s: %s", argv[i], strerror(errno));
			status = KB_EXIT_FAIL;
		}
	if (status != KB_EXIT_OK)
		return status;
	memset(&s, 0, sizeof s);
	for (int i = optind; i < argc; i++) {
		FILE *f = fopen(argv[i], "re");

		if (f == NULL) {
			kb_cli_error("report: %s: %s", argv[i], strerror(errno));
			status = KB_EXIT_FAIL;
			continue;
		}
		int r = kb_logsum_read(&s, f, argv[i], stderr);
		if (r < 0) {
			if (ferror(f))
				kb_cli_error("report: %s: %s", argv[i], strerror(errno));
			status = KB_EXIT_FAIL;
		}
		fclose(f);
	}
	kb_logsum_sort(&s);
	if (json)
		print_json(&s);
	else
		print_text(&s);
	char err[4400];
	if (html && kb_report_html(html, argv + optind, (size_t)(argc - optind), &s, err, sizeof err) < 0) {
		kb_cli_error("report: %s", err);
		status = KB_EXIT_FAIL;
	}
	kb_logsum_free(&s);
	return status;
}
