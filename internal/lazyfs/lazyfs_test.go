package lazyfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}

// requireFUSE skips where FUSE mounts cannot be made; with
// SEALFS_REQUIRE_FUSE=1 (CI) it fails instead.
func requireFUSE(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "/dev/fuse is missing"
	} else if os.Geteuid() != 0 {
		why = "lazyfs mounts directly and needs root"
	}
	if why == "" {
		return
	}
	msg := "!!! TEST " + t.Name() + " NOT RUN: " + why + " !!!"
	if os.Getenv("SEALFS_REQUIRE_FUSE") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func newHarness(t *testing.T) *Harness {
	requireFUSE(t)
	dir := t.TempDir()
	backing, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	os.Mkdir(backing, 0o700)
	os.Mkdir(mnt, 0o700)
	return Start(t, backing, mnt)
}

func writeFile(t *testing.T, p string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestCut: synced data survives a cut, unsynced data does not, and names
// reach the disk at once.
func TestCut(t *testing.T) {
	h := newHarness(t)
	p := func(name string) string { return filepath.Join(h.Mount, name) }
	a, b := pattern(100000, 1), pattern(50000, 2)
	writeFile(t, p("synced"), a, true)
	writeFile(t, p("unsynced"), b, false)
	if !bytes.Equal(readFile(t, p("unsynced")), b) {
		t.Fatal("unsynced data does not read back before the cut")
	}
	// Synced, then appended to and truncated without sync.
	writeFile(t, p("partly"), a, true)
	f, _ := os.OpenFile(p("partly"), os.O_RDWR, 0)
	f.WriteAt(b, 100000)
	f.Truncate(3000)
	f.Truncate(9000)
	f.Close()
	got := readFile(t, p("partly"))
	if len(got) != 9000 || !bytes.Equal(got[:3000], a[:3000]) || !bytes.Equal(got[3000:], make([]byte, 6000)) {
		t.Fatal("truncate down and up does not read as zeros past the cut point")
	}
	writeFile(t, p("gone"), a, true)
	os.Remove(p("gone"))
	os.Mkdir(p("dir"), 0o700)
	writeFile(t, p("dir/renamed"), a, true)
	os.Rename(p("dir/renamed"), p("moved"))
	if st := h.Stats(); st.DirtyBytes == 0 || st.Fsyncs < 3 {
		t.Fatalf("stats before the cut: %+v", st)
	}

	h.Cut()
	h.Remount()
	if !bytes.Equal(readFile(t, p("synced")), a) {
		t.Fatal("synced file damaged by the cut")
	}
	if got := readFile(t, p("unsynced")); len(got) != 0 {
		t.Fatalf("unsynced data survived the cut: %d bytes", len(got))
	}
	if !bytes.Equal(readFile(t, p("partly")), a) {
		t.Fatal("a file synced, then changed without sync, is not its synced version after the cut")
	}
	if _, err := os.Stat(p("gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an unlink did not reach the disk")
	}
	if !bytes.Equal(readFile(t, p("moved")), a) {
		t.Fatal("a rename did not reach the disk")
	}
}

// TestMmap: data written through a shared mapping survives a cut when
// msync'ed (the kernel writes the pages back and sends FSYNC), not
// otherwise.
func TestMmap(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(h.Mount, "mapped")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap on lazyfs: %v", err)
	}
	one, two := pattern(size/2, 3), pattern(size/2, 4)
	copy(m, one)
	if err := unix.Msync(m[:size/2], unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	copy(m[size/2:], two)
	// The second half is written back (without fsync) so the harness holds
	// it, as the kernel would on its own.
	unix.Munmap(m)
	f.Close()
	if got := readFile(t, path); !bytes.Equal(got[:size/2], one) || !bytes.Equal(got[size/2:], two) {
		t.Fatal("mapped writes do not read back")
	}
	h.Cut()
	h.Remount()
	got := readFile(t, path)
	if len(got) != size || !bytes.Equal(got[:size/2], one) {
		t.Fatalf("msync'ed half lost at the cut (len %d)", len(got))
	}
	if !bytes.Equal(got[size/2:], make([]byte, size/2)) {
		t.Fatal("the half never synced survived the cut")
	}
}

// TestFailNextFsync: an injected fsync error is reported, the data still
// reads back, later fsyncs succeed, and the failed data is lost at a cut.
func TestFailNextFsync(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(h.Mount, "f")
	a := pattern(20000, 5)
	h.FailNextFsync("f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(a)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync: want EIO, have %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second fsync: %v", err)
	}
	f.Close()
	if !bytes.Equal(readFile(t, path), a) {
		t.Fatal("data does not read back after the failed fsync")
	}
	h.Cut()
	h.Remount()
	if got := readFile(t, path); bytes.Equal(got, a) {
		t.Fatal("data whose fsync failed survived the cut")
	}
}

// TestBadgerOnLazyfs: Badger (memory-mapped write-ahead logs, files sized
// by ftruncate and read back by directory listings) runs on the mount, and
// what it synced survives a cut.
func TestBadgerOnLazyfs(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.Mount, "db")
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(8 << 20).WithValueLogFileSize(16 << 20))
	if err != nil {
		t.Fatal(err)
	}
	put := func(k, v string) {
		if err := db.Update(func(tx *badger.Txn) error { return tx.Set([]byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put("synced", "yes")
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	// Badger in this process cannot be killed with its mount: close it
	// (the daemon's power-cut test kills a daemon instead).
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h.Cut()
	h.Remount()
	db, err = badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(8 << 20).WithValueLogFileSize(16 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *badger.Txn) error {
		it, err := tx.Get([]byte("synced"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != "yes" {
				t.Errorf("synced value: %q", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("a key Badger synced is gone after the cut: %v", err)
	}
}

func writeSynced(p string, data []byte) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestDurableAfterRenameStress: many writers do what a careful program does
// to store a file (write a temporary file, fsync, rename it into place,
// fsync the directory; sometimes unlink an older one): after a cut every
// file that got that far is whole.
func TestDurableAfterRenameStress(t *testing.T) {
	h := newHarness(t)
	os.Mkdir(filepath.Join(h.Mount, "tmp"), 0o700)
	os.Mkdir(filepath.Join(h.Mount, "final"), 0o700)
	type done struct {
		name string
		data []byte
	}
	results := make(chan []done, 4)
	for w := 0; w < 4; w++ {
		go func() {
			var out []done
			for i := 0; i < 60; i++ {
				name := filepath.Join("final", string(rune('a'+w))+"-"+string(rune('0'+i%10))+string(rune('0'+i/10)))
				data := pattern(1000+(i*7919)%300000, byte(w*60+i))
				tmp := filepath.Join(h.Mount, "tmp", filepath.Base(name))
				if err := writeSynced(tmp, data); err != nil {
					t.Error(err)
					break
				}
				if err := os.Rename(tmp, filepath.Join(h.Mount, name)); err != nil {
					t.Error(err)
					break
				}
				out = append(out, done{name, data})
				if i%3 == 2 {
					os.Remove(filepath.Join(h.Mount, out[0].name))
					out = out[1:]
				}
			}
			results <- out
		}()
	}
	var all []done
	for w := 0; w < 4; w++ {
		all = append(all, <-results...)
	}
	h.Cut()
	h.Remount()
	for _, d := range all {
		got, err := os.ReadFile(filepath.Join(h.Mount, d.name))
		if err != nil || !bytes.Equal(got, d.data) {
			t.Errorf("%s: fsynced and renamed, not whole after the cut (%d of %d bytes): %v", d.name, len(got), len(d.data), err)
		}
	}
}
