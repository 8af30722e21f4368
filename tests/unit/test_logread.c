/* Reading a damaged log as every reader of ours does (logsum.h): lines cut
 * short, lines glued after them, zero bytes, "lost" lines; and writing
 * strings that are not UTF-8. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kbfault/json.h"
#include "logsum.h"

#define INJECT(t) "{\"event\":\"inject\",\"pid\":7,\"rule\":\"r\",\"call\":\"close\",\"action\":\"leak\",\"t\":" t "}"

/* The pieces kb_log_next() makes of one line, as letters: O object, T
 * torn, B bad. */
static const char *pieces(const char *text)
{
	static char out[32];
	static struct kb_json_obj o;
	char line[4096];
	size_t at = 0, start, n = 0;
	unsigned col;
	const char *why;
	snprintf(line, sizeof line, "%s", text);
	for (enum kb_log_piece p; (p = kb_log_next(line, &at, &o, &start, &col, &why)) != KB_LOG_END && n < 31;)
		out[n++] = p == KB_LOG_OBJECT ? 'O' : p == KB_LOG_TORN ? 'T' : 'B';
	out[n] = '\0';
	cr_assert_str_eq(line, text, "the line is put back as it was");
	return out;
}

Test(logread, a_line_cut_short_is_skipped_and_one_glued_after_it_is_read)
{
	cr_assert_str_eq(pieces(INJECT("1") "\n"), "O");
	cr_assert_str_eq(pieces("{\"event\":\"inject\",\"pid\":7,\"ru\n"), "T");
	cr_assert_str_eq(pieces("{\"event\":\"inject\",\"pid\":7,\"ru" INJECT("2") "\n"), "TO");
	cr_assert_str_eq(pieces("{\"event\":\"inj{\"event\":\"inject\",\"p" INJECT("3") "\n"), "TTO");
	cr_assert_str_eq(pieces("{\"ev\n"), "T", "a piece of the very start of a line is ours too");
	cr_assert_str_eq(pieces("{"), "T");
	cr_assert_str_eq(pieces(INJECT("4") INJECT("5") "\n"), "OO", "two whole objects with no line end between");
	cr_assert_str_eq(pieces("the host said hello" INJECT("6") "\n"), "BO", "other text is bad, the line after it still read");
	cr_assert_str_eq(pieces("not json\n"), "B");
	cr_assert_str_eq(pieces("  \n"), "");
}

Test(logread, the_sum_counts_what_it_skipped_and_what_the_shim_lost)
{
	struct kb_logsum s;
	char why[256];
	memset(&s, 0, sizeof s);
	cr_assert_eq(kb_logsum_add(&s, INJECT("0.1") "\n", why, sizeof why), 0);
	cr_assert_eq(kb_logsum_add(&s, "{\"event\":\"inject\",\"pid\":7,\"ru" INJECT("0.2") "\n", why, sizeof why),
		     KB_LOGSUM_TORN);
	cr_assert(strstr(why, "1: a line cut short (29 bytes), skipped"), "%s", why);
	cr_assert_eq(kb_logsum_add(&s, "{\"event\":\"lost\",\"pid\":7,\"lines\":12}\n", why, sizeof why), 0);
	cr_assert_eq(kb_logsum_add(&s, "{\"event\":\"lost\",\"pid\":7,\"lines\":3}\n", why, sizeof why), 0);
	/* bad text and a torn piece on one line: the bad one is told */
	cr_assert_eq(kb_logsum_add(&s, "junk{\"event\":\"inj" INJECT("0.3") "\n", why, sizeof why), -1);
	cr_assert(strstr(why, "1: not a JSON object"), "%s", why);
	cr_assert_eq(s.injections, 3, "the glued lines counted");
	cr_assert_eq(s.torn, 2);
	cr_assert_eq(s.malformed, 1);
	cr_assert_eq(s.lost, 15);
	cr_assert_eq(kb_logsum_rule_total(&s, "r"), 3);
	kb_logsum_free(&s);
}

Test(logread, a_whole_log_with_zero_bytes_and_a_last_line_without_its_end)
{
	static const char text[] = INJECT("1") "\n"
				   "{\"event\":\"inject\",\"pid\":7\0\0\0\0" INJECT("2") "\n"
				   "{\"event\":\"inject\",\"pid\":7,\"rule\":\"r\"";
	FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
	char *diag = NULL;
	size_t dlen = 0;
	FILE *d = open_memstream(&diag, &dlen);
	struct kb_logsum s;
	memset(&s, 0, sizeof s);
	cr_assert_eq(kb_logsum_read(&s, f, "LOG", d), KB_LOGSUM_TORN);
	fclose(f);
	fclose(d);
	cr_assert_eq(s.injections, 2, "%s", diag);
	cr_assert_eq(s.torn, 3, "%s", diag);
	cr_assert(strstr(diag, "LOG:2:1: a line cut short"), "%s", diag);
	cr_assert(strstr(diag, "LOG:2:26: 4 zero bytes, skipped"), "%s", diag);
	cr_assert(strstr(diag, "LOG:3:1: a line cut short"), "%s", diag);
	free(diag);
	kb_logsum_free(&s);
}

/* ---- writing UTF-8 ---------------------------------------------------------- */

static const char *escaped(const char *s)
{
	static char buf[512];
	cr_assert_gt(kb_json_escape(s, buf, sizeof buf), 0);
	return buf;
}

Test(json_utf8, valid_sequences_are_kept_and_every_other_byte_is_replaced)
{
	cr_assert_str_eq(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	cr_assert_str_eq(escaped("kb\xff\xfe"), "\"kb\\ufffd\\ufffd\"");
	cr_assert_str_eq(escaped("\xc0\xaf"), "\"\\ufffd\\ufffd\"", "overlong");
	cr_assert_str_eq(escaped("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"", "overlong");
	cr_assert_str_eq(escaped("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"", "a surrogate");
	cr_assert_str_eq(escaped("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "beyond U+10FFFF");
	cr_assert_str_eq(escaped("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"", "U+10FFFF itself");
	cr_assert_str_eq(escaped("a\x80z"), "\"a\\ufffdz\"", "a lone continuation byte");
	cr_assert_str_eq(escaped("x\xe2\x82"), "\"x\\ufffd\\ufffd\"", "cut off at the end");
	cr_assert_str_eq(escaped("\xe2\x82z"), "\"\\ufffd\\ufffdz\"", "cut off by an ASCII byte");
}

Test(json_utf8, a_line_with_bad_bytes_reads_back_as_the_replacement_character)
{
	char line[256];
	struct kb_jw w;
	struct kb_json_obj o;
	kb_jw_begin(&w, line, sizeof line);
	kb_jw_str(&w, "program", "kb\xff-x");
	kb_jw_end(&w);
	cr_assert_eq(kb_json_flat_parse(line, &o, NULL, NULL), 0, "%s", line);
	cr_assert_str_eq(kb_json_str(&o, "program"), "kb\xef\xbf\xbd-x");
}
