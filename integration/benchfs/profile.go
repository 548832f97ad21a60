package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealfs/sealfs/internal/freeport"
	"github.com/sealfs/sealfs/internal/pprofget"
	"github.com/sealfs/sealfs/internal/scrape"
	"github.com/sealfs/sealfs/meta"
)

// profileRow runs one row of the comparison on the sealfs mount alone while
// the daemon profiles itself (sealfs mount --metrics ADDR --pprof): CPU
// and blocking, sampled over -profile-seconds from just before the row
// starts. It writes DIR/ROW.cpu.pprof and DIR/ROW.block.pprof (the
// blocking profile is the difference over the same window), prints the
// row's time, the FUSE operations the daemon served during it, and the
// profiles' top entries. What a row needs first (the file for cp-out, the
// tree for ls) is made before the sampling starts. With trace, the row then
// runs once more, into a tree or file of its own, with the kernel's fuse
// tracepoints on (fusetrace.go), and the kernel's view of each operation is
// printed; a kernel without them gets a note instead.
func profileRow(bin, dir string, size int64, nfiles int, encrypt, keep bool, row, outDir string, secs int, trace bool) (err error) {
	if !slices.Contains([]string{"cp-in", "cp-out", "untar", "ls"}, row) {
		return fmt.Errorf("-profile %q: want cp-in, cp-out, untar or ls", row)
	}
	dir, src, cleanup, err := setUp(dir, keep, &bin, &outDir)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	big, tarball := filepath.Join(src, "big"), filepath.Join(src, "tree.tar")
	switch row {
	case "cp-in", "cp-out":
		say("writing a %d MiB source file", size>>20)
		if err := writeRandom(big, size); err != nil {
			return err
		}
	default:
		say("writing a tar of %d small files", nfiles)
		if _, err := writeTree(tarball, nfiles); err != nil {
			return err
		}
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	mnt := filepath.Join(dir, "sealfs")
	stop, err := startSealfs(bin, filepath.Join(dir, "sealfs-data"), mnt, "--metrics", metrics, "--pprof")
	if err != nil {
		return err
	}
	defer stop()
	bucket, err := makeBucket(mnt, encrypt)
	if err != nil {
		return err
	}
	dst, tree, out := filepath.Join(bucket, "big"), filepath.Join(bucket, "tree"), filepath.Join(dir, "out")
	// op runs the row; run 1 is the one -fuse-trace measures (untar into a
	// tree of its own, cp in to a file of its own).
	var op func(run int) error
	perFile := 0
	switch row {
	case "cp-in":
		op = func(run int) error { return sh("cp", big, fmt.Sprintf("%s%d", dst, run)) }
	case "cp-out":
		if err := sh("cp", big, dst); err != nil {
			return err
		}
		op = func(int) error { return sh("cp", dst, out) }
	case "untar":
		op = func(run int) error {
			t := fmt.Sprintf("%s%d", tree, run)
			if err := os.Mkdir(t, 0o755); err != nil {
				return err
			}
			return sh("tar", "xf", tarball, "-C", t)
		}
		perFile = nfiles
	case "ls":
		if err := os.Mkdir(tree, 0o755); err != nil {
			return err
		}
		if err := sh("tar", "xf", tarball, "-C", tree); err != nil {
			return err
		}
		op = func(int) error {
			if err := shQuiet("ls", "-lR", tree); err != nil {
				return err
			}
			return shQuiet("ls", "-lR", tree)
		}
		perFile = nfiles
	}
	sh("sync")
	dropCaches()

	files := pprofget.FilesIn(outDir, row)
	wait := pprofget.Start(metrics, secs, files)
	time.Sleep(500 * time.Millisecond) // the windows are open
	before := readMetrics(metrics)
	say("profiling %s for %ds", row, secs)
	start := time.Now()
	if err := op(0); err != nil {
		return err
	}
	took := time.Since(start)
	during := readMetrics(metrics).since(before)
	if took > time.Duration(secs)*time.Second {
		say("the row took %v, longer than -profile-seconds %d: the profiles miss its end", took.Round(time.Millisecond), secs)
	}
	say("%s took %v; waiting for the profiles", row, took.Round(time.Millisecond))
	if err := wait(); err != nil {
		return err
	}
	fmt.Printf("\n%s on the sealfs mount: %.2fs\n", row, took.Seconds())
	printOps(os.Stdout, "FUSE operations the daemon served (requests go-fuse answers itself, RELEASE and FORGET are not counted)", during.ops, perFile)
	printCommits(os.Stdout, during, perFile)
	fmt.Printf("\nprofiles: %s %s %s (go tool pprof -http : %s %s)\n", files.CPU, files.Block, files.Allocs, bin, files.CPU)
	pprofget.Top(os.Stdout, "CPU, by cumulative time in the daemon's code", bin, files.CPU, 25, "-cum", "-focus", "github.com/sealfs/sealfs/")
	pprofget.Top(os.Stdout, "CPU, flat", bin, files.CPU, 25)
	pprofget.Top(os.Stdout, "blocking inside the mount's requests, by cumulative delay", bin, files.Block, 25, "-cum", "-focus", "github.com/sealfs/sealfs/fs\\.")
	pprofget.Top(os.Stdout, "bytes allocated in the daemon's code during the window, by cumulative size", bin, files.Allocs, 25, "-cum", "-sample_index=alloc_space", "-focus", "github.com/sealfs/sealfs/")
	if !trace {
		return nil
	}
	if row == "cp-out" {
		os.Remove(out)
	}
	sh("sync")
	dropCaches()
	ft, err := startFuseTrace(mnt)
	if err != nil {
		fmt.Printf("\nno trace of the kernel's view: %v\n", err)
		return nil
	}
	ops0 := scrapeOps(metrics)
	say("running %s again with the kernel's fuse tracepoints on", row)
	start = time.Now()
	err = op(1)
	took = time.Since(start)
	reqs, unmatched, terr := ft.stop()
	if err != nil {
		return err
	}
	if terr != nil {
		fmt.Printf("\nno trace of the kernel's view: %v\n", terr)
		return nil
	}
	fmt.Printf("\n%s again, traced: %.2fs\n", row, took.Seconds())
	printTrace(os.Stdout, reqs, unmatched, diffOps(scrapeOps(metrics), ops0), perFile)
	return nil
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	p, err := freeport.Port()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// opStat is one FUSE operation's count and the time its handlers took.
type opStat struct{ n, secs float64 }

// scrapeOps reads the daemon's FUSE operations from its metrics (fuseOps).
// Empty if the metrics cannot be read.
func scrapeOps(addr string) map[string]opStat { return readMetrics(addr).ops }

// reading is what a row reads from the daemon's metrics before and after
// it runs.
type reading struct {
	ops    map[string]opStat      // FUSE operations (fuseOps)
	phases map[string]scrape.Stat // metadata commits' phases (commitPhases)
	blobs  scrape.Stat            // blobs made durable (sealfs_blob_commit_seconds)
	faults float64                // minor page faults; -1 if unknown
}

// readMetrics reads the daemon's metrics; an empty reading if they cannot be
// read.
func readMetrics(addr string) reading {
	mfs, err := scrape.Fetch(addr)
	if err != nil {
		say("metrics: %v", err)
	}
	r := reading{ops: fuseOps(mfs), phases: commitPhases(mfs), faults: -1}
	if st, err := mfs.Histogram("sealfs_blob_commit_seconds"); err == nil {
		r.blobs = st
	}
	if v, err := mfs.Value("sealfs_process_minor_page_faults_total"); err == nil {
		r.faults = v
	}
	return r
}

// since returns what changed from before to r.
func (r reading) since(before reading) reading {
	d := reading{ops: diffOps(r.ops, before.ops), phases: scrape.SinceEach(r.phases, before.phases), faults: -1, blobs: r.blobs.Since(before.blobs)}
	if r.faults >= 0 && before.faults >= 0 {
		d.faults = r.faults - before.faults
	}
	return d
}

// printCommits prints the metadata commits' phases (in their order, each
// with its mean per try and the bucket bounds that hold half and 99% of
// the tries), the blobs made durable, and the daemon's page faults, per
// file when perFile > 0.
func printCommits(w io.Writer, r reading, perFile int) {
	if len(r.phases) > 0 {
		fmt.Fprintf(w, "\nmetadata write transactions (sealfs_meta_commit_phase_seconds), by phase:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  phase\tcount\ttime\tper try\tspread\t\n")
		for _, p := range meta.CommitPhases() {
			st, ok := r.phases[p.String()]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f s\t%.1f µs\t%s\t\n", p, st.N, st.Sum, st.Sum/st.N*1e6, st.Percentiles())
		}
		tw.Flush()
	}
	if r.blobs.N > 0 {
		fmt.Fprintf(w, "\nblobs made durable (sealfs_blob_commit_seconds): %.0f, %.2f s, %.1f µs each", r.blobs.N, r.blobs.Sum, r.blobs.Sum/r.blobs.N*1e6)
		if p := r.blobs.Percentiles(); p != "" {
			fmt.Fprintf(w, " (%s)", p)
		}
		fmt.Fprintln(w)
	}
	if r.faults >= 0 {
		fmt.Fprintf(w, "\ndaemon's minor page faults: %.0f", r.faults)
		if perFile > 0 {
			fmt.Fprintf(w, " (%.1f per file)", r.faults/float64(perFile))
		}
		fmt.Fprintln(w)
	}
}

func diffOps(after, before map[string]opStat) map[string]opStat {
	d := map[string]opStat{}
	for op, v := range after {
		if n := v.n - before[op].n; n > 0 {
			d[op] = opStat{n: n, secs: v.secs - before[op].secs}
		}
	}
	return d
}

// byCount returns the operations in ops, the most frequent first (then by
// name).
func byCount(ops map[string]opStat) []string {
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(ops[b].n, ops[a].n); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}

// printOps prints operation counts, most frequent first, per file when
// perFile > 0, and the time the daemon's handlers took for them (in all
// and per operation; the rest of an operation's time is the round trip
// through the kernel).
func printOps(w io.Writer, title string, ops map[string]opStat, perFile int) {
	if len(ops) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	var total opStat
	for _, st := range ops {
		total.n += st.n
		total.secs += st.secs
	}
	names := byCount(ops)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  op\tcount\t\thandlers\tper op\t\n")
	for _, op := range append(names, "total") {
		st := total
		if op != "total" {
			st = ops[op]
		}
		perOp := fmt.Sprintf("%.1f µs", st.secs/st.n*1e6)
		if perFile > 0 {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f per file\t%.2f s\t%s\t\n", op, st.n, st.n/float64(perFile), st.secs, perOp)
		} else {
			fmt.Fprintf(tw, "  %s\t%.0f\t\t%.2f s\t%s\t\n", op, st.n, st.secs, perOp)
		}
	}
	tw.Flush()
}
