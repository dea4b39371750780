package lab

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// ReportInfo is the context a report states at its top.
type ReportInfo struct {
	Title   string
	Command string
	When    time.Time
}

// WriteHTML writes one self-contained HTML page with the results table and
// two bar charts per scenario, throughput and p99 latency per strategy, drawn
// as inline SVG: it opens in a browser without network access.
func WriteHTML(w io.Writer, info ReportInfo, rs []Result) error {
	type group struct {
		Scenario   string
		Figure     string
		Results    []Result
		Throughput template.HTML
		P99        template.HTML
	}
	var groups []*group
	byScenario := map[string]*group{}
	for _, r := range rs {
		g := byScenario[r.Scenario]
		if g == nil {
			g = &group{Scenario: r.Scenario, Figure: FigureName(r.Scenario)}
			byScenario[r.Scenario] = g
			groups = append(groups, g)
		}
		g.Results = append(g.Results, r)
	}
	for _, g := range groups {
		g.Throughput = barChart("Throughput (calls per second, higher is better)", g.Results, func(r Result) float64 { return r.OpsPerSec }, "%.0f")
		g.P99 = barChart("p99 latency (ms, lower is better)", g.Results, func(r Result) float64 { return r.P99ms }, "%.2f")
	}
	return reportTmpl.Execute(w, map[string]any{"Info": info, "Groups": groups})
}

// barChart draws one horizontal bar per result, green where the invariant
// held and red where it broke.
func barChart(title string, rs []Result, value func(Result) float64, format string) template.HTML {
	const (
		labelW = 110
		barW   = 420
		rowH   = 26
		top    = 30
	)
	maxV := 0.0
	for _, r := range rs {
		maxV = max(maxV, value(r))
	}
	h := top + rowH*len(rs) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`, labelW+barW+110, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="0" y="18" class="t">%s</text>`, template.HTMLEscapeString(title))
	for i, r := range rs {
		y := top + i*rowH
		v := value(r)
		wdt := 0.0
		if maxV > 0 {
			wdt = v / maxV * barW
		}
		color := "#2e7d32"
		if !r.InvariantOK {
			color = "#c62828"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" class="l">%s</text>`, labelW-8, y+16, template.HTMLEscapeString(r.Strategy))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`,
			labelW, y+3, max(wdt, 1), rowH-8, color, template.HTMLEscapeString(r.Strategy), fmt.Sprintf(format, v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="v">%s</text>`, float64(labelW)+max(wdt, 1)+6, y+16, fmt.Sprintf(format, v))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var reportTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Info.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}th{white-space:nowrap}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child,td.w,th.w{text-align:left}
td.ok{color:#2e7d32;font-weight:600}td.bad{color:#c62828;font-weight:600}
code{background:#f4f4f4;padding:.1em .3em}
svg{display:block;margin:1em 0}svg .t{font-weight:600;font-size:13px}svg .l,svg .v{font-size:12px}
.legend span{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin:0 .3em 0 1em}
</style></head><body>
<h1>{{.Info.Title}}</h1>
<p><code>{{.Info.Command}}</code><br>{{.Info.When.Format "2006-01-02 15:04:05 MST"}}</p>
<p class="legend">Bars: <span style="background:#2e7d32"></span>invariant held <span style="background:#c62828"></span>invariant broken (the database holds wrong data afterwards)</p>
{{range .Groups}}
<h2>Scenario {{.Scenario}}{{with index .Results 0}} — {{.Server}}, {{.Procs}} processes × {{.Workers}} workers, {{.Keys}} keys{{end}}</h2>
<table><thead><tr><th>strategy</th><th class="w">what it does</th><th>calls</th><th>calls/s</th><th>p50 ms</th><th>p99 ms</th><th>errors surfaced</th><th>{{.Figure}}</th><th>invariant</th><th class="w">what the database holds</th></tr></thead><tbody>
{{range .Results}}<tr><td>{{.Strategy}}</td><td class="w">{{.Approach}}</td><td>{{.Ops}}</td><td>{{printf "%.0f" .OpsPerSec}}</td><td>{{printf "%.2f" .P50ms}}</td><td>{{printf "%.2f" .P99ms}}</td><td>{{.ErrorsText}}</td><td>{{.Figure}}</td><td class="{{if .InvariantOK}}ok{{else}}bad{{end}}">{{.Verdict}}</td><td class="w">{{.Invariant}}</td></tr>
{{end}}</tbody></table>
{{.Throughput}}
{{.P99}}
{{end}}
</body></html>
`))
