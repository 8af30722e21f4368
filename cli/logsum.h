/*
 * logsum.h - an injection log, summed up: what `kbfault report` prints
 * and what `kbfault gate` judges by. Kept apart from the printing so
 * the unit tests can feed it lines directly.
 */
#ifndef KBFAULT_LOGSUM_H
#define KBFAULT_LOGSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kb_logsum_row {
	char rule[64];
	char call[16];
	char action[16];
	char effect[16]; /* what a stateful action did ("cut", "refused"), or "" */
	long pid;
	uint64_t count;
	char first_t[32], last_t[32]; /* seconds since that process started */
};

struct kb_logsum_proc {
	long pid, ppid;
	char program[64];
	char recipe[64];
	char seed[24];
	bool fork;
};

struct kb_logsum {
	uint64_t lines, injections, stall_ends, malformed;
	size_t nrows, nprocs, nerrors;
	struct kb_logsum_row *rows;
	struct kb_logsum_proc *procs;
	char **errors; /* messages of "error" events */
};

/* Adds one log line. Returns 0, or -1 for a line that is not a kbfault
 * log object, with the reason (and column) in why. Blank lines are
 * ignored. */
int kb_logsum_add(struct kb_logsum *s, const char *line, char *why, size_t why_len);

/* Orders the rows by rule, then process, call, action and effect: the
 * order every reader prints them in, one rule's rows together. */
void kb_logsum_sort(struct kb_logsum *s);

/* Total injections of one rule, across processes. */
uint64_t kb_logsum_rule_total(const struct kb_logsum *s, const char *rule);

void kb_logsum_free(struct kb_logsum *s);

#endif
