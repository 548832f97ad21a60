package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sealfs/sealfs/internal/scrape"
	"golang.org/x/sys/unix"
)

// writersRun measures what the mount holds in memory for files being
// written: per scenario (N files of S MiB) and per sealfs build, a fresh
// daemon, N files opened in one bucket and S MiB written into each; then
// sync(2), so that the kernel sends every page back while the files stay
// open; a second later the files are closed (committed) and read back.
// It prints the daemon's resident size once mounted and its peak
// (VmHWM), and the time from the first write to the last file read back.
// Files written and closed one after another never pile up; files held
// open while the kernel writes their pages back (a sync, dirty pages
// expiring, memory pressure) do.
func writersRun(bin, old, dir, scenarios string, encrypt, keep bool) error {
	scs, err := parseScenarios(scenarios)
	if err != nil {
		return err
	}
	dir, _, cleanup, err := setUp(dir, keep, &bin, &old)
	if err != nil {
		return err
	}
	defer cleanup()
	builds := []struct{ name, bin string }{{"sealfs", bin}, {"sealfs-old", old}}
	head := "files\t"
	for _, b := range builds {
		if b.bin != "" {
			head += fmt.Sprintf("%[1]s mounted\t%[1]s peak\t%[1]s time\t", b.name)
		}
	}
	lines := []string{head}
	for i, sc := range scs {
		line := fmt.Sprintf("%d × %g MiB\t", sc.files, sc.mib)
		for _, b := range builds {
			if b.bin == "" {
				continue
			}
			say("%d files of %g MiB: %s", sc.files, sc.mib, b.name)
			base := filepath.Join(dir, fmt.Sprintf("%s-%d", b.name, i))
			mounted, peak, took, err := openWriters(b.bin, base, sc.files, int(sc.mib*(1<<20)), encrypt)
			if err != nil {
				return fmt.Errorf("%s, %d files of %g MiB: %w", b.name, sc.files, sc.mib, err)
			}
			line += fmt.Sprintf("%d MiB\t%d MiB\t%.2fs\t", mounted>>20, peak>>20, took.Seconds())
		}
		lines = append(lines, line)
	}
	fmt.Println("\nfiles held open across a sync: the daemon's resident size once mounted, its peak (VmHWM), and the time to write, sync, close and read back")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	return tw.Flush()
}

// scenario is one case of -writers: files of mib MiB each.
type scenario struct {
	files int
	mib   float64
}

// parseScenarios reads -writers: FILESxMIB, comma-separated.
func parseScenarios(s string) ([]scenario, error) {
	var scs []scenario
	for _, f := range strings.Split(s, ",") {
		n, m, ok := strings.Cut(strings.TrimSpace(f), "x")
		files, err1 := strconv.Atoi(n)
		mib, err2 := strconv.ParseFloat(m, 64)
		if !ok || err1 != nil || err2 != nil || files < 1 || mib <= 0 || mib*float64(files) > 4096 {
			return nil, fmt.Errorf("-writers %q: want FILESxMIB,... (e.g. 48x6), at most 4 GiB a scenario", f)
		}
		scs = append(scs, scenario{files, mib})
	}
	return scs, nil
}

// openWriters runs one scenario on a fresh daemon under base, and returns
// the daemon's resident size once mounted, its peak, and the time taken.
func openWriters(bin, base string, nfiles, size int, encrypt bool) (mounted, peak int64, took time.Duration, err error) {
	mnt := filepath.Join(base, "mnt")
	cmd, stop, err := startSealfsCmd(bin, filepath.Join(base, "data"), mnt)
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(base)
	defer stop()
	bucket, err := makeBucket(mnt, encrypt)
	if err != nil {
		return 0, 0, 0, err
	}
	pid := cmd.Process.Pid
	if mounted, err = scrape.ProcStatus(pid, "VmRSS"); err != nil {
		return 0, 0, 0, err
	}
	data := make([]byte, size)
	rand.Read(data)
	start := time.Now()
	files := make([]*os.File, 0, nfiles)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range nfiles {
		f, err := os.Create(filepath.Join(bucket, fmt.Sprintf("w%d", i)))
		if err != nil {
			return 0, 0, 0, err
		}
		files = append(files, f)
		if _, err := f.Write(data); err != nil {
			return 0, 0, 0, err
		}
	}
	unix.Sync()
	time.Sleep(time.Second)
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Close())
	}
	files = nil
	if err := errors.Join(errs...); err != nil {
		return 0, 0, 0, fmt.Errorf("closing: %w", err)
	}
	for i := range nfiles {
		got, err := os.ReadFile(filepath.Join(bucket, fmt.Sprintf("w%d", i)))
		if err != nil {
			return 0, 0, 0, err
		}
		if !bytes.Equal(got, data) {
			return 0, 0, 0, fmt.Errorf("w%d reads back %d bytes unlike the %d written", i, len(got), len(data))
		}
	}
	took = time.Since(start)
	if peak, err = scrape.ProcStatus(pid, "VmHWM"); err != nil {
		return 0, 0, 0, err
	}
	return mounted, peak, took, nil
}
