/*
 * recipe.c - the .kbf parser: stanza lines in, immutable rules out.
 *
 * A recipe is a header (recipe, about, seed, set) followed by rule
 * stanzas; every keyword is checked against a table that also says how
 * many values it takes, so a new key is one table row and one handler.
 * Everything a rule can get wrong is caught here, at load time, with the
 * file, line and column of the offending value: the shim never discovers
 * a bad recipe in the middle of a host's traffic.
 */
#include "kbfault/recipe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kbfault/addr.h"
#include "kbfault/decide.h"
#include "kbfault/errnos.h"
#include "kbfault/mem.h"
#include "kbfault/prng.h"
#include "kbfault/scan.h"
#include "kbfault/stanza.h"

#define EXPAND_MAX (4 * KB_LINE_MAX)

enum rule_key {
	K_ON, K_ROLE, K_PORT, K_PEER, K_PEER_PORT, K_PROGRAM, K_NTH, K_AFTER, K_FROM, K_EVERY,
	K_PROBABILITY, K_LIMIT, K_WINDOW, K_COUNTERS, K_DELAY, K_ACTION, K_ENABLED,
	K_MARK_PEER, K_PEER_MARKED, K_SESS_COUNT, K_SESS_MISCOUNT, K_SESS_SLOTS, K_SESS_LEAK,
	K_COUNT
};

struct pos {
	unsigned line, col;
};

struct parser {
	const char *path;
	struct kb_recipe *r;
	struct kb_overrides *ov;
	struct kb_diag *err;
	struct kb_rule *rule;           /* the stanza being read, or NULL */
	unsigned rule_col;              /* the column of its `rule` keyword */
	struct pos seen[K_COUNT];       /* first line/col of each key in it */
	size_t cap;                     /* allocated rules */
	const char *origin[KB_TOKENS_MAX]; /* parameter a token was expanded from */
	bool whole[KB_TOKENS_MAX];      /* the token was that parameter and nothing else */
	unsigned errno_col;             /* the column of the rule's `fail` errno */
	char expanded[EXPAND_MAX];
};

/* Reports a problem with token `t`, naming the parameter it came from when
 * its value was substituted, since that is where the user must look. */
__attribute__((format(printf, 4, 5)))
static int fail_at(struct parser *p, const struct kb_line *ln, size_t i, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (i < ln->ntok && p->origin[i]) {
		const struct kb_param *prm = NULL;
		for (size_t k = 0; k < p->r->nparams; k++)
			if (strcmp(p->r->params[k].name, p->origin[i]) == 0)
				prm = &p->r->params[k];
		if (prm && prm->overridden)
			return kb_diag_set(p->err, p->path, ln->lineno, ln->tok[i].col,
					   "%s (from parameter '%s', set to '%s' by %s)", msg,
					   prm->name, prm->value, p->ov ? p->ov->origin : "override");
		return kb_diag_set(p->err, p->path, ln->lineno, ln->tok[i].col,
				   "%s (from parameter '%s')", msg, p->origin[i]);
	}
	return kb_diag_set(p->err, p->path, ln->lineno, i < ln->ntok ? ln->tok[i].col : 1,
			   "%s", msg);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= KB_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || (i > 0 && (c == '-' || c == '.'));
		if (!ok)
			return false;
	}
	return true;
}

/* ---- overrides -------------------------------------------------------- */

void kb_overrides_init(struct kb_overrides *ov, const char *origin)
{
	memset(ov, 0, sizeof *ov);
	snprintf(ov->origin, sizeof ov->origin, "%s", origin);
}

int kb_overrides_add(struct kb_overrides *ov, const char *assignment, struct kb_diag *err)
{
	const char *eq = strchr(assignment, '=');
	char name[KB_NAME_MAX];
	size_t n = eq ? (size_t)(eq - assignment) : 0;

	if (eq == NULL || n == 0 || n >= sizeof name)
		return kb_diag_set(err, "", 0, 0, "%s: expected NAME=VALUE, got '%s'", ov->origin,
				   assignment);
	memcpy(name, assignment, n);
	name[n] = '\0';
	if (!valid_name(name))
		return kb_diag_set(err, "", 0, 0, "%s: '%s' is not a parameter name", ov->origin,
				   name);
	if (strlen(eq + 1) >= sizeof ov->item[0].value)
		return kb_diag_set(err, "", 0, 0, "%s: value of '%s' is too long", ov->origin, name);

	struct kb_override *slot = NULL;
	for (size_t i = 0; i < ov->n; i++)
		if (strcmp(ov->item[i].name, name) == 0)
			slot = &ov->item[i];
	if (slot == NULL) {
		if (ov->n == KB_MAX_PARAMS)
			return kb_diag_set(err, "", 0, 0, "%s: more than %d parameters", ov->origin,
					   KB_MAX_PARAMS);
		slot = &ov->item[ov->n++];
	}
	snprintf(slot->name, sizeof slot->name, "%s", name);
	snprintf(slot->value, sizeof slot->value, "%s", eq + 1);
	slot->used = false;
	return 0;
}

/* Separates the items of a list. */
static bool list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n';
}

int kb_overrides_add_list(struct kb_overrides *ov, const char *list, struct kb_diag *err)
{
	char item[KB_NAME_MAX + 260];
	const char *p = list;

	while (*p) {
		while (list_sep(*p))
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		size_t n = 0;
		bool value = false;
		while (*p && !list_sep(*p)) {
			if (n + 1 >= sizeof item)
				return kb_diag_set(err, "", 0, 0, "%s: item too long: %.40s...", ov->origin, start);
			char c = *p++;
			item[n++] = c;
			if (c != '=' || value)
				continue;
			value = true;
			if (*p != '"')
				continue;
			/* a quoted value: blanks and commas are its own, and \"
			 * and \\ stand for " and \, as in a recipe */
			for (p++;; p++) {
				if (*p == '\0')
					return kb_diag_set(err, "", 0, 0, "%s: unterminated quote in '%.40s'", ov->origin,
							   start);
				if (*p == '"')
					break;
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				if (n + 1 >= sizeof item)
					return kb_diag_set(err, "", 0, 0, "%s: item too long: %.40s...", ov->origin,
							   start);
				item[n++] = *p;
			}
			p++;
			if (*p && !list_sep(*p))
				return kb_diag_set(err, "", 0, 0, "%s: expected a comma or a blank after the quoted value in '%.40s'",
						   ov->origin, start);
		}
		item[n] = '\0';
		if (kb_overrides_add(ov, item, err) < 0)
			return -1;
	}
	return 0;
}

