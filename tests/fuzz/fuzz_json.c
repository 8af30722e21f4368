/*
 * fuzz_json.c - libFuzzer target for the log reader (make fuzz): what
 * `kbfault report` feeds every line of a log through. A log may be
 * truncated, corrupted or not a log at all; the reader must say so, not
 * crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kbfault/json.h"
#include "logsum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_json_obj o;
	struct kb_logsum s;
	char why[256];
	unsigned col;
	const char *reason;

	if (size > 65536)
		return 0;
	char *line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';

	if (kb_json_flat_parse(line, &o, &col, &reason) < 0 && (reason == NULL || col == 0))
		abort(); /* a refusal always has a reason and a column */
	memset(&s, 0, sizeof s);
	kb_logsum_add(&s, line, why, sizeof why);
	kb_logsum_free(&s);

	/* and what the writer makes of the same bytes reads back exactly */
	char out[4096];
	struct kb_jw w;
	kb_jw_begin(&w, out, sizeof out);
	kb_jw_str(&w, "v", line);
	kb_jw_end(&w);
	if (kb_json_flat_parse(out, &o, NULL, NULL) < 0)
		abort();
	free(line);
	return 0;
}
