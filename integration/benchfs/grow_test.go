package main

import (
	"strings"
	"testing"
)

// exposition is a piece of the daemon's metrics, as its listener writes
// them.
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
# HELP sealfs_fuse_operation_duration_seconds FUSE operation time.
# TYPE sealfs_fuse_operation_duration_seconds histogram
sealfs_fuse_operation_duration_seconds_bucket{op="Lookup",le="+Inf"} 10
sealfs_fuse_operation_duration_seconds_sum{op="Lookup"} 0.25
sealfs_fuse_operation_duration_seconds_count{op="Lookup"} 10
sealfs_fuse_operation_duration_seconds_bucket{op="Flush",le="+Inf"} 2
sealfs_fuse_operation_duration_seconds_sum{op="Flush"} 0.5
sealfs_fuse_operation_duration_seconds_count{op="Flush"} 2
`

// TestMetricValue reads the unlabelled sample of the name asked for, not
// one of a longer name, and reports a missing one.
func TestMetricValue(t *testing.T) {
	mfs, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"process_cpu_seconds_total":     12.5,
		"process_resident_memory_bytes": 2.134016e+08,
	} {
		got, err := metricValue(mfs, name)
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"go_goroutines", "sealfs_fuse_operations_total"} {
		if v, err := metricValue(mfs, name); err == nil {
			t.Errorf("%s: got %v, want an error (missing, or labelled only)", name, v)
		}
	}
	after, err := parseMetrics(strings.NewReader(strings.Replace(exposition, "process_cpu_seconds_total 12.5", "process_cpu_seconds_total 20", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cpu, mem := passUsage(mfs, after); cpu != "7.5s" || mem != "204 MiB" {
		t.Errorf("passUsage: got %q, %q; want 7.5s, 204 MiB", cpu, mem)
	}
	if cpu, mem := passUsage(nil, after); cpu != "-" || mem != "204 MiB" {
		t.Errorf("passUsage without a first reading: got %q, %q; want -, 204 MiB", cpu, mem)
	}
}

// TestFuseOps sums each operation's count over its results and takes its
// handlers' time from the histogram's sum.
func TestFuseOps(t *testing.T) {
	mfs, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	got := fuseOps(mfs)
	want := map[string]opStat{"Lookup": {n: 10, secs: 0.25}, "Flush": {n: 2, secs: 0.5}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: got %+v, want %+v", op, got[op], w)
		}
	}
	if len(fuseOps(nil)) != 0 {
		t.Error("no metrics gave operations")
	}
}
