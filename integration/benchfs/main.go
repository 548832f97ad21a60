// Command benchfs compares the sealfs mount with a plain directory on the
// same disk, a gocryptfs mount and, where a weed command is found (-weed,
// PATH, or bin/weed from make weed), a SeaweedFS mount whose filer encrypts
// every chunk (internal/seaweed), in one run: copying a large file in and
// out (page cache dropped before each), untarring a tree of small files,
// and ls -lR of it. It prints each time, the median of -runs runs, and each
// ratio against gocryptfs. It needs root (to drop caches and mount),
// gocryptfs, fusermount3 and a built sealfs binary (make bench-fs does all
// that).
//
// It never writes outside -dir, and removes what it made unless -keep.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sealfs/sealfs/internal/kernelinfo"
	"github.com/sealfs/sealfs/internal/mountinfo"
	"github.com/sealfs/sealfs/internal/seaweed"
)

func main() {
	// Output piped into a reader that stops early (make ... | head)
	// must not kill the run before it unmounts and stops its daemons: a
	// write to the closed pipe fails instead.
	signal.Ignore(syscall.SIGPIPE)
	bin := flag.String("bin", "./bin/sealfs", "the sealfs binary")
	dir := flag.String("dir", "", "work directory, on the disk to measure (default: a new directory under /var/tmp)")
	size := flag.Int64("size", 1<<30, "size of the large file, bytes")
	files := flag.Int("files", 10000, "number of small files in the tree")
	runs := flag.Int("runs", 3, "runs of each measurement; the median is shown")
	encrypt := flag.Bool("encrypt", true, "turn the sealfs bucket's default encryption on")
	keep := flag.Bool("keep", false, "keep the work directory")
	old := flag.String("old", "", "also measure this other sealfs binary (an older build) in the same runs, as the target sealfs-old, to compare builds within one run")
	summary := flag.String("summary", "", "append the results to this file as tab-separated rows (make bench's table)")
	profile := flag.String("profile", "", "instead of the comparison, run one row on the sealfs mount alone (cp-in, cp-out, untar or ls) while the daemon profiles itself; writes ROW.cpu.pprof, ROW.block.pprof and ROW.allocs.pprof to -profile-dir and prints their top entries and the FUSE operations")
	profileDir := flag.String("profile-dir", ".", "where -profile writes its files")
	profileSecs := flag.Int("profile-seconds", 30, "how long -profile samples; it must outlast the row (idle time adds no CPU samples)")
	passes := flag.Int("passes", 0, "instead of the comparison, untar the tree this many times into one gocryptfs mount and one sealfs bucket, nothing removed in between, and print each pass's times (how the untar row holds up as the store fills)")
	writers := flag.String("writers", "", "instead of the comparison, for each scenario FILESxMIB (comma-separated, e.g. 48x6,400x0.9): on a fresh daemon, open FILES files, write MIB MiB into each, sync(2) so that the kernel sends every page while they stay open, close them, read them back, and print the daemon's peak resident size (VmHWM) and the time (with -old, for both builds)")
	weedBin := flag.String("weed", "", `the weed command of the SeaweedFS peer (default: weed on PATH, else bin/weed, which make weed builds; "off" leaves the peer out)`)
	fuseTrace := flag.Bool("fuse-trace", false, "with -profile: run the row once more with the kernel's fuse tracepoints on, and print each FUSE operation's round trip as the kernel sees it beside the daemon's handler time")
	flag.Parse()
	if *passes > 0 {
		if err := growRun(*bin, *old, *dir, *files, *passes, *encrypt, *keep); err != nil {
			fmt.Fprintln(os.Stderr, "benchfs:", err)
			os.Exit(1)
		}
		return
	}
	if *writers != "" {
		if err := writersRun(*bin, *old, *dir, *writers, *encrypt, *keep); err != nil {
			fmt.Fprintln(os.Stderr, "benchfs:", err)
			os.Exit(1)
		}
		return
	}
	if *profile != "" {
		if err := profileRow(*bin, *dir, *size, *files, *encrypt, *keep, *profile, *profileDir, *profileSecs, *fuseTrace); err != nil {
			fmt.Fprintln(os.Stderr, "benchfs:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *old, *weedBin, *dir, *size, *files, *runs, *encrypt, *keep, *summary); err != nil {
		fmt.Fprintln(os.Stderr, "benchfs:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	dir  string // where files go
}

type result struct {
	op    string
	times map[string][]time.Duration // by target
	// higherBetter: a throughput (ratio gocryptfs time / sealfs time);
	// else a time (ratio sealfs time / gocryptfs time).
	higherBetter bool
	bytes        int64
}

func run(bin, old, weedBin, dir string, size int64, nfiles, runs int, encrypt, keep bool, summary string) (err error) {
	for _, tool := range []string{"gocryptfs", "fusermount3", "tar", "cp", "ls"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y gocryptfs fuse3)", tool)
		}
	}
	dir, src, cleanup, err := setUp(dir, keep, &bin, &old)
	if err != nil {
		return err
	}
	defer cleanup()
	say("work directory %s", dir)

	big := filepath.Join(src, "big")
	say("writing a %d MiB source file", size>>20)
	if err := writeRandom(big, size); err != nil {
		return err
	}
	tarball := filepath.Join(src, "tree.tar")
	say("writing a tar of %d small files", nfiles)
	treeBytes, err := writeTree(tarball, nfiles)
	if err != nil {
		return err
	}

	// The three targets.
	plain := filepath.Join(dir, "plain")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		return err
	}
	gcMnt, unmountGC, err := mountGocryptfs(dir)
	if err != nil {
		return err
	}
	defer unmountGC()

	sealMnt := filepath.Join(dir, "sealfs")
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	stop, err := startSealfs(bin, filepath.Join(dir, "sealfs-data"), sealMnt, "--metrics", metrics)
	if err != nil {
		return err
	}
	defer stop()
	bucket, err := makeBucket(sealMnt, encrypt)
	if err != nil {
		return err
	}
	var untarOps map[string]opStat // the sealfs mount's FUSE operations in the last untar
	targets := []target{{"plain", plain}, {"gocryptfs", gcMnt}, {"sealfs", bucket}}
	if old != "" {
		oldMnt := filepath.Join(dir, "sealfs-old")
		stopOld, err := startSealfs(old, filepath.Join(dir, "sealfs-old-data"), oldMnt)
		if err != nil {
			return fmt.Errorf("the -old binary: %w", err)
		}
		defer stopOld()
		oldBucket, err := makeBucket(oldMnt, encrypt)
		if err != nil {
			return err
		}
		targets = append(targets, target{"sealfs-old", oldBucket})
	}
	weedDir, stopWeed, err := mountSeaweedfs(weedBin, dir)
	if err != nil {
		return err
	}
	if stopWeed != nil {
		defer stopWeed()
		targets = append(targets, target{"seaweedfs", weedDir})
	}

	results := []*result{
		{op: fmt.Sprintf("cp %d MiB in (cp returns)", size>>20), higherBetter: true, bytes: size},
		{op: fmt.Sprintf("cp %d MiB in + sync", size>>20), higherBetter: true, bytes: size},
		{op: fmt.Sprintf("cp %d MiB out, cold", size>>20), higherBetter: true, bytes: size},
		{op: fmt.Sprintf("untar %d files (tar returns)", nfiles)},
		{op: fmt.Sprintf("untar %d files + sync", nfiles)},
		{op: "ls -lR, cold"},
		{op: "ls -lR, warm"},
	}
	for _, r := range results {
		r.times = make(map[string][]time.Duration)
	}
	out := filepath.Join(dir, "out")
	for i := 0; i < runs; i++ {
		for _, t := range targets {
			say("run %d/%d: %s", i+1, runs, t.name)
			dst := filepath.Join(t.dir, "big")
			os.Remove(dst)
			sh("sync")
			dropCaches()
			start := time.Now()
			if err := sh("cp", big, dst); err != nil {
				return err
			}
			results[0].times[t.name] = append(results[0].times[t.name], time.Since(start))
			sh("sync")
			results[1].times[t.name] = append(results[1].times[t.name], time.Since(start))

			dropCaches()
			os.Remove(out)
			start = time.Now()
			if err := sh("cp", dst, out); err != nil {
				return err
			}
			results[2].times[t.name] = append(results[2].times[t.name], time.Since(start))
			os.Remove(out)
			if err := os.Remove(dst); err != nil {
				return err
			}

			tree := filepath.Join(t.dir, fmt.Sprintf("tree%d", i))
			if err := os.Mkdir(tree, 0o755); err != nil {
				return err
			}
			sh("sync")
			dropCaches()
			var ops0 map[string]opStat
			if t.name == "sealfs" {
				ops0 = scrapeOps(metrics)
			}
			start = time.Now()
			if err := sh("tar", "xf", tarball, "-C", tree); err != nil {
				return err
			}
			results[3].times[t.name] = append(results[3].times[t.name], time.Since(start))
			if t.name == "sealfs" {
				untarOps = diffOps(scrapeOps(metrics), ops0)
			}
			sh("sync")
			results[4].times[t.name] = append(results[4].times[t.name], time.Since(start))

			dropCaches()
			start = time.Now()
			if err := shQuiet("ls", "-lR", tree); err != nil {
				return err
			}
			results[5].times[t.name] = append(results[5].times[t.name], time.Since(start))
			start = time.Now()
			if err := shQuiet("ls", "-lR", tree); err != nil {
				return err
			}
			results[6].times[t.name] = append(results[6].times[t.name], time.Since(start))
			if err := os.RemoveAll(tree); err != nil {
				return err
			}
		}
	}
	report(os.Stdout, results, targets, runs, treeBytes, encrypt)
	printOps(os.Stdout, "sealfs FUSE operations per untarred file (last run; as the daemon counts them: requests go-fuse answers itself, RELEASE and FORGET are not counted)", untarOps, nfiles)
	if summary != "" {
		return writeSummary(summary, results)
	}
	return nil
}

// goals are the targets against gocryptfs (issue 16), by operation
// prefix: a throughput ratio to reach (higherBetter) or a time ratio not to
// exceed.
var goals = []struct {
	prefix string
	ratio  float64
}{
	{"cp 1024 MiB in (cp returns)", 1.5},
	{"cp 1024 MiB out", 1.5},
	{"untar", 0.7},
	{"ls -lR", 0.6},
}

// writeSummary appends one row per operation: suite, measurement, sealfs,
// reference name, reference, ratio, target, verdict.
func writeSummary(path string, results []*result) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	for _, r := range results {
		gc, sf := median(r.times["gocryptfs"]).Seconds(), median(r.times["sealfs"]).Seconds()
		val := func(d float64) string {
			if r.bytes > 0 {
				return fmt.Sprintf("%.0f MB/s", float64(r.bytes)/d/1e6)
			}
			return fmt.Sprintf("%.2f s", d)
		}
		ratio, kind := sf/gc, "time"
		if r.higherBetter {
			ratio, kind = gc/sf, "throughput"
		}
		target, verdict := "", ""
		for _, g := range goals {
			if strings.HasPrefix(r.op, g.prefix) {
				if r.higherBetter {
					target = fmt.Sprintf(">= %.2fx", g.ratio)
					verdict = map[bool]string{true: "met", false: "MISSED"}[ratio >= g.ratio]
				} else {
					target = fmt.Sprintf("<= %.2fx", g.ratio)
					verdict = map[bool]string{true: "met", false: "MISSED"}[ratio <= g.ratio]
				}
			}
		}
		peer := ""
		if sw := r.times["seaweedfs"]; len(sw) > 0 {
			peer = fmt.Sprintf(" (SeaweedFS, same run: %s)", val(median(sw).Seconds()))
		}
		fmt.Fprintf(f, "mount\t%s\t%s\tgocryptfs\t%s\t%.2fx %s%s\t%s\t%s\n", r.op, val(sf), val(gc), ratio, kind, peer, target, verdict)
	}
	return f.Close()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(w io.Writer, results []*result, targets []target, runs int, treeBytes int64, encrypt bool) {
	enc := "plain"
	if encrypt {
		enc = "SSE-KMS encrypting"
	}
	fmt.Fprintf(w, "\nmedian of %d runs; sealfs bucket: %s; xattrs on; tree: %d MiB\n%s\n", runs, enc, treeBytes>>20, kernelinfo.Line())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "operation\t"
	for _, t := range targets {
		head += t.name + "\t"
	}
	for _, t := range targets[2:] {
		head += t.name + " vs gocryptfs\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range results {
		line := r.op + "\t"
		for _, t := range targets {
			d := median(r.times[t.name])
			if r.bytes > 0 {
				line += fmt.Sprintf("%.2fs %4.0f MB/s\t", d.Seconds(), float64(r.bytes)/d.Seconds()/1e6)
			} else {
				line += fmt.Sprintf("%.2fs\t", d.Seconds())
			}
		}
		gc := median(r.times["gocryptfs"]).Seconds()
		for _, t := range targets[2:] {
			sf := median(r.times[t.name]).Seconds()
			if r.higherBetter {
				line += fmt.Sprintf("%.2fx throughput\t", gc/sf)
			} else {
				line += fmt.Sprintf("%.2fx time\t", sf/gc)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nall runs (seconds):")
	for _, r := range results {
		for _, t := range targets {
			var s []string
			for _, d := range r.times[t.name] {
				s = append(s, fmt.Sprintf("%.2f", d.Seconds()))
			}
			fmt.Fprintf(w, "  %-32s %-10s %s\n", r.op, t.name, strings.Join(s, " "))
		}
	}
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchfs: "+format+"\n", args...)
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func shQuiet(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func dropCaches() {
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		say("could not drop caches: %v", err)
	}
}

// writeRandom writes size pseudo-random bytes (the same every run).
func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'s', 'e', 'a', 'l', 'f', 's'})
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), size-n)]
		rng.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// writeTree writes a tar of n small files in 100-file directories, two