int kb_overrides_format(const struct kb_overrides *ov, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	for (size_t i = 0; i < ov->n; i++) {
		const char *v = ov->item[i].value;
		bool quote = v[0] == '"' || strpbrk(v, ", \t\n\\\"") != NULL;
		kb_append(buf, len, &used, "%s%s=%s", i ? "," : "", ov->item[i].name, quote ? "\"" : "");
		for (const char *c = v; quote && *c; c++)
			kb_append(buf, len, &used, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
		kb_append(buf, len, &used, "%s", quote ? "\"" : v);
	}
	return used >= len - 1 ? -1 : 0;
}

/* ---- parameter expansion ---------------------------------------------- */

static const struct kb_param *find_param(const struct kb_recipe *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return &r->params[i];
	return NULL;
}

/* Replaces $name, ${name} and $$ in every token of the line (but the
 * keyword), writing the results into p->expanded. */
static int expand_line(struct parser *p, struct kb_line *ln)
{
	size_t used = 0;

	for (size_t i = 0; i < ln->ntok; i++) {
		const char *s = ln->tok[i].text;
		p->origin[i] = NULL;
		p->whole[i] = false;
		if (i == 0 || strchr(s, '$') == NULL)
			continue;
		unsigned refs = 0;
		char *out = p->expanded + used;
		size_t o = 0;
		for (const char *c = s; *c;) {
			char name[KB_NAME_MAX];
			size_t n = 0;
			if (*c != '$') {
				if (used + o + 1 >= EXPAND_MAX)
					goto too_long;
				out[o++] = *c++;
				continue;
			}
			unsigned col = kb_token_col(&ln->tok[i], (size_t)(c - s));
			if (c[1] == '$') {
				if (used + o + 1 >= EXPAND_MAX)
					goto too_long;
				out[o++] = '$';
				c += 2;
				continue;
			}
			bool braced = c[1] == '{';
			const char *q = c + (braced ? 2 : 1);
			while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			       (*q >= '0' && *q <= '9') || *q == '_') {
				/* a longer name is no parameter's: never cut it to
				 * one that might be */
				if (n + 1 == sizeof name)
					return kb_diag_set(p->err, p->path, ln->lineno, col,
							   "parameter name longer than %zu characters", sizeof name - 1);
				name[n++] = *q++;
			}
			name[n] = '\0';
			if (n == 0 || (braced && *q != '}'))
				return kb_diag_set(p->err, p->path, ln->lineno, col,
						   "expected a parameter name after '$' (write $$ for a literal $)");
			if (braced)
				q++;
			const struct kb_param *prm = find_param(p->r, name);
			if (prm == NULL)
				return kb_diag_set(p->err, p->path, ln->lineno, col,
						   "unknown parameter '%s' (define it with `set %s VALUE` before the first rule)",
						   name, name);
			size_t vl = strlen(prm->value);
			if (used + o + vl + 1 >= EXPAND_MAX)
				goto too_long;
			memcpy(out + o, prm->value, vl);
			o += vl;
			p->origin[i] = prm->name;
			p->whole[i] = ++refs == 1 && c == s && *q == '\0' && !ln->tok[i].quoted;
			c = q;
		}
		out[o] = '\0';
		ln->tok[i].text = out;
		used += o + 1;
	}
	return 0;
too_long:
	return kb_diag_set(p->err, p->path, ln->lineno, 1, "line too long after parameter expansion");
}

/* ---- rule keys --------------------------------------------------------- */

static int parse_enum(struct parser *p, const struct kb_line *ln, size_t i, const char *what,
		      const char *const *names, size_t count)
{
	const char *s = ln->tok[i].text;

	for (size_t k = 0; k < count; k++)
		if (names[k] && strcmp(names[k], s) == 0)
			return (int)k;

	char list[256] = "";
	size_t used = 0;
	for (size_t k = 0; k < count; k++)
		if (names[k])
			kb_append(list, sizeof list, &used, "%s%s", used ? ", " : "", names[k]);
	const char *cands[KB_ACT_COUNT + KB_CALL_COUNT + 8];
	size_t nc = 0;
	for (size_t k = 0; k < count && nc + 1 < sizeof cands / sizeof cands[0]; k++)
		if (names[k])
			cands[nc++] = names[k];
	cands[nc] = NULL;
	const char *hint = kb_suggest(s, cands);
	if (hint)
		return fail_at(p, ln, i, "unknown %s '%s' (did you mean '%s'? expected one of: %s)",
			       what, s, hint, list);
	return fail_at(p, ln, i, "unknown %s '%s' (expected one of: %s)", what, s, list);
}

static int key_on(struct parser *p, const struct kb_line *ln)
{
	static const char *const names[KB_CALL_COUNT + 2] = {
		"listen", "accept", "connect", "close", "shutdown", "accept4", NULL,
	};
	for (size_t i = 1; i < ln->ntok; i++) {
		int c = parse_enum(p, ln, i, "call", names, KB_CALL_COUNT + 1);
		if (c < 0)
			return -1;
		if (c == KB_CALL_COUNT) /* accept4 is accept */
			c = KB_CALL_ACCEPT;
		p->rule->calls |= 1u << c;
	}
	return 0;
}

