package scrape

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const exposition = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# HELP process_cpu_seconds_total_extra A longer name.
# TYPE process_cpu_seconds_total_extra counter
process_cpu_seconds_total_extra 99
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.1340160e+08
# HELP sealfs_fuse_operations_total FUSE operations.
# TYPE sealfs_fuse_operations_total counter
sealfs_fuse_operations_total{op="Lookup",result="ok"} 7
sealfs_fuse_operations_total{op="Lookup",result="ENOENT"} 3
sealfs_fuse_operations_total{op="Flush",result="ok"} 2
# HELP sealfs_meta_commit_phase_seconds Time of each phase.
# TYPE sealfs_meta_commit_phase_seconds histogram
sealfs_meta_commit_phase_seconds_bucket{phase="begin",le="+Inf"} 4
sealfs_meta_commit_phase_seconds_sum{phase="begin"} 0.0002
sealfs_meta_commit_phase_seconds_count{phase="begin"} 4
sealfs_meta_commit_phase_seconds_bucket{phase="sync",le="+Inf"} 1
sealfs_meta_commit_phase_seconds_sum{phase="sync"} 0.5
sealfs_meta_commit_phase_seconds_count{phase="sync"} 1
`

// TestValue reads the unlabelled sample of the name asked for, not one of
// a longer name, and reports a missing or labelled-only one.
func TestValue(t *testing.T) {
	f, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"process_cpu_seconds_total":     12.5,
		"process_resident_memory_bytes": 2.134016e+08,
	} {
		if got, err := f.Value(name); err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"go_goroutines", "sealfs_fuse_operations_total"} {
		if v, err := f.Value(name); err == nil {
			t.Errorf("%s: got %v, want an error (missing, or labelled only)", name, v)
		}
	}
	var none Families
	if _, err := none.Value("process_cpu_seconds_total"); err == nil {
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
	c := f.Counters("sealfs_fuse_operations_total", "op")
	if len(c) != 2 || c["Lookup"] != 10 || c["Flush"] != 2 {
		t.Errorf("Counters: %v", c)
	}
	if c := f.Counters("sealfs_fuse_operations_total", "nope"); len(c) != 0 {
		t.Errorf("Counters by a label nobody has: %v", c)
	}
	h := f.Histograms("sealfs_meta_commit_phase_seconds", "phase")
	if len(h) != 2 || h["begin"] != (Stat{N: 4, Sum: 0.0002}) || h["sync"] != (Stat{N: 1, Sum: 0.5}) {
		t.Errorf("Histograms: %v", h)
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
		if v, err := f.Value("process_cpu_seconds_total"); err != nil || v != 12.5 {
			t.Errorf("%s: %v, %v", addr, v, err)
		}
	}
	if _, err := Fetch(srv.URL + "/elsewhere"); err == nil {
		t.Error("a 404 gave metrics")
	}
}
