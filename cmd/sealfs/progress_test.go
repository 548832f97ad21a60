package main

import (
	"strings"
	"testing"
)

// TestProgressLines: scrub's and resync's progress, on a terminal and off
// one, for a run whose last update already showed the final count.
func TestProgressLines(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var out strings.Builder
		p := newProgress(&out, "replicating", 2)
		p.tty, p.every = tty, 0
		p.set(0, "(2 left)")
		p.set(0, "(2 left)")
		p.set(2, "(done)")
		p.finish(2, "(done)")
		got := out.String()
		if n := strings.Count(got, "2/2 (done)"); n != 1 {
			t.Errorf("tty %v: the final count is shown %d times: %q", tty, n, got)
		}
		if n := strings.Count(got, "0/2 (2 left)"); n != 1 {
			t.Errorf("tty %v: an unchanged count is shown %d times: %q", tty, n, got)
		}
		if !strings.HasSuffix(got, "\n") {
			t.Errorf("tty %v: the last line is not ended: %q", tty, got)
		}
		if tty && strings.Count(got, "\n") != 1 {
			t.Errorf("on a terminal the bar is one line redrawn: %q", got)
		}
	}
}
