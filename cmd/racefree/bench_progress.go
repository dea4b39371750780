package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// benchProgress draws one bar over every step of a bench run (each segment
// of each case, each side of each scaling point) on a terminal. Off a
// terminal it is nil and draws nothing, so that redirected output holds
// only the results. It is used from the goroutine that runs the bench.
type benchProgress struct {
	bar *progressbar.ProgressBar
}

func newBenchProgress(w io.Writer, on bool, steps int) *benchProgress {
	if !on || steps < 1 {
		return &benchProgress{}
	}
	return &benchProgress{bar: progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetTheme(progressbar.ThemeASCII),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
	)}
}

// describe says what runs now.
func (p *benchProgress) describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// step counts one step done, and says what it was.
func (p *benchProgress) step(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
		p.bar.Add(1)
	}
}

// finish clears the bar.
func (p *benchProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
		p.bar = nil
	}
}
