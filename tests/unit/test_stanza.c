/* The line syntax: tokens, quotes, comments, and refusing binary junk. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kbfault/stanza.h"

static struct kb_line split_ok(const char *text)
{
	static char buf[KB_LINE_MAX + 1];
	struct kb_line ln;
	struct kb_diag d;
	snprintf(buf, sizeof buf, "%s", text);
	cr_assert_eq(kb_line_split("f", 1, buf, &ln, &d), 0, "%s", d.msg);
	return ln;
}

static struct kb_diag split_bad(const char *text)
{
	static char buf[KB_LINE_MAX + 1];
	struct kb_line ln;
	struct kb_diag d;
	snprintf(buf, sizeof buf, "%s", text);
	cr_assert_lt(kb_line_split("f", 7, buf, &ln, &d), 0, "'%s' should not split", text);
	return d;
}

Test(stanza, tokens_and_columns)
{
	struct kb_line ln = split_ok("  action   fail ECONNRESET  # why");
	cr_assert_eq(ln.ntok, 3);
	cr_assert_str_eq(ln.tok[0].text, "action");
	cr_assert_eq(ln.tok[0].col, 3);
	cr_assert_str_eq(ln.tok[2].text, "ECONNRESET");
	cr_assert_eq(ln.tok[2].col, 17);
}

Test(stanza, quotes_keep_blanks_and_hashes)
{
	struct kb_line ln = split_ok("about \"a # b \\\"c\\\" \\\\\" x#y");
	cr_assert_eq(ln.ntok, 3);
	cr_assert_str_eq(ln.tok[1].text, "a # b \"c\" \\");
	cr_assert(ln.tok[1].quoted);
	cr_assert_str_eq(ln.tok[2].text, "x#y", "# inside a bare value is not a comment");
}

Test(stanza, comment_and_blank_lines_are_empty)
{
	cr_assert_eq(split_ok("   # nothing").ntok, 0);
	cr_assert_eq(split_ok("").ntok, 0);
	cr_assert_eq(split_ok("\t\t").ntok, 0);
}

Test(stanza, quote_errors_name_the_column)
{
	struct kb_diag d = split_bad("about \"open");
	cr_assert_eq(d.line, 7);
	cr_assert_eq(d.col, 7);
	cr_assert(strstr(d.msg, "unterminated"));
	d = split_bad("about \"a\\n\"");
	cr_assert_eq(d.col, 9);
	cr_assert(strstr(d.msg, "escape"));
	d = split_bad("about \"a\"b");
	cr_assert_eq(d.col, 10);
	d = split_bad("ab\"c");
	cr_assert_eq(d.col, 3);
}

Test(stanza, too_many_tokens)
{
	char line[512] = "";
	for (int i = 0; i < KB_TOKENS_MAX + 1; i++)
		strcat(line, "x ");
	struct kb_diag d = split_bad(line);
	cr_assert(strstr(d.msg, "more than"));
}

Test(stanza, text_check_refuses_binary)
{
	struct kb_diag d;
	const char nul[] = "rule a\n  on\0 close\n";
	cr_assert_lt(kb_text_check("r.kbf", nul, sizeof nul - 1, &d), 0);
	cr_assert_eq(d.line, 2);
	cr_assert_eq(d.col, 5);
	cr_assert(strstr(d.msg, "0x00"));
	const char bad_utf8[] = "about caf\xc3\x28\n";
	cr_assert_lt(kb_text_check("r.kbf", bad_utf8, sizeof bad_utf8 - 1, &d), 0);
	cr_assert_eq(d.col, 10);
	cr_assert(strstr(d.msg, "UTF-8"));
	const char good[] = "about \"caf\xc3\xa9 \xe2\x9c\x93\"\r\nrule x\r\n";
	cr_assert_eq(kb_text_check("r.kbf", good, sizeof good - 1, &d), 0, "%s", d.msg);
	const char overlong[] = "x \xc0\xaf\n";
	cr_assert_lt(kb_text_check("r.kbf", overlong, sizeof overlong - 1, &d), 0);
}

Test(stanza, text_check_refuses_huge_lines)
{
	static char text[KB_LINE_MAX + 10];
	struct kb_diag d;
	memset(text, 'a', sizeof text);
	cr_assert_lt(kb_text_check("r.kbf", text, sizeof text, &d), 0);
	cr_assert_eq(d.line, 1);
	cr_assert_eq(d.col, KB_LINE_MAX + 1);
}

Test(stanza, next_line_handles_crlf_and_last_line)
{
	char text[] = "a\r\nb\nc";
	size_t pos = 0;
	size_t len = sizeof text - 1;
	cr_assert_str_eq(kb_text_next_line(text, len, &pos), "a");
	cr_assert_str_eq(kb_text_next_line(text, len, &pos), "b");
	cr_assert_str_eq(kb_text_next_line(text, len, &pos), "c");
	cr_assert_null(kb_text_next_line(text, len, &pos));
}

Test(stanza, suggestions_for_typos)
{
	static const char *const words[] = { "fail", "leak", "reset", "abort", NULL };
	cr_assert_str_eq(kb_suggest("fial", words), "fail");
	cr_assert_str_eq(kb_suggest("rest", words), "reset");
	cr_assert_null(kb_suggest("xyz", words));
}
