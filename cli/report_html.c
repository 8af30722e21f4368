/*
 * report_html.c - see report_html.h.
 *
 * The timeline is an inline SVG. A log may hold millions of injections,
 * so they are not drawn one by one: the run's time span is cut into
 * TIME_BINS bins, and each lane draws one box per bin that had any, its
 * shade by how many (the exact count is in the box's tooltip). The page's
 * size thus depends on the number of lanes, never on the log's length.
 * The logs are read twice (the span first, then the bins), so nothing
 * grows with their length either.
 */
#include "report_html.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbfault/json.h"
#include "markup.h"
#include "outfile.h"

#define TIME_BINS 100
#define LANES_MAX 200 /* beyond: one lane "other" */
#define LANES_APART 12 /* beyond: one lane per rule and program, not per process */
#define LABEL_MIN_W 200
#define CHAR_W 7       /* a generous width of a character at the labels' 12px */
#define BIN_W 8
#define LANE_H 20
#define AXIS_H 28

struct lane {
	const char *rule;    /* into the sum's rows */
	long pid;            /* -1: the "other" lane; 0: grouped by program */
	const char *program; /* into the sum's processes */
	unsigned processes;  /* in a grouped lane */
	unsigned rule_index;
	uint64_t total, bins[TIME_BINS];
};

struct timeline {
	struct lane *lanes;
	size_t n;
	bool grouped;  /* one lane per rule and program */
	double t0, t1; /* epoch seconds, the span of all events */
	bool any;
};

static const char *program_of(const struct kb_logsum *s, long pid)
{
	for (size_t p = 0; p < s->nprocs; p++)
		if (s->procs[p].pid == pid)
			return s->procs[p].program;
	return "";
}

/* The lane of rule in process pid, or, grouped, in its program. */
static struct lane *find(struct timeline *tl, const struct kb_logsum *s, const char *rule, long pid)
{
	const char *program = tl->grouped ? program_of(s, pid) : NULL;
	for (size_t i = 0; i < tl->n; i++) {
		struct lane *l = &tl->lanes[i];
		if (l->pid != -1 && strcmp(l->rule, rule) == 0 &&
		    (tl->grouped ? strcmp(l->program, program) == 0 : l->pid == pid))
			return l;
	}
	return NULL;
}

/* One lane per rule and process; with more than LANES_APART of them (60
 * short-lived clients make 60), one per rule and program, which says how
 * many processes it holds. */
static void build_lanes(const struct kb_logsum *s, struct timeline *tl)
{
	for (int pass = 0; pass < 2; pass++) {
		unsigned rule_index = 0;
		tl->n = 0;
		tl->grouped = pass == 1;
		for (size_t i = 0; i < s->nrows; i++) {
			const struct kb_logsum_row *r = &s->rows[i];
			if (i > 0 && strcmp(r->rule, s->rows[i - 1].rule) != 0)
				rule_index++;
			struct lane *l = find(tl, s, r->rule, r->pid);
			if (l) {
				/* another call or action of the lane (the rows are sorted
				 * by rule and process), or another process of its program */
				bool seen = i > 0 && s->rows[i - 1].pid == r->pid && strcmp(s->rows[i - 1].rule, r->rule) == 0;
				l->processes += !seen;
				continue;
			}
			if (tl->n == LANES_MAX) {
				tl->lanes[tl->n] = (struct lane){ .rule = "(more lanes)", .pid = -1, .program = "" };
				tl->n++;
				break;
			}
			tl->lanes[tl->n] = (struct lane){ .rule = r->rule,
							  .pid = tl->grouped ? 0 : r->pid,
							  .program = program_of(s, r->pid),
							  .processes = 1,
							  .rule_index = rule_index };
			tl->n++;
		}
		if (tl->n <= LANES_APART)
			return;
	}
}

static struct lane *lane_of(struct timeline *tl, const struct kb_logsum *s, const char *rule, long pid)
{
	struct lane *l = find(tl, s, rule, pid);
	if (l)
		return l;
	return tl->n && tl->lanes[tl->n - 1].pid == -1 ? &tl->lanes[tl->n - 1] : NULL;
}

