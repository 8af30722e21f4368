/*
 * diag.c - formatting of struct kb_diag; see diag.h.
 */
#include "kbfault/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kb_diag_set(struct kb_diag *d, const char *file, unsigned line, unsigned col,
		const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return -1;
	snprintf(d->file, sizeof d->file, "%s", file ? file : "");
	d->line = line;
	d->col = col;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
	return -1;
}

void kb_diag_format(const struct kb_diag *d, char *buf, size_t len)
{
	if (d->file[0] && d->line && d->col)
		snprintf(buf, len, "%s:%u:%u: %s", d->file, d->line, d->col, d->msg);
	else if (d->file[0] && d->line)
		snprintf(buf, len, "%s:%u: %s", d->file, d->line, d->msg);
	else if (d->file[0])
		snprintf(buf, len, "%s: %s", d->file, d->msg);
	else
		snprintf(buf, len, "%s", d->msg);
}

void kb_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;

	if (len == 0 || *used >= len - 1)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*used = (size_t)n < len - *used ? *used + (size_t)n : len - 1;
}
