/*
 * evidence.c - a gate's measurements outside the server (evidence.h):
 * the kernel's TCP counters, the server's descriptors, and the sockets of
 * the port it listens on, all read from /proc, none by connecting (a test
 * connection would be a session that some recipes count).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"
#include "kbfault/diag.h"
#include "kbfault/scan.h"

static const struct {
	const char *name;
	bool counter;
	const char *file, *group, *field; /* a counter's place in /proc/net */
} measures[KB_MEASURES] = {
	[KB_MEASURE_LISTEN_OVERFLOWS] = { "listen-overflows", true, "/proc/net/netstat", "TcpExt:", "ListenOverflows" },
	[KB_MEASURE_LISTEN_DROPS] = { "listen-drops", true, "/proc/net/netstat", "TcpExt:", "ListenDrops" },
	[KB_MEASURE_RESETS_SENT] = { "resets-sent", true, "/proc/net/snmp", "Tcp:", "OutRsts" },
	[KB_MEASURE_SERVER_FDS] = { "server-fds", false, NULL, NULL, NULL },
	[KB_MEASURE_CLOSE_WAIT] = { "close-wait", false, NULL, NULL, NULL },
	[KB_MEASURE_RECV_Q] = { "recv-q", false, NULL, NULL, NULL },
};

/* Longest first, so that ">=" is not read as ">" then "=". */
static const struct {
	const char *text;
	enum kb_expect_op op;
} ops[] = {
	{ ">=", KB_EXPECT_GE }, { "<=", KB_EXPECT_LE }, { "==", KB_EXPECT_EQ },
	{ ">", KB_EXPECT_GT },	{ "<", KB_EXPECT_LT },
};

const char *kb_measure_name(enum kb_measure m)
{
	return (unsigned)m < KB_MEASURES ? measures[m].name : "?";
}

static void names(char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (int m = 0; m < KB_MEASURES; m++)
		kb_append(out, len, &used, "%s%s", m ? ", " : "", measures[m].name);
}

int kb_expect_parse(const char *text, struct kb_expect *out, char *err, size_t len)
{
	char all[200];
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	size_t n = 0;
	while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '-'))
		n++;
	int m = 0;
	while (m < KB_MEASURES && !(strlen(measures[m].name) == n && strncmp(measures[m].name, p, n) == 0))
		m++;
	names(all, sizeof all);
	if (m == KB_MEASURES) {
		snprintf(err, len, "expect: '%.*s' is not a measure (expected one of %s, as in 'listen-overflows >= 1')",
			 (int)n, p, all);
		return -1;
	}
	p += n;
	while (isspace((unsigned char)*p))
		p++;
	size_t o = 0;
	while (o < sizeof ops / sizeof ops[0] && strncmp(p, ops[o].text, strlen(ops[o].text)) != 0)
		o++;
	if (o == sizeof ops / sizeof ops[0]) {
		snprintf(err, len, "expect: after %s, expected >=, >, <=, < or == and a number, got '%s'",
			 measures[m].name, p);
		return -1;
	}
	p += strlen(ops[o].text);
	while (isspace((unsigned char)*p))
		p++;
	uint64_t v;
	char num[32];
	size_t d = strcspn(p, " \t");
	snprintf(num, sizeof num, "%.*s", (int)(d < sizeof num - 1 ? d : sizeof num - 1), p);
	if (d == 0 || d >= sizeof num || kb_scan_u64(num, 1000000000000ULL, &v) < 0 || p[d + strspn(p + d, " \t")]) {
		snprintf(err, len, "expect: after '%s %s', expected a whole number, got '%s'", measures[m].name,
			 ops[o].text, p);
		return -1;
	}
	out->measure = (enum kb_measure)m;
	out->op = ops[o].op;
	out->value = (long long)v;
	return 0;
}

void kb_expect_format(const struct kb_expect *x, char *out, size_t len)
{
	const char *op = "?";
	for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
		if (ops[o].op == x->op)
			op = ops[o].text;
	snprintf(out, len, "%s %s %lld", kb_measure_name(x->measure), op, x->value);
}

/* One counter of /proc/net/netstat or /proc/net/snmp: a line of names
 * after `group`, then a line of values after it. */
