/*
 * logsum.h - an injection log, summed up: what `kbfault report` prints
 * and what `kbfault gate` judges by. Kept apart from the printing so
 * the unit tests can feed it lines directly.
 *
 * Every reader of ours reads a log through kb_log_next(), which
 * resynchronises after damage instead of giving up on the log: a line of
 * ours cut short (a process killed mid-write, a full filesystem) is
 * skipped and counted as torn, and a whole line glued after such a piece
 * is still read. It can find one because every line the shim writes
 * begins with KB_LOG_START.
 */
#ifndef KBFAULT_LOGSUM_H
#define KBFAULT_LOGSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbfault/json.h"

struct kb_logsum_row {
	char rule[64];
	char call[16];
	char action[16];
	char effect[16]; /* what the injection did ("capped", "cut", "none"), or "" in an old log */
	char detail[48]; /* the rule's own values: "ECONNABORTED", "delay 500ms", "backlog 5 (asked 511)" */
	long pid;
	uint64_t count;
	char first_t[32], last_t[32]; /* seconds since that process started */
	double first_ts, last_ts;     /* seconds since the epoch: one time base for all processes */
};

struct kb_logsum_proc {
	long pid, ppid;
	char program[64];
	char recipe[64];
	char recipe_path[512];
	char params[512]; /* the overrides it ran with (--set), "" for none */
	char seed[24];
	bool fork;
};

struct kb_logsum {
	/* injections: inject lines that changed the call's outcome; noops:
	 * rules that fired and changed nothing ("effect":"none") */
	uint64_t lines, injections, noops, stall_ends, malformed;
	uint64_t torn; /* pieces of lines cut short, skipped */
	uint64_t lost; /* lines the shim could not write, by its "lost" lines */
	size_t nrows, nprocs, nerrors;
	struct kb_logsum_row *rows;
	struct kb_logsum_proc *procs;
	char **errors; /* messages of "error" events */
	char noop_rule[64], noop_reason[256]; /* the first no-op's, or "" */
};

/* Does a row's effect count as an injection? Not a no-op's. */
#define KB_LOGSUM_EFFECTIVE(row) (strcmp((row)->effect, "none") != 0)

#define KB_LOG_START "{\"event\":\""

enum kb_log_piece {
	KB_LOG_END,    /* nothing more on this line */
	KB_LOG_OBJECT, /* a whole JSON object, in o */
	KB_LOG_TORN,   /* a line of ours cut short (it starts as ours do), skipped */
	KB_LOG_BAD,    /* text that is not a JSON object; col and why say where and what */
};

/* The next piece of one line of a log, from *at (0 to begin with): a
 * whole object; or, when the text from there is not one, the piece up to
 * the next KB_LOG_START, which may be a line of ours cut short (torn) or
 * something else (bad), and the next call reads on from there. *start is
 * where the piece began, *col (1-based, in the line) where a bad one went
 * wrong. line is changed while it is read and put back. */
enum kb_log_piece kb_log_next(char *line, size_t *at, struct kb_json_obj *o, size_t *start, unsigned *col,
			      const char **why);

/* Adds one log line. Returns 0; KB_LOGSUM_TORN when a piece of a line
 * cut short was skipped (the rest of the line was read); or -1 when the
 * line holds text that is not a kbfault log object. why says what and
 * where (column first) for the first problem of the worst kind. Blank
 * lines are ignored. */
#define KB_LOGSUM_TORN 1
int kb_logsum_add(struct kb_logsum *s, const char *line, char *why, size_t why_len);

/* Adds every line of f, a log named name. Each problem is reported to
 * diag (NULL: to no one) as NAME:LINE:COLUMN: what. Returns 0, or what
 * kb_logsum_add() returns for the worst line, or -1 if f could not be
 * read to its end. */
int kb_logsum_read(struct kb_logsum *s, FILE *f, const char *name, FILE *diag);

/* Orders the rows by rule, then process, call, action, effect and detail: the
 * order every reader prints them in, one rule's rows together. */
void kb_logsum_sort(struct kb_logsum *s);

/* Total injections of one rule that changed a call, across processes. */
uint64_t kb_logsum_rule_total(const struct kb_logsum *s, const char *rule);

void kb_logsum_free(struct kb_logsum *s);

#endif
