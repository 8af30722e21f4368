/*
 * scan.c - scalar values for recipes, environment and flags. See scan.h
 * for why this avoids strtod().
 */
#include "kbfault/scan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int kb_scan_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned digit = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Reads "I[.F]" into an integer part and a fraction scaled to 10^9, so a
 * caller can multiply by a unit without floating point. Returns the
 * position after the number, or NULL if there is no number there. */
static const char *scan_decimal(const char *p, uint64_t *whole, uint64_t *nano)
{
	uint64_t w = 0, f = 0, scale = 100000000;
	const char *start = p;

	while (*p >= '0' && *p <= '9') {
		if (w > (UINT64_MAX / 10) - 10)
			return NULL;
		w = w * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9') {
			f += (uint64_t)(*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (p == start)
		return NULL;
	*whole = w;
	*nano = f;
	return p;
}

int kb_scan_duration(const char *s, uint64_t *ns)
{
	static const struct {
		const char *suffix;
		uint64_t ns;
	} units[] = {
		{ "ns", 1ULL }, { "us", 1000ULL }, { "ms", 1000000ULL },
		{ "s", 1000000000ULL }, { "m", 60000000000ULL },
		{ "h", 3600000000000ULL },
	};
	uint64_t whole, nano;

	if (s == NULL)
		return -EINVAL;
	const char *p = scan_decimal(s, &whole, &nano);
	if (p == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		uint64_t unit = units[i].ns;
		if (whole > UINT64_MAX / unit / 2)
			return -ERANGE;
		/* The fraction is exact to the nanosecond for units of a
		 * second and above; below that it is rounded down. */
		unsigned __int128 frac = (unsigned __int128)nano * unit / 1000000000ULL;
		*ns = whole * unit + (uint64_t)frac;
		return 0;
	}
	return -EINVAL;
}

int kb_scan_chance(const char *s, uint64_t *threshold)
{
	uint64_t whole, nano;
	bool percent = false;

	if (s == NULL)
		return -EINVAL;
	const char *p = scan_decimal(s, &whole, &nano);
	if (p == NULL)
		return -EINVAL;
	if (*p == '%') {
		percent = true;
		p++;
	}
	if (*p != '\0')
		return -EINVAL;

	/* value as a fraction of 10^9 (or of 10^11 for a percentage) */
	unsigned __int128 num = (unsigned __int128)whole * 1000000000ULL + nano;
	unsigned __int128 den = percent ? 100000000000ULL : 1000000000ULL;
	if (num > den)
		return -ERANGE;
	if (num == den) {
		*threshold = UINT64_MAX;
		return 0;
	}
	*threshold = (uint64_t)((num << 64) / den);
	return 0;
}

int kb_scan_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int kb_scan_port_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char first[8];
	uint64_t a, b;
	const char *dash = strchr(s, '-');
	size_t n = dash ? (size_t)(dash - s) : strlen(s);

	if (n == 0 || n >= sizeof first)
		return -EINVAL;
	memcpy(first, s, n);
	first[n] = '\0';
	int rc = kb_scan_u64(first, 65535, &a);
	if (rc < 0)
		return rc;
	b = a;
	if (dash) {
		rc = kb_scan_u64(dash + 1, 65535, &b);
		if (rc < 0)
			return rc;
		if (b < a)
			return -EINVAL;
	}
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

void kb_format_duration(uint64_t ns, char *buf, unsigned long len)
{
	if (ns == UINT64_MAX) {
		snprintf(buf, len, "forever");
	} else if (ns % 1000000000ULL == 0) {
		snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ULL));
	} else if (ns % 1000000ULL == 0) {
		snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000ULL));
	} else if (ns % 1000ULL == 0) {
		snprintf(buf, len, "%lluus", (unsigned long long)(ns / 1000ULL));
	} else {
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	}
}