static int key_role(struct parser *p, const struct kb_line *ln)
{
	static const char *const names[KB_ROLE_COUNT] = {
		[KB_ROLE_LISTENING] = "listening",
		[KB_ROLE_ACCEPTED] = "accepted",
		[KB_ROLE_OUTBOUND] = "outbound",
	};
	for (size_t i = 1; i < ln->ntok; i++) {
		int r = parse_enum(p, ln, i, "role", names, KB_ROLE_COUNT);
		if (r < 0)
			return -1;
		p->rule->roles |= 1u << r;
	}
	return 0;
}

static int port_value(struct parser *p, const struct kb_line *ln, struct kb_port_range *out)
{
	if (kb_scan_port_range(ln->tok[1].text, &out->lo, &out->hi) < 0)
		return fail_at(p, ln, 1, "expected a port (0-65535) or a range like 8000-8099, got '%s'",
			       ln->tok[1].text);
	return 0;
}

/* 0-65535 is no filter at all (a recipe's default for a port parameter),
 * and costs nothing on the hot path when treated as such. */
static bool whole_range(const struct kb_port_range *r)
{
	return r->lo == 0 && r->hi == 65535;
}

static int key_port(struct parser *p, const struct kb_line *ln)
{
	if (port_value(p, ln, &p->rule->port) < 0)
		return -1;
	p->rule->has_port = !whole_range(&p->rule->port);
	return 0;
}

static int key_peer_port(struct parser *p, const struct kb_line *ln)
{
	if (port_value(p, ln, &p->rule->peer_port) < 0)
		return -1;
	p->rule->has_peer_port = !whole_range(&p->rule->peer_port);
	return 0;
}

static int key_peer(struct parser *p, const struct kb_line *ln)
{
	for (size_t i = 1; i < ln->ntok; i++) {
		if (p->rule->npeers == KB_MAX_PEERS)
			return fail_at(p, ln, i, "more than %d peers in one rule", KB_MAX_PEERS);
		struct kb_cidr *c = &p->rule->peers[p->rule->npeers];
		if (kb_cidr_parse(ln->tok[i].text, c) < 0)
			return fail_at(p, ln, i,
				       "expected an IPv4 or IPv6 address or CIDR (127.0.0.1, 10.0.0.0/8, ::1), got '%s'",
				       ln->tok[i].text);
		p->rule->npeers++;
	}
	return 0;
}

static int key_program(struct parser *p, const struct kb_line *ln)
{
	for (size_t i = 1; i < ln->ntok; i++) {
		const char *s = ln->tok[i].text;
		if (p->rule->nprograms == KB_MAX_PROGRAMS)
			return fail_at(p, ln, i, "more than %d programs in one rule", KB_MAX_PROGRAMS);
		if (*s == '\0' || strlen(s) >= KB_NAME_MAX || strchr(s, '/'))
			return fail_at(p, ln, i,
				       "expected a program name without a directory (like nginx), got '%s'",
				       s);
		snprintf(p->rule->programs[p->rule->nprograms++], KB_NAME_MAX, "%s", s);
	}
	return 0;
}

static int count_value(struct parser *p, const struct kb_line *ln, uint64_t min, uint64_t *out)
{
	uint64_t v;
	int rc = kb_scan_u64(ln->tok[1].text, UINT64_MAX / 2, &v);

	if (rc < 0 || v < min)
		return fail_at(p, ln, 1, "expected a whole number%s, got '%s'",
			       min ? " of at least 1" : "", ln->tok[1].text);
	*out = v;
	return 0;
}

static int key_nth(struct parser *p, const struct kb_line *ln)
{
	return count_value(p, ln, 1, &p->rule->nth);
}

static int key_after(struct parser *p, const struct kb_line *ln)
{
	return count_value(p, ln, 0, &p->rule->after);
}

static int key_from(struct parser *p, const struct kb_line *ln)
{
	uint64_t n = 1;
	if (count_value(p, ln, 1, &n) < 0)
		return -1;
	p->rule->after = n - 1; /* "from the Nth hit on" is "after N-1 hits" */
	return 0;
}

static int key_every(struct parser *p, const struct kb_line *ln)
{
	return count_value(p, ln, 1, &p->rule->every);
}

static int key_limit(struct parser *p, const struct kb_line *ln)
{
	return count_value(p, ln, 1, &p->rule->limit);
}

static int key_probability(struct parser *p, const struct kb_line *ln)
{
	if (kb_scan_chance(ln->tok[1].text, &p->rule->chance) < 0)
		return fail_at(p, ln, 1, "expected a probability from 0 to 1 (0.25) or a percentage (25%%), got '%s'",
			       ln->tok[1].text);
	return 0;
}

static int duration_value(struct parser *p, const struct kb_line *ln, size_t i, const char *s,
			  uint64_t *out)
{
	if (kb_scan_duration(s, out) < 0)
		return fail_at(p, ln, i, "expected a duration with a unit (500us, 250ms, 2s, 1.5m, 1h), got '%s'",
			       s);
	return 0;
}

static int key_window(struct parser *p, const struct kb_line *ln)
{
	const char *s = ln->tok[1].text;
	const char *dots = strstr(s, "..");
	char from[64];

	if (dots == NULL || (size_t)(dots - s) >= sizeof from)
		return fail_at(p, ln, 1, "expected FROM..TO after start (10s..1m, ..30s, 5s..), got '%s'", s);
	memcpy(from, s, (size_t)(dots - s));
	from[dots - s] = '\0';
	p->rule->has_window = true;
	p->rule->window_from_ns = 0;
	p->rule->window_to_ns = KB_FOREVER;
	if (from[0] == '\0' && dots[2] == '\0')
		return fail_at(p, ln, 1, "a window needs a start, an end, or both (10s..1m)");
	if (from[0] && duration_value(p, ln, 1, from, &p->rule->window_from_ns) < 0)
		return -1;
	if (dots[2] && duration_value(p, ln, 1, dots + 2, &p->rule->window_to_ns) < 0)
		return -1;
	if (p->rule->window_to_ns <= p->rule->window_from_ns)
		return fail_at(p, ln, 1, "the window ends before it starts: '%s'", s);
	return 0;
}

