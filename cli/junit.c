/*
 * junit.c - gate results as JUnit XML, the format CI servers (GitHub
 * Actions' test reporters, GitLab, Jenkins) render as test cases: one
 * <testsuite> of one <testcase> per gate; a failed gate has <failure>
 * with the reason, a gate that could not run has <error>; the
 * injections per rule, the probe's status and the log's path are
 * <properties>, the probe's output is <system-out>.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "kbfault/diag.h"
#include "markup.h"
#include "outfile.h"

static void property(FILE *f, const char *name, const char *value)
{
	fputs("        <property name=\"", f);
	kb_markup(f, name);
	fputs("\" value=\"", f);
	kb_markup(f, value);
	fputs("\"/>\n", f);
}

/* effects.RULE ("capped=2, none=1") and detail.RULE (its errnos, delays,
 * caps: "ECONNABORTED"), from the rule's rows, which start at first. */
static void rule_effects(FILE *f, const struct kb_logsum *s, size_t first)
{
	const char *rule = s->rows[first].rule;
	char effects[512] = "", details[512] = "", name[96];
	size_t ue = 0, ud = 0;
	for (size_t i = first; i < s->nrows && strcmp(s->rows[i].rule, rule) == 0; i++) {
		const struct kb_logsum_row *row = &s->rows[i];
		uint64_t n = 0;
		bool said = false;
		for (size_t k = first; k < i && !said; k++)
			said = strcmp(s->rows[k].effect, row->effect) == 0;
		for (size_t k = i; k < s->nrows && strcmp(s->rows[k].rule, rule) == 0 && !said; k++)
			n += strcmp(s->rows[k].effect, row->effect) == 0 ? s->rows[k].count : 0;
		if (!said && row->effect[0])
			kb_append(effects, sizeof effects, &ue, "%s%s=%llu", ue ? ", " : "", row->effect,
				  (unsigned long long)n);
		said = false;
		for (size_t k = first; k < i && !said; k++)
			said = strcmp(s->rows[k].detail, row->detail) == 0;
		if (!said && row->detail[0])
			kb_append(details, sizeof details, &ud, "%s%s", ud ? "; " : "", row->detail);
	}
	snprintf(name, sizeof name, "effects.%s", rule);
	if (ue)
		property(f, name, effects);
	snprintf(name, sizeof name, "detail.%s", rule);
	if (ud)
		property(f, name, details);
}

static void write_case(FILE *f, const struct kb_gate *g, const struct kb_gate_result *r)
{
	char v[160];

	fputs("    <testcase classname=\"kbfault.gate\" name=\"", f);
	kb_markup(f, g->name);
	fprintf(f, "\" time=\"%.3f\">\n", r->seconds);
	fputs("      <properties>\n", f);
	property(f, "recipe", g->recipe);
	if (r->sum.nprocs && r->sum.procs[0].recipe_path[0])
		property(f, "recipe-path", r->sum.procs[0].recipe_path); /* as the library resolved it */
	char params[KB_MAX_PARAMS * 600];
	if (g->ov.n && kb_overrides_format(&g->ov, params, sizeof params) == 0)
		property(f, "params", params);
	if (g->seed[0])
		property(f, "seed", g->seed);
	snprintf(v, sizeof v, "%llu", (unsigned long long)r->sum.injections);
	property(f, "injections", v);
	snprintf(v, sizeof v, "%llu", (unsigned long long)r->sum.noops);
	property(f, "no-ops", v);
	snprintf(v, sizeof v, "%u", g->min_injections);
	property(f, "min-injections", v);
	for (size_t i = 0; i < r->sum.nrows; i++) {
		if (i > 0 && strcmp(r->sum.rows[i].rule, r->sum.rows[i - 1].rule) == 0)
			continue;
		char name[96];
		snprintf(name, sizeof name, "injections.%s", r->sum.rows[i].rule);
		snprintf(v, sizeof v, "%llu", (unsigned long long)kb_logsum_rule_total(&r->sum, r->sum.rows[i].rule));
		property(f, name, v);
		rule_effects(f, &r->sum, i);
	}
	for (int m = 0; m < KB_MEASURES; m++) {
		if (!r->ev.ok[m])
			continue;
		char name[96];
		snprintf(name, sizeof name, "measure.%s", kb_measure_name((enum kb_measure)m));
		snprintf(v, sizeof v, "%lld", r->ev.value[m]);
		property(f, name, v);
	}
	for (unsigned k = 0; k < g->nexpects; k++) {
		char name[32], want[96];
		snprintf(name, sizeof name, "expect.%u", k + 1);
		kb_expect_format(&g->expects[k], want, sizeof want);
		snprintf(v, sizeof v, "%s: %s", want, kb_expect_met(&g->expects[k], &r->ev) ? "met" : "not met");
		property(f, name, v);
	}
	snprintf(v, sizeof v, "%d", r->probe_status);
	property(f, "probe-status", v);
	property(f, "server-alive", r->server_alive ? "true" : "false");
	property(f, "log", r->log);
	fputs("      </properties>\n", f);
	if (r->verdict != KB_GATE_PASS) {
		const char *tag = r->verdict == KB_GATE_FAIL ? "failure" : "error";
		fprintf(f, "      <%s type=\"%s\" message=\"", tag,
			r->verdict == KB_GATE_FAIL ? "kbfault.GateFailed" : "kbfault.GateError");
		kb_markup(f, r->reason);
		fputs("\">", f);
		kb_markup(f, r->reason);
		fprintf(f, "</%s>\n", tag);
	}
	fputs("      <system-out>", f);
	kb_markup(f, r->probe_out);
	fputs("</system-out>\n", f);
	fputs("    </testcase>\n", f);
}

int kb_gate_junit(const char *path, const struct kb_gate *gates, const struct kb_gate_result *res,
		  size_t n, char *err, size_t len)
{
	size_t failures = 0, errors = 0;
	double total = 0;
	char stamp[32], host[256] = "localhost";
	struct kb_outfile out;
	time_t now = time(NULL);
	struct tm tm;

	for (size_t i = 0; i < n; i++) {
		failures += res[i].verdict == KB_GATE_FAIL;
		errors += res[i].verdict == KB_GATE_ERROR;
		total += res[i].seconds;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	gethostname(host, sizeof host - 1);

	FILE *f = kb_outfile_open(&out, path);
	if (f == NULL) {
		snprintf(err, len, "--junit %s: %s", path, strerror(errno));
		return -1;
	}
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f, "<testsuites name=\"kbfault\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" time=\"%.3f\">\n", n,
		failures, errors, total);
	fprintf(f,
		"  <testsuite name=\"kbfault gates\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"0\" time=\"%.3f\" timestamp=\"%s\" hostname=\"",
		n, failures, errors, total, stamp);
	kb_markup(f, host);
	fputs("\">\n", f);
	for (size_t i = 0; i < n; i++)
		write_case(f, &gates[i], &res[i]);
	fputs("  </testsuite>\n</testsuites>\n", f);
	if (kb_outfile_commit(&out) < 0) {
		snprintf(err, len, "--junit %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
