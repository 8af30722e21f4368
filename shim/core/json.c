/*
 * json.c - the log's JSON writer and flat reader; see json.h.
 */
#include "kbfault/json.h"

#include <string.h>

/* ---- writing ------------------------------------------------------------ */

/* Space kept back so that a full buffer can still be closed with
 * ,"truncated":true}\n */
#define RESERVE 24

static bool fits(const struct kb_jw *w, size_t n)
{
	return w->used + n + RESERVE <= w->len;
}

static void put(struct kb_jw *w, const char *s, size_t n)
{
	memcpy(w->buf + w->used, s, n);
	w->used += n;
}

void kb_jw_begin(struct kb_jw *w, char *buf, size_t len)
{
	w->buf = buf;
	w->len = len;
	w->used = 0;
	w->truncated = false;
	w->first = true;
	put(w, "{", 1);
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 if p does
 * not start one. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
	return n;
}

/*
 * JSON text is UTF-8, and a reader (jq, Python's json) may refuse a line
 * that is not. What the shim writes comes partly from outside - program
 * names, recipe names, paths - and can hold any bytes, so every byte that
 * is not part of a well-formed UTF-8 sequence is written as U+FFFD, the
 * replacement character, escaped (\ufffd), one for each such byte; valid
 * sequences are copied as they are.
 */
size_t kb_json_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (len < 3)
		return 0;
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		char esc[7];
		const char *out = esc;
		size_t n = 0, used = 1;
		switch (*p) {
		case '"': esc[n++] = '\\'; esc[n++] = '"'; break;
		case '\\': esc[n++] = '\\'; esc[n++] = '\\'; break;
		case '\n': esc[n++] = '\\'; esc[n++] = 'n'; break;
		case '\r': esc[n++] = '\\'; esc[n++] = 'r'; break;
		case '\t': esc[n++] = '\\'; esc[n++] = 't'; break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				esc[n++] = '\\'; esc[n++] = 'u'; esc[n++] = '0'; esc[n++] = '0';
				esc[n++] = hex[*p >> 4]; esc[n++] = hex[*p & 15];
			} else if (*p < 0x80) {
				esc[n++] = (char)*p;
			} else if ((used = utf8_len(p)) != 0) {
				out = (const char *)p;
				n = used;
			} else {
				out = "\\ufffd";
				n = 6;
				used = 1;
			}
		}
		if (o + n + 2 > len)
			return 0;
		memcpy(buf + o, out, n);
		o += n;
		p += used;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return o;
}

/* Writes ,"key": and returns false (writing nothing) if value_len more
 * bytes would not fit. */
static bool key(struct kb_jw *w, const char *k, size_t value_len)
{
	size_t kl = strlen(k);

	if (!fits(w, kl + 4 + value_len)) {
		w->truncated = true;
		return false;
	}
	if (!w->first)
		put(w, ",", 1);
	w->first = false;
	put(w, "\"", 1);
	put(w, k, kl);
	put(w, "\":", 2);
	return true;
}

void kb_jw_str(struct kb_jw *w, const char *k, const char *value)
{
	char tmp[1024];
	size_t n = kb_json_escape(value, tmp, sizeof tmp);

	if (n == 0) {
		w->truncated = true;
		return;
	}
	if (key(w, k, n))
		put(w, tmp, n);
}

