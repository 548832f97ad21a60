package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress shows a count going up to a total: on a terminal one line
// redrawn in place (a bar), ended by a newline when finished; otherwise a
// line every few seconds and a last one when finished. A line equal to the
// last one shown is not shown again.
type progress struct {
	w     io.Writer
	tty   bool
	what  string
	total int64

	shown   string    // the last line written
	shownAt time.Time // when
	every   time.Duration
}

const barWidth = 30

func newProgress(w io.Writer, what string, total int64) *progress {
	p := &progress{w: w, what: what, total: total, every: 2 * time.Second}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.every = true, 100*time.Millisecond
	}
	return p
}

// line is the text shown for n done.
func (p *progress) line(n int64, detail string, done bool) string {
	total := p.total
	if done && n > total {
		total = n
	}
	n = min(n, max(total, 0))
	if !p.tty {
		return fmt.Sprintf("%s: %d/%d %s", p.what, n, total, detail)
	}
	frac := 1.0
	if total > 0 {
		frac = float64(n) / float64(total)
	} else if !done {
		frac = 0
	}
	fill := int(frac * barWidth)
	bar := strings.Repeat("█", fill) + strings.Repeat(" ", barWidth-fill)
	return fmt.Sprintf("%s %3d%% |%s| %d/%d %s", p.what, int(frac*100), bar, n, total, detail)
}

func (p *progress) show(l string) {
	if p.tty {
		// Back to the line's start and clear it, then draw.
		fmt.Fprintf(p.w, "\r\x1b[K%s", l)
	} else {
		fmt.Fprintln(p.w, l)
	}
	p.shown, p.shownAt = l, time.Now()
}

// set shows n done, at most once per period.
func (p *progress) set(n int64, detail string) {
	l := p.line(n, detail, false)
	if l == p.shown || time.Since(p.shownAt) < p.every {
		return
	}
	p.show(l)
}

// finish shows the final count unless it is already shown and, on a
// terminal, ends the bar's line so that what follows starts a line of its
// own.
func (p *progress) finish(n int64, detail string) {
	if l := p.line(n, detail, true); l != p.shown {
		p.show(l)
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
