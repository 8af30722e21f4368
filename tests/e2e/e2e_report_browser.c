/* The HTML report as a person sees it: the page rendered by a real
 * browser (headless Chromium from Debian) into a screenshot, whose pixels
 * must hold the lanes, in each rule's colour, and the text of the labels.
 * The screenshot is kept as a CI artifact, build/artifacts/report.png. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "servers.h"

/* Two rules over three processes, the second rule's in two of them. */
static const char *two_rules(void)
{
	static char log[16384];
	size_t used = 0;
	for (int pid = 10; pid < 13; pid++)
		used += (size_t)snprintf(log + used, sizeof log - used,
					 "{\"event\":\"start\",\"ts\":100.0,\"t\":0,\"pid\":%d,\"ppid\":1,\"program\":\"server\","
					 "\"recipe\":\"r\",\"recipe_path\":\"/r.kbf\",\"seed\":0,\"fork\":%s}\n",
					 pid, pid == 10 ? "false" : "true");
	for (int i = 0; i < 40; i++)
		used += (size_t)snprintf(log + used, sizeof log - used,
					 "{\"event\":\"inject\",\"ts\":%d.%d,\"t\":1,\"pid\":%d,\"rule\":\"%s\",\"call\":\"close\","
					 "\"action\":\"leak\",\"effect\":\"leaked\"}\n",
					 100 + i / 4, i % 10, 10 + i % 3, i % 2 ? "keep-every-connection" : "slow-accepts");
	return log;
}

/* Renders the report of log text in Chromium; the counts png_pixels.py
 * prints: width, height, then blue (the first rule's), red (the second's)
 * and dark (text) pixels. */
static void rendered(const char *log_text, const char *png, long counts[5])
{
	char cmd[8192], html[1024], log[1024];
	int st;
	snprintf(log, sizeof log, "%s", kbt_write("kb.log", log_text));
	snprintf(html, sizeof html, "%s/report.html", kbt_tmpdir());
	snprintf(cmd, sizeof cmd, "'%s' report --html '%s' '%s' >/dev/null", kbt_build("kbfault"), html, log);
	free(kbt_sh(cmd, 20000, &st));
	cr_assert_eq(st, 0, "report --html");
	snprintf(cmd, sizeof cmd,
		 "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir='%s/chromium' "
		 "--window-size=1400,700 --screenshot='%s' 'file://%s' >/dev/null 2>&1; "
		 "python3 '%s/tests/e2e/png_pixels.py' '%s' 0 0 1400 700 '#1f77b4' '#d62728' dark",
		 kbt_tmpdir(), png, html, getenv("KB_SRC"), png);
	char *out = kbt_sh(cmd, 90000, &st);
	cr_assert_eq(st, 0, "chromium and the pixel count: %s", out);
	cr_assert_eq(sscanf(out, "%ld %ld %ld %ld %ld", &counts[0], &counts[1], &counts[2], &counts[3], &counts[4]), 5,
		     "%s", out);
	free(out);
}

Test(report_browser, the_page_renders_its_lanes_and_labels, .timeout = 180)
{
	char dir[1100], png[1200];
	long c[5];
	snprintf(dir, sizeof dir, "%s/artifacts", getenv("KB_BUILD"));
	mkdir(dir, 0755);
	snprintf(png, sizeof png, "%s/report.png", dir);
	rendered(two_rules(), png, c);
	cr_assert_eq(c[0], 1400, "the screenshot is the window's width");
	cr_assert_eq(c[1], 700);
	cr_assert_gt(c[2], 300, "the first rule's lanes are drawn, in blue: %ld pixels", c[2]);
	cr_assert_gt(c[3], 300, "the second rule's, in red: %ld pixels", c[3]);
	cr_assert_gt(c[4], 3000, "and the text of the labels and tables: %ld dark pixels", c[4]);

	/* the same check on a page with no injection sees no lane at all */
	char empty_png[1300];
	snprintf(empty_png, sizeof empty_png, "%s/empty.png", kbt_tmpdir());
	rendered("{\"event\":\"start\",\"ts\":100.0,\"t\":0,\"pid\":10,\"ppid\":1,\"program\":\"server\",\"recipe\":\"r\","
		 "\"seed\":0,\"fork\":false}\n",
		 empty_png, c);
	cr_assert_eq(c[2], 0, "no blue lane: %ld", c[2]); /* (its "No faults" notice is red) */
	cr_assert_gt(c[4], 500, "the page's text is there");
}