static int key_counters(struct parser *p, const struct kb_line *ln)
{
	static const char *const names[] = { "process", "tree" };
	int v = parse_enum(p, ln, 1, "counter scope", names, 2);

	if (v < 0)
		return -1;
	p->rule->scope = v == 0 ? KB_SCOPE_PROCESS : KB_SCOPE_TREE;
	return 0;
}

static int key_delay(struct parser *p, const struct kb_line *ln)
{
	return duration_value(p, ln, 1, ln->tok[1].text, &p->rule->delay_ns);
}

static int key_enabled(struct parser *p, const struct kb_line *ln)
{
	if (kb_scan_bool(ln->tok[1].text, &p->rule->enabled) < 0)
		return fail_at(p, ln, 1, "expected yes or no, got '%s'", ln->tok[1].text);
	return 0;
}

static int key_mark_peer(struct parser *p, const struct kb_line *ln)
{
	p->rule->mark_peer = true;
	p->rule->mark_ns = KB_FOREVER;
	if (ln->ntok == 2)
		return duration_value(p, ln, 1, ln->tok[1].text, &p->rule->mark_ns);
	return 0;
}

static int key_peer_marked(struct parser *p, const struct kb_line *ln)
{
	bool yes;
	if (kb_scan_bool(ln->tok[1].text, &yes) < 0)
		return fail_at(p, ln, 1, "expected yes or no, got '%s'", ln->tok[1].text);
	p->rule->peer_marked = yes ? KB_MARKED_YES : KB_MARKED_NO;
	return 0;
}

