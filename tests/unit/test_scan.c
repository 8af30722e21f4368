/* Scalar parsing: numbers, durations, probabilities, booleans, ports. */
#include <criterion/criterion.h>
#include <errno.h>

#include "kbfault/scan.h"

Test(scan, whole_numbers)
{
	uint64_t v = 99;
	cr_assert_eq(kb_scan_u64("0", 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(kb_scan_u64("18446744073709551615", UINT64_MAX, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(kb_scan_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(kb_scan_u64("11", 10, &v), -ERANGE);
	cr_assert_eq(kb_scan_u64("", 10, &v), -EINVAL);
	cr_assert_eq(kb_scan_u64("-1", 10, &v), -EINVAL);
	cr_assert_eq(kb_scan_u64("1x", 10, &v), -EINVAL);
	cr_assert_eq(v, UINT64_MAX, "a failed parse must not write its result");
}

Test(scan, durations_need_a_unit)
{
	uint64_t ns;
	cr_assert_eq(kb_scan_duration("250ms", &ns), 0);
	cr_assert_eq(ns, 250000000ULL);
	cr_assert_eq(kb_scan_duration("1.5s", &ns), 0);
	cr_assert_eq(ns, 1500000000ULL);
	cr_assert_eq(kb_scan_duration("500us", &ns), 0);
	cr_assert_eq(ns, 500000ULL);
	cr_assert_eq(kb_scan_duration("2m", &ns), 0);
	cr_assert_eq(ns, 120000000000ULL);
	cr_assert_eq(kb_scan_duration("1h", &ns), 0);
	cr_assert_eq(ns, 3600000000000ULL);
	cr_assert_eq(kb_scan_duration("0.001s", &ns), 0);
	cr_assert_eq(ns, 1000000ULL);
	cr_assert_eq(kb_scan_duration("5", &ns), -EINVAL);
	cr_assert_eq(kb_scan_duration("5 s", &ns), -EINVAL);
	cr_assert_eq(kb_scan_duration("1.s", &ns), -EINVAL);
	cr_assert_eq(kb_scan_duration("s", &ns), -EINVAL);
	cr_assert_eq(kb_scan_duration("99999999999999h", &ns), -ERANGE);
}

Test(scan, probabilities_as_thresholds)
{
	uint64_t t;
	cr_assert_eq(kb_scan_chance("1", &t), 0);
	cr_assert_eq(t, UINT64_MAX);
	cr_assert_eq(kb_scan_chance("100%", &t), 0);
	cr_assert_eq(t, UINT64_MAX);
	cr_assert_eq(kb_scan_chance("0", &t), 0);
	cr_assert_eq(t, 0);
	cr_assert_eq(kb_scan_chance("0.5", &t), 0);
	cr_assert_eq(t, 1ULL << 63);
	cr_assert_eq(kb_scan_chance("25%", &t), 0);
	cr_assert_eq(t, 1ULL << 62);
	cr_assert_eq(kb_scan_chance("1.5", &t), -ERANGE);
	cr_assert_eq(kb_scan_chance("101%", &t), -ERANGE);
	cr_assert_eq(kb_scan_chance("half", &t), -EINVAL);
	cr_assert_eq(kb_scan_chance("0,5", &t), -EINVAL, "no locale: a comma is not a decimal point");
}

Test(scan, booleans_and_ports)
{
	bool b = false;
	uint16_t lo, hi;
	cr_assert_eq(kb_scan_bool("yes", &b), 0);
	cr_assert(b);
	cr_assert_eq(kb_scan_bool("off", &b), 0);
	cr_assert_not(b);
	cr_assert_eq(kb_scan_bool("maybe", &b), -EINVAL);
	cr_assert_eq(kb_scan_port_range("8080", &lo, &hi), 0);
	cr_assert(lo == 8080 && hi == 8080);
	cr_assert_eq(kb_scan_port_range("8000-8099", &lo, &hi), 0);
	cr_assert(lo == 8000 && hi == 8099);
	cr_assert_lt(kb_scan_port_range("65536", &lo, &hi), 0);
	cr_assert_lt(kb_scan_port_range("9-8", &lo, &hi), 0);
	cr_assert_lt(kb_scan_port_range("-8", &lo, &hi), 0);
}

Test(scan, durations_format_back)
{
	char buf[32];
	kb_format_duration(1500000000ULL, buf, sizeof buf);
	cr_assert_str_eq(buf, "1500ms");
	kb_format_duration(2000000000ULL, buf, sizeof buf);
	cr_assert_str_eq(buf, "2s");
	kb_format_duration(UINT64_MAX, buf, sizeof buf);
	cr_assert_str_eq(buf, "forever");
}