/* One logged event: widens the span (bin == false), or is counted in its
 * lane's bin. */
static void take(struct timeline *tl, const struct kb_logsum *s, bool bin, const struct kb_json_obj *o)
{
	const struct kb_json_field *ts = kb_json_get(o, "ts"), *pid = kb_json_get(o, "pid");
	const char *event = kb_json_str(o, "event"), *rule = kb_json_str(o, "rule");
	if (ts == NULL || ts->type != KB_JSON_NUMBER || event == NULL)
		return;
	double t = strtod(ts->value, NULL);
	if (!bin) {
		if (!tl->any || t < tl->t0)
			tl->t0 = t;
		if (!tl->any || t > tl->t1)
			tl->t1 = t;
		tl->any = true;
		return;
	}
	if (strcmp(event, "inject") != 0 || rule == NULL || pid == NULL)
		return;
	struct lane *l = lane_of(tl, s, rule, strtol(pid->value, NULL, 10));
	if (l == NULL)
		return;
	int b = (int)((t - tl->t0) / (tl->t1 - tl->t0) * TIME_BINS);
	b = b < 0 ? 0 : b >= TIME_BINS ? TIME_BINS - 1 : b;
	l->bins[b]++;
	l->total++;
}

/* One pass over the logs: the span (bin == false), or the bins. Whole
 * objects only, read as kbfault report reads them (logsum.h): past a line
 * cut short, on to the next. */
static void scan(char *const *logs, size_t nlogs, struct timeline *tl, const struct kb_logsum *s, bool bin,
		 struct kb_json_obj *o)
{
	for (size_t k = 0; k < nlogs; k++) {
		FILE *f = fopen(logs[k], "re");
		char *line = NULL;
		size_t cap = 0;
		if (f == NULL)
			continue;
		while (getline(&line, &cap, f) >= 0) {
			unsigned col;
			const char *why;
			size_t at = 0, start;
			for (enum kb_log_piece p; (p = kb_log_next(line, &at, o, &start, &col, &why)) != KB_LOG_END;)
				if (p == KB_LOG_OBJECT)
					take(tl, s, bin, o);
		}
		free(line);
		fclose(f);
	}
}

/* Eight hues that stay apart on white, for the rules in turn. */
static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd",
				       "#ff7f0e", "#17becf", "#8c564b", "#e377c2" };

/* A lane's label: "rule · pid program (n)", or, grouped, "rule ·
 * program, 12 processes (n)". */
static void label(const struct lane *l, char *out, size_t len)
{
	if (l->pid > 0)
		snprintf(out, len, "%s \xc2\xb7 %ld %s (%llu)", l->rule, l->pid, l->program, (unsigned long long)l->total);
	else if (l->pid == 0)
		snprintf(out, len, "%s \xc2\xb7 %s, %u process%s (%llu)", l->rule, l->program, l->processes,
			 l->processes == 1 ? "" : "es", (unsigned long long)l->total);
	else
		snprintf(out, len, "%s (%llu)", l->rule, (unsigned long long)l->total);
}