// levels deep, sizes mostly under 8 KiB like a source tree. It returns the
// bytes of file data.
func writeTree(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rng := rand.New(rand.NewPCG(1, 2))
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	buf := make([]byte, 256<<10)
	var total int64
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("tree/d%02d/s%02d", i/1000, i/100%10)
		for _, p := range []string{"tree", filepath.Dir(d), d} {
			if !seen[p] {
				seen[p] = true
				if err := tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
					return 0, err
				}
			}
		}
		size := int64(rng.ExpFloat64() * 6000)
		if size > int64(len(buf)) {
			size = int64(len(buf))
		}
		hdr := &tar.Header{Name: fmt.Sprintf("%s/file%05d.txt", d, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, err
		}
		for j := range buf[:size] {
			buf[j] = byte('a' + rng.IntN(26))
		}
		if _, err := tw.Write(buf[:size]); err != nil {
			return 0, err
		}
		total += size
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return total, f.Close()
}

// makeBucket makes the benchmark's bucket on the sealfs mount.
func makeBucket(mnt string, encrypt bool) (string, error) {
	bucket := filepath.Join(mnt, "bench")
	if err := os.Mkdir(bucket, 0o755); err != nil {
		return "", err
	}
	if encrypt {
		if err := syscall.Setxattr(bucket, "user.sealfs.default-encryption", []byte("aws:kms"), 0); err != nil {
			return "", fmt.Errorf("turning encryption on: %w", err)
		}
	}
	return bucket, nil
}

