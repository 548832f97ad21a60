package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealfs/sealfs/internal/pprofget"
)

// profileRow runs one row of the comparison on the sealfs mount alone while
// the daemon profiles itself (sealfs mount --metrics ADDR --pprof): CPU
// and blocking, sampled over -profile-seconds from just before the row
// starts. It writes DIR/ROW.cpu.pprof and DIR/ROW.block.pprof (the
// blocking profile is the difference over the same window), prints the
// row's time, the FUSE operations the daemon served during it, and the
// profiles' top entries. What a row needs first (the file for cp-out, the
// tree for ls) is made before the sampling starts.
func profileRow(bin, dir string, size int64, nfiles int, encrypt, keep bool, row, outDir string, secs int) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: it drops the page cache and mounts")
	}
	if !slices.Contains([]string{"cp-in", "cp-out", "untar", "ls"}, row) {
		return fmt.Errorf("-profile %q: want cp-in, cp-out, untar or ls", row)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if outDir, err = filepath.Abs(outDir); err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("/var/tmp", "benchfs-"); err != nil {
			return err
		}
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
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
	var op func() error
	perFile := 0
	switch row {
	case "cp-in":
		op = func() error { return sh("cp", big, dst) }
	case "cp-out":
		if err := sh("cp", big, dst); err != nil {
			return err
		}
		op = func() error { return sh("cp", dst, out) }
	case "untar":
		if err := os.Mkdir(tree, 0o755); err != nil {
			return err
		}
		op = func() error { return sh("tar", "xf", tarball, "-C", tree) }
		perFile = nfiles
	case "ls":
		if err := os.Mkdir(tree, 0o755); err != nil {
			return err
		}
		if err := sh("tar", "xf", tarball, "-C", tree); err != nil {
			return err
		}
		op = func() error {
			if err := shQuiet("ls", "-lR", tree); err != nil {
				return err
			}
			return shQuiet("ls", "-lR", tree)
		}
		perFile = nfiles
	}
	sh("sync")
	dropCaches()

	cpuFile, blockFile := filepath.Join(outDir, row+".cpu.pprof"), filepath.Join(outDir, row+".block.pprof")
	wait := pprofget.Start(metrics, secs, cpuFile, blockFile)
	time.Sleep(500 * time.Millisecond) // both windows are open
	ops0 := scrapeOps(metrics)
	say("profiling %s for %ds", row, secs)
	start := time.Now()
	if err := op(); err != nil {
		return err
	}
	took := time.Since(start)
	ops := diffOps(scrapeOps(metrics), ops0)
	if took > time.Duration(secs)*time.Second {
		say("the row took %v, longer than -profile-seconds %d: the profiles miss its end", took.Round(time.Millisecond), secs)
	}
	say("%s took %v; waiting for the profiles", row, took.Round(time.Millisecond))
	if err := wait(); err != nil {
		return err
	}
	fmt.Printf("\n%s on the sealfs mount: %.2fs\n", row, took.Seconds())
	printOps(os.Stdout, "FUSE operations the daemon served (requests go-fuse answers itself, RELEASE and FORGET are not counted)", ops, perFile)
	fmt.Printf("\nprofiles: %s %s (go tool pprof -http : %s %s)\n", cpuFile, blockFile, bin, cpuFile)
	pprofget.Top(os.Stdout, "CPU, by cumulative time in the daemon's code", bin, cpuFile, 25, "-cum", "-focus", "github.com/sealfs/sealfs/")
	pprofget.Top(os.Stdout, "CPU, flat", bin, cpuFile, 25)
	pprofget.Top(os.Stdout, "blocking inside the mount's requests, by cumulative delay", bin, blockFile, 25, "-cum", "-focus", "github.com/sealfs/sealfs/fs\\.")
	return nil
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrapeOps reads sealfs_fuse_operations_total from the daemon's metrics,
// summed over results, by operation. Empty if the metrics cannot be read.
func scrapeOps(addr string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		say("metrics: %v", err)
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `sealfs_fuse_operations_total{op="`)
		if !ok {
			continue
		}
		op, rest, ok := strings.Cut(rest, `"`)
		if !ok {
			continue
		}
		_, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[op] += v
		}
	}
	return out
}

func diffOps(after, before map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for op, v := range after {
		if n := v - before[op]; n > 0 {
			d[op] = n
		}
	}
	return d
}

// printOps prints operation counts, most frequent first, and per file when
// perFile > 0.
func printOps(w io.Writer, title string, ops map[string]float64, perFile int) {
	if len(ops) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	names := make([]string, 0, len(ops))
	total := 0.0
	for op, n := range ops {
		names = append(names, op)
		total += n
	}
	slices.SortFunc(names, func(a, b string) int {
		if ops[a] != ops[b] {
			if ops[a] > ops[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, op := range append(names, "total") {
		n := total
		if op != "total" {
			n = ops[op]
		}
		if perFile > 0 {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f per file\t\n", op, n, n/float64(perFile))
		} else {
			fmt.Fprintf(tw, "  %s\t%.0f\t\n", op, n)
		}
	}
	tw.Flush()
}
