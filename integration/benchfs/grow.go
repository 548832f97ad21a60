package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/sealfs/sealfs/internal/kernelinfo"
	"github.com/sealfs/sealfs/internal/scrape"
)

// growRun measures how the untar row holds up as the store fills: the same
// tree is untarred passes times into one gocryptfs mount and one sealfs
// bucket, each pass into a directory of its own, nothing removed in
// between, the file systems taking turns (with old, a second sealfs build
// gets a bucket of its own too). Per pass it prints the times, sealfs's
// ratio to gocryptfs, the CPU each sealfs daemon used during the pass and
// its resident size after it (from the daemon's metrics). The comparison
// rows (run) remove each tree after measuring it, so they do not show a
// store that keeps growing.
func growRun(bin, old, dir string, nfiles, passes int, encrypt, keep bool) (err error) {
	if passes < 1 {
		return fmt.Errorf("-passes %d: want at least 1", passes)
	}
	dir, src, cleanup, err := setUp(dir, keep, &bin, &old)
	if err != nil {
		return err
	}
	defer cleanup()
	tarball := filepath.Join(src, "tree.tar")
	say("writing a tar of %d small files", nfiles)
	if _, err := writeTree(tarball, nfiles); err != nil {
		return err
	}
	gcMnt, unmountGC, err := mountGocryptfs(dir)
	if err != nil {
		return err
	}
	defer unmountGC()
	// The sealfs builds measured: bin, and old when given.
	type daemon struct{ name, bucket, metrics string }
	var daemons []daemon
	for _, b := range []struct{ name, bin string }{{"sealfs", bin}, {"sealfs-old", old}} {
		if b.bin == "" {
			continue
		}
		metrics, err := freeAddr()
		if err != nil {
			return err
		}
		mnt := filepath.Join(dir, b.name)
		stop, err := startSealfs(b.bin, filepath.Join(dir, b.name+"-data"), mnt, "--metrics", metrics)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		defer stop()
		bucket, err := makeBucket(mnt, encrypt)
		if err != nil {
			return err
		}
		daemons = append(daemons, daemon{b.name, bucket, metrics})
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
	fmt.Fprintf(tw, "\nuntar %d files, pass after pass into one store (nothing removed)\n%s\n", nfiles, kernelinfo.Line())
	head := "pass\tfiles before\tgocryptfs\t"
	for _, d := range daemons {
		head += fmt.Sprintf("%[1]s\t%[1]s vs gocryptfs\t%[1]s daemon CPU\t%[1]s RSS after\t", d.name)
	}
	fmt.Fprintln(tw, head)
	for p := 1; p <= passes; p++ {
		say("pass %d/%d", p, passes)
		gc, err := untar(gcMnt, p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%d\t%d\t%.2fs\t", p, (p-1)*nfiles, gc.Seconds())
		for _, d := range daemons {
			before, errBefore := scrape.Fetch(d.metrics)
			sf, err := untar(d.bucket, p)
			if err != nil {
				return err
			}
			after, errAfter := scrape.Fetch(d.metrics)
			if err := errors.Join(errBefore, errAfter); err != nil {
				say("%s metrics: %v", d.name, err)
			}
			cpu, mem := passUsage(before, after)
			line += fmt.Sprintf("%.2fs\t%.2fx time\t%s\t%s\t", sf.Seconds(), sf.Seconds()/gc.Seconds(), cpu, mem)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// passUsage formats the CPU a daemon used between two readings of its
// metrics and its resident size at the second; "-" for what they lack.
func passUsage(before, after scrape.Families) (cpu, mem string) {
	cpu, mem = "-", "-"
	cpu0, err0 := before.Value("process_cpu_seconds_total")
	cpu1, err1 := after.Value("process_cpu_seconds_total")
	if err0 == nil && err1 == nil {
		cpu = fmt.Sprintf("%.1fs", cpu1-cpu0)
	}
	if rss, err := after.Value("process_resident_memory_bytes"); err == nil {
		mem = fmt.Sprintf("%.0f MiB", rss/(1<<20))
	}
	return cpu, mem
}
