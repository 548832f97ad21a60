package scrape

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os"
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
	if len(h) != 2 || h["first"].N != 4 || h["first"].Sum != 0.0002 || h["last"].N != 1 || h["last"].Sum != 0.5 {
		t.Errorf("Histograms: %v", h)
	}
	if s, err := f.Histogram("flush_seconds"); err != nil || s.N != 3 || s.Sum != 0.75 {
		t.Errorf("Histogram: %v, %v", s, err)
	}
	for _, name := range []string{"wait_seconds", "uptime_seconds", "missing_seconds"} {
		if s, err := f.Histogram(name); err == nil {
			t.Errorf("Histogram(%s): %v, want an error (labelled only, not a histogram, missing)", name, s)
		}
	}
}

// buckets is a histogram by label, with buckets, read twice.
const buckets = `# TYPE step_seconds histogram
step_seconds_bucket{step="a",node="1",le="0.001"} 6
step_seconds_bucket{step="a",node="1",le="0.01"} 9
step_seconds_bucket{step="a",node="1",le="+Inf"} 10
step_seconds_sum{step="a",node="1"} 0.2
step_seconds_count{step="a",node="1"} 10
step_seconds_bucket{step="a",node="2",le="0.001"} 4
step_seconds_bucket{step="a",node="2",le="0.01"} 10
step_seconds_bucket{step="a",node="2",le="+Inf"} 10
step_seconds_sum{step="a",node="2"} 0.03
step_seconds_count{step="a",node="2"} 10
step_seconds_bucket{step="b",node="1",le="0.001"} 0
step_seconds_bucket{step="b",node="1",le="+Inf"} 2
step_seconds_sum{step="b",node="1"} 3
step_seconds_count{step="b",node="1"} 2
step_seconds_bucket{step="b",node="2",le="0.002"} 1
step_seconds_bucket{step="b",node="2",le="+Inf"} 1
step_seconds_sum{step="b",node="2"} 0.001
step_seconds_count{step="b",node="2"} 1
`

// TestQuantile sums buckets over the other labels, takes the difference
// of two readings, and finds the bucket that holds a quantile; buckets
// that do not line up are dropped, not mixed.
func TestQuantile(t *testing.T) {
	f, err := Parse(strings.NewReader(buckets))
	if err != nil {
		t.Fatal(err)
	}
	h := f.Histograms("step_seconds", "step")
	a := h["a"] // 20 observations: 10 at most 1 ms, 19 at most 10 ms
	if a.N != 20 || len(a.Buckets) == 0 {
		t.Fatalf("a: %+v", a)
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 0.001}, {0.9, 0.01}, {0.95, 0.01}, {1, math.Inf(1)}} {
		if got, ok := a.Quantile(c.q); !ok || got != c.want {
			t.Errorf("a: quantile %v = %v, %v; want %v", c.q, got, ok, c.want)
		}
	}
	if b := h["b"]; b.N != 3 || b.Buckets != nil {
		t.Errorf("b, whose nodes have different buckets: %+v; want the count and no buckets", b)
	}
	if _, ok := h["b"].Quantile(0.5); ok {
		t.Error("a quantile without buckets")
	}
	if _, ok := (Stat{}).Quantile(0.5); ok {
		t.Error("a quantile without observations")
	}

	// Between two readings: 10 more observations of a, all above 10 ms.
	later, err := Parse(strings.NewReader(strings.NewReplacer(
		`node="1",le="+Inf"} 10`, `node="1",le="+Inf"} 20`,
		`count{step="a",node="1"} 10`, `count{step="a",node="1"} 20`,
		`sum{step="a",node="1"} 0.2`, `sum{step="a",node="1"} 1.2`,
	).Replace(buckets)))
	if err != nil {
		t.Fatal(err)
	}
	d := later.Histograms("step_seconds", "step")["a"].Since(a)
	if d.N != 10 || d.Sum < 0.999 || d.Sum > 1.001 {
		t.Fatalf("since: %+v; want 10 observations, 1 s", d)
	}
	if got, ok := d.Quantile(0.5); !ok || !math.IsInf(got, 1) {
		t.Errorf("since: median %v, %v; want +Inf (every new observation was above 10 ms)", got, ok)
	}
	if got := (Stat{N: 2, Buckets: a.Buckets}).Since(Stat{}); got.N != 2 || len(got.Buckets) != len(a.Buckets) {
		t.Errorf("since nothing: %+v", got)
	}
	each := SinceEach(later.Histograms("step_seconds", "step"), h)
	if len(each) != 1 || each["a"].N != 10 {
		t.Errorf("SinceEach: %+v; want a alone (b gained nothing), 10 observations", each)
	}
	if got, want := a.Percentiles(), "p50 ≤ 1.0 ms, p99 ≤ +Inf"; got != want {
		t.Errorf("Percentiles: %q, want %q", got, want)
	}
	if got := h["b"].Percentiles(); got != "" {
		t.Errorf("Percentiles without buckets: %q", got)
	}
}

// TestSeconds formats bounds in the unit that reads best.
func TestSeconds(t *testing.T) {
	for v, want := range map[float64]string{5e-6: "5 µs", 0.000405: "405 µs", 0.001215: "1.2 ms", 0.295245: "295.2 ms", 2.657: "2.7 s", math.Inf(1): "+Inf"} {
		if got := Seconds(v); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", v, got, want)
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

func TestProcStatus(t *testing.T) {
	rss, err := ProcStatus(os.Getpid(), "VmRSS")
	if err != nil || rss <= 0 || rss%1024 != 0 {
		t.Fatalf("VmRSS of this process: %d, %v", rss, err)
	}
	if _, err := ProcStatus(os.Getpid(), "NoSuchField"); err == nil {
		t.Fatal("a missing field was read")
	}
}
