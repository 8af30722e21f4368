/*
 * cmd_gate.c - `kbfault gate`: one gate from flags, or a suite of them
 * from a file; a summary table a person reads, JUnit XML a CI server
 * reads, and an exit status a CI job can trust: 0 only if every gate
 * passed, 1 if one failed, 2 if one could not be run as configured.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gate.h"
#include "reach.h"
#include "kbfault/recipe.h"

static const char usage[] =
	"Usage: kbfault gate -r RECIPE --server 'CMD' --ready tcp:HOST:PORT --probe 'CMD'\n"
	"                    [--load 'CMD'] [--min-injections N] [--expect 'MEASURE OP N']...\n"
	"                    [--timeout SECONDS]\n"
	"                    [--server-may-exit] [--name NAME] [--seed N] [--set NAME=VALUE]...\n"
	"                    [--log LOG] [--junit FILE] [--out DIR]\n"
	"       kbfault gate -f SUITE [--only NAME]... [--junit FILE] [--out DIR]\n"
	"\n"
	"Shows that a service survives a recipe's faults. The gate starts the server\n"
	"command under the shim with RECIPE armed, waits until something listens on the\n"
	"--ready port, starts the load command (if any) beside it, runs the probe\n"
	"command, and then stops everything it started, each in a process group of its\n"
	"own. Commands run with /bin/sh -c; the load and the probe run without the shim.\n"
	"\n"
	"A gate passes only if all of these hold:\n"
	"  - the probe exited 0 within the timeout;\n"
	"  - at least N faults were injected (--min-injections, default 1): a gate\n"
	"    whose recipe never fired proves nothing, and fails; nor does a rule\n"
	"    that fired and changed nothing (a cap of 5 on a server asking for 5),\n"
	"    which the log marks \"effect\":\"none\" and the gate does not count;\n"
	"  - every --expect holds: the symptom, measured outside the server;\n"
	"  - the server is still running at the end (unless --server-may-exit).\n"
	"\n"
	"  -r, --recipe RECIPE       a .kbf file or a bundled recipe name\n"
	"      --server CMD          the service, in the foreground (nginx: daemon off)\n"
	"      --ready tcp:HOST:PORT ready once a socket listens on PORT\n"
	"      --probe CMD           what must succeed while the faults are armed\n"
	"      --load CMD            runs beside the probe; stopped when the probe ends\n"
	"      --min-injections N    faults that must be injected (default 1; 0 allows none)\n"
	"      --expect 'MEASURE OP N'\n"
	"                            evidence the gate must see, OP one of >= > <= < ==;\n"
	"                            may be repeated. MEASURE: listen-overflows,\n"
	"                            listen-drops, resets-sent (the kernel's TCP counters,\n"
	"                            their growth during the gate); server-fds, close-wait,\n"
	"                            recv-q (the most seen: the server's descriptors, its\n"
	"                            port's CLOSE-WAIT sockets, its listener's queue)\n"
	"      --timeout SECONDS     bound on readiness, and on the probe (default 60; 2m)\n"
	"      --server-may-exit     do not fail the gate because the server exited\n"
	"      --name NAME           the gate's name (default: the recipe's)\n"
	"      --seed N              seed for probabilistic rules\n"
	"      --set NAME=VALUE      override a recipe parameter; may be repeated\n"
	"      --log LOG             the injection log (default: DIR/kbfault.log); it must\n"
	"                            be a regular file, and is emptied first, so only\n"
	"                            this run's faults count\n"
	"  -f, --file SUITE          run the gates of a suite file (`gate NAME` stanzas\n"
	"                            of the same keys as the flags; see kbfault(1))\n"
	"      --only NAME           run only this gate of the suite; may be repeated\n"
	"      --junit FILE          write the results as JUnit XML, one testcase per gate\n"
	"                            (its directory is made if need be)\n"
	"      --out DIR             keep each gate's outputs in DIR/NAME: kbfault.log,\n"
	"                            server.out, load.out, probe.out (default: a new\n"
	"                            directory under $TMPDIR, printed in the summary)\n"
	"  -h, --help                this text\n"
	"\n"
	"Exit status: 0 if every gate passed; 1 if a gate failed; 2 on a bad flag or\n"
	"suite, a recipe that does not load, a server that never listened, or an\n"
	"interruption (then everything the gate started has been stopped); 125 before\n"
	"any gate runs, if libkbfault.so cannot be preloaded or a server is a program\n"
	"it cannot enter (statically linked, or Go).\n";

enum {
	OPT_SERVER = 256, OPT_READY, OPT_PROBE, OPT_LOAD, OPT_MIN, OPT_TIMEOUT, OPT_MAY_EXIT, OPT_NAME,
	OPT_SEED, OPT_SET, OPT_LOG, OPT_ONLY, OPT_JUNIT, OPT_OUT, OPT_EXPECT
};

/* The gate key a single-gate flag sets. */
static const char *gate_key(int c)
{
	switch (c) {
	case 'r': return "recipe";
	case OPT_SERVER: return "server";
	case OPT_READY: return "ready";
	case OPT_PROBE: return "probe";
	case OPT_LOAD: return "load";
	case OPT_MIN: return "min-injections";
	case OPT_EXPECT: return "expect";
	case OPT_TIMEOUT: return "timeout";
	case OPT_MAY_EXIT: return "server-may-exit";
	case OPT_NAME: return "name";
	case OPT_SEED: return "seed";
	case OPT_SET: return "set";
	case OPT_LOG: return "log";
	default: return NULL;
	}
}

