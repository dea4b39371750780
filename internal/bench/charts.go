package bench

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The charts are drawn by gonum/plot and rendered as SVG, which the HTML
// report inlines.

const (
	chartW = 7 * vg.Inch
	chartH = 3.6 * vg.Inch
)

// The colour of each side: racefree blue, raw grey.
var sideColor = [2]color.Color{
	Raw:      color.RGBA{R: 0x75, G: 0x75, B: 0x75, A: 0xff},
	Racefree: color.RGBA{R: 0x15, G: 0x65, B: 0xc0, A: 0xff},
}

// newPlot returns a plot whose text is set in a sans-serif face, as the
// page around it is.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	for _, st := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		st.Font.Variant = "Sans"
	}
	return p
}

// ratioPoints is the ratio of each case with its interval, as gonum/plot's
// scatter and error bars read them.
type ratioPoints struct {
	plotter.XYs
	plotter.YErrors
}

// ratioChart plots each measured case's ratio as a point with its
// confidence interval as an error bar, and the line where racefree is as
// fast as the raw statements. The scale is logarithmic when the ratios
// span a wide range (a batch is many times faster than single calls), so
// that 0.5 and 2 sit equally far from 1.
func ratioChart(cases []CaseResult) (template.HTML, error) {
	var pts ratioPoints
	var names []string
	lo, hi := 1.0, 1.0
	for _, c := range cases {
		if !c.Measured() {
			continue
		}
		x := float64(len(names))
		names = append(names, c.Name)
		pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: c.Ratio})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{c.Ratio - c.RatioLo, c.RatioHi - c.Ratio})
		lo, hi = min(lo, c.RatioLo), max(hi, c.RatioHi)
	}
	if len(names) == 0 {
		return "", nil
	}
	p := newPlot("racefree ÷ raw throughput, with its confidence interval (above 1: racefree faster)")
	p.Y.Label.Text = "ratio"
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	if hi/lo > 4 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = ratioTicks{}
	}
	p.Y.Min, p.Y.Max = lo/1.1, hi*1.1
	p.Add(plotter.NewGrid())

	one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(names)) - 0.5, Y: 1}})
	if err != nil {
		return "", err
	}
	one.Color = sideColor[Raw]
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return "", err
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(3.5)
	sc.GlyphStyle.Color = sideColor[Racefree]
	bars, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return "", err
	}
	bars.Color = sideColor[Racefree]
	p.Add(one, bars, sc)
	p.Legend.Add("as fast as raw", one)
	p.Legend.Top = true
	return renderSVG(p, chartW, chartH)
}

// ratioTicks labels a logarithmic ratio axis at 1, 2, 5 × powers of ten.
type ratioTicks struct{}

func (ratioTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}

// scaleCharts plots one case's scaling curves: throughput and p99 latency
// against the number of concurrent callers (log₂ axis), one line per side
// and axis, so that 16 processes and 16 goroutines sit at the same x.
func scaleCharts(caseName string, curves []ScaleResult) (throughput, p99 template.HTML, err error) {
	tp := newPlot(caseName + ": throughput (calls per second, higher is better)")
	lp := newPlot(caseName + ": p99 latency (ms, lower is better)")
	var maxT, maxL float64
	var ticks []plot.Tick
	seen := map[int]bool{}
	i := 0
	for _, sc := range curves {
		if len(sc.Points) == 0 {
			continue
		}
		for _, side := range []Side{Racefree, Raw} {
			var tps, lps plotter.XYs
			for _, pt := range sc.Points {
				st := pt.Raw
				if side == Racefree {
					st = pt.Racefree
				}
				x := float64(pt.Callers())
				tps = append(tps, plotter.XY{X: x, Y: st.OpsPerSec})
				lps = append(lps, plotter.XY{X: x, Y: st.P99us / 1000})
				maxT, maxL = max(maxT, st.OpsPerSec), max(maxL, st.P99us/1000)
				if !seen[pt.Callers()] {
					seen[pt.Callers()] = true
					ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(pt.Callers())})
				}
			}
			label := fmt.Sprintf("%s, more %s", side, sc.Axis)
			for _, pl := range []struct {
				p   *plot.Plot
				xys plotter.XYs
			}{{tp, tps}, {lp, lps}} {
				l, s, err := plotter.NewLinePoints(pl.xys)
				if err != nil {
					return "", "", err
				}
				l.Color, s.Color = sideColor[side], sideColor[side]
				if sc.Axis == AxisGoroutines {
					l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
					s.Shape = draw.TriangleGlyph{}
				} else {
					s.Shape = draw.CircleGlyph{}
				}
				pl.p.Add(l, s)
				pl.p.Legend.Add(label, l, s)
			}
			i++
		}
	}
	if i == 0 {
		return "", "", nil
	}
	for _, pm := range []struct {
		p   *plot.Plot
		max float64
	}{{tp, maxT}, {lp, maxL}} {
		p := pm.p
		p.X.Label.Text = "concurrent callers (processes × goroutines)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		// From zero, so that a collapse looks like one; with headroom
		// above the curves for the legend.
		p.Y.Min, p.Y.Max = 0, pm.max*1.45
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
	}
	if throughput, err = renderSVG(tp, chartW, chartH); err != nil {
		return "", "", err
	}
	p99, err = renderSVG(lp, chartW, chartH)
	return throughput, p99, err
}

// renderSVG renders p as an SVG element to inline in HTML.
func renderSVG(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", fmt.Errorf("render chart: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", fmt.Errorf("render chart: %w", err)
	}
	svg := b.Bytes()
	// Inline SVG takes no XML declaration.
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	return template.HTML(svg), nil
}