static bool counter(int m, long long *out)
{
	FILE *f = fopen(measures[m].file, "re");
	char head[4096], vals[4096];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(head, sizeof head, f) && fgets(vals, sizeof vals, f)) {
		size_t g = strlen(measures[m].group);
		if (strncmp(head, measures[m].group, g) != 0 || strncmp(vals, measures[m].group, g) != 0)
			continue;
		char *hs, *vs;
		char *h = strtok_r(head + g, " \n", &hs), *v = strtok_r(vals + g, " \n", &vs);
		for (; h && v; h = strtok_r(NULL, " \n", &hs), v = strtok_r(NULL, " \n", &vs))
			if (strcmp(h, measures[m].field) == 0) {
				*out = strtoll(v, NULL, 10);
				found = true;
				break;
			}
	}
	fclose(f);
	return found;
}

/* Descriptors open in the processes of one process group. */
static bool group_fds(pid_t group, long long *out)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	long long n = 0;
	bool any = false;

	if (proc == NULL)
		return false;
	while ((de = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char path[300], stat[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "re");
		if (f == NULL)
			continue;
		size_t got = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[got] = '\0';
		char *end = strrchr(stat, ')'); /* the program's name may hold anything */
		long pgrp = -1;
		if (end == NULL || sscanf(end + 1, " %*c %*d %ld", &pgrp) != 1 || pgrp != (long)group)
			continue;
		snprintf(path, sizeof path, "/proc/%s/fd", de->d_name);
		DIR *fds = opendir(path);
		if (fds == NULL)
			continue;
		for (struct dirent *fe; (fe = readdir(fds)) != NULL;)
			n += fe->d_name[0] != '.';
		closedir(fds);
		any = true;
	}
	closedir(proc);
	*out = n;
	return any;
}

/* TCP sockets on local port `port`: how many are in CLOSE-WAIT, and the
 * longest queue of a listener there. */
static bool port_sockets(int port, long long *close_wait, long long *recv_q)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	bool any = false;

	*close_wait = 0;
	*recv_q = 0;
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (f == NULL)
			continue;
		any = true;
		while (fgets(line, sizeof line, f)) {
			char local[128];
			unsigned st;
			unsigned long rx;
			if (sscanf(line, " %*d: %127s %*s %x %*x:%lx", local, &st, &rx) != 3)
				continue;
			char *colon = strrchr(local, ':');
			if (colon == NULL || (int)strtol(colon + 1, NULL, 16) != port)
				continue;
			if (st == 0x08) /* TCP_CLOSE_WAIT */
				(*close_wait)++;
			else if (st == 0x0A && (long long)rx > *recv_q) /* TCP_LISTEN: rx is its accept queue */
				*recv_q = (long long)rx;
		}
		fclose(f);
	}
	return any;
}

void kb_evidence_begin(struct kb_evidence *e)
{
	memset(e, 0, sizeof *e);
	for (int m = 0; m < KB_MEASURES; m++)
		if (measures[m].counter)
			e->ok[m] = counter(m, &e->base[m]);
}

static void highest(struct kb_evidence *e, int m, bool ok, long long v)
{
	if (!ok)
		return;
	if (!e->ok[m] || v > e->value[m])
		e->value[m] = v;
	e->ok[m] = true;
}

void kb_evidence_sample(struct kb_evidence *e, pid_t server_group, int port)
{
	long long v, cw, rq;
	for (int m = 0; m < KB_MEASURES; m++)
		if (measures[m].counter && e->ok[m] && counter(m, &v))
			e->value[m] = v - e->base[m];
	if (server_group > 0) {
		bool ok = group_fds(server_group, &v);
		highest(e, KB_MEASURE_SERVER_FDS, ok, v);
	}
	bool ok = port_sockets(port, &cw, &rq);
	highest(e, KB_MEASURE_CLOSE_WAIT, ok, cw);
	highest(e, KB_MEASURE_RECV_Q, ok, rq);
}

bool kb_expect_met(const struct kb_expect *x, const struct kb_evidence *e)
{
	if ((unsigned)x->measure >= KB_MEASURES || !e->ok[x->measure])
		return false;
	long long v = e->value[x->measure];
	switch (x->op) {
	case KB_EXPECT_GE: return v >= x->value;
	case KB_EXPECT_GT: return v > x->value;
	case KB_EXPECT_LE: return v <= x->value;
	case KB_EXPECT_LT: return v < x->value;
	case KB_EXPECT_EQ: return v == x->value;
	}
	return false;
}