static int characters(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void svg(FILE *f, const struct timeline *tl)
{
	/* the labels' column as wide as the longest: a name is never cut */
	int label_w = LABEL_MIN_W;
	for (size_t i = 0; i < tl->n; i++) {
		char text[512];
		label(&tl->lanes[i], text, sizeof text);
		label_w = characters(text) * CHAR_W + 16 > label_w ? characters(text) * CHAR_W + 16 : label_w;
	}
	int width = label_w + TIME_BINS * BIN_W + 48, height = AXIS_H + (int)tl->n * LANE_H + 10;
	double span = tl->t1 - tl->t0, per_bin = span / TIME_BINS;

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
		   "aria-label=\"injections over time, one lane per rule and process\">\n", width, height);
	for (int i = 0; i <= 5; i++) {
		int x = label_w + i * TIME_BINS * BIN_W / 5;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>", x, AXIS_H - 6, x,
			height - 10);
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">+%.3gs</text>\n", x,
			AXIS_H - 10, span * i / 5);
	}
	for (size_t i = 0; i < tl->n; i++) {
		const struct lane *l = &tl->lanes[i];
		int y = AXIS_H + (int)i * LANE_H;
		const char *colour = palette[l->rule_index % (sizeof palette / sizeof palette[0])];
		uint64_t peak = 0;
		char text[512];
		label(l, text, sizeof text);
		for (int b = 0; b < TIME_BINS; b++)
			peak = l->bins[b] > peak ? l->bins[b] : peak;

		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", label_w - 8,
			y + LANE_H - 6);
		kb_markup(f, text);
		fputs("</text>\n", f);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f6f6f6\"/>\n", label_w, y + 2,
			TIME_BINS * BIN_W, LANE_H - 4);
		for (int b = 0; b < TIME_BINS; b++) {
			if (l->bins[b] == 0)
				continue;
			double shade = 0.3 + 0.7 * (double)l->bins[b] / (double)peak;
			fprintf(f,
				"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" fill-opacity=\"%.2f\">"
				"<title>",
				label_w + b * BIN_W, y + 2, BIN_W - 1, LANE_H - 4, colour, shade);
			kb_markup(f, text);
			fprintf(f, ": %llu injection%s from +%.3fs to +%.3fs</title></rect>\n",
				(unsigned long long)l->bins[b], l->bins[b] == 1 ? "" : "s", per_bin * b,
				per_bin * (b + 1));
		}
	}
	fputs("</svg>\n", f);
}

static void cell(FILE *f, const char *s)
{
	fputs("<td>", f);
	kb_markup(f, s);
	fputs("</td>", f);
}

static void tables(FILE *f, const struct kb_logsum *s, const struct timeline *tl)
{
	fputs("<h2>By rule</h2>\n<table><tr><th>rule</th><th class=n>injections</th></tr>\n", f);
	for (size_t i = 0; i < s->nrows; i++) {
		if (i > 0 && strcmp(s->rows[i].rule, s->rows[i - 1].rule) == 0)
			continue;
		fputs("<tr>", f);
		cell(f, s->rows[i].rule);
		fprintf(f, "<td class=n>%llu</td></tr>\n",
			(unsigned long long)kb_logsum_rule_total(s, s->rows[i].rule));
	}
	fputs("</table>\n", f);

	fputs("<h2>Processes</h2>\n<table><tr><th class=n>pid</th><th class=n>parent</th><th>program</th>"
	      "<th>recipe</th><th>parameters set</th><th>seed</th><th>forked</th></tr>\n", f);
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct kb_logsum_proc *p = &s->procs[i];
		fprintf(f, "<tr><td class=n>%ld</td><td class=n>%ld</td>", p->pid, p->ppid);
		cell(f, p->program);
		fputs("<td title=\"", f);
		kb_markup(f, p->recipe_path);
		fputs("\">", f);
		kb_markup(f, p->recipe);
		fputs(" <code class=meta>", f);
		kb_markup(f, p->recipe_path);
		fputs("</code></td>", f);
		cell(f, p->params[0] ? p->params : "-");
		cell(f, p->seed);
		cell(f, p->fork ? "yes" : "no");
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);

	fputs("<h2>Injections by rule, call, action and process</h2>\n<p class=meta>First and last in seconds from "
	      "the timeline's start, the first event of all the logs: one time base for every process.</p>\n"
	      "<table><tr><th>rule</th><th>call</th>"
	      "<th>action</th><th>effect</th><th>detail</th><th class=n>pid</th><th class=n>count</th>"
	      "<th class=n>first (+s)</th><th class=n>last (+s)</th></tr>\n", f);
	for (size_t i = 0; i < s->nrows; i++) {
		const struct kb_logsum_row *r = &s->rows[i];
		fputs("<tr>", f);
		cell(f, r->rule);
		cell(f, r->call);
		cell(f, r->action);
		cell(f, r->effect[0] ? r->effect : "-");
		cell(f, r->detail[0] ? r->detail : "-");
		fprintf(f, "<td class=n>%ld</td><td class=n>%llu</td>", r->pid, (unsigned long long)r->count);
		fprintf(f, "<td class=n>%.6f</td><td class=n>%.6f</td></tr>\n", r->first_ts - tl->t0,
			r->last_ts - tl->t0);
	}
	fputs("</table>\n", f);
	if (s->nerrors) {
		fputs("<h2>Errors reported by the shim</h2>\n<ul>\n", f);
		for (size_t i = 0; i < s->nerrors; i++) {
			fputs("<li>", f);
			kb_markup(f, s->errors[i]);
			fputs("</li>\n", f);
		}
		fputs("</ul>\n", f);
	}
}

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
	"h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}"
	"table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}"
	"th{font-weight:600}.n{text-align:right;font-variant-numeric:tabular-nums}"
	".none{font-size:1.2em;color:#b00}.meta{color:#666}code{font-size:.95em}"
	"svg text{font-family:system-ui,sans-serif}";

