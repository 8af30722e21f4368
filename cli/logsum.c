/*
 * logsum.c - summing an injection log; see logsum.h.
 */
#include "logsum.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/diag.h"
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

/* What the line says of the rule's own values, in a few words: the errno
 * of a failure, a delay, a stall, a cap and what was asked for. */
static void detail_of(const struct kb_json_obj *o, char *out, size_t len)
{
	const char *err = kb_json_str(o, "errno"), *delay = kb_json_str(o, "delay_ms");
	const char *stall = kb_json_str(o, "stall"), *stall_ms = kb_json_str(o, "stall_ms");
	const char *backlog = kb_json_str(o, "backlog"), *requested = kb_json_str(o, "requested");
	const char *queue = kb_json_str(o, "queue"), *mode = kb_json_str(o, "mode");
	size_t used = 0;
	out[0] = '\0';
	if (err)
		kb_append(out, len, &used, "%s", err);
	if (queue)
		kb_append(out, len, &used, "%squeue %s %s", used ? ", " : "", queue, mode ? mode : "");
	else if (backlog)
		kb_append(out, len, &used, "%sbacklog %s", used ? ", " : "", backlog);
	if (requested)
		kb_append(out, len, &used, " (asked %s)", requested);
	if (stall)
		kb_append(out, len, &used, "%sstall %s", used ? ", " : "", stall);
	if (stall_ms)
		kb_append(out, len, &used, "%sstall %sms", used ? ", " : "", stall_ms);
	if (delay)
		kb_append(out, len, &used, "%sdelay %sms", used ? ", " : "", delay);
}

