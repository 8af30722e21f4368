/*
 * outfile.h - a file written beside its final name and renamed into
 * place once complete, so that a reader (a CI job picking up a JUnit
 * file, a browser reloading a report) never sees half of it.
 */
#ifndef KBFAULT_OUTFILE_H
#define KBFAULT_OUTFILE_H

#include <stdio.h>

struct kb_outfile {
	FILE *f;
	const char *path;
	char tmp[4200];
};

/* Opens PATH.tmp.PID for writing; NULL with errno on failure. */
FILE *kb_outfile_open(struct kb_outfile *o, const char *path);

/* Closes it and renames it to its final name; on any error (a failed
 * write included) removes it and returns -1 with errno. */
int kb_outfile_commit(struct kb_outfile *o);

#endif
