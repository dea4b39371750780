package bench

import (
	"html/template"
	"io"
)

// WriteHTML writes r as one self-contained HTML page: the settings and the
// command line, the ratio table with each case's raw statements, a chart
// of the ratios with their intervals, and for each scaled case its
// throughput and p99 curves. The charts are inline SVG drawn by
// gonum/plot; the page loads nothing from anywhere.
func WriteHTML(w io.Writer, r *Report) error {
	ratios, err := ratioChart(r.Cases)
	if err != nil {
		return err
	}
	type scaled struct {
		Case            string
		Curves          []ScaleResult
		Throughput, P99 template.HTML
	}
	var scales []*scaled
	byCase := map[string]*scaled{}
	for _, sc := range r.Scaling {
		s := byCase[sc.Case]
		if s == nil {
			s = &scaled{Case: sc.Case}
			byCase[sc.Case] = s
			scales = append(scales, s)
		}
		s.Curves = append(s.Curves, sc)
	}
	for _, s := range scales {
		if s.Throughput, s.P99, err = scaleCharts(s.Case, s.Curves); err != nil {
			return err
		}
	}
	return htmlTmpl.Execute(w, map[string]any{"R": r, "Ratios": ratios, "Scales": scales})
}

var htmlTmpl = template.Must(template.New("bench").Funcs(template.FuncMap{
	"pct":  func(v float64) string { return template.HTMLEscapeString(formatPct(v)) },
	"rate": rate,
	"us":   us,
	"ms":   func(v float64) string { return us(v / 1000) },
	"errs": errorsText,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>racefree bench on {{.R.Server}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}th{white-space:nowrap}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
th.w,td.w{text-align:left}td.bad{color:#c62828;font-weight:600}
code,pre{background:#f4f4f4;padding:.1em .3em}pre{margin:0;white-space:pre-wrap;font-size:11px;max-width:26em}
svg{display:block;margin:1em 0;max-width:100%;height:auto}
.note{color:#555}
</style></head><body>
<h1>racefree bench on {{.R.Server}}</h1>
<p><code>{{.R.Command}}</code><br>{{.R.Started.Format "2006-01-02 15:04:05 MST"}} · {{.R.CPUs}} CPUs · {{.R.OS}} · {{.R.GoVersion}}{{if .R.Settings.Quick}} · quick run{{end}}</p>
<p class="note">Each ratio is racefree's throughput divided by the raw statements' throughput, measured in {{.R.Settings.Rounds}} strictly alternating rounds of {{.R.Settings.SegmentMS}} ms per side (raw, racefree, raw, …, raw). Each round's racefree segment is compared with the mean of the raw segments on either side of it, so a slow drift of the machine cancels out; the interval ({{pct .R.Settings.Confidence}}) is a Student t interval over the logarithms of the per-round ratios. Above 1, racefree is faster. A wide interval means a noisy machine, not a result.</p>
{{if .R.Interrupted}}<p class="bad"><b>Interrupted:</b> the run stopped before its end; what follows is what it measured.</p>{{end}}
<h2>racefree against the raw statements</h2>
<table><thead><tr><th class="w">case</th><th class="w">racefree</th><th class="w">raw</th><th>ratio</th><th>interval</th><th>racefree/s</th><th>raw/s</th><th>p50 µs<br>racefree</th><th>p50 µs<br>raw</th><th>p99 µs<br>racefree</th><th>p99 µs<br>raw</th><th>errors<br>racefree / raw</th></tr></thead><tbody>
{{range .R.Cases}}{{if .Measured}}<tr><td class="w">{{.Name}}</td><td class="w">{{.Racefree}}</td><td class="w">{{.Raw}}<pre>{{.RawSQL}}</pre></td><td>{{printf "%.2f" .Ratio}}</td><td>{{printf "%.2f" .RatioLo}}–{{printf "%.2f" .RatioHi}}</td><td>{{rate .RacefreeStats.OpsPerSec}}</td><td>{{rate .RawStats.OpsPerSec}}</td><td>{{us .RacefreeStats.P50us}}</td><td>{{us .RawStats.P50us}}</td><td>{{us .RacefreeStats.P99us}}</td><td>{{us .RawStats.P99us}}</td><td>{{errs .RacefreeStats .RawStats}}</td></tr>
{{else}}<tr><td class="w">{{.Name}}</td><td class="w">{{.Racefree}}</td><td class="w">{{.Raw}}</td><td colspan="9" class="w{{if .Error}} bad{{end}}">{{if .Error}}failed: {{.Error}}{{else}}skipped: {{.Skipped}}{{end}}</td></tr>
{{end}}{{end}}</tbody></table>
{{.Ratios}}
<ul>{{range .R.Cases}}{{if .Measured}}<li><b>{{.Name}}</b>: {{.Verdict}}</li>{{end}}{{end}}</ul>
{{range .Scales}}
<h2>Scaling: {{.Case}}</h2>
<p class="note">Each point runs the raw side and racefree's for {{$.R.Settings.ScaleMS}} ms each, from worker processes of the racefree binary that start together; each process's pool holds at most {{$.R.Settings.Pool}} connections.</p>
{{.Throughput}}
{{.P99}}
{{range .Curves}}<h3>more {{.Axis}}</h3>
{{if .Points}}<table><thead><tr><th>processes × goroutines</th><th>racefree/s</th><th>p99 ms racefree</th><th>raw/s</th><th>p99 ms raw</th><th>ratio</th><th>errors<br>racefree / raw</th></tr></thead><tbody>
{{range .Points}}<tr><td>{{.Procs}} × {{.Goroutines}}</td><td>{{rate .Racefree.OpsPerSec}}</td><td>{{ms .Racefree.P99us}}</td><td>{{rate .Raw.OpsPerSec}}</td><td>{{ms .Raw.P99us}}</td><td>{{printf "%.2f" .Ratio}}</td><td>{{errs .Racefree .Raw}}</td></tr>
{{end}}</tbody></table>{{end}}
{{if .Error}}<p class="bad">failed: {{.Error}}</p>{{else}}<p><b>{{.Verdict}}</b></p>{{end}}
{{end}}{{end}}
</body></html>
`))
