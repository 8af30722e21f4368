/*
 * outfile.c - see outfile.h.
 */
#include "outfile.h"

#include <errno.h>
#include <unistd.h>

FILE *kb_outfile_open(struct kb_outfile *o, const char *path)
{
	o->path = path;
	snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
	o->f = fopen(o->tmp, "we");
	return o->f;
}

int kb_outfile_commit(struct kb_outfile *o)
{
	if (ferror(o->f) | (fclose(o->f) != 0) || rename(o->tmp, o->path) != 0) {
		int e = errno;
		unlink(o->tmp);
		errno = e;
		return -1;
	}
	return 0;
}