static int signed_value(struct parser *p, const struct kb_line *ln, int64_t *out)
{
	const char *s = ln->tok[1].text;
	uint64_t v;
	bool neg = s[0] == '-';
	if (kb_scan_u64(s + (neg || s[0] == '+'), 1000000000000ULL, &v) < 0)
		return fail_at(p, ln, 1, "expected a whole number (negative allowed), got '%s'", s);
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int key_sess_count(struct parser *p, const struct kb_line *ln)
{
	return signed_value(p, ln, &p->rule->sess_count);
}

static int key_sess_miscount(struct parser *p, const struct kb_line *ln)
{
	return signed_value(p, ln, &p->rule->sess_miscount);
}

static int key_sess_slots(struct parser *p, const struct kb_line *ln)
{
	return count_value(p, ln, 0, &p->rule->sess_slots);
}

static int key_sess_leak(struct parser *p, const struct kb_line *ln)
{
	uint64_t v;
	if (kb_scan_u64(ln->tok[1].text, 64ULL << 20, &v) < 0)
		return fail_at(p, ln, 1, "expected a number of bytes from 0 to 67108864, got '%s'", ln->tok[1].text);
	p->rule->sess_leak = v;
	return 0;
}

static int key_action(struct parser *p, const struct kb_line *ln)
{
	static const char *const names[KB_ACT_COUNT] = {
		"pass", "fail", "backlog", "leak", "reset", "refuse", "stall", "abort", "queue", "sessions",
	};
	struct kb_rule *r = p->rule;
	int a = parse_enum(p, ln, 1, "action", names, KB_ACT_COUNT);

	if (a < 0)
		return -1;
	r->action = (enum kb_action)a;
	static const unsigned nargs[KB_ACT_COUNT] = {
		[KB_ACT_FAIL] = 1, [KB_ACT_BACKLOG] = 1, [KB_ACT_STALL] = 1, [KB_ACT_QUEUE] = 2,
	};
	if (ln->ntok - 2 < nargs[a]) {
		static const char *const what[KB_ACT_COUNT] = {
			[KB_ACT_FAIL] = "an errno name (action fail ECONNREFUSED)",
			[KB_ACT_BACKLOG] = "the backlog to cap at (action backlog 5)",
			[KB_ACT_STALL] = "a duration or 'forever' (action stall 30s)",
			[KB_ACT_QUEUE] = "a length and hang, reset or refuse (action queue 5 refuse)",
		};
		const struct kb_token *last = &ln->tok[ln->ntok - 1];
		return kb_diag_set(p->err, p->path, ln->lineno, last->col + (unsigned)strlen(last->text),
				   "'%s' needs %s", names[a], what[a]);
	}
	if (ln->ntok - 2 > nargs[a])
		return fail_at(p, ln, 2 + nargs[a], "'%s' takes %s", names[a],
			       nargs[a] == 0 ? "no value" : nargs[a] == 1 ? "one value" : "two values");

	uint64_t v;
	switch (r->action) {
	case KB_ACT_FAIL:
		r->err = kb_errno_from_name(ln->tok[2].text);
		if (r->err < 0 && kb_errno_closest(ln->tok[2].text))
			return fail_at(p, ln, 2, "unknown errno '%s' (did you mean %s?)", ln->tok[2].text,
				       kb_errno_closest(ln->tok[2].text));
		if (r->err < 0)
			return fail_at(p, ln, 2, "unknown errno '%s' (expected a name like ECONNREFUSED)",
				       ln->tok[2].text);
		p->errno_col = ln->tok[2].col; /* where a call that cannot fail so is pointed at */
		break;
	case KB_ACT_BACKLOG:
		if (kb_scan_u64(ln->tok[2].text, 65535, &v) < 0)
			return fail_at(p, ln, 2, "expected a backlog from 0 to 65535, got '%s'",
				       ln->tok[2].text);
		r->backlog = (int)v;
		break;
	case KB_ACT_QUEUE: {
		static const char *const modes[KB_QUEUE_MODES] = { "hang", "reset", "refuse" };
		if (kb_scan_u64(ln->tok[2].text, KB_QUEUE_MAX, &v) < 0 || v == 0)
			return fail_at(p, ln, 2, "expected a queue length from 1 to %d, got '%s'", KB_QUEUE_MAX,
				       ln->tok[2].text);
		r->backlog = (int)v;
		int m = parse_enum(p, ln, 3, "queue mode", modes, KB_QUEUE_MODES);
		if (m < 0)
			return -1;
		r->queue_mode = (enum kb_queue_mode)m;
		break;
	}
	case KB_ACT_STALL:
		if (strcmp(ln->tok[2].text, "forever") == 0)
			r->stall_ns = KB_FOREVER;
		else if (duration_value(p, ln, 2, ln->tok[2].text, &r->stall_ns) < 0)
			return -1;
		break;
	default:
		break;
	}
	return 0;
}

struct key {
	const char *name;
	int (*fn)(struct parser *, const struct kb_line *);
	unsigned min, max; /* number of values after the keyword */
	bool repeatable;
	const char *usage;
};

static const struct key rule_keys[K_COUNT] = {
	[K_ON] = { "on", key_on, 1, 5, false, "on CALL... (listen, accept, connect, close, shutdown)" },
	[K_ROLE] = { "role", key_role, 1, 3, false, "role ROLE... (listening, accepted, outbound)" },
	[K_PORT] = { "port", key_port, 1, 1, false, "port N or port N-M" },
	[K_PEER] = { "peer", key_peer, 1, KB_MAX_PEERS, true, "peer ADDRESS[/PREFIX]..." },
	[K_PEER_PORT] = { "peer-port", key_peer_port, 1, 1, false, "peer-port N or peer-port N-M" },
	[K_PROGRAM] = { "program", key_program, 1, KB_MAX_PROGRAMS, true, "program NAME..." },
	[K_NTH] = { "nth", key_nth, 1, 1, false, "nth N" },
	[K_AFTER] = { "after", key_after, 1, 1, false, "after N" },
	[K_FROM] = { "from", key_from, 1, 1, false, "from N" },
	[K_EVERY] = { "every", key_every, 1, 1, false, "every N" },
	[K_PROBABILITY] = { "probability", key_probability, 1, 1, false, "probability P" },
	[K_LIMIT] = { "limit", key_limit, 1, 1, false, "limit N" },
	[K_WINDOW] = { "window", key_window, 1, 1, false, "window FROM..TO" },
	[K_COUNTERS] = { "counters", key_counters, 1, 1, false, "counters process|tree" },
	[K_DELAY] = { "delay", key_delay, 1, 1, false, "delay DURATION" },
	[K_ACTION] = { "action", key_action, 1, 3, false, "action ACTION [VALUE...]" },
	[K_ENABLED] = { "enabled", key_enabled, 1, 1, false, "enabled yes|no" },
	[K_MARK_PEER] = { "mark-peer", key_mark_peer, 0, 1, false, "mark-peer [DURATION]" },
	[K_PEER_MARKED] = { "peer-marked", key_peer_marked, 1, 1, false, "peer-marked yes|no" },
	[K_SESS_COUNT] = { "count", key_sess_count, 1, 1, false, "count N (with action sessions)" },
	[K_SESS_MISCOUNT] = { "miscount", key_sess_miscount, 1, 1, false, "miscount N (with action sessions)" },
	[K_SESS_SLOTS] = { "slots", key_sess_slots, 1, 1, false, "slots N (with action sessions)" },
	[K_SESS_LEAK] = { "leak", key_sess_leak, 1, 1, false, "leak BYTES (with action sessions)" },
};

static const char *const header_keys[] = { "recipe", "about", "seed", "set", "rule", NULL };

/* ---- stanza handling --------------------------------------------------- */

/* The roles a rule on close or shutdown can act on (plan.c indexes it the
 * same way): those it names, else every tracked one; never a listener's
 * for a rule about peers, which a listener has none of. */
static uint32_t close_roles(const struct kb_rule *r)
{
	uint32_t roles = r->roles ? r->roles
				  : (1u << KB_ROLE_LISTENING) | (1u << KB_ROLE_ACCEPTED) | (1u << KB_ROLE_OUTBOUND);
	if (r->npeers || r->has_peer_port || r->peer_marked != KB_MARKED_ANY)
		roles &= ~(1u << KB_ROLE_LISTENING);
	return roles;
}

/* Can rules a and b both fire on one call? As far as the recipe tells:
 * a call both are on, in the same accept phase or for a role both act
 * on, and ports both cover. Programs and peers are not told apart (a
 * process has two names; CIDRs overlap), so this may say yes where they
 * never meet. */
static bool may_fire_together(const struct kb_rule *a, const struct kb_rule *b)
{
	uint32_t calls = a->calls & b->calls;

	if (calls & (1u << KB_CALL_ACCEPT) &&
	    kb_rule_accept_before_dequeue(a) != kb_rule_accept_before_dequeue(b))
		calls &= ~(1u << KB_CALL_ACCEPT);
	uint32_t close_like = (1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN);
	if ((calls & close_like) && !(close_roles(a) & close_roles(b)))
		calls &= ~close_like;
	if (calls == 0)
		return false;
	if (a->has_port && b->has_port && (a->port.hi < b->port.lo || b->port.hi < a->port.lo))
		return false;
	return true;
}

/*
 * A call runs at most KB_VERDICTS_MAX rules that fire (decide.h): the
 * pass rules (a delay or a mark, after which later rules still apply)
 * and the one that decides. A rule with that many pass rules before it
 * that can fire on the same call would be skipped whenever they all do,
 * while `kbfault check` listed it; so it is refused here.
 */
static int reachable(struct parser *p)
{
	const struct kb_rule *r = p->rule;
	const struct kb_recipe *rc = p->r;
	size_t before = 0, first = 0;

	if (!r->enabled)
		return 0;
	for (size_t i = 0; i + 1 < rc->nrules; i++) {
		const struct kb_rule *q = &rc->rules[i];
		if (!q->enabled || q->action != KB_ACT_PASS || !may_fire_together(q, r))
			continue;
		if (before++ == 0)
			first = i;
	}
	if (before < KB_VERDICTS_MAX)
		return 0;
	return kb_diag_set(p->err, p->path, r->line, p->rule_col,
			   "rule '%s' would be skipped whenever the %zu pass rules before it on the same calls fire "
			   "(delay or mark-peer only, from '%s' on): at most %d rules fire on one call; merge some of "
			   "them, or move '%s' above them",
			   r->name, before, rc->rules[first].name, KB_VERDICTS_MAX, r->name);
}

static int rule_check(struct parser *p)
{
	struct kb_rule *r = p->rule;
	const struct pos *s = p->seen;

	if (r == NULL)
		return 0;
	if (!s[K_ON].line)
		return kb_diag_set(p->err, p->path, r->line, 1,
				   "rule '%s' has no `on` line (which calls should it act on? e.g. `on accept`)",
				   r->name);
	if (!s[K_ACTION].line) {
		if (!s[K_DELAY].line && !s[K_MARK_PEER].line)
			return kb_diag_set(p->err, p->path, r->line, 1,
					   "rule '%s' has no `action` line (e.g. `action fail ECONNREFUSED`; a rule with only `delay` or `mark-peer` needs none)",
					   r->name);
		r->action = KB_ACT_PASS; /* a delay or a mark alone */
	}

	uint32_t close_like = (1u << KB_CALL_CLOSE) | (1u << KB_CALL_SHUTDOWN);
	for (int c = 0; c < KB_CALL_COUNT; c++) {
		if (!(r->calls & (1u << c)))
			continue;
		if (!kb_action_valid_for(r->action, (enum kb_call)c)) {
			char ok[128] = "";
			size_t used = 0;
			for (int k = 0; k < KB_CALL_COUNT; k++)
				if (kb_action_valid_for(r->action, (enum kb_call)k))
					kb_append(ok, sizeof ok, &used, "%s%s", used ? ", " : "",
						  kb_call_name((enum kb_call)k));
			return kb_diag_set(p->err, p->path, s[K_ACTION].line, s[K_ACTION].col,
					   "action '%s' does not apply to %s (it applies to: %s)",
					   kb_action_name(r->action), kb_call_name((enum kb_call)c), ok);
		}
		if (r->action == KB_ACT_FAIL && !kb_errno_valid_for((enum kb_call)c, r->err)) {
			char list[512];
			kb_errnos_list((enum kb_call)c, list, sizeof list);
			return kb_diag_set(p->err, p->path, s[K_ACTION].line, p->errno_col,
					   "%s() cannot fail with %s on Linux (it can with: %s)",
					   kb_call_name((enum kb_call)c), kb_errno_name(r->err) ? kb_errno_name(r->err) : "that errno",
					   list);
		}
	}
	if (s[K_ROLE].line && (r->calls & ~close_like))
		return kb_diag_set(p->err, p->path, s[K_ROLE].line, s[K_ROLE].col,
				   "`role` applies to close and shutdown only (listen and accept act on listening sockets, connect on outbound ones)");
	if ((s[K_PEER].line || s[K_PEER_PORT].line) && (r->calls & (1u << KB_CALL_LISTEN))) {
		const struct pos *at = s[K_PEER].line ? &s[K_PEER] : &s[K_PEER_PORT];
		return kb_diag_set(p->err, p->path, at->line, at->col,
				   "a listening socket has no peer: remove `listen` from `on` or drop this line");
	}
	if (s[K_NTH].line && (s[K_AFTER].line || s[K_FROM].line || s[K_EVERY].line))
		return kb_diag_set(p->err, p->path, s[K_NTH].line, s[K_NTH].col,
				   "`nth` picks one hit and cannot be combined with `after`, `from` or `every`");
	if (s[K_FROM].line && s[K_AFTER].line)
		return kb_diag_set(p->err, p->path, s[K_FROM].line, s[K_FROM].col,
				   "`from N` is `after N-1`: give one of them");
	if (s[K_PEER_MARKED].line && (r->calls & (1u << KB_CALL_LISTEN)))
		return kb_diag_set(p->err, p->path, s[K_PEER_MARKED].line, s[K_PEER_MARKED].col,
				   "a listening socket has no peer: remove `listen` from `on` or drop this line");
	static const int sess_keys[] = { K_SESS_COUNT, K_SESS_MISCOUNT, K_SESS_SLOTS, K_SESS_LEAK };
	for (size_t i = 0; i < sizeof sess_keys / sizeof sess_keys[0]; i++) {
		const struct pos *at = &s[sess_keys[i]];
		if (at->line && r->action != KB_ACT_SESSIONS)
			return kb_diag_set(p->err, p->path, at->line, at->col,
					   "`%s` belongs to `action sessions`", rule_keys[sess_keys[i]].name);
	}
	if (r->action == KB_ACT_SESSIONS && s[K_COUNTERS].line && r->scope == KB_SCOPE_PROCESS)
		return kb_diag_set(p->err, p->path, s[K_COUNTERS].line, s[K_COUNTERS].col,
				   "a session model counts for the whole process tree (a server and the workers it forks keep one count): drop `counters process`");
	if (r->action == KB_ACT_SESSIONS && !s[K_SESS_MISCOUNT].line)
		r->sess_miscount = 1; /* the article's bug: one per request */
	return reachable(p);
}

static int rule_begin(struct parser *p, const struct kb_line *ln)
{
	if (ln->ntok != 2)
		return fail_at(p, ln, ln->ntok > 2 ? 2 : 0, "expected `rule NAME`");
	const char *name = ln->tok[1].text;
	if (!valid_name(name))
		return fail_at(p, ln, 1,
			       "'%s' is not a valid rule name (letters, digits, _ . - ; at most %d characters)",
			       name, KB_NAME_MAX - 1);
	for (size_t i = 0; i < p->r->nrules; i++)
		if (strcmp(p->r->rules[i].name, name) == 0)
			return fail_at(p, ln, 1, "rule '%s' is already defined at line %u", name,
				       p->r->rules[i].line);
	if (p->r->nrules == KB_MAX_RULES)
		return fail_at(p, ln, 0, "more than %d rules", KB_MAX_RULES);
	if (p->r->nrules == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct kb_rule *n = kb_realloc(p->r->rules, p->cap * sizeof *n, cap * sizeof *n);
		if (n == NULL)
			return fail_at(p, ln, 0, "out of memory");
		p->r->rules = n;
		p->cap = cap;
	}

	struct kb_rule *r = &p->r->rules[p->r->nrules];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	r->line = ln->lineno;
	r->index = (uint32_t)p->r->nrules;
	r->name_hash = kb_hash_name(name);
	r->enabled = true;
	r->chance = UINT64_MAX;
	r->port = (struct kb_port_range){ 0, 65535 };
	r->peer_port = (struct kb_port_range){ 0, 65535 };
	r->scope = KB_SCOPE_PROCESS;
	p->r->nrules++;
	p->rule = r;
	p->rule_col = ln->tok[0].col;
	memset(p->seen, 0, sizeof p->seen);
	return 0;
}

/* For a key that takes several values, a parameter that is a whole word
 * (unquoted `$nodes`, not `${x}z` or "$nodes") is a list: `peer $nodes`
 * with nodes "0.0.0.0/0 ::/0" is `peer 0.0.0.0/0 ::/0`. Each word keeps
 * the column and the origin of the token it came from, so an error in one
 * still names the parameter. out holds the line as split. */
static int split_lists(struct parser *p, const struct kb_line *ln, struct kb_line *out)
{
	const char *origin[KB_TOKENS_MAX];
	bool whole[KB_TOKENS_MAX];
	out->lineno = ln->lineno;
	out->ntok = 0;
	for (size_t i = 0; i < ln->ntok; i++) {
		char *t = ln->tok[i].text;
		bool list = p->whole[i];
		do {
			if (list)
				t += strspn(t, " \t");
			if (out->ntok == KB_TOKENS_MAX)
				return fail_at(p, ln, i, "more than %d words on a line", KB_TOKENS_MAX);
			char *end = list ? t + strcspn(t, " \t") : t + strlen(t);
			bool more = *end != '\0' && end[strspn(end, " \t")] != '\0';
			*end = '\0';
			out->tok[out->ntok] = ln->tok[i];
			out->tok[out->ntok].text = t;
			whole[out->ntok] = p->whole[i];
			origin[out->ntok++] = p->origin[i];
			t = more ? end + 1 : NULL;
		} while (t);
	}
	memcpy(p->origin, origin, out->ntok * sizeof origin[0]);
	memcpy(p->whole, whole, out->ntok * sizeof whole[0]);
	return 0;
}

static int rule_line(struct parser *p, const struct kb_line *whole)
{
	const char *kw = whole->tok[0].text;
	struct kb_line split;
	const struct kb_line *ln = whole;

	for (int k = 0; k < K_COUNT; k++) {
		const struct key *key = &rule_keys[k];
		if (strcmp(key->name, kw) != 0)
			continue;
		if (key->max > 1) {
			if (split_lists(p, whole, &split) < 0)
				return -1;
			ln = &split;
		}
		size_t nval = ln->ntok - 1;
		if (nval < key->min || nval > key->max)
			return fail_at(p, ln, nval < key->min ? 0 : key->max + 1,
				       "`%s` takes %s value%s: %s", kw,
				       key->min == key->max ? "exactly one" : nval < key->min ? "at least one" : "fewer",
				       key->max == 1 ? "" : "s", key->usage);
		if (p->seen[k].line && !key->repeatable)
			return fail_at(p, ln, 0, "`%s` is already set for this rule at line %u", kw,
				       p->seen[k].line);
		if (!p->seen[k].line)
			p->seen[k] = (struct pos){ ln->lineno, ln->tok[0].col };
		return key->fn(p, ln);
	}

	const char *cands[K_COUNT + 2];
	for (int k = 0; k < K_COUNT; k++)
		cands[k] = rule_keys[k].name;
	cands[K_COUNT] = "rule";
	cands[K_COUNT + 1] = NULL;
	const char *hint = kb_suggest(kw, cands);
	if (strcmp(kw, "set") == 0 || strcmp(kw, "seed") == 0 || strcmp(kw, "recipe") == 0 ||
	    strcmp(kw, "about") == 0)
		return fail_at(p, ln, 0, "`%s` belongs before the first rule", kw);
	if (hint)
		return fail_at(p, ln, 0, "unknown rule key '%s' (did you mean '%s'?)", kw, hint);
	char list[400] = "";
	size_t used = 0;
	for (int k = 0; k < K_COUNT; k++)
		kb_append(list, sizeof list, &used, "%s%s", k ? ", " : "", rule_keys[k].name);
	return fail_at(p, ln, 0, "unknown rule key '%s' (expected one of: %s)", kw, list);
}

static int header_line(struct parser *p, const struct kb_line *ln)
{
	const char *kw = ln->tok[0].text;
	struct kb_recipe *r = p->r;

	if (strcmp(kw, "recipe") == 0) {
		if (ln->ntok != 2 || !valid_name(ln->tok[1].text))
			return fail_at(p, ln, ln->ntok > 1 ? 1 : 0, "expected `recipe NAME` (letters, digits, _ . -)");
		snprintf(r->name, sizeof r->name, "%s", ln->tok[1].text);
		return 0;
	}
	if (strcmp(kw, "about") == 0) {
		size_t used = 0;
		if (ln->ntok < 2)
			return fail_at(p, ln, 0, "expected `about \"one line describing the recipe\"`");
		for (size_t i = 1; i < ln->ntok; i++) {
			kb_append(r->about, sizeof r->about, &used, "%s%s", i > 1 ? " " : "", ln->tok[i].text);
			if (used == sizeof r->about - 1)
				return fail_at(p, ln, i, "`about` is longer than %zu bytes", sizeof r->about - 2);
		}
		return 0;
	}
	if (strcmp(kw, "seed") == 0) {
		if (ln->ntok != 2 || kb_scan_u64(ln->tok[1].text, UINT64_MAX, &r->seed) < 0)
			return fail_at(p, ln, ln->ntok > 1 ? 1 : 0, "expected `seed N` with a whole number");
		r->has_seed = true;
		return 0;
	}
	if (strcmp(kw, "set") == 0) {
		if (ln->ntok != 3)
			return fail_at(p, ln, ln->ntok > 3 ? 3 : 0, "expected `set NAME VALUE` (quote a value with blanks)");
		if (!valid_name(ln->tok[1].text) || strchr(ln->tok[1].text, '-') || strchr(ln->tok[1].text, '.'))
			return fail_at(p, ln, 1, "'%s' is not a parameter name (letters, digits and _)", ln->tok[1].text);
		const struct kb_param *dup = find_param(r, ln->tok[1].text);
		if (dup)
			return fail_at(p, ln, 1, "parameter '%s' is already set at line %u", dup->name, dup->line);
		if (r->nparams == KB_MAX_PARAMS)
			return fail_at(p, ln, 0, "more than %d parameters", KB_MAX_PARAMS);
		if (strlen(ln->tok[2].text) >= sizeof r->params[0].value)
			return fail_at(p, ln, 2, "value is too long");
		struct kb_param *prm = &r->params[r->nparams++];
		snprintf(prm->name, sizeof prm->name, "%s", ln->tok[1].text);
		snprintf(prm->value, sizeof prm->value, "%s", ln->tok[2].text);
		prm->line = ln->lineno;
		for (size_t i = 0; p->ov && i < p->ov->n; i++) {
			if (strcmp(p->ov->item[i].name, prm->name) == 0) {
				snprintf(prm->value, sizeof prm->value, "%s", p->ov->item[i].value);
				prm->overridden = true;
				p->ov->item[i].used = true;
			}
		}
		return 0;
	}
	const char *hint = kb_suggest(kw, header_keys);
	if (hint)
		return fail_at(p, ln, 0, "unknown keyword '%s' (did you mean '%s'?)", kw, hint);
	return fail_at(p, ln, 0,
		       "unknown keyword '%s' before the first rule (expected recipe, about, seed, set or rule)",
		       kw);
}

/* The default recipe name: the file name without directory and .kbf. */
static void name_from_path(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 4 && strcmp(base + n - 4, ".kbf") == 0)
		n -= 4;
	if (n >= len)
		n = len - 1;
	memcpy(out, base, n);
	out[n] = '\0';
}

