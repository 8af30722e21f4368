/*
 * diag.h - errors as values.
 *
 * Parsers never print and never exit: they fill a struct kb_diag that
 * names the file, line and column, and return a negative code. One place
 * (the shim's start-up, or the CLI) decides what the process does with it.
 */
#ifndef KBFAULT_DIAG_H
#define KBFAULT_DIAG_H

#include <stddef.h>

struct kb_diag {
	char file[1024]; /* "" when the problem is not in a file */
	unsigned line;   /* 1-based; 0 when there is no position */
	unsigned col;    /* 1-based; 0 when only the line is known */
	char msg[512];
};

/* Records a problem; returns -1 so callers can `return kb_diag_set(...)`. */
int kb_diag_set(struct kb_diag *d, const char *file, unsigned line, unsigned col,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "file:line:col: msg", "file: msg" or "msg", whichever the diag holds. */
void kb_diag_format(const struct kb_diag *d, char *buf, size_t len);

/* Appends formatted text at buf + *used, never past len, keeping buf
 * NUL-terminated; *used stops growing once the buffer is full. For the
 * lists that messages and descriptions are built from. */
void kb_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
