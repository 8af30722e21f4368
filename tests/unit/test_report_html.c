/* `kbfault report --html`: lanes per rule and process, counts, escaping,
 * and a page for a log with no injections. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_html.h"

static char *page_for(const char *log_text)
{
	static char dir[64], log[128], page[128];
	snprintf(dir, sizeof dir, "/tmp/kbhtml-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(page, sizeof page, "%s/page.html", dir);
	FILE *f = fopen(log, "w");
	fputs(log_text, f);
	fclose(f);

	struct kb_logsum s;
	char why[256], err[512], *line = NULL;
	size_t cap = 0;
	memset(&s, 0, sizeof s);
	f = fopen(log, "r");
	while (getline(&line, &cap, f) >= 0)
		kb_logsum_add(&s, line, why, sizeof why);
	fclose(f);
	free(line);
	kb_logsum_sort(&s);
	char *logs[] = { log };
	cr_assert_eq(kb_report_html(page, logs, 1, &s, err, sizeof err), 0, "%s", err);
	kb_logsum_free(&s);

	f = fopen(page, "r");
	char *text = calloc(1, 1 << 20);
	cr_assert_gt(fread(text, 1, (1 << 20) - 1, f), 0);
	fclose(f);
	unlink(page);
	unlink(log);
	rmdir(dir);
	return text;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

Test(report_html, one_lane_per_rule_and_process)
{
	char *html = page_for(
		"{\"event\":\"start\",\"ts\":100.0,\"pid\":7,\"ppid\":1,\"program\":\"x&y\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n"
		"{\"event\":\"inject\",\"ts\":100.5,\"t\":0.5,\"pid\":7,\"rule\":\"a<b\",\"call\":\"close\",\"action\":\"leak\"}\n"
		"{\"event\":\"inject\",\"ts\":100.6,\"t\":0.6,\"pid\":7,\"rule\":\"a<b\",\"call\":\"shutdown\",\"action\":\"leak\"}\n"
		"{\"event\":\"inject\",\"ts\":101.0,\"t\":1.0,\"pid\":8,\"rule\":\"a<b\",\"call\":\"close\",\"action\":\"leak\"}\n"
		"{\"event\":\"inject\",\"ts\":110.0,\"t\":10.0,\"pid\":7,\"rule\":\"other\",\"call\":\"accept\",\"action\":\"reset\"}\n");
	cr_assert(strstr(html, "<b id=injections>4</b> injections in <b>1</b> process"), "%s", html);
	/* lanes: a<b in 7 (two calls, one lane), a<b in 8, other in 7 */
	cr_assert_eq(count(html, "text-anchor=\"end\">"), 3, "%s", html);
	cr_assert(strstr(html, "a&lt;b \xc2\xb7 7 x&amp;y (2)</text>"), "escaped labels with counts: %s", html);
	cr_assert(strstr(html, "a&lt;b \xc2\xb7 8  (1)</text>"), "%s", html);
	cr_assert(strstr(html, "other \xc2\xb7 7 x&amp;y (1)</text>"), "%s", html);
	cr_assert_null(strstr(html, "a<b"), "nothing unescaped");
	/* the span is 100.0 .. 110.0: the last injection falls in the last slice */
	cr_assert(strstr(html, "other \xc2\xb7 7 x&amp;y (1): 1 injection from +9.900s to +10.000s"), "%s", html);
	cr_assert(strstr(html, "+10s</text>"), "the axis ends at the span: %s", html);
	free(html);
}

/* Many short-lived processes (60 clients) make one lane per rule and
 * program, saying how many processes it holds, not 60 lanes. */
Test(report_html, many_processes_are_grouped_by_program)
{
	char *log = calloc(1, 1 << 16);
	size_t used = 0;
	for (int pid = 100; pid < 160; pid++)
		used += (size_t)snprintf(log + used, (1 << 16) - used,
					 "{\"event\":\"start\",\"ts\":100.0,\"pid\":%d,\"ppid\":1,\"program\":\"client\",\"recipe\":\"r\","
					 "\"seed\":0,\"fork\":false}\n"
					 "{\"event\":\"inject\",\"ts\":%d.5,\"t\":0.5,\"pid\":%d,\"rule\":\"refuse\",\"call\":\"connect\","
					 "\"action\":\"refuse\",\"effect\":\"refused\"}\n",
					 pid, pid, pid);
	used += (size_t)snprintf(log + used, (1 << 16) - used,
				 "{\"event\":\"start\",\"ts\":100.0,\"pid\":7,\"ppid\":1,\"program\":\"server\",\"recipe\":\"r\","
				 "\"seed\":0,\"fork\":false}\n"
				 "{\"event\":\"inject\",\"ts\":100.5,\"t\":0.5,\"pid\":7,\"rule\":\"refuse\",\"call\":\"connect\","
				 "\"action\":\"refuse\",\"effect\":\"refused\"}\n");
	char *html = page_for(log);
	cr_assert_eq(count(html, "text-anchor=\"end\">"), 2, "two lanes, not 61: %s", html);
	cr_assert(strstr(html, "refuse \xc2\xb7 client, 60 processes (60)</text>"), "%s", html);
	cr_assert(strstr(html, "refuse \xc2\xb7 server, 1 process (1)</text>"), "%s", html);
	free(html);
	free(log);
}

