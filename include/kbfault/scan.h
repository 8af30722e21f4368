/*
 * scan.h - locale-independent parsing of the scalar values recipes,
 * environment variables and command-line flags carry.
 *
 * No strtod and no floating point: a host may have called setlocale()
 * before the shim parses anything, and decimal commas must not change what
 * a recipe means. Every function returns 0 or a negative errno-style code
 * and writes its result only on success.
 */
#ifndef KBFAULT_SCAN_H
#define KBFAULT_SCAN_H

#include <stdbool.h>
#include <stdint.h>

/* A whole decimal number in [0, max]; -EINVAL if not a number, -ERANGE if
 * larger than max. */
int kb_scan_u64(const char *s, uint64_t max, uint64_t *out);

/* A duration with a unit: 250ms, 2s, 1.5s, 500us, 10m, 1h. A bare number
 * is refused (-EINVAL): "5" could mean anything. */
int kb_scan_duration(const char *s, uint64_t *ns);

/* A probability, "0.25" or "25%", as a threshold on a uniform 64-bit draw:
 * 0 never fires, UINT64_MAX always fires. */
int kb_scan_chance(const char *s, uint64_t *threshold);

/* yes/no, true/false, on/off, 1/0. */
int kb_scan_bool(const char *s, bool *out);

/* "N" or "N-M" within 0..65535 (a single N gives lo = hi = N). */
int kb_scan_port_range(const char *s, uint16_t *lo, uint16_t *hi);

/* Formats a duration the way kb_scan_duration reads it ("1.5s"). */
void kb_format_duration(uint64_t ns, char *buf, unsigned long len);

#endif
