package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// growRun measures how the untar row holds up as the store fills: the same
// tree is untarred passes times into one gocryptfs mount and one sealfs
// bucket, each pass into a directory of its own, nothing removed in
// between, the two file systems taking turns. Per pass it prints both
// times, their ratio, the CPU the sealfs daemon used during the pass and
// its resident size after it (from the daemon's metrics). The comparison
// rows (run) remove each tree after measuring it, so they do not show a
// store that keeps growing.
func growRun(bin, dir string, nfiles, passes int, encrypt, keep bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: it drops the page cache and mounts")
	}
	if passes < 1 {
		return fmt.Errorf("-passes %d: want at least 1", passes)
	}
	if bin, err = filepath.Abs(bin); err != nil {
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
	tarball := filepath.Join(src, "tree.tar")
	say("writing a tar of %d small files", nfiles)
	if _, err := writeTree(tarball, nfiles); err != nil {
		return err
	}
	gcCipher, gcMnt := filepath.Join(dir, "gc.cipher"), filepath.Join(dir, "gc")
	for _, d := range []string{gcCipher, gcMnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := sh("gocryptfs", "-q", "-init", "-scryptn", "10", "-extpass", "echo pw", gcCipher); err != nil {
		return err
	}
	if err := sh("gocryptfs", "-q", "-extpass", "echo pw", gcCipher, gcMnt); err != nil {
		return err
	}
	defer sh("fusermount3", "-u", "-z", gcMnt)
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	stop, err := startSealfs(bin, filepath.Join(dir, "sealfs-data"), filepath.Join(dir, "sealfs"), "--metrics", metrics)
	if err != nil {
		return err
	}
	defer stop()
	bucket, err := makeBucket(filepath.Join(dir, "sealfs"), encrypt)
	if err != nil {
		return err
	}

	untar := func(root string, pass int) (time.Duration, error) {
		tree := filepath.Join(root, fmt.Sprintf("pass%d", pass))
		if err := os.Mkdir(tree, 0o755); err != nil {
			return 0, err
		}
		sh("sync")
		dropCaches()
		start := time.Now()
		err := sh("tar", "xf", tarball, "-C", tree)
		return time.Since(start), err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nuntar %d files, pass after pass into one store (nothing removed)\n", nfiles)
	fmt.Fprintln(tw, "pass\tfiles before\tgocryptfs\tsealfs\tsealfs vs gocryptfs\tsealfs daemon CPU\tdaemon RSS after\t")
	for p := 1; p <= passes; p++ {
		say("pass %d/%d", p, passes)
		gc, err := untar(gcMnt, p)
		if err != nil {
			return err
		}
		cpu0, err0 := scrapeMetric(metrics, "process_cpu_seconds_total")
		sf, err := untar(bucket, p)
		if err != nil {
			return err
		}
		cpu1, err1 := scrapeMetric(metrics, "process_cpu_seconds_total")
		rss, err2 := scrapeMetric(metrics, "process_resident_memory_bytes")
		cpu, mem := fmt.Sprintf("%.1fs", cpu1-cpu0), fmt.Sprintf("%.0f MiB", rss/(1<<20))
		if err := errors.Join(err0, err1); err != nil {
			say("metrics: %v", err)
			cpu = "-"
		}
		if err2 != nil {
			say("metrics: %v", err2)
			mem = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2fs\t%.2fs\t%.2fx time\t%s\t%s\t\n",
			p, (p-1)*nfiles, gc.Seconds(), sf.Seconds(), sf.Seconds()/gc.Seconds(), cpu, mem)
	}
	return tw.Flush()
}

// scrapeMetric reads one unlabelled sample from the daemon's metrics.
func scrapeMetric(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return findMetric(resp.Body, name)
}

// findMetric returns the value of the sample name (no labels) in a text
// exposition.
func findMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		return strconv.ParseFloat(strings.TrimSpace(rest), 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found", name)
}
