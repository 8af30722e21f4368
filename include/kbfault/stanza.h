/*
 * stanza.h - the line syntax shared by recipes (.kbf) and gate suites.
 *
 *   # a comment, to the end of the line
 *   keyword value value "a quoted value" $param ${param}s
 *
 * One statement per line; a keyword and its values are separated by
 * blanks; `#` starts a comment when it begins a token; double quotes keep
 * blanks and `#` inside a value and understand \" and \\. Indentation is
 * free. Which keywords exist is up to the reader of the tokens.
 *
 * The text is checked before anything is tokenised: it must be UTF-8 with
 * no control bytes other than tab and the line ends, and no line may be
 * longer than KB_LINE_MAX bytes (its end, LF or CRLF, not counted), so
 * binary garbage gets one clear message at its first bad byte.
 *
 * Columns in messages count characters (Unicode code points), from 1, as
 * an editor shows them; a tab is one character.
 */
#ifndef KBFAULT_STANZA_H
#define KBFAULT_STANZA_H

#include <stdbool.h>
#include <stddef.h>

#include "kbfault/diag.h"

#define KB_LINE_MAX 4096
#define KB_TOKENS_MAX 64
#define KB_TEXT_MAX (1024 * 1024)

struct kb_token {
	char *text;     /* NUL-terminated, quotes and escapes removed */
	unsigned col;   /* 1-based column (in characters) where the token starts */
	bool quoted;
};

struct kb_line {
	unsigned lineno;
	size_t ntok;
	struct kb_token tok[KB_TOKENS_MAX];
};

/* Reads a whole text file (at most KB_TEXT_MAX bytes) into a NUL-terminated
 * heap buffer. Refuses directories and other non-regular files. */
int kb_text_read(const char *path, char **text, size_t *len, struct kb_diag *err);

/* Checks the encoding rules above for the whole text. */
int kb_text_check(const char *file, const char *text, size_t len, struct kb_diag *err);

/* Splits one line (without its end-of-line) into tokens, in place: `line`
 * is modified and the tokens point into it. A line with only blanks and a
 * comment gives ntok == 0. */
int kb_line_split(const char *file, unsigned lineno, char *line, struct kb_line *out,
		  struct kb_diag *err);

/* The column of byte k of a token's text as kb_line_split left it (quotes
 * and escapes removed): where that character is in the line. */
unsigned kb_token_col(const struct kb_token *t, size_t k);

/* Walks a checked text line by line: returns the next line (NUL-terminated
 * in place, "\r\n" handled) and advances *pos, or NULL at the end. */
char *kb_text_next_line(char *text, size_t len, size_t *pos);

/* Levenshtein-closest of `candidates` (NULL-terminated) to `word`, if it is
 * close enough to be a plausible typo; otherwise NULL. */
const char *kb_suggest(const char *word, const char *const *candidates);

#endif
