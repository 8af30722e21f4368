# svg.awk - the scale plot of bench/run, as a hand-written SVG.
#
# Plain awk (mawk does), so the benchmark needs no plotting package.
# Input, one point a line, from bench/run:
#
#   rules KIND K IR   instructions added per call with K rules of KIND
#   fd SERIES K IR    instructions per call with K descriptors open
#
# Underscores in a series name stand for blanks.
# Output: two panels side by side, cost per call against rules (log2 x)
# and against descriptors (log10 x), one line per series.

function nice_max(v,    p, m) {
	# the next 1, 2 or 5 x 10^k at or above v, so the axis ticks are round
	if (v <= 0)
		return 1
	p = 1
	while (p * 10 <= v)
		p *= 10
	while (p > v)
		p /= 10
	for (m = 1; ; m++)
		if (m * p >= v && (m == 1 || m == 2 || m == 5 || m == 10))
			return m * p
}

function esc(s) {
	gsub(/_/, " ", s)
	gsub(/&/, "\\&amp;", s)
	gsub(/</, "\\&lt;", s)
	return s
}

# panel P: x offset ox, "log base" b, title, x label, y label
function panel(p, ox, b, title, xl, yl,    i, s, k, n, x, y, ymax, xmin, xmax, px, py, path, t, ly, col, ticks, tv) {
	xmin = 1e18; xmax = 0; ymax = 0
	for (i = 1; i <= npts; i++) {
		if (pp[i] != p)
			continue
		if (pk[i] < xmin) xmin = pk[i]
		if (pk[i] > xmax) xmax = pk[i]
		if (pv[i] > ymax) ymax = pv[i]
	}
	if (xmax == 0)
		return
	if (xmax == xmin)
		xmax = xmin * b
	ymax = nice_max(ymax * 1.1)

	printf "<g transform=\"translate(%d,0)\">\n", ox
	printf "<text x=\"%d\" y=\"24\" class=\"title\">%s</text>\n", L + W / 2, esc(title)
	printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", L, T, W, H
	# y ticks: five steps
	for (i = 0; i <= 5; i++) {
		tv = ymax * i / 5
		py = T + H - H * i / 5
		printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>\n", L, py, L + W, py
		printf "<text x=\"%d\" y=\"%.1f\" class=\"ytick\">%g</text>\n", L - 6, py + 4, tv
	}
	# x ticks: every power of b from xmin to xmax, and the last point
	n = 0
	for (t = xmin; t <= xmax * 1.0001; t *= b)
		ticks[++n] = t
	if (ticks[n] < xmax * 0.9999)
		ticks[++n] = xmax
	for (i = 1; i <= n; i++) {
		px = L + W * (log(ticks[i] / xmin) / log(xmax / xmin))
		printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>\n", px, T, px, T + H
		printf "<text x=\"%.1f\" y=\"%d\" class=\"xtick\">%d</text>\n", px, T + H + 16, ticks[i]
	}
	printf "<text x=\"%d\" y=\"%d\" class=\"label\">%s</text>\n", L + W / 2, T + H + 36, esc(xl)
	printf "<text transform=\"translate(%d,%d) rotate(-90)\" class=\"label\">%s</text>\n", L - 42, T + H / 2, esc(yl)

	ly = T + 14
	for (s = 1; s <= nser[p]; s++) {
		k = ser[p, s]
		col = color[(s - 1) % 6]
		path = ""
		for (i = 1; i <= npts; i++) {
			if (pp[i] != p || ps[i] != k)
				continue
			px = L + W * (log(pk[i] / xmin) / log(xmax / xmin))
			py = T + H - H * pv[i] / ymax
			path = path (path == "" ? "M" : " L") sprintf("%.1f %.1f", px, py)
			printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s, %d: %s</title></circle>\n", px, py, col, esc(k), pk[i], pv[i]
		}
		printf "<path d=\"%s\" stroke=\"%s\" class=\"series\"/>\n", path, col
		printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" class=\"series\"/>\n", L + 10, ly - 4, L + 30, ly - 4, col
		printf "<text x=\"%d\" y=\"%d\" class=\"legend\">%s</text>\n", L + 36, ly, esc(k)
		ly += 16
	}
	printf "</g>\n"
}

BEGIN {
	L = 70; T = 40; W = 380; H = 280
	color[0] = "#1f77b4"; color[1] = "#d62728"; color[2] = "#2ca02c"
	color[3] = "#9467bd"; color[4] = "#ff7f0e"; color[5] = "#7f7f7f"
}

$4 != "error" && $4 != "" {
	npts++
	pp[npts] = $1; ps[npts] = $2; pk[npts] = $3 + 0; pv[npts] = $4 + 0
	if (!(($1, $2) in seen)) {
		seen[$1, $2] = 1
		ser[$1, ++nser[$1]] = $2
	}
}

END {
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", 2 * (L + W + 30), T + H + 50, 2 * (L + W + 30), T + H + 50
	print "<style>"
	print "text { font-family: sans-serif; font-size: 12px; fill: #222 }"
	print ".title { font-size: 14px; font-weight: bold; text-anchor: middle }"
	print ".label { text-anchor: middle } .xtick { text-anchor: middle } .ytick { text-anchor: end }"
	print ".legend { font-size: 11px } .frame { fill: white; stroke: #444 } .grid { stroke: #ddd }"
	print ".series { fill: none; stroke-width: 2 }"
	print "</style>"
	print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
	panel("rules", 0, 2, "cost per call vs. rules that do not apply", "rules in the recipe", "instructions added per call")
	panel("fd", L + W + 30, 10, "cost per call vs. open descriptors", "descriptors open", "instructions per call")
	print "</svg>"
}
