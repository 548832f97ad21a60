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
// make test runs it for 15 s, make stress for FSX_DURATION. What makes it
// hold (fs/doc.go, Durability): a write the kernel sends back is never
// refused for a full disk (the staging keeps in memory what the disk cannot
// take, and a failed stream moves into the overlay from its copy), so the
// page cache never holds bytes the staging lost; a commit that fails leaves
// the staging whole, for the next flush, fsync or close; a last close that
// cannot commit drops it, and no open uses that inode's pages again (the
// kernel's retry after ESTALE gets a new inode, of a generation no live
// node has); and a truncate(2) commits at once rather than waiting for the
// close of a descriptor whose release may still be on its way.
func TestMountFsxDiskFull(t *testing.T) {
	runFsx(t, true, 15*time.Second)
}

// TestMountFsx runs fsx and fsstress through the mount for 10s (or
// SEALFS_FSX_DURATION) on a data disk with room, then crashes and restarts
// the daemon and checks everything acknowledged: every read of the
// workloads' files, maps, truncates, renames and directories is exact.
func TestMountFsx(t *testing.T) {
	runFsx(t, false, 10*time.Second)
}

// runFsx runs fsx and fsstress for dur (or SEALFS_FSX_DURATION), on a
// nearly full data disk if full.
func runFsx(t *testing.T, full bool, dur time.Duration) {
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
	dur = envDuration(t, "SEALFS_FSX_DURATION", dur)
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
	file := filepath.Join(b, "fsx.bin")
	if full {
		// fsx's file exists before the disk fills. A file created through
		// the mount exists only in the mount until its first commit, and
		// vanishes if its last close cannot commit (fs/doc.go): fsx, which
		// reopens its file after every ENOSPC, would find it gone if the
		// first close failed. fsstress's creat checks that case ("none" is
		// one of its states).
		mustWrite(t, file, nil)
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
	d, f, want, bal := fullDiskFile(t, 4<<20, 1)
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

// Writes the kernel sends back while the data disk is full are kept: the
// write-back does not fail, a second descriptor reads them, fsync reports
// ENOSPC while the disk stays full, and once space returns the next fsync
// commits them all. Before, the staging was broken by the first write the
// store refused: a second open got a new inode that read the version last
// committed (not what was just written, though no error had been reported
// yet), and no later fsync could commit the writes.
func TestMountFullDiskKeepsWrites(t *testing.T) {
	d, path, old, bal := fullDiskFile(t, 3<<20, 1)

	fd, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	bal.setFree(meta.Reserve / 2) // every store write is refused
	want := append(bytes.Clone(old), pattern(2<<20, 2)...)
	copy(want[100<<10:], pattern(10000, 3))
	if _, err := fd.WriteAt(want[len(old):], int64(len(old))); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt(want[100<<10:100<<10+10000], 100<<10); err != nil {
		t.Fatal(err)
	}
	// The kernel sends its dirty pages back (no error reaches the program
	// this way), and drops them once clean.
	if err := unix.SyncFileRange(int(fd.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED)

	// No error was reported yet: a second descriptor reads what was written.
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Fatalf("a second descriptor reads %d bytes, the first difference at %d; want the %d bytes written (the version committed has %d)",
			len(got), firstDiff(got, want), len(want), len(old))
	}
	if err := fd.Sync(); errnoOf(err) != syscall.ENOSPC {
		t.Fatalf("fsync on a full disk: %v; want ENOSPC", err)
	}
	// Space returns: the writes are still there, and the next fsync
	// commits them.
	bal.setFree(meta.Reserve + 64<<20)
	if err := fd.Sync(); err != nil {
		t.Fatalf("fsync once space returned: %v", err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Fatalf("after the fsync the file reads %d bytes, the first difference at %d; want the %d bytes written", len(got), firstDiff(got, want), len(want))
	}
	d.Restart()
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Fatalf("after a restart the file reads %d bytes; want the %d bytes written", len(got), len(want))
	}
}

// fullDiskFile starts a mount on a 384 MiB data disk, writes pattern(n,
// seed) to the file "f" of an encrypting bucket, then fills the disk
// with a ballast leaving 8 MiB above the store's reserve. It returns the
// daemon, the file's path, its content and the ballast.
func fullDiskFile(t *testing.T, n int, seed uint64) (*Daemon, string, []byte, *ballast) {
	t.Helper()
	requireFUSE(t)
	disk := smallDisk(t, 384<<20)
	d := startMount(t, DaemonOptions{DataDir: disk})
	path := filepath.Join(newBucket(t, d, "full", true), "f")
	content := pattern(n, seed)
	mustWrite(t, path, content)
	return d, path, content, newBallast(t, disk, 8<<20)
}

// firstDiff is the first offset where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A truncate(2) of a file that some descriptor holds open, on a full disk,
// either fails and changes nothing or succeeds and stays. Before, it was
// staged for the open descriptor's close to commit: it returned 0, and the
// close, failing on the full disk, undid it (fsstress met it with a
// descriptor whose release had not reached the daemon yet).
func TestMountFullDiskTruncateWhileOpen(t *testing.T) {
	d, path, old, bal := fullDiskFile(t, 4<<20, 1)
	fd, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bal.setFree(meta.Reserve / 2)
	terr := os.Truncate(path, 1<<20)
	if terr != nil && errnoOf(terr) != syscall.ENOSPC {
		t.Fatalf("truncate on a full disk: %v; want ENOSPC or success", terr)
	}
	if err := fd.Close(); err != nil {
		t.Fatalf("closing a descriptor that wrote nothing: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the release reaches the daemon
	want := old
	if terr == nil {
		want = old[:1<<20]
	}
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Fatalf("truncate answered %v; then the file reads %d bytes, want %d", terr, len(got), len(want))
	}
	bal.setFree(meta.Reserve + 64<<20)
	d.Restart()
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Fatalf("after a restart (truncate answered %v) the file reads %d bytes, want %d", terr, len(got), len(want))
	}
}

// An open for writing after a close that failed on a full disk does not
// answer ESTALE, even while a reader holds the old inode open. The last
// close drops the writes it could not commit, so the inode's pages and size
// hold a content no version has: an open for writing answers ESTALE, the
// kernel looks the name up again and retries on the new inode the lookup
// makes. Before, when the kernel dropped that new inode at once and looked
// up again, the second lookup made a node of the old inode's generation,
// which go-fuse took for the old inode (alive while the reader has it
// open): the retry answered ESTALE too, and the program got it.
func TestMountFullDiskReopenAfterFailedClose(t *testing.T) {
	_, path, old, bal := fullDiskFile(t, 1<<20, 1)
	bal.setFree(meta.Reserve / 2)
	time.Sleep(100 * time.Millisecond) // past the store's cached free-space probe
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(pattern(10000, 2), 5000); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); errnoOf(err) != syscall.ENOSPC {
		t.Fatalf("close on a full disk: %v; want ENOSPC", err)
	}
	time.Sleep(300 * time.Millisecond) // the release reaches the daemon
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		w, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatalf("open %d for writing after a failed close: %v", i, err)
		}
		got := make([]byte, len(old)+1)
		n, _ := w.ReadAt(got, 0)
		w.Close()
		if !bytes.Equal(got[:n], old) {
			t.Fatalf("open %d: the file reads %d bytes, want the %d committed", i, n, len(old))
		}
	}
	got := make([]byte, len(old)+1)
	if n, _ := r.ReadAt(got, 0); !bytes.Equal(got[:n], old) {
		t.Fatalf("the reader reads %d bytes, want the %d committed", n, len(old))
	}
}
