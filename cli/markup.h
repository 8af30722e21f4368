/*
 * markup.h - text into XML and HTML (JUnit files, the HTML report).
 */
#ifndef KBFAULT_MARKUP_H
#define KBFAULT_MARKUP_H

#include <stdio.h>

/* Writes s as XML/HTML text or attribute value: & < > " ' escaped, and the
 * control characters XML 1.0 cannot carry at all, even escaped, written
 * as '?' (a probe's output may hold anything). */
void kb_markup(FILE *f, const char *s);

#endif
