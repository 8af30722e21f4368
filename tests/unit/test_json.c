/* The log's JSON: written without allocation, read back by the same rules. */
#include <criterion/criterion.h>
#include <string.h>

#include "kbfault/json.h"

Test(json, writes_an_object_per_line)
{
	char buf[256];
	struct kb_jw w;
	kb_jw_begin(&w, buf, sizeof buf);
	kb_jw_str(&w, "event", "inject");
	kb_jw_u64(&w, "hit", 18446744073709551615ULL);
	kb_jw_i64(&w, "fd", -1);
	kb_jw_bool(&w, "fork", true);
	kb_jw_fixed(&w, "ts", 12, 5, 6);
	size_t n = kb_jw_end(&w);
	cr_assert_eq(n, strlen(buf));
	cr_assert_str_eq(buf, "{\"event\":\"inject\",\"hit\":18446744073709551615,\"fd\":-1,\"fork\":true,\"ts\":12.000005}\n");
}

Test(json, escapes_strings)
{
	char buf[64];
	kb_json_escape("a\"b\\c\n\x01", buf, sizeof buf);
	cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\n\\u0001\"");
}

Test(json, a_full_buffer_still_makes_valid_json)
{
	char buf[64];
	struct kb_jw w;
	struct kb_json_obj o;
	kb_jw_begin(&w, buf, sizeof buf);
	kb_jw_str(&w, "a", "short");
	kb_jw_str(&w, "b", "this value is far too long to fit in what is left of the buffer");
	kb_jw_u64(&w, "c", 1);
	kb_jw_end(&w);
	cr_assert_eq(kb_json_flat_parse(buf, &o, NULL, NULL), 0, "%s", buf);
	cr_assert_str_eq(kb_json_str(&o, "a"), "short");
	cr_assert_null(kb_json_get(&o, "b"));
	cr_assert_str_eq(kb_json_str(&o, "truncated"), "true");
}

Test(json, reads_what_it_writes)
{
	char buf[512];
	struct kb_jw w;
	struct kb_json_obj o;
	kb_jw_begin(&w, buf, sizeof buf);
	kb_jw_str(&w, "peer", "[::1]:80");
	kb_jw_str(&w, "q", "say \"hi\"\t\xc3\xa9");
	kb_jw_i64(&w, "n", -42);
	kb_jw_end(&w);
	cr_assert_eq(kb_json_flat_parse(buf, &o, NULL, NULL), 0);
	cr_assert_eq(o.n, 3);
	cr_assert_str_eq(kb_json_str(&o, "q"), "say \"hi\"\t\xc3\xa9");
	cr_assert_eq(kb_json_get(&o, "n")->type, KB_JSON_NUMBER);
	cr_assert_str_eq(kb_json_str(&o, "n"), "-42");
}

Test(json, reader_skips_nested_and_reports_errors)
{
	struct kb_json_obj o;
	unsigned col;
	const char *why;
	cr_assert_eq(kb_json_flat_parse("{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":\"\\u00e9\",\"e\":1.5e3}", &o, NULL, NULL), 0);
	cr_assert_eq(kb_json_get(&o, "a")->type, KB_JSON_NESTED);
	cr_assert_str_eq(kb_json_str(&o, "d"), "\xc3\xa9");
	cr_assert_lt(kb_json_flat_parse("{\"a\":1,}", &o, &col, &why), 0);
	cr_assert_eq(col, 8);
	cr_assert_lt(kb_json_flat_parse("{\"a\":1} x", &o, &col, &why), 0);
	cr_assert_str_eq(why, "text after the object");
	cr_assert_lt(kb_json_flat_parse("{\"a\":\"open", &o, &col, &why), 0);
	cr_assert_lt(kb_json_flat_parse("[1]", &o, &col, &why), 0);
	char deep[200] = "{\"a\":";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	cr_assert_lt(kb_json_flat_parse(deep, &o, &col, &why), 0);
}