static size_t u64_digits(uint64_t v, char *out)
{
	char rev[20];
	size_t n = 0;

	do {
		rev[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	return n;
}

void kb_jw_u64(struct kb_jw *w, const char *k, uint64_t v)
{
	char d[21];
	size_t n = u64_digits(v, d);

	if (key(w, k, n))
		put(w, d, n);
}

void kb_jw_i64(struct kb_jw *w, const char *k, int64_t v)
{
	char d[22];
	size_t n = 0;

	if (v < 0) {
		d[n++] = '-';
		n += u64_digits((uint64_t)0 - (uint64_t)v, d + 1);
	} else {
		n = u64_digits((uint64_t)v, d);
	}
	if (key(w, k, n))
		put(w, d, n);
}

void kb_jw_bool(struct kb_jw *w, const char *k, bool v)
{
	if (key(w, k, v ? 4 : 5))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

void kb_jw_fixed(struct kb_jw *w, const char *k, uint64_t whole, uint64_t frac, unsigned decimals)
{
	char d[48];
	size_t n = u64_digits(whole, d);

	if (decimals) {
		d[n++] = '.';
		for (unsigned i = decimals; i > 0; i--) {
			d[n + i - 1] = (char)('0' + frac % 10);
			frac /= 10;
		}
		n += decimals;
	}
	if (key(w, k, n))
		put(w, d, n);
}

size_t kb_jw_end(struct kb_jw *w)
{
	if (w->truncated) {
		const char *t = w->first ? "\"truncated\":true" : ",\"truncated\":true";
		put(w, t, strlen(t));
	}
	put(w, "}\n", 2);
	w->buf[w->used] = '\0'; /* not counted: for callers that print it */
	return w->used;
}

/* ---- reading ------------------------------------------------------------ */

struct reader {
	const char *s;
	size_t i;
	const char *why;
};

static void skip_ws(struct reader *r)
{
	while (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r')
		r->i++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads a string at r->i (which is at the opening quote) into out, as
 * UTF-8; a value longer than len is cut. */
static int read_string(struct reader *r, char *out, size_t len)
{
	size_t o = 0;

	r->i++;
	for (;;) {
		unsigned char c = (unsigned char)r->s[r->i];
		if (c == '\0') {
			r->why = "unterminated string";
			return -1;
		}
		if (c < 0x20) {
			r->why = "control character in string";
			return -1;
		}
		if (c == '"') {
			r->i++;
			break;
		}
		char buf[4];
		size_t n = 0;
		if (c == '\\') {
			char e = r->s[r->i + 1];
			r->i += 2;
			switch (e) {
			case '"': buf[n++] = '"'; break;
			case '\\': buf[n++] = '\\'; break;
			case '/': buf[n++] = '/'; break;
			case 'b': buf[n++] = '\b'; break;
			case 'f': buf[n++] = '\f'; break;
			case 'n': buf[n++] = '\n'; break;
			case 'r': buf[n++] = '\r'; break;
			case 't': buf[n++] = '\t'; break;
			case 'u': {
				unsigned cp = 0;
				for (int k = 0; k < 4; k++) {
					int h = hexval(r->s[r->i + (size_t)k]);
					if (h < 0) {
						r->why = "bad \\u escape";
						return -1;
					}
					cp = cp * 16 + (unsigned)h;
				}
				r->i += 4;
				/* surrogate pairs are folded to U+FFFD: the log never writes them */
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = 0xfffd;
				if (cp < 0x80) {
					buf[n++] = (char)cp;
				} else if (cp < 0x800) {
					buf[n++] = (char)(0xc0 | (cp >> 6));
					buf[n++] = (char)(0x80 | (cp & 0x3f));
				} else {
					buf[n++] = (char)(0xe0 | (cp >> 12));
					buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
					buf[n++] = (char)(0x80 | (cp & 0x3f));
				}
				break;
			}
			default:
				r->why = "bad escape";
				return -1;
			}
		} else {
			buf[n++] = (char)c;
			r->i++;
		}
		for (size_t k = 0; k < n; k++)
			if (out && o + 1 < len)
				out[o++] = buf[k];
	}
	if (out && len)
		out[o] = '\0';
	return 0;
}

static int read_number(struct reader *r, char *out, size_t len)
{
	size_t start = r->i;
	const char *s = r->s;

	if (s[r->i] == '-')
		r->i++;
	if (s[r->i] < '0' || s[r->i] > '9') {
		r->why = "bad number";
		return -1;
	}
	while (s[r->i] >= '0' && s[r->i] <= '9')
		r->i++;
	if (s[r->i] == '.') {
		r->i++;
		if (s[r->i] < '0' || s[r->i] > '9') {
			r->why = "bad number";
			return -1;
		}
		while (s[r->i] >= '0' && s[r->i] <= '9')
			r->i++;
	}
	if (s[r->i] == 'e' || s[r->i] == 'E') {
		r->i++;
		if (s[r->i] == '+' || s[r->i] == '-')
			r->i++;
		if (s[r->i] < '0' || s[r->i] > '9') {
			r->why = "bad number";
			return -1;
		}
		while (s[r->i] >= '0' && s[r->i] <= '9')
			r->i++;
	}
	size_t n = r->i - start;
	if (n >= len)
		n = len - 1;
	memcpy(out, s + start, n);
	out[n] = '\0';
	return 0;
}

static int skip_value(struct reader *r, int depth);

static int skip_container(struct reader *r, char close, int depth)
{
	if (depth > 32) {
		r->why = "nesting too deep";
		return -1;
	}
	r->i++;
	skip_ws(r);
	if (r->s[r->i] == close) {
		r->i++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			skip_ws(r);
			if (r->s[r->i] != '"') {
				r->why = "expected a key";
				return -1;
			}
			if (read_string(r, NULL, 0) < 0)
				return -1;
			skip_ws(r);
			if (r->s[r->i] != ':') {
				r->why = "expected ':'";
				return -1;
			}
			r->i++;
		}
		if (skip_value(r, depth + 1) < 0)
			return -1;
		skip_ws(r);
		if (r->s[r->i] == ',') {
			r->i++;
			continue;
		}
		if (r->s[r->i] == close) {
			r->i++;
			return 0;
		}
		r->why = "expected ',' or a closing bracket";
		return -1;
	}
}

static int skip_value(struct reader *r, int depth)
{
	char tmp[64];

	skip_ws(r);
	switch (r->s[r->i]) {
	case '"':
		return read_string(r, NULL, 0);
	case '{':
		return skip_container(r, '}', depth);
	case '[':
		return skip_container(r, ']', depth);
	case 't':
		if (strncmp(r->s + r->i, "true", 4) == 0) {
			r->i += 4;
			return 0;
		}
		break;
	case 'f':
		if (strncmp(r->s + r->i, "false", 5) == 0) {
			r->i += 5;
			return 0;
		}
		break;
	case 'n':
		if (strncmp(r->s + r->i, "null", 4) == 0) {
			r->i += 4;
			return 0;
		}
		break;
	default:
		return read_number(r, tmp, sizeof tmp);
	}
	r->why = "unexpected value";
	return -1;
}

int kb_json_flat_parse(const char *line, struct kb_json_obj *out, unsigned *col, const char **why)
{
	struct reader r = { line, 0, NULL };

	out->n = 0;
	skip_ws(&r);
	if (line[r.i] != '{') {
		r.why = "expected '{'";
		goto bad;
	}
	r.i++;
	skip_ws(&r);
	if (line[r.i] == '}') {
		r.i++;
		goto end;
	}
	for (;;) {
		struct kb_json_field scratch, *f = out->n < KB_JSON_FIELDS_MAX ? &out->f[out->n] : &scratch;
		skip_ws(&r);
		if (line[r.i] != '"') {
			r.why = "expected a key";
			goto bad;
		}
		if (read_string(&r, f->key, sizeof f->key) < 0)
			goto bad;
		skip_ws(&r);
		if (line[r.i] != ':') {
			r.why = "expected ':'";
			goto bad;
		}
		r.i++;
		skip_ws(&r);
		char c = line[r.i];
		size_t before = r.i;
		if (c == '"') {
			f->type = KB_JSON_STRING;
			if (read_string(&r, f->value, sizeof f->value) < 0)
				goto bad;
		} else if (c == '{' || c == '[') {
			f->type = KB_JSON_NESTED;
			if (skip_value(&r, 0) < 0)
				goto bad;
			size_t n = r.i - before < sizeof f->value - 1 ? r.i - before : sizeof f->value - 1;
			memcpy(f->value, line + before, n);
			f->value[n] = '\0';
		} else if (c == 't' || c == 'f' || c == 'n') {
			if (skip_value(&r, 0) < 0)
				goto bad;
			f->type = c == 'n' ? KB_JSON_NULL : KB_JSON_BOOL;
			memcpy(f->value, line + before, r.i - before);
			f->value[r.i - before] = '\0';
		} else {
			f->type = KB_JSON_NUMBER;
			if (read_number(&r, f->value, sizeof f->value) < 0)
				goto bad;
		}
		if (f != &scratch)
			out->n++;
		skip_ws(&r);
		if (line[r.i] == ',') {
			r.i++;
			continue;
		}
		if (line[r.i] == '}') {
			r.i++;
			break;
		}
		r.why = "expected ',' or '}'";
		goto bad;
	}
end:
	skip_ws(&r);
	if (line[r.i] != '\0') {
		r.why = "text after the object";
		goto bad;
	}
	return 0;
bad:
	if (col)
		*col = (unsigned)r.i + 1;
	if (why)
		*why = r.why;
	return -1;
}

const struct kb_json_field *kb_json_get(const struct kb_json_obj *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->f[i].key, key) == 0)
			return &o->f[i];
	return NULL;
}

const char *kb_json_str(const struct kb_json_obj *o, const char *key)
{
	const struct kb_json_field *f = kb_json_get(o, key);
	return f ? f->value : NULL;
}
