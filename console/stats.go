package console

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Stats counts the daemon's S3 requests and bytes in 10-second slots over
// the last hour, for the overview's charts. Observe has the signature of
// s3.Config.Observe; the daemon calls it for every S3 request. A slot is
// reused when its time comes round again, so nothing runs in the
// background and the memory is fixed (360 slots).
type Stats struct {
	mu    sync.Mutex
	slots [statSlots]slot
	now   func() time.Time
}

const (
	statSlot  = 10 * time.Second
	statSlots = int(time.Hour / statSlot)
)

type slot struct {
	epoch    int64 // unix time / 10 s; the slot's counts belong to it
	requests uint64
	errors   uint64
	bytesIn  uint64
	bytesOut uint64
}

// NewStats returns empty counters.
func NewStats() *Stats { return &Stats{now: time.Now} }

// Observe counts one S3 request: its status and the body bytes received
// and sent.
func (s *Stats) Observe(_ string, status int, in, out int64, _ time.Duration) {
	e := s.now().Unix() / int64(statSlot/time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[e%int64(statSlots)]
	if sl.epoch != e {
		*sl = slot{epoch: e}
	}
	sl.requests++
	if status >= 400 {
		sl.errors++
	}
	if in > 0 {
		sl.bytesIn += uint64(in)
	}
	if out > 0 {
		sl.bytesOut += uint64(out)
	}
}

// series returns the last hour's slots, oldest first (zero where nothing
// was counted).
func (s *Stats) series() []slot {
	out := make([]slot, statSlots)
	if s == nil {
		return out
	}
	last := s.now().Unix() / int64(statSlot/time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range out {
		e := last - int64(statSlots-1-i)
		if sl := s.slots[e%int64(statSlots)]; sl.epoch == e {
			out[i] = sl
		} else {
			out[i] = slot{epoch: e}
		}
	}
	return out
}

// chart is what the overview template draws as an SVG line chart.
type chart struct {
	Title   string
	Summary string // the chart in words, for screen readers and the table below
	Width   int
	Height  int
	Lines   []chartLine
	YLabel  string // the top of the scale
	Legend  []string
}

type chartLine struct {
	Class  string
	Points string
	Name   string
}

const (
	chartW = 360
	chartH = 100
)

// charts draws requests (and failures) and bytes in and out per 10 s.
func (s *Stats) charts() []chart {
	ser := s.series()
	var req, errs, in, out []float64
	var totReq, totErr, totIn, totOut uint64
	for _, sl := range ser {
		req = append(req, float64(sl.requests))
		errs = append(errs, float64(sl.errors))
		in = append(in, float64(sl.bytesIn))
		out = append(out, float64(sl.bytesOut))
		totReq += sl.requests
		totErr += sl.errors
		totIn += sl.bytesIn
		totOut += sl.bytesOut
	}
	maxReq := max(peak(req), 1)
	maxBytes := max(peak(in), peak(out), 1)
	return []chart{
		{
			Title:   "S3 requests per 10 s, last hour",
			Summary: fmt.Sprintf("%d requests in the last hour, %d of them failed (status 400 or more); at most %.0f in 10 s", totReq, totErr, peak(req)),
			Width:   chartW, Height: chartH,
			YLabel: fmt.Sprintf("%.0f", maxReq),
			Lines: []chartLine{
				{Class: "l1", Points: polyline(req, maxReq), Name: "requests"},
				{Class: "l2", Points: polyline(errs, maxReq), Name: "failed"},
			},
		},
		{
			Title:   "S3 bytes per 10 s, last hour",
			Summary: fmt.Sprintf("%s received and %s sent in the last hour", humanBytes(int64(totIn)), humanBytes(int64(totOut))),
			Width:   chartW, Height: chartH,
			YLabel: humanBytes(int64(maxBytes)),
			Lines: []chartLine{
				{Class: "l1", Points: polyline(in, maxBytes), Name: "received"},
				{Class: "l2", Points: polyline(out, maxBytes), Name: "sent"},
			},
		},
	}
}

func peak(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// polyline scales v into the chart's box (y grows downwards).
func polyline(v []float64, top float64) string {
	var b strings.Builder
	for i, x := range v {
		px := float64(i) * float64(chartW) / float64(len(v)-1)
		py := float64(chartH) - x/top*float64(chartH-4)
		fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
	}
	return strings.TrimSpace(b.String())
}

// humanBytes writes n in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