int kb_recipe_parse(const char *path, char *text, size_t len, struct kb_overrides *ov,
		    struct kb_recipe *out, struct kb_diag *err)
{
	struct parser *p = kb_alloc(sizeof *p);
	struct kb_line *ln = kb_alloc(sizeof *ln);
	size_t pos = 0;
	unsigned lineno = 0;
	char *line;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (p == NULL || ln == NULL) {
		kb_diag_set(err, path, 0, 0, "out of memory");
		goto done;
	}
	snprintf(out->path, sizeof out->path, "%s", path);
	name_from_path(path, out->name, sizeof out->name);
	p->path = path;
	p->r = out;
	p->ov = ov;
	p->err = err;

	if (kb_text_check(path, text, len, err) < 0)
		goto done;
	while ((line = kb_text_next_line(text, len, &pos)) != NULL) {
		lineno++;
		if (kb_line_split(path, lineno, line, ln, err) < 0)
			goto done;
		if (ln->ntok == 0)
			continue;
		if (expand_line(p, ln) < 0)
			goto done;
		if (strcmp(ln->tok[0].text, "rule") == 0) {
			if (rule_check(p) < 0 || rule_begin(p, ln) < 0)
				goto done;
		} else if (p->rule) {
			if (rule_line(p, ln) < 0)
				goto done;
		} else if (header_line(p, ln) < 0) {
			goto done;
		}
	}
	if (rule_check(p) < 0)
		goto done;
	if (out->nrules == 0) {
		kb_diag_set(err, path, lineno ? lineno : 1, 1,
			    "the recipe has no rules (add one: `rule NAME` followed by `on` and `action` lines)");
		goto done;
	}
	for (size_t i = 0; ov && i < ov->n; i++) {
		if (ov->item[i].used)
			continue;
		char names[512] = "";
		size_t used = 0;
		for (size_t k = 0; k < out->nparams; k++)
			kb_append(names, sizeof names, &used, "%s%s", k ? ", " : "", out->params[k].name);
		kb_diag_set(err, path, 0, 0, "%s sets '%s', but this recipe has no such parameter (%s%s)",
			    ov->origin, ov->item[i].name, out->nparams ? "it has: " : "it has none",
			    names);
		goto done;
	}
	rc = 0;
done:
	if (rc < 0)
		kb_recipe_free(out);
	else
		out->rules_cap = p->cap;
	kb_free(p, sizeof *p);
	kb_free(ln, sizeof *ln);
	return rc;
}

int kb_recipe_load(const char *path, struct kb_overrides *ov, struct kb_recipe *out,
		   struct kb_diag *err)
{
	char *text;
	size_t len;

	memset(out, 0, sizeof *out);
	if (kb_text_read(path, &text, &len, err) < 0)
		return -1;
	int rc = kb_recipe_parse(path, text, len, ov, out, err);
	kb_free(text, len + 1);
	return rc;
}

void kb_recipe_free(struct kb_recipe *r)
{
	kb_free(r->rules, r->rules_cap * sizeof *r->rules);
	r->rules_cap = 0;
	r->rules = NULL;
	r->nrules = 0;
}