static int add_row(struct kb_logsum *s, const struct kb_json_obj *o)
{
	const char *rule = kb_json_str(o, "rule"), *call = kb_json_str(o, "call");
	const char *action = kb_json_str(o, "action"), *t = kb_json_str(o, "t");
	const char *effect = kb_json_str(o, "effect"), *ts_text = kb_json_str(o, "ts");
	long pid = num(o, "pid");
	double ts = ts_text ? strtod(ts_text, NULL) : 0;
	char detail[48];

	if (effect == NULL)
		effect = "";
	detail_of(o, detail, sizeof detail);
	for (size_t i = 0; i < s->nrows; i++) {
		struct kb_logsum_row *r = &s->rows[i];
		if (r->pid == pid && strcmp(r->rule, rule) == 0 && strcmp(r->call, call) == 0 &&
		    strcmp(r->action, action) == 0 && strcmp(r->effect, effect) == 0 && strcmp(r->detail, detail) == 0) {
			r->count++;
			copy(r->last_t, sizeof r->last_t, t);
			r->first_ts = ts && ts < r->first_ts ? ts : r->first_ts;
			r->last_ts = ts > r->last_ts ? ts : r->last_ts;
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
	copy(r->detail, sizeof r->detail, detail);
	r->pid = pid;
	r->count = 1;
	r->first_ts = r->last_ts = ts;
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
	copy(p->recipe_path, sizeof p->recipe_path, kb_json_str(o, "recipe_path"));
	copy(p->params, sizeof p->params, kb_json_str(o, "params"));
	copy(p->seed, sizeof p->seed, kb_json_str(o, "seed"));
	const char *fork = kb_json_str(o, "fork");
	p->fork = fork && strcmp(fork, "true") == 0;
	return 0;
}

/* Is text (its first n bytes) the start of a line of ours, cut short?
 * Every line the shim writes begins with KB_LOG_START, so a piece that
 * begins so - or is a beginning of it - is one. */
static bool ours_cut_short(const char *text, size_t n)
{
	size_t k = strlen(KB_LOG_START);
	return strncmp(text, KB_LOG_START, n < k ? n : k) == 0;
}

/* The length of text[0..n) without the blanks it ends with. */
static size_t trimmed(const char *text, size_t n)
{
	while (n && strchr(" \t\r\n", text[n - 1]))
		n--;
	return n;
}

enum kb_log_piece kb_log_next(char *line, size_t *at, struct kb_json_obj *o, size_t *start, unsigned *col,
			      const char **why)
{
	size_t s = *at + strspn(line + *at, " \t\r\n");
	unsigned c = 0;
	const char *w = NULL;

	*start = s;
	*at = s;
	if (line[s] == '\0')
		return KB_LOG_END;
	if (kb_json_flat_parse(line + s, o, &c, &w) == 0) {
		*at = s + strlen(line + s);
		return KB_LOG_OBJECT;
	}
	/* Not one object from here: a piece, up to where another line of
	 * ours may begin (a line cut short, and the next line appended right
	 * after it). The piece on its own may still be a whole object. */
	char *next = strstr(line + s + 1, KB_LOG_START);
	size_t end = next ? (size_t)(next - line) : s + strlen(line + s);
	if (next) {
		char keep = *next;
		*next = '\0';
		int whole = kb_json_flat_parse(line + s, o, &c, &w) == 0;
		*next = keep;
		*at = end;
		if (whole)
			return KB_LOG_OBJECT;
	}
	*at = end;
	if (ours_cut_short(line + s, trimmed(line + s, end - s)))
		return KB_LOG_TORN;
	*col = (unsigned)s + c;
	*why = w;
	return KB_LOG_BAD;
}

/* One whole object: 0, or -1 (why) when it is not a kbfault log object. */
static int add_object(struct kb_logsum *s, const struct kb_json_obj *o, size_t start, char *why, size_t why_len)
{
	const char *event = kb_json_str(o, "event");
	if (event == NULL) {
		snprintf(why, why_len, "%zu: no \"event\" field: not a kbfault log line", start + 1);
		return -1;
	}
	if (strcmp(event, "inject") == 0) {
		if (!kb_json_str(o, "rule") || !kb_json_str(o, "call") || !kb_json_str(o, "action") ||
		    num(o, "pid") < 0) {
			snprintf(why, why_len, "%zu: an inject event without rule, call, action or pid", start + 1);
			return -1;
		}
		const char *effect = kb_json_str(o, "effect");
		if (effect && strcmp(effect, "none") == 0) {
			if (s->noops++ == 0) {
				const char *because = kb_json_str(o, "reason");
				copy(s->noop_rule, sizeof s->noop_rule, kb_json_str(o, "rule"));
				copy(s->noop_reason, sizeof s->noop_reason, because ? because : "");
			}
		} else {
			s->injections++;
		}
		if (add_row(s, o) < 0) {
			snprintf(why, why_len, "out of memory");
			return -1;
		}
	} else if (strcmp(event, "start") == 0) {
		if (add_proc(s, o) < 0) {
			snprintf(why, why_len, "out of memory");
			return -1;
		}
	} else if (strcmp(event, "stall-end") == 0) {
		s->stall_ends++;
	} else if (strcmp(event, "lost") == 0) {
		long n = num(o, "lines");
		s->lost += n > 0 ? (uint64_t)n : 0;
	} else if (strcmp(event, "error") == 0) {
		char **n = realloc(s->errors, (s->nerrors + 1) * sizeof *n);
		if (n != NULL) {
			s->errors = n;
			const char *m = kb_json_str(o, "message");
			s->errors[s->nerrors++] = strdup(m ? m : "(no message)");
		}
	}
	/* events from newer versions are skipped, not fatal */
	return 0;
}

int kb_logsum_add(struct kb_logsum *s, const char *line, char *why, size_t why_len)
{
	if (line[strspn(line, " \t\r\n")] == '\0')
		return 0;
	s->lines++;
	struct kb_json_obj *o = malloc(sizeof *o);
	char *text = strdup(line);
	int rc = 0;
	if (o == NULL || text == NULL) {
		free(o);
		free(text);
		snprintf(why, why_len, "out of memory");
		s->malformed++;
		return -1;
	}
	size_t at = 0, start;
	unsigned col = 0;
	const char *reason = NULL;
	for (enum kb_log_piece p; (p = kb_log_next(text, &at, o, &start, &col, &reason)) != KB_LOG_END;) {
		char msg[256];
		int r = 0;
		if (p == KB_LOG_OBJECT) {
			r = add_object(s, o, start, msg, sizeof msg);
		} else if (p == KB_LOG_TORN) {
			s->torn++;
			snprintf(msg, sizeof msg, "%zu: a line cut short (%zu bytes), skipped", start + 1,
				 trimmed(text + start, at - start));
			r = KB_LOGSUM_TORN;
		} else {
			snprintf(msg, sizeof msg, "%u: not a JSON object: %s", col, reason ? reason : "?");
			r = -1;
		}
		if (r < 0)
			s->malformed++;
		/* the first problem of the worst kind is the one told */
		if ((r < 0 && rc >= 0) || (r > 0 && rc == 0)) {
			snprintf(why, why_len, "%s", msg);
			rc = r;
		}
	}
	free(text);
	free(o);
	return rc;
}

int kb_logsum_read(struct kb_logsum *s, FILE *f, const char *name, FILE *diag)
{
	char *line = NULL, why[300];
	size_t cap = 0;
	unsigned long lineno = 0;
	int worst = 0;

	for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
		lineno++;
		/* A crash can leave zero bytes in a file (extended, its data
		 * never written): each part between them is read as a line of
		 * its own, the zeros skipped as torn. */
		for (char *p = line; p < line + n;) {
			size_t k = strlen(p);
			if (k == 0) {
				size_t zeros = 0;
				while (p + zeros < line + n && p[zeros] == '\0')
					zeros++;
				s->torn++;
				if (diag)
					fprintf(diag, "%s:%lu:%zu: %zu zero bytes, skipped\n", name, lineno,
						(size_t)(p - line) + 1, zeros);
				worst = worst ? worst : KB_LOGSUM_TORN;
				p += zeros;
				continue;
			}
			int r = kb_logsum_add(s, p, why, sizeof why);
			if (r != 0 && diag)
				fprintf(diag, "%s:%lu:%s\n", name, lineno, why);
			if (r < 0 || (r > 0 && worst == 0))
				worst = r;
			p += k;
		}
	}
	int err = ferror(f);
	free(line);
	return err ? -1 : worst;
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
	if (c)
		return c;
	c = strcmp(x->effect, y->effect);
	return c ? c : strcmp(x->detail, y->detail);
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
		if (strcmp(s->rows[i].rule, rule) == 0 && KB_LOGSUM_EFFECTIVE(&s->rows[i]))
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