int kb_report_html(const char *out, char *const *logs, size_t nlogs, const struct kb_logsum *s, char *err,
		   size_t len)
{
	struct timeline tl;
	struct kb_json_obj *o = malloc(sizeof *o);
	char stamp[64];
	struct kb_outfile page;
	time_t now = time(NULL);
	struct tm tm;

	memset(&tl, 0, sizeof tl);
	tl.lanes = calloc(LANES_MAX + 1, sizeof *tl.lanes);
	if (o == NULL || tl.lanes == NULL) {
		free(o);
		free(tl.lanes);
		snprintf(err, len, "--html: out of memory");
		return -1;
	}
	build_lanes(s, &tl);
	scan(logs, nlogs, &tl, s, false, o);
	if (tl.any && tl.t1 - tl.t0 < 0.001)
		tl.t1 = tl.t0 + 0.001; /* a span of at least a millisecond to divide */
	if (tl.any && tl.n)
		scan(logs, nlogs, &tl, s, true, o);
	free(o);

	FILE *f = kb_outfile_open(&page, out);
	if (f == NULL) {
		snprintf(err, len, "--html %s: %s", out, strerror(errno));
		free(tl.lanes);
		return -1;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		   "<title>kbfault report</title>\n<style>%s</style>\n</head>\n<body>\n<h1>kbfault report</h1>\n",
		style);
	fprintf(f, "<p class=meta>%s &middot; ", stamp);
	for (size_t i = 0; i < nlogs; i++) {
		fputs(i ? ", <code>" : "<code>", f);
		kb_markup(f, logs[i]);
		fputs("</code>", f);
	}
	fputs("</p>\n", f);
	fprintf(f, "<p><b id=injections>%llu</b> injection%s in <b>%zu</b> process%s%s", (unsigned long long)s->injections,
		s->injections == 1 ? "" : "s", s->nprocs, s->nprocs == 1 ? "" : "es",
		s->malformed || s->torn || s->lost ? ";" : ".");
	if (s->malformed)
		fprintf(f, " <b>%llu</b> malformed line%s skipped.", (unsigned long long)s->malformed,
			s->malformed == 1 ? "" : "s");
	if (s->torn)
		fprintf(f, " <b id=torn>%llu</b> line%s cut short, skipped.", (unsigned long long)s->torn,
			s->torn == 1 ? "" : "s");
	if (s->lost)
		fprintf(f, " <b id=lost>%llu</b> line%s the shim could not write.", (unsigned long long)s->lost,
			s->lost == 1 ? "" : "s");
	fputs("</p>\n", f);
	if (s->nrows == 0) {
		fputs("<p class=none>No faults were injected.</p>\n", f);
	} else {
		fprintf(f, "<h2>Timeline</h2>\n<p class=meta>From the first logged event to the last: %.3f s, in %d "
			   "slices of %.3g s; a darker box is more injections (hover for the count).</p>\n",
			tl.t1 - tl.t0, TIME_BINS, (tl.t1 - tl.t0) / TIME_BINS);
		svg(f, &tl);
	}
	tables(f, s, &tl);
	fputs("</body>\n</html>\n", f);
	free(tl.lanes);
	if (kb_outfile_commit(&page) < 0) {
		snprintf(err, len, "--html %s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}
