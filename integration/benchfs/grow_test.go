package main

import (
	"strings"
	"testing"

	"github.com/sealfs/sealfs/internal/scrape"
)

// TestCommitPhases reads each phase's count and time from the histogram,
// and a row's reading prints the phases that ran during it, in order, with
// their mean and the bounds that hold half and 99% of their tries, and
// the page faults per file.
func TestCommitPhases(t *testing.T) {
	before, err := scrape.Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	got := commitPhases(before)
	want := map[string]scrape.Stat{"begin": {N: 4, Sum: 0.0002}, "commit": {N: 4, Sum: 0.0008}, "sync": {}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for p, w := range want {
		if got[p].N != w.N || got[p].Sum != w.Sum {
			t.Errorf("%s: got %+v, want %+v", p, got[p], w)
		}
	}
	// Three more begins, two of them within 5 µs.
	later := strings.NewReplacer(
		`sum{phase="begin"} 0.0002`, `sum{phase="begin"} 0.0005`,
		`count{phase="begin"} 4`, `count{phase="begin"} 7`,
		`{phase="begin",le="5e-06"} 3`, `{phase="begin",le="5e-06"} 5`,
		`{phase="begin",le="+Inf"} 4`, `{phase="begin",le="+Inf"} 7`,
		`sealfs_process_minor_page_faults_total 1000`, `sealfs_process_minor_page_faults_total 1600`,
		`sealfs_blob_commit_seconds_sum 0.001`, `sealfs_blob_commit_seconds_sum 0.003`,
		`sealfs_blob_commit_seconds_count 1`, `sealfs_blob_commit_seconds_count 3`,
	).Replace(exposition)
	after, err := scrape.Parse(strings.NewReader(later))
	if err != nil {
		t.Fatal(err)
	}
	r0 := reading{ops: fuseOps(before), phases: commitPhases(before), blobs: scrape.Stat{N: 1, Sum: 0.001}, faults: 1000}
	r1 := reading{ops: fuseOps(after), phases: commitPhases(after), blobs: scrape.Stat{N: 3, Sum: 0.003}, faults: 1600}
	var out strings.Builder
	printCommits(&out, r1.since(r0), 3)
	text := out.String()
	for _, w := range []string{"begin      3  0.00 s  100.0 µs  p50 ≤ 5 µs, p99 ≤ +Inf", "blobs made durable (sealfs_blob_commit_seconds): 2, 0.00 s, 1000.0 µs each\n", "minor page faults: 600 (200.0 per file)"} {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks %q:\n%s", w, text)
		}
	}
	for _, absent := range []string{"  commit  ", "  sync  "} {
		if strings.Contains(text, absent) {
			t.Errorf("output shows %s, which did not change:\n%s", absent, text)
		}
	}
	var none strings.Builder
	printCommits(&none, reading{faults: -1}, 3)
	if none.Len() != 0 {
		t.Errorf("an empty reading printed %q", none.String())
	}
}

// exposition is a piece of the daemon's metrics, as its listener writes
// them.
const exposition = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
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
# HELP sealfs_meta_commit_phase_seconds Time of each phase.
# TYPE sealfs_meta_commit_phase_seconds histogram
sealfs_meta_commit_phase_seconds_bucket{phase="begin",le="5e-06"} 3
sealfs_meta_commit_phase_seconds_bucket{phase="begin",le="+Inf"} 4
sealfs_meta_commit_phase_seconds_sum{phase="begin"} 0.0002
sealfs_meta_commit_phase_seconds_count{phase="begin"} 4
sealfs_meta_commit_phase_seconds_bucket{phase="commit",le="+Inf"} 4
sealfs_meta_commit_phase_seconds_sum{phase="commit"} 0.0008
sealfs_meta_commit_phase_seconds_count{phase="commit"} 4
sealfs_meta_commit_phase_seconds_bucket{phase="sync",le="+Inf"} 0
sealfs_meta_commit_phase_seconds_sum{phase="sync"} 0
sealfs_meta_commit_phase_seconds_count{phase="sync"} 0
# HELP sealfs_blob_commit_seconds Blobs made durable.
# TYPE sealfs_blob_commit_seconds histogram
sealfs_blob_commit_seconds_bucket{le="+Inf"} 1
sealfs_blob_commit_seconds_sum 0.001
sealfs_blob_commit_seconds_count 1
# HELP sealfs_process_minor_page_faults_total Page faults.
# TYPE sealfs_process_minor_page_faults_total counter
sealfs_process_minor_page_faults_total 1000
`

// TestPassUsage formats the CPU used between two readings and the
// resident size at the second, "-" for what is missing.
func TestPassUsage(t *testing.T) {
	mfs, err := scrape.Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	after, err := scrape.Parse(strings.NewReader(strings.Replace(exposition, "process_cpu_seconds_total 12.5", "process_cpu_seconds_total 20", 1)))
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
	mfs, err := scrape.Parse(strings.NewReader(exposition))
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