static const char *verdict_word(enum kb_gate_verdict v)
{
	return v == KB_GATE_PASS ? "PASS" : v == KB_GATE_FAIL ? "FAIL" : "ERROR";
}

static void probe_word(const struct kb_gate_result *r, char *out, size_t len)
{
	if (r->probe_status == -2)
		snprintf(out, len, "not run");
	else if (r->probe_status == -3)
		snprintf(out, len, "stopped");
	else if (r->probe_status == -1)
		snprintf(out, len, "timed out");
	else if (r->probe_status > 128)
		snprintf(out, len, "signal %d", r->probe_status - 128);
	else
		snprintf(out, len, "exit %d", r->probe_status);
}

/* "backlog=17 leak=3" */
static void by_rule(const struct kb_logsum *s, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < s->nrows; i++)
		if (i == 0 || strcmp(s->rows[i].rule, s->rows[i - 1].rule) != 0)
			kb_append(out, len, &used, "%s%s=%llu", used ? " " : "", s->rows[i].rule,
				  (unsigned long long)kb_logsum_rule_total(s, s->rows[i].rule));
	if (!used)
		kb_append(out, len, &used, "-");
}

/* The last non-blank line of an output, at most 200 bytes of it. */
static const char *last_line(const char *text)
{
	static char line[204];
	size_t end = strlen(text);
	while (end && strchr(" \t\r\n", text[end - 1]))
		end--;
	size_t start = end;
	while (start && text[start - 1] != '\n')
		start--;
	size_t n = end - start > 200 ? 200 : end - start;
	memcpy(line, text + start, n);
	line[n] = '\0';
	return line;
}

/* "  evidence: listen-overflows 12 (>= 1: met)", one per expectation. */
static void print_evidence(const struct kb_gate *g, const struct kb_gate_result *r)
{
	for (unsigned k = 0; k < g->nexpects; k++) {
		const struct kb_expect *x = &g->expects[k];
		char want[96];
		kb_expect_format(x, want, sizeof want);
		if (!r->ev.ok[x->measure])
			printf("  evidence: %s not measured (expected %s)\n", kb_measure_name(x->measure), want);
		else
			printf("  evidence: %s %lld (expected %s: %s)\n", kb_measure_name(x->measure),
			       r->ev.value[x->measure], want, kb_expect_met(x, &r->ev) ? "met" : "NOT MET");
	}
}

