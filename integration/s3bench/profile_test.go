package main

import (
	"strings"
	"testing"

	"github.com/sealfs/sealfs/internal/scrape"
)

// TestChanges takes each phase's tries and time, the requests and the
// page faults between two readings, leaving out phases that did not run.
func TestChanges(t *testing.T) {
	const text = `# TYPE sealfs_meta_commit_phase_seconds histogram
sealfs_meta_commit_phase_seconds_bucket{phase="begin",le="+Inf"} N
sealfs_meta_commit_phase_seconds_sum{phase="begin"} S
sealfs_meta_commit_phase_seconds_count{phase="begin"} N
sealfs_meta_commit_phase_seconds_bucket{phase="sync",le="+Inf"} 2
sealfs_meta_commit_phase_seconds_sum{phase="sync"} 0.004
sealfs_meta_commit_phase_seconds_count{phase="sync"} 2
# TYPE sealfs_s3_requests_total counter
sealfs_s3_requests_total{op="PutObject",status="200"} R
sealfs_s3_requests_total{op="PutObject",status="503"} 1
sealfs_s3_requests_total{op="GetObject",status="200"} 5
# TYPE sealfs_process_minor_page_faults_total counter
sealfs_process_minor_page_faults_total F
# TYPE sealfs_blob_commit_seconds histogram
sealfs_blob_commit_seconds_bucket{le="+Inf"} B
sealfs_blob_commit_seconds_sum 0.5
sealfs_blob_commit_seconds_count B
`
	read := func(n, s, r, f, b string) scrape.Families {
		t.Helper()
		fam, err := scrape.Parse(strings.NewReader(strings.NewReplacer("N", n, "S", s, "R", r, "F", f, "B", b).Replace(text)))
		if err != nil {
			t.Fatal(err)
		}
		return fam
	}
	d := changes(read("3", "0.003", "10", "100", "4"), read("13", "0.013", "20", "350", "9"))
	if len(d.phases) != 1 || d.phases["begin"].N != 10 || d.phases["begin"].Sum < 0.0099 || d.phases["begin"].Sum > 0.0101 {
		t.Errorf("phases %v, want begin only: 10 tries, 0.01 s", d.phases)
	}
	if d.requests != 10 || d.faults != 250 || d.blobs.N != 5 {
		t.Errorf("requests %v, faults %v, blobs %v; want 10, 250, 5", d.requests, d.faults, d.blobs.N)
	}
	if d := changes(scrape.Families{}, read("13", "0.013", "20", "350", "9")); d.faults != -1 {
		t.Errorf("faults without a first reading: %v, want -1", d.faults)
	}
}