// startSealfs runs "sealfs mount" (with extra flags) and waits until it is
// mounted.
func startSealfs(bin, data, mnt string, extra ...string) (stop func(), err error) {
	_, stop, err = startSealfsCmd(bin, data, mnt, extra...)
	return stop, err
}

// startSealfsCmd is startSealfs, also returning the daemon's process.
func startSealfsCmd(bin, data, mnt string, extra ...string) (cmd *exec.Cmd, stop func(), err error) {
	args := append([]string{"mount", mnt, "--data", data, "--s3", "127.0.0.1:0", "--log-format", "text", "--log-level", "warn"}, extra...)
	cmd = exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY=bench", "SEALFS_SECRET_KEY=benchsecret")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "mount:") {
				ready <- nil
				sent = true
			}
		}
		if !sent {
			ready <- errors.New("sealfs exited before mounting")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Wait()
			return nil, nil, err
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, errors.New("sealfs did not mount within 30s")
	}
	return cmd, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if mountinfo.Mounted(mnt) {
			sh("fusermount3", "-u", "-z", mnt)
		}
	}, nil
}

// setUp starts every mode: it checks that it runs as root (each drops the
// page cache and mounts), makes the paths given absolute (the daemons and
// tools run in other directories; empty ones stay empty), and returns the
// work directory (dir, or a new one under /var/tmp if dir is empty), its
// src directory for the sources, made, and a cleanup that removes the work
// directory unless keep.
func setUp(dir string, keep bool, paths ...*string) (work, src string, cleanup func(), err error) {
	if os.Geteuid() != 0 {
		return "", "", nil, errors.New("run as root: it drops the page cache and mounts")
	}
	for _, p := range paths {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return "", "", nil, err
		}
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("/var/tmp", "benchfs-"); err != nil {
			return "", "", nil, err
		}
	}
	cleanup = func() {}
	if !keep {
		cleanup = func() { os.RemoveAll(dir) }
	}
	src = filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, src, cleanup, nil
}