/* "  outputs: DIR  (kbfault.log, server.out, probe.out)": the files
 * that are there, not those a gate might have made. */
static void print_outputs(const char *dir)
{
	char names[256] = "";
	size_t used = 0;
	for (size_t k = 0; k < KB_GATE_OUTPUTS; k++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/%s", dir, kb_gate_outputs[k]);
		if (access(path, F_OK) == 0)
			kb_append(names, sizeof names, &used, "%s%s", used ? ", " : "", kb_gate_outputs[k]);
	}
	printf("  outputs: %s  (%s)\n", dir, used ? names : "nothing written");
}

static void print_summary(const struct kb_gate *gates, const struct kb_gate_result *res, size_t n)
{
	size_t pass = 0, failed = 0, errors = 0;
	char probe[32], rules[1024];
	int w = 4; /* the widest name */
	for (size_t i = 0; i < n; i++)
		w = (int)strlen(gates[i].name) > w ? (int)strlen(gates[i].name) : w;

	printf("%-6s %-*s %8s %-10s %10s  %s\n", "RESULT", w, "GATE", "SECONDS", "PROBE", "INJECTIONS", "BY RULE");
	for (size_t i = 0; i < n; i++) {
		const struct kb_gate_result *r = &res[i];
		pass += r->verdict == KB_GATE_PASS;
		failed += r->verdict == KB_GATE_FAIL;
		errors += r->verdict == KB_GATE_ERROR;
		probe_word(r, probe, sizeof probe);
		by_rule(&r->sum, rules, sizeof rules);
		printf("%-6s %-*s %8.1f %-10s %10llu  %s\n", verdict_word(r->verdict), w, gates[i].name, r->seconds,
		       probe, (unsigned long long)r->sum.injections, rules);
	}
	for (size_t i = 0; i < n; i++) {
		const struct kb_gate_result *r = &res[i];
		printf("\n%s %s", verdict_word(r->verdict), gates[i].name);
		if (gates[i].where[0])
			printf(" (%s)", gates[i].where);
		printf("\n");
		if (r->verdict != KB_GATE_PASS)
			printf("  reason:  %s\n", r->reason);
		if (!r->server_alive && r->probe_status != -2)
			printf("  server:  exited during the gate%s\n",
			       gates[i].server_may_exit ? " (allowed: --server-may-exit)" : "");
		if (r->probe_status != -2)
			print_evidence(&gates[i], r);
		if (r->verdict == KB_GATE_FAIL && r->probe_status != 0 && r->probe_out[0])
			printf("  probe:   %s\n", last_line(r->probe_out));
		if (r->dir[0])
			print_outputs(r->dir);
		size_t dl = strlen(r->dir);
		if (r->log[0] && !(strncmp(r->log, r->dir, dl) == 0 && r->log[dl] == '/'))
			printf("  log:     %s\n", r->log);
	}
	printf("\n%zu gate%s: %zu passed, %zu failed, %zu could not run\n", n, n == 1 ? "" : "s", pass, failed,
	       errors);
}

/* --junit FILE is checked before any gate runs, not after all of them:
 * its directory is made if need be (as --out's is) and must be writable. */
