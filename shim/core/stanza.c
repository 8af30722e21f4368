/*
 * stanza.c - reading and tokenising the line syntax described in stanza.h.
 */
#include "kbfault/stanza.h"

#include "kbfault/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kb_text_read(const char *path, char **text, size_t *len, struct kb_diag *err)
{
	struct stat st;
	char *buf;
	size_t used = 0;
	/* O_NONBLOCK: a FIFO would block open() until a writer came, and a
	 * host's start-up with it; a regular file reads the same either way */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return kb_diag_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return kb_diag_set(err, path, 0, 0, "cannot stat: %s", strerror(e));
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return kb_diag_set(err, path, 0, 0, "is a directory, expected a recipe file");
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kb_diag_set(err, path, 0, 0, "is not a regular file");
	}
	if (st.st_size > KB_TEXT_MAX) {
		close(fd);
		return kb_diag_set(err, path, 0, 0, "is %lld bytes, more than the %d allowed",
				   (long long)st.st_size, KB_TEXT_MAX);
	}
	buf = kb_alloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return kb_diag_set(err, path, 0, 0, "out of memory");
	}
	while (used < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + used, (size_t)st.st_size - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			kb_free(buf, (size_t)st.st_size + 1);
			close(fd);
			return kb_diag_set(err, path, 0, 0, "cannot read: %s", strerror(e));
		}
		if (n == 0)
			break; /* the file shrank under us: take what is there */
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	*text = buf;
	*len = used;
	return 0;
}

/* Length of the UTF-8 sequence starting at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past Unicode */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

int kb_text_check(const char *file, const char *text, size_t len, struct kb_diag *err)
{
	const unsigned char *p = (const unsigned char *)text;
	const unsigned char *end = p + len;
	unsigned line = 1, col = 1;
	size_t line_bytes = 0;

	while (p < end) {
		unsigned char c = *p;
		if (c == '\n') {
			line++;
			col = 1;
			line_bytes = 0;
			p++;
			continue;
		}
		/* the CR of a CRLF is part of the line's end, as the LF is */
		if (c == '\r' && (p + 1 == end || p[1] == '\n')) {
			p++;
			continue;
		}
		if (c < 0x20 && c != '\t')
			return kb_diag_set(err, file, line, col,
					   "unexpected control byte 0x%02x (is this a text file?)", c);
		if (c == 0x7f)
			return kb_diag_set(err, file, line, col, "unexpected byte 0x7f");
		size_t n = utf8_len(p, end);
		if (n == 0)
			return kb_diag_set(err, file, line, col,
					   "invalid UTF-8 byte 0x%02x (is this a text file?)", c);
		/* every byte of the character counts, its last one too */
		line_bytes += n;
		if (line_bytes > KB_LINE_MAX)
			return kb_diag_set(err, file, line, col,
					   "line is longer than %d bytes", KB_LINE_MAX);
		p += n;
		col++;
	}
	return 0;
}

char *kb_text_next_line(char *text, size_t len, size_t *pos)
{
	if (*pos >= len)
		return NULL;
	char *start = text + *pos;
	char *nl = memchr(start, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - start) : len - *pos;

	*pos += n + (nl ? 1 : 0);
	if (n > 0 && start[n - 1] == '\r')
		n--;
	start[n] = '\0';
	return start;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Columns count characters (stanza.h), and a line is rewritten in place
 * as it is split: so the count is kept as the scan goes, over bytes not
 * yet rewritten. `at` is how far it has got. */
struct cols {
	const char *at;
	unsigned col;
};

static unsigned col_of(struct cols *c, const char *p)
{
	for (; c->at < p; c->at++)
		if (((unsigned char)*c->at & 0xc0) != 0x80) /* not a continuation byte */
			c->col++;
	return c->col;
}

unsigned kb_token_col(const struct kb_token *t, size_t k)
{
	unsigned col = t->col + (t->quoted ? 1 : 0);

	for (size_t i = 0; i < k && t->text[i]; i++) {
		unsigned char b = (unsigned char)t->text[i];
		if ((b & 0xc0) != 0x80)
			col++;
		/* in a quoted value, every " and \ was written with a \ */
		if (t->quoted && (b == '"' || b == '\\'))
			col++;
	}
	return col;
}

int kb_line_split(const char *file, unsigned lineno, char *line, struct kb_line *out,
		  struct kb_diag *err)
{
	char *p = line;
	struct cols c = { line, 1 };

	out->lineno = lineno;
	out->ntok = 0;
	for (;;) {
		while (is_blank(*p))
			p++;
		if (*p == '\0' || *p == '#')
			return 0;
		if (out->ntok == KB_TOKENS_MAX)
			return kb_diag_set(err, file, lineno, col_of(&c, p),
					   "more than %d values on one line", KB_TOKENS_MAX);

		struct kb_token *t = &out->tok[out->ntok++];
		t->col = col_of(&c, p);
		t->quoted = false;
		if (*p == '"') {
			/* unescape in place: w trails r, and the column count
			 * keeps up with r, ahead of every byte w rewrites */
			char *r = p + 1, *w = p;
			t->quoted = true;
			t->text = w;
			for (;;) {
				col_of(&c, r);
				if (*r == '\0')
					return kb_diag_set(err, file, lineno, t->col,
							   "unterminated quoted value (expected a closing \")");
				if (*r == '"')
					break;
				if (*r == '\\') {
					if (r[1] != '"' && r[1] != '\\')
						return kb_diag_set(err, file, lineno, c.col,
								   "unknown escape \\%c (only \\\" and \\\\ are allowed)",
								   r[1] ? r[1] : ' ');
					r++;
				}
				*w++ = *r++;
			}
			r++; /* past the closing quote */
			if (*r != '\0' && !is_blank(*r))
				return kb_diag_set(err, file, lineno, col_of(&c, r),
						   "expected a blank after the closing quote");
			col_of(&c, r);
			*w = '\0';
			p = *r ? r + 1 : r;
		} else {
			t->text = p;
			while (*p && !is_blank(*p)) {
				if (*p == '"')
					return kb_diag_set(err, file, lineno, col_of(&c, p),
							   "a quote may only start a value");
				p++;
			}
			col_of(&c, p);
			if (*p)
				*p++ = '\0';
		}
	}
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[33], cur[33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof prev);
	}
	return prev[lb];
}

const char *kb_suggest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; candidates[i]; i++) {
		size_t d = edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	/* one typo per three letters at most: "fial" -> "fail", not "abc" -> "abort" */
	size_t len = strlen(word);
	return best && best_d <= (len < 4 ? 1 : len / 3 + 1) ? best : NULL;
}
