/*
 * report_html.h - `kbfault report --html`: an injection log as one
 * self-contained HTML page (no script, no external file), to attach to a
 * CI run: the totals, the processes, and a timeline of the injections,
 * one lane per rule and process.
 */
#ifndef KBFAULT_REPORT_HTML_H
#define KBFAULT_REPORT_HTML_H

#include <stddef.h>

#include "logsum.h"

/* Writes the page for logs to out; s is the sum of the same logs, sorted
 * (kb_logsum_sort). Returns 0, or -1 with a message. */
int kb_report_html(const char *out, char *const *logs, size_t nlogs, const struct kb_logsum *s, char *err,
		   size_t len);

#endif