static int junit_dir_ready(const char *file)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", file);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	for (char *p = dir + 1; *p; p++) { /* mkdir -p */
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	mkdir(dir, 0755);
	if (access(dir, W_OK) != 0) {
		kb_cli_error("gate: --junit %s: cannot write in %s: %s", file, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The warnings of a gate's recipe, as loaded with its parameters. */
static void lint(const struct kb_gate *g)
{
	char storage[KB_RECIPE_DIRS_MAX][4096], path[4096];
	const char *dirs[KB_RECIPE_DIRS_MAX + 1];
	struct kb_overrides ov = g->ov;
	struct kb_recipe r;
	struct kb_diag d;
	kb_locate_recipe_dirs(storage, dirs);
	if (kb_recipe_find(g->recipe, dirs, path, sizeof path, &d) == 0 && kb_recipe_load(path, &ov, &r, &d) == 0) {
		kb_cli_lint(&r);
		kb_recipe_free(&r);
	}
}

/* Before any gate runs: the rules that can never fire are said; and a
 * library that cannot be preloaded, or a server it cannot enter (static,
 * Go; reach.h), would make gates that prove nothing - refused, as
 * `kbfault run` refuses them (125). */
static bool unreachable(const struct kb_gate *gates, int n)
{
	char lib[PATH_MAX], why[4400];
	struct kb_elf info;
	for (int i = 0; i < n; i++)
		lint(&gates[i]);
	if (kb_locate_library(lib, sizeof lib, &info) < 0)
		return true;
	for (int i = 0; i < n; i++)
		if (kb_command_reachable((const char *[]){ "/bin/sh", "-c", gates[i].server, NULL }, &info, why,
					 sizeof why) == 0) {
			kb_cli_error("gate %s: not starting the server: %s, so it would run without the faults that were "
				     "asked for",
				     gates[i].name, why);
			return true;
		}
	return false;
}

/* The default name of a gate: its recipe's, without directory and .kbf. */
static void default_name(struct kb_gate *g)
{
	char name[128], err[256];
	const char *base = strrchr(g->recipe, '/');
	base = base ? base + 1 : g->recipe;
	size_t len = strnlen(base, sizeof name - 1);
	memcpy(name, base, len);
	name[len] = '\0';
	char *dot = strstr(name, ".kbf");
	if (dot && dot[4] == '\0')
		*dot = '\0';
	for (char *p = name; *p; p++)
		if (!strchr(KB_GATE_NAME_CHARS, *p))
			*p = '_';
	if (name[0] == '.' || name[0] == '\0' || kb_gate_set(g, "name", name, err, sizeof err) < 0)
		kb_gate_set(g, "name", "gate", err, sizeof err);
}

/* The flags of `kbfault gate`, which kbfault(1), the README and --help
 * must all show (tests/preload/test_docs.c). */
const struct option kb_gate_options[] = {
	{ "recipe", required_argument, NULL, 'r' },
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "ready", required_argument, NULL, OPT_READY },
	{ "probe", required_argument, NULL, OPT_PROBE },
	{ "load", required_argument, NULL, OPT_LOAD },
	{ "min-injections", required_argument, NULL, OPT_MIN },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "server-may-exit", no_argument, NULL, OPT_MAY_EXIT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "set", required_argument, NULL, OPT_SET },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "file", required_argument, NULL, 'f' },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "junit", required_argument, NULL, OPT_JUNIT },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kb_cmd_gate(int argc, char **argv)
{
	struct kb_gate one, *gates = NULL;
	struct kb_gate_result *res = NULL;
	const char *suite = NULL, *junit = NULL, *out = NULL, *first_gate_flag = NULL;
	const char **only = NULL;
	size_t nonly = 0;
	int c, n = 0, status = KB_EXIT_USAGE;
	char err[4096];

	kb_gate_defaults(&one);
	only = calloc((size_t)argc + 1, sizeof *only);
	if (only == NULL) {
		kb_cli_error("gate: out of memory");
		return KB_EXIT_USAGE;
	}
	optind = 1;
	int li = -1;
	while ((c = getopt_long(argc, argv, "r:f:h", kb_gate_options, &li)) != -1) {
		const char *key = gate_key(c);
		if (key) {
			if (first_gate_flag == NULL)
				first_gate_flag = li >= 0 ? kb_gate_options[li].name : "recipe";
			li = -1;
			if (kb_gate_set(&one, key, c == OPT_MAY_EXIT ? "yes" : optarg, err, sizeof err) < 0) {
				kb_cli_error("gate: --%s: %s", key, err);
				goto out;
			}
			continue;
		}
		li = -1;
		switch (c) {
		case 'f': suite = optarg; break;
		case OPT_ONLY: only[nonly++] = optarg; break;
		case OPT_JUNIT: junit = optarg; break;
		case OPT_OUT: out = optarg; break;
		case 'h':
			fputs(usage, stdout);
			status = KB_EXIT_OK;
			goto out;
		default:
			fputs(usage, stderr);
			goto out;
		}
	}
	if (optind < argc) {
		kb_cli_error("gate: unexpected argument '%s' (quote a command: --server 'nginx -c conf')", argv[optind]);
		goto out;
	}
	if (suite && first_gate_flag) {
		kb_cli_error("gate: --%s sets a gate, and with -f the gates are set in %s (`%s VALUE` in a gate's stanza)",
			     first_gate_flag, suite, first_gate_flag);
		goto out;
	}
	if (!suite && nonly) {
		kb_cli_error("gate: --only selects gates of a suite (-f SUITE)");
		goto out;
	}
	if (suite) {
		n = kb_gate_suite(suite, &gates, err, sizeof err);
		if (n < 0) {
			kb_cli_error("%s", err);
			goto out;
		}
		if (nonly) {
			int k = 0;
			for (size_t j = 0; j < nonly; j++) {
				bool found = false;
				for (int i = 0; i < n; i++)
					found |= strcmp(gates[i].name, only[j]) == 0;
				if (!found) {
					kb_cli_error("gate: --only %s: no such gate in %s", only[j], suite);
					goto out;
				}
			}
			for (int i = 0; i < n; i++)
				for (size_t j = 0; j < nonly; j++)
					if (strcmp(gates[i].name, only[j]) == 0) {
						gates[k++] = gates[i];
						break;
					}
			n = k;
		}
	} else {
		if (!one.name[0] && one.recipe[0])
			default_name(&one);
		if (kb_gate_check(&one, err, sizeof err) < 0) {
			kb_cli_error("gate: %s", err);
			fputs("(see kbfault gate --help)\n", stderr);
			goto out;
		}
		gates = malloc(sizeof *gates);
		if (gates == NULL)
			goto out;
		gates[0] = one;
		n = 1;
	}
	if (unreachable(gates, n)) {
		status = KB_EXIT_RUN_SETUP;
		goto out;
	}
	if (junit && junit_dir_ready(junit) < 0)
		goto out;
	if (out)
		for (int i = 0; i < n; i++)
			snprintf(gates[i].out, sizeof gates[i].out, "%s", out);

	res = calloc((size_t)n, sizeof *res);
	if (res == NULL) {
		kb_cli_error("gate: out of memory");
		goto out;
	}
	kb_gate_catch_signals();
	bool tty = isatty(2);
	int ran = 0;
	for (int i = 0; i < n && !kb_gate_interrupted(); i++, ran++) {
		if (tty)
			fprintf(stderr, "gate %d/%d: %s\n", i + 1, n, gates[i].name);
		kb_gate_run(&gates[i], tty, &res[i]);
		if (tty)
			fprintf(stderr, "  %s after %.1fs\n", verdict_word(res[i].verdict), res[i].seconds);
	}
	print_summary(gates, res, (size_t)ran);
	fflush(stdout);

	status = KB_EXIT_OK;
	for (int i = 0; i < ran; i++) {
		if (res[i].verdict == KB_GATE_ERROR)
			status = KB_EXIT_USAGE;
		else if (res[i].verdict == KB_GATE_FAIL && status == KB_EXIT_OK)
			status = KB_EXIT_FAIL;
	}
	if (ran < n) {
		kb_cli_error("gate: interrupted; %d of %d gates ran", ran, n);
		status = KB_EXIT_USAGE;
	}
	if (junit && kb_gate_junit(junit, gates, res, (size_t)ran, err, sizeof err) < 0) {
		kb_cli_error("gate: %s", err);
		status = KB_EXIT_USAGE;
	}
	for (int i = 0; i < ran; i++)
		kb_logsum_free(&res[i].sum);
out:
	free(res);
	free(gates);
	free(only);
	return status;
}
