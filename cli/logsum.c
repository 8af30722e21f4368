/*
 * logsum.c - summing an injection log; see logsum.h.
 */
#include "logsum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/json.h"

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static long num(const struct kb_json_obj *o, const char *key)
{
	const struct kb_json_field *f = kb_json_get(o, key);
	return f && f->type == KB_JSON_NUMBER ? strtol(f->value, NULL, 10) : -1;
}

static int add_row(struct kb_logsum *s, const struct kb_json_obj *o)
{
	const char *rule = kb_json_str(o, "rule"), *call = kb_json_str(o, "call");
	const char *action = kb_json_str(o, "action"), *t = kb_json_str(o, "t");
	const char *effect = kb_json_str(o, "effect");
	long pid = num(o, "pid");

	if (effect == NULL)
		effect = "";
	for (size_t i = 0; i < s->nrows; i++) {
		struct kb_logsum_row *r = &s->rows[i];
		if (r->pid == pid && strcmp(r->rule, rule) == 0 && strcmp(r->call, call) == 0 &&
		    strcmp(r->action, action) == 0 && strcmp(r->effect, effect) == 0) {
			r->count++;
			copy(r->last_t, sizeof r->last_t, t);
			return 0;
		}
	}
	struct kb_logsum_row *n = realloc(s->rows, (s->nrows + 1) * sizeof *n);
	if (n == NULL)
		return -1;
	s->rows = n;
	struct kb_logsum_row *r = &s->rows[s->nrows++];
	memset(r, 0, sizeof *r);
	copy(r->rule, sizeof r->rule, rule);
	copy(r->call, sizeof r->call, call);
	copy(r->action, sizeof r->action, action);
	copy(r->effect, sizeof r->effect, effect);
	r->pid = pid;
	r->count = 1;
	copy(r->first_t, sizeof r->first_t, t);
	copy(r->last_t, sizeof r->last_t, t);
	return 0;
}

static int add_proc(struct kb_logsum *s, const struct kb_json_obj *o)
{
	struct kb_logsum_proc *n = realloc(s->procs, (s->nprocs + 1) * sizeof *n);
	if (n == NULL)
		return -1;
	s->procs = n;
	struct kb_logsum_proc *p = &s->procs[s->nprocs++];
	memset(p, 0, sizeof *p);
	p->pid = num(o, "pid");
	p->ppid = num(o, "ppid");
	copy(p->program, sizeof p->program, kb_json_str(o, "program"));
	copy(p->recipe, sizeof p->recipe, kb_json_str(o, "recipe"));
	copy(p->seed, sizeof p->seed, kb_json_str(o, "seed"));
	const char *fork = kb_json_str(o, "fork");
	p->fork = fork && strcmp(fork, "true") == 0;
	return 0;
}

int kb_logsum_add(struct kb_logsum *s, const char *line, char *why, size_t why_len)
{
	struct kb_json_obj *o;
	unsigned col = 0;
	const char *reason = NULL;

	if (line[strspn(line, " \t\r\n")] == '\0')
		return 0;
	s->lines++;
	o = malloc(sizeof *o);
	if (o == NULL) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	int rc = -1;
	if (kb_json_flat_parse(line, o, &col, &reason) < 0) {
		snprintf(why, why_len, "%u: not a JSON object: %s", col, reason ? reason : "?");
		goto out;
	}
	const char *event = kb_json_str(o, "event");
	if (event == NULL) {
		snprintf(why, why_len, "1: no \"event\" field: not a kbfault log line");
		goto out;
	}
	if (strcmp(event, "inject") == 0) {
		if (!kb_json_str(o, "rule") || !kb_json_str(o, "call") || !kb_json_str(o, "action") ||
		    num(o, "pid") < 0) {
			snprintf(why, why_len, "1: an inject event without rule, call, action or pid");
			goto out;
		}
		s->injections++;
		rc = add_row(s, o);
	} else if (strcmp(event, "start") == 0) {
		rc = add_proc(s, o);
	} else if (strcmp(event, "stall-end") == 0) {
		s->stall_ends++;
		rc = 0;
	} else if (strcmp(event, "error") == 0) {
		char **n = realloc(s->errors, (s->nerrors + 1) * sizeof *n);
		if (n != NULL) {
			s->errors = n;
			const char *m = kb_json_str(o, "message");
			s->errors[s->nerrors++] = strdup(m ? m : "(no message)");
		}
		rc = 0;
	} else {
		rc = 0; /* events from newer versions are skipped, not fatal */
	}
out:
	if (rc < 0)
		s->malformed++;
	free(o);
	return rc;
}

static int by_rule_pid(const void *a, const void *b)
{
	const struct kb_logsum_row *x = a, *y = b;
	int c = strcmp(x->rule, y->rule);
	if (c)
		return c;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	c = strcmp(x->call, y->call);
	if (c)
		return c;
	c = strcmp(x->action, y->action);
	return c ? c : strcmp(x->effect, y->effect);
}

void kb_logsum_sort(struct kb_logsum *s)
{
	if (s->nrows > 1)
		qsort(s->rows, s->nrows, sizeof s->rows[0], by_rule_pid);
}

uint64_t kb_logsum_rule_total(const struct kb_logsum *s, const char *rule)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->nrows; i++)
		if (strcmp(s->rows[i].rule, rule) == 0)
			n += s->rows[i].count;
	return n;
}

void kb_logsum_free(struct kb_logsum *s)
{
	for (size_t i = 0; i < s->nerrors; i++)
		free(s->errors[i]);
	free(s->errors);
	free(s->rows);
	free(s->procs);
	memset(s, 0, sizeof *s);
}
