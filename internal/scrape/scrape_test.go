package scrape

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const exposition = `# TYPE uptime_seconds gauge
uptime_seconds 12.5
# TYPE uptime_seconds_max gauge
uptime_seconds_max 99
# TYPE queue_bytes gauge
queue_bytes 2.1340160e+08
# TYPE calls_total counter
calls_total{kind="read",result="ok"} 7
calls_total{kind="read",result="failed"} 3
calls_total{kind="write",result="ok"} 2
# TYPE wait_seconds histogram
wait_seconds_bucket{stage="first",le="+Inf"} 4
wait_seconds_sum{stage="first"} 0.0002
wait_seconds_count{stage="first"} 4
wait_seconds_bucket{stage="last",le="+Inf"} 1
wait_seconds_sum{stage="last"} 0.5
wait_seconds_count{stage="last"} 1
# TYPE flush_seconds histogram
flush_seconds_bucket{le="+Inf"} 3
flush_seconds_sum 0.75
flush_seconds_count 3
`

// TestValue reads the unlabelled sample of the name asked for, not one of
// a longer name, and reports a missing or labelled-only one.
func TestValue(t *testing.T) {
	f, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"uptime_seconds": 12.5,
		"queue_bytes":    2.134016e+08,
	} {
		if got, err := f.Value(name); err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"missing_total", "calls_total"} {
		if v, err := f.Value(name); err == nil {
			t.Errorf("%s: got %v, want an error (missing, or labelled only)", name, v)
		}
	}
	var none Families
	if _, err := none.Value("uptime_seconds"); err == nil {
		t.Error("no reading gave a value")
	}
}

// TestByLabel sums counters over their other labels and reads histograms'
// counts and sums by label.
func TestByLabel(t *testing.T) {
	f, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Counters("calls_total", "kind")
	if len(c) != 2 || c["read"] != 10 || c["write"] != 2 {
		t.Errorf("Counters: %v", c)
	}
	if c := f.Counters("calls_total", "nope"); len(c) != 0 {
		t.Errorf("Counters by a label nobody has: %v", c)
	}
	h := f.Histograms("wait_seconds", "stage")
	if len(h) != 2 || h["first"] != (Stat{N: 4, Sum: 0.0002}) || h["last"] != (Stat{N: 1, Sum: 0.5}) {
		t.Errorf("Histograms: %v", h)
	}
	if s, err := f.Histogram("flush_seconds"); err != nil || s != (Stat{N: 3, Sum: 0.75}) {
		t.Errorf("Histogram: %v, %v", s, err)
	}
	for _, name := range []string{"wait_seconds", "uptime_seconds", "missing_seconds"} {
		if s, err := f.Histogram(name); err == nil {
			t.Errorf("Histogram(%s): %v, want an error (labelled only, not a histogram, missing)", name, s)
		}
	}
}

// TestFetch reads /metrics from a host:port and from a whole URL, and
// reports a failed answer.
func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(exposition))
	}))
	defer srv.Close()
	for _, addr := range []string{strings.TrimPrefix(srv.URL, "http://"), srv.URL + "/metrics"} {
		f, err := Fetch(addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if v, err := f.Value("uptime_seconds"); err != nil || v != 12.5 {
			t.Errorf("%s: %v, %v", addr, v, err)
		}
	}
	if _, err := Fetch(srv.URL + "/elsewhere"); err == nil {
		t.Error("a 404 gave metrics")
	}
}