// mountGocryptfs makes a gocryptfs file system in dir/gc.cipher (a fast,
// weak password hash: the benchmark measures file operations) and mounts
// it at dir/gc.
func mountGocryptfs(dir string) (mnt string, unmount func(), err error) {
	cipher, mnt := filepath.Join(dir, "gc.cipher"), filepath.Join(dir, "gc")
	for _, d := range []string{cipher, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	if err := sh("gocryptfs", "-q", "-init", "-scryptn", "10", "-extpass", "echo pw", cipher); err != nil {
		return "", nil, err
	}
	if err := sh("gocryptfs", "-q", "-extpass", "echo pw", cipher, mnt); err != nil {
		return "", nil, err
	}
	return mnt, func() { sh("fusermount3", "-u", "-z", mnt) }, nil
}

// mountSeaweedfs starts the SeaweedFS peer on dir/seaweedfs-data, its filer
// encrypting every chunk it stores (SeaweedFS's encryption for its mount;
// writes not synced, its default, as gocryptfs's are not), mounts it at
// dir/seaweedfs and returns a directory in it for the files. With bin "off"
// or no weed command it says why and returns no stop.
func mountSeaweedfs(bin, dir string) (files string, stop func(), err error) {
	if bin == "off" {
		say("SeaweedFS peer: left out (-weed off)")
		return "", nil, nil
	}
	if bin, err = seaweed.Binary(bin); err != nil {
		say("SeaweedFS peer: skipped: %v", err)
		return "", nil, nil
	}
	logFile, err := os.Create(filepath.Join(dir, "seaweedfs.log"))
	if err != nil {
		return "", nil, err
	}
	defer logFile.Close()
	s, err := seaweed.Start(bin, seaweed.Options{Dir: filepath.Join(dir, "seaweedfs-data"), EncryptVolumeData: true, Log: logFile})
	if err != nil {
		return "", nil, fmt.Errorf("SeaweedFS peer (its log: %s, kept with -keep): %w", logFile.Name(), err)
	}
	m, err := s.Mount(filepath.Join(dir, "seaweedfs"), filepath.Join(dir, "seaweedfs-cache"), logFile)
	if err != nil {
		s.Stop()
		return "", nil, fmt.Errorf("SeaweedFS peer (its log: %s, kept with -keep): %w", logFile.Name(), err)
	}
	stop = func() {
		m.Unmount()
		s.Stop()
	}
	files = filepath.Join(m.Dir, "bench")
	if err := os.Mkdir(files, 0o755); err != nil {
		stop()
		return "", nil, err
	}
	// SeaweedFS makes its volumes at the first write, which took ~5 s
	// here: that goes before the measurements, not into the first cp.
	warm := filepath.Join(files, "warm-up")
	if err := os.WriteFile(warm, make([]byte, 1<<20), 0o644); err != nil {
		stop()
		return "", nil, err
	}
	if err := os.Remove(warm); err != nil {
		stop()
		return "", nil, err
	}
	say("SeaweedFS peer: %s, mounted at %s", bin, m.Dir)
	return files, stop, nil
}