/* A long rule name is never cut at the left: the labels' column is as
 * wide as the longest label. */
Test(report_html, a_long_rule_name_fits)
{
	char log[1024], name[64];
	memset(name, 'n', 63); /* the longest a rule's name can be */
	name[63] = '\0';
	snprintf(log, sizeof log,
		 "{\"event\":\"start\",\"ts\":100.0,\"pid\":7,\"ppid\":1,\"program\":\"s\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n"
		 "{\"event\":\"inject\",\"ts\":100.5,\"t\":0.5,\"pid\":7,\"rule\":\"%s\",\"call\":\"close\",\"action\":\"leak\"}\n",
		 name);
	char *html = page_for(log);
	const char *text = strstr(html, "text-anchor=\"end\">");
	cr_assert_not_null(text);
	/* <text x="X" ...: the label ends at X, and its 70 characters at 12px need more than 70 * 6 */
	const char *x = text;
	while (x > html && strncmp(x, "<text x=\"", 9) != 0)
		x--;
	cr_assert_gt(atoi(x + 9), 70 * 6, "the label's right edge leaves room for it: %.80s", x);
	free(html);
}

/* Every process on one time base (the first event of all the logs), the
 * rule's values, and the parameters a process ran with. */
Test(report_html, one_time_base_details_and_parameters)
{
	char *html = page_for(
		"{\"event\":\"start\",\"ts\":100.0,\"t\":0,\"pid\":7,\"ppid\":1,\"program\":\"a\",\"recipe\":\"r\","
		"\"recipe_path\":\"/x/r.kbf\",\"params\":\"every=3\",\"seed\":0,\"fork\":false}\n"
		"{\"event\":\"start\",\"ts\":105.0,\"t\":0,\"pid\":8,\"ppid\":1,\"program\":\"b\",\"recipe\":\"r\","
		"\"recipe_path\":\"/x/r.kbf\",\"seed\":0,\"fork\":false}\n"
		"{\"event\":\"inject\",\"ts\":101.0,\"t\":1.0,\"pid\":7,\"rule\":\"f\",\"call\":\"accept\",\"action\":\"fail\","
		"\"errno\":\"ECONNABORTED\",\"effect\":\"failed\"}\n"
		"{\"event\":\"inject\",\"ts\":106.0,\"t\":1.0,\"pid\":8,\"rule\":\"f\",\"call\":\"accept\",\"action\":\"fail\","
		"\"errno\":\"ECONNABORTED\",\"effect\":\"failed\",\"delay_ms\":500}\n");
	/* both at t=1.0 of their own process, 5 s apart on the page */
	cr_assert(strstr(html, "<td class=n>1.000000</td><td class=n>1.000000</td>"), "%s", html);
	cr_assert(strstr(html, "<td class=n>6.000000</td><td class=n>6.000000</td>"), "%s", html);
	cr_assert(strstr(html, "<td>ECONNABORTED</td>"), "%s", html);
	cr_assert(strstr(html, "<td>ECONNABORTED, delay 500ms</td>"), "%s", html);
	cr_assert(strstr(html, "<td>failed</td>"), "%s", html);
	cr_assert(strstr(html, "<td>every=3</td>"), "%s", html);
	cr_assert(strstr(html, "/x/r.kbf"), "%s", html);
	free(html);
}

Test(report_html, says_when_nothing_was_injected)
{
	char *html = page_for(
		"{\"event\":\"start\",\"ts\":100.0,\"pid\":7,\"ppid\":1,\"program\":\"srv\",\"recipe\":\"r\",\"seed\":0,\"fork\":false}\n");
	cr_assert(strstr(html, "No faults were injected."), "%s", html);
	cr_assert_null(strstr(html, "<svg"));
	free(html);
}
