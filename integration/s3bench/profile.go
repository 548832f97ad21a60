package main

import (
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/sealfs/sealfs/internal/pprofget"
	"github.com/sealfs/sealfs/internal/scrape"
	"github.com/sealfs/sealfs/meta"
)

// profileDir, when set (-profile), receives a CPU, a blocking and an
// allocation profile of the daemon for each workload, taken while the
// encrypting bucket is measured in round 1: DIR/<workload>.cpu.pprof,
// .block.pprof and .allocs.pprof. The daemon serves them with --metrics
// and --pprof.
var profileDir string

// profiling is one workload's profiles being taken, with the daemon's
// metrics read before it.
type profiling struct {
	done     func() error
	workload string
	metrics  string
	before   scrape.Families
}

// during is what a profiled workload's metrics changed by: the metadata
// write transactions' phases, the blobs made durable, the requests served
// and the page faults.
type during struct {
	phases   map[string]scrape.Stat
	blobs    scrape.Stat // blobs made durable (sealfs_blob_commit_seconds)
	requests float64
	faults   float64 // -1: unknown
}

// measured holds each profiled workload's during.
var measured = map[string]during{}

// changes returns what changed from before to after.
func changes(before, after scrape.Families) during {
	const phases = "sealfs_meta_commit_phase_seconds"
	d := during{phases: scrape.SinceEach(after.Histograms(phases, "phase"), before.Histograms(phases, "phase")), faults: -1}
	b0, _ := before.Histogram("sealfs_blob_commit_seconds")
	if b1, err := after.Histogram("sealfs_blob_commit_seconds"); err == nil {
		d.blobs = b1.Since(b0)
	}
	r0 := before.Counters("sealfs_s3_requests_total", "op")
	for op, n := range after.Counters("sealfs_s3_requests_total", "op") {
		d.requests += n - r0[op]
	}
	f0, err0 := before.Value("sealfs_process_minor_page_faults_total")
	f1, err1 := after.Value("sealfs_process_minor_page_faults_total")
	if err0 == nil && err1 == nil {
		d.faults = f1 - f0
	}
	return d
}

// print writes the phases (each with its mean per try, the bucket bounds
// that hold half and 99% of the tries, and the tries per request), the
// blobs made durable and the page faults per request. A mean can hide a
// few long waits: a phase whose median is a few µs and whose mean is a
// millisecond waits rarely and long.
func (d during) print(workload string) {
	if len(d.phases) == 0 && d.blobs.N == 0 && d.faults < 0 {
		return
	}
	fmt.Printf("\n== metadata write transactions of %s, by phase (sealfs_meta_commit_phase_seconds), over %.0f requests\n", workload, d.requests)
	for _, p := range meta.CommitPhases() {
		if s, ok := d.phases[p.String()]; ok {
			fmt.Printf("  %-7s %8.0f tries  %8.1f µs per try  %-28s  %5.2f tries per request\n", p, s.N, s.Sum/s.N*1e6, s.Percentiles(), s.N/max(d.requests, 1))
		}
	}
	if d.blobs.N > 0 {
		fmt.Printf("  blobs made durable (sealfs_blob_commit_seconds): %.0f, %.1f µs each  %s\n", d.blobs.N, d.blobs.Sum/d.blobs.N*1e6, d.blobs.Percentiles())
	}
	if d.faults >= 0 {
		fmt.Printf("  daemon's minor page faults: %.0f (%.1f per request)\n", d.faults, d.faults/max(d.requests, 1))
	}
}

// profileFiles names a workload's profiles in profileDir.
func profileFiles(workload string) pprofget.Files {
	return pprofget.FilesIn(profileDir, strings.NewReplacer(" ", "-", "/", "-").Replace(workload))
}

// startProfiles starts taking d's CPU profile and the blocking and
// allocation deltas over about dur (at least a second, the profiler's
// unit).
func startProfiles(d *daemon, workload string, dur time.Duration) *profiling {
	if profileDir == "" || d.metrics == "" {
		return nil
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		log.Printf("profile: %v", err)
		return nil
	}
	secs := max(1, int(dur.Round(time.Second).Seconds()))
	before, err := scrape.Fetch(d.metrics)
	if err != nil {
		log.Printf("metrics: %v", err)
	}
	return &profiling{done: pprofget.Start(d.metrics, secs, profileFiles(workload)),
		workload: workload, metrics: d.metrics, before: before}
}

// wait reads the metrics again once the workload has run, and waits for
// the profiles.
func (p *profiling) wait() {
	if after, err := scrape.Fetch(p.metrics); err != nil {
		log.Printf("metrics: %v", err)
	} else if p.before != nil {
		measured[p.workload] = changes(p.before, after)
	}
	if err := p.done(); err != nil {
		log.Printf("profile: %v", err)
	}
}

// printProfiles prints the top entries of every profile taken, with the
// command that opens it.
func printProfiles(selected []workload) {
	if profileDir == "" {
		return
	}
	for _, w := range selected {
		if d, ok := measured[w.name]; ok {
			d.print(w.name)
		}
		files := profileFiles(w.name)
		for _, p := range []struct {
			kind, file string
			args       []string
		}{
			{"cpu", files.CPU, nil},
			// Only the request-serving goroutines: the idle background
			// ones would fill the table otherwise.
			{"block", files.Block, []string{"-cum", "-focus", `s3\.\(\*Handler\)\.ServeHTTP`}},
			{"allocs", files.Allocs, []string{"-cum", "-sample_index=alloc_space"}},
		} {
			if _, err := os.Stat(p.file); err != nil {
				continue
			}
			title := fmt.Sprintf("%s profile of %s (go tool pprof -http=: %s)", p.kind, w.name, p.file)
			pprofget.Top(os.Stdout, title, "", p.file, 20, p.args...)
		}
	}
}
