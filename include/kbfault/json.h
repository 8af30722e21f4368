/*
 * json.h - the injection log's JSON, written and read back.
 *
 * Writing (struct kb_jw) builds one JSON object in a caller's buffer with
 * no allocation, no stdio and no locale: the shim calls it from hooks on
 * any thread and from fork's child handler. A line that would not fit is
 * still valid JSON: fields that do not fit are dropped and
 * "truncated":true is added. Every string written is valid UTF-8: a byte
 * that is not part of a well-formed UTF-8 sequence is written as \ufffd
 * (U+FFFD, one per byte), whatever the host handed over.
 *
 * Reading (kb_json_flat_parse) takes one log line apart into its top-level
 * fields; nested values are skipped but validated. It is what
 * `kbfault report` and the tests use, so what the shim writes is checked
 * by the same code that users' tools would need to accept.
 */
#ifndef KBFAULT_JSON_H
#define KBFAULT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kb_jw {
	char *buf;
	size_t len;
	size_t used;
	bool truncated;
	bool first;
};

void kb_jw_begin(struct kb_jw *w, char *buf, size_t len);
void kb_jw_str(struct kb_jw *w, const char *key, const char *value);
void kb_jw_u64(struct kb_jw *w, const char *key, uint64_t v);
void kb_jw_i64(struct kb_jw *w, const char *key, int64_t v);
void kb_jw_bool(struct kb_jw *w, const char *key, bool v);
/* A decimal number with `decimals` digits after the point: seconds and
 * microseconds as 1732476170.123456, without floating point. */
void kb_jw_fixed(struct kb_jw *w, const char *key, uint64_t whole, uint64_t frac, unsigned decimals);
/* Closes the object and adds "\n"; returns the line's length. */
size_t kb_jw_end(struct kb_jw *w);

enum kb_json_type { KB_JSON_STRING, KB_JSON_NUMBER, KB_JSON_BOOL, KB_JSON_NULL, KB_JSON_NESTED };

struct kb_json_field {
	char key[64];
	enum kb_json_type type;
	char value[512]; /* strings unescaped (UTF-8); numbers and bools as written */
};

#define KB_JSON_FIELDS_MAX 64

struct kb_json_obj {
	size_t n;
	struct kb_json_field f[KB_JSON_FIELDS_MAX];
};

/* Parses one line holding one JSON object. Returns 0, or -1 with the
 * 1-based column of the problem in *col and a reason in why. */
int kb_json_flat_parse(const char *line, struct kb_json_obj *out, unsigned *col,
		       const char **why);

/* The field's value, or NULL when absent. */
const struct kb_json_field *kb_json_get(const struct kb_json_obj *o, const char *key);
const char *kb_json_str(const struct kb_json_obj *o, const char *key);

/* Writes s as a JSON string (with quotes) to a stdio-free buffer; used by
 * the CLI's --json outputs too. Returns the length written. */
size_t kb_json_escape(const char *s, char *buf, size_t len);

#endif
