package integration

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newBucket makes a bucket through the mount, with default encryption on if
// encrypt.
func newBucket(t testing.TB, d *Daemon, name string, encrypt bool) string {
	t.Helper()
	dir := d.Path(name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if encrypt {
		if err := unix.Setxattr(dir, "user.sealfs.default-encryption", []byte("aws:kms"), 0); err != nil {
			t.Fatalf("turning encryption on: %v", err)
		}
	}
	return dir
}

// TestMountFileIO checks file contents through every kind of write: whole
// files, ranges, random writes, sparse files, appends, O_TRUNC, truncation
// both ways and O_EXCL, in an encrypting bucket, read back both before and
// after the daemon restarts.
func TestMountFileIO(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "files", true)
	want := map[string][]byte{} // what each file must hold after a restart

	t.Run("ranges", func(t *testing.T) {
		data := pattern(3<<20+12345, 1)
		p := filepath.Join(b, "ranges")
		mustWrite(t, p, data)
		want["ranges"] = data
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rng := rand.New(rand.NewPCG(1, 1))
		for i := range 200 {
			off := rng.Int64N(int64(len(data)) + 100)
			n := rng.IntN(200 << 10)
			if i%10 == 0 {
				n = rng.IntN(10)
			}
			buf := make([]byte, n)
			got, err := f.ReadAt(buf, off)
			wantN := max(0, min(n, len(data)-int(off)))
			if got != wantN || (got < n && err != io.EOF) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d", n, off, got, err, wantN)
			}
			if !bytes.Equal(buf[:got], data[off:int(off)+got]) {
				t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", n, off)
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || st.Size != int64(len(data)) {
			t.Fatalf("stat size %d, %v; want the plaintext size %d", st.Size, err, len(data))
		}
	})

	t.Run("random writes", func(t *testing.T) {
		// Writes in no order, read back while the file is still open
		// (the spool), then after close.
		p := filepath.Join(b, "random")
		model := pattern(2<<20, 2)
		mustWrite(t, p, model)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 2))
		for i := range 300 {
			off := rng.Int64N(int64(len(model)) + 300<<10)
			chunk := pattern(rng.IntN(100<<10)+1, uint64(i)+100)
			if _, err := f.WriteAt(chunk, off); err != nil {
				t.Fatal(err)
			}
			if end := int(off) + len(chunk); end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], chunk)
			if i%25 == 0 {
				got := make([]byte, len(model))
				if n, err := f.ReadAt(got, 0); n != len(model) || (err != nil && err != io.EOF) || !bytes.Equal(got, model) {
					t.Fatalf("after %d writes, reading back while open: %d bytes, %v, equal=%t", i+1, n, err, bytes.Equal(got, model))
				}
			}
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if got := mustRead(t, p); !bytes.Equal(got, model) {
			t.Fatalf("after close: %d bytes, want %d; equal=%t", len(got), len(model), bytes.Equal(got, model))
		}
		want["random"] = model
	})

	t.Run("sparse", func(t *testing.T) {
		p := filepath.Join(b, "sparse")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		tail := []byte("the end")
		if _, err := f.WriteAt(tail, 50<<20); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("start"), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		model := make([]byte, 50<<20+len(tail))
		copy(model, "start")
		copy(model[50<<20:], tail)
		if got := mustRead(t, p); !bytes.Equal(got, model) {
			t.Fatalf("sparse file reads %d bytes, want %d (equal=%t)", len(got), len(model), bytes.Equal(got, model))
		}
		want["sparse"] = model
	})

	t.Run("append", func(t *testing.T) {
		p := filepath.Join(b, "append")
		mustWrite(t, p, []byte("one,"))
		for _, s := range []string{"two,", "three"} {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(s); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		// A large append after a large base streams the base first.
		big := pattern(3<<20, 3)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(big)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		model := append([]byte("one,two,three"), big...)
		if got := mustRead(t, p); !bytes.Equal(got, model) {
			t.Fatalf("append: got %d bytes, want %d", len(got), len(model))
		}
		want["append"] = model
	})

	t.Run("O_TRUNC", func(t *testing.T) {
		p := filepath.Join(b, "trunc")
		mustWrite(t, p, pattern(1<<20, 4))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("short"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := string(mustRead(t, p)); got != "short" {
			t.Fatalf("after O_TRUNC: %q", got)
		}
		want["trunc"] = []byte("short")
	})

	t.Run("truncate", func(t *testing.T) {
		p := filepath.Join(b, "truncate")
		data := pattern(200<<10, 5)
		mustWrite(t, p, data)
		if err := os.Truncate(p, 70000); err != nil { // down, no handle open
			t.Fatal(err)
		}
		if got := mustRead(t, p); !bytes.Equal(got, data[:70000]) {
			t.Fatalf("truncated down: %d bytes", len(got))
		}
		if err := os.Truncate(p, 300<<10); err != nil { // up: zeros
			t.Fatal(err)
		}
		model := append(append([]byte{}, data[:70000]...), make([]byte, 300<<10-70000)...)
		if got := mustRead(t, p); !bytes.Equal(got, model) {
			t.Fatalf("truncated up: %d bytes, equal=%t", len(got), bytes.Equal(got, model))
		}
		// ftruncate on an open handle, down then up, with a write between.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(100)
		f.WriteAt([]byte("xyz"), 50)
		f.Truncate(150)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		model = append(model[:100:100], make([]byte, 50)...)
		copy(model[50:], "xyz")
		if got := mustRead(t, p); !bytes.Equal(got, model) {
			t.Fatalf("ftruncate: got %q, want %q", got, model)
		}
		want["truncate"] = model
	})

	t.Run("O_EXCL", func(t *testing.T) {
		p := filepath.Join(b, "excl")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); errnoOf(err) != syscall.EEXIST {
			t.Fatalf("second O_EXCL create: %v, want EEXIST", err)
		}
		want["excl"] = []byte{}
	})

	t.Run("two handles", func(t *testing.T) {
		// Writes through two descriptors of one file land in one version.
		p := filepath.Join(b, "shared")
		f1, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f2, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f1.WriteAt([]byte("aaaa"), 0)
		f2.WriteAt([]byte("bb"), 4)
		if err := f1.Close(); err != nil {
			t.Fatal(err)
		}
		f2.WriteAt([]byte("cc"), 6)
		if err := f2.Close(); err != nil {
			t.Fatal(err)
		}
		if got := string(mustRead(t, p)); got != "aaaabbcc" {
			t.Fatalf("got %q, want aaaabbcc", got)
		}
		want["shared"] = []byte("aaaabbcc")
	})

	d.Restart()
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if got := mustRead(t, filepath.Join(b, name)); !bytes.Equal(got, want[name]) {
			t.Errorf("%s after restart: %d bytes, want %d", name, len(got), len(want[name]))
		}
	}
}

// TestMountNamespace checks mv, rm, rmdir, mkdir at the top (buckets),
// symlinks, and the refusals: hard links, device nodes, renames across
// buckets.
func TestMountNamespace(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "names", false)
	other := newBucket(t, d, "other", false)

	mustWrite(t, filepath.Join(b, "a"), []byte("A"))
	mustWrite(t, filepath.Join(b, "b"), []byte("B"))
	var st1, st2 syscall.Stat_t
	syscall.Stat(filepath.Join(b, "a"), &st1)
	if err := os.Rename(filepath.Join(b, "a"), filepath.Join(b, "b")); err != nil {
		t.Fatalf("mv over an existing file: %v", err)
	}
	if got := string(mustRead(t, filepath.Join(b, "b"))); got != "A" {
		t.Fatalf("after mv a b, b holds %q", got)
	}
	syscall.Stat(filepath.Join(b, "b"), &st2)
	if st1.Ino != st2.Ino {
		t.Errorf("mv changed the inode number: %d → %d", st1.Ino, st2.Ino)
	}
	if _, err := os.Stat(filepath.Join(b, "a")); !os.IsNotExist(err) {
		t.Fatalf("a still there after mv: %v", err)
	}

	// A directory tree moves as a whole.
	for _, p := range []string{"dir/x", "dir/sub/y", "dir/sub/deeper/z"} {
		os.MkdirAll(filepath.Dir(filepath.Join(b, p)), 0o755)
		mustWrite(t, filepath.Join(b, p), []byte(p))
	}
	if err := os.Rename(filepath.Join(b, "dir"), filepath.Join(b, "moved")); err != nil {
		t.Fatalf("mv dir: %v", err)
	}
	for _, p := range []string{"x", "sub/y", "sub/deeper/z"} {
		if got := string(mustRead(t, filepath.Join(b, "moved", p))); got != "dir/"+p {
			t.Fatalf("moved/%s holds %q", p, got)
		}
	}
	if _, err := os.Stat(filepath.Join(b, "dir")); !os.IsNotExist(err) {
		t.Fatalf("dir still there after mv: %v", err)
	}
	// Across buckets: EXDEV, so mv copies.
	if err := os.Rename(filepath.Join(b, "b"), filepath.Join(other, "b")); errnoOf(err) != syscall.EXDEV {
		t.Fatalf("rename across buckets: %v, want EXDEV", err)
	}

	if err := os.Remove(filepath.Join(b, "moved")); errnoOf(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a non-empty directory: %v, want ENOTEMPTY", err)
	}
	if err := os.RemoveAll(filepath.Join(b, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(b, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(b, "empty")); err != nil {
		t.Fatalf("rmdir: %v", err)
	}

	// The top: buckets.
	if err := os.Mkdir(d.Path("Not_A_Bucket"), 0o755); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("mkdir of an invalid bucket name: %v, want EINVAL", err)
	}
	if err := os.Remove(b); errnoOf(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a non-empty bucket: %v, want ENOTEMPTY", err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatalf("rmdir of an empty bucket: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("deleted bucket still there: %v", err)
	}
	if err := os.WriteFile(d.Path("file-at-top"), nil, 0o644); errnoOf(err) != syscall.EPERM {
		t.Fatalf("a file at the top: %v, want EPERM", err)
	}

	// Refused, with a clean errno.
	if err := os.Link(filepath.Join(b, "b"), filepath.Join(b, "hard")); errnoOf(err) != syscall.EPERM {
		t.Fatalf("link: %v, want EPERM", err)
	}
	if err := syscall.Mknod(filepath.Join(b, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); errnoOf(err) != syscall.EPERM {
		t.Fatalf("mknod of a device: %v, want EPERM", err)
	}
	if err := syscall.Mkfifo(filepath.Join(b, "fifo"), 0o644); errnoOf(err) != syscall.EOPNOTSUPP {
		t.Fatalf("mkfifo: %v, want EOPNOTSUPP", err)
	}

	// statfs reports the data disk.
	var fs, disk syscall.Statfs_t
	if err := syscall.Statfs(d.MountDir, &fs); err != nil {
		t.Fatal(err)
	}
	syscall.Statfs(d.DataDir, &disk)
	if fs.Blocks == 0 || fs.Bsize == 0 || fs.Blocks != disk.Blocks || fs.Namelen != 255 {
		t.Fatalf("statfs: blocks %d bsize %d namelen %d; the data disk has %d blocks", fs.Blocks, fs.Bsize, fs.Namelen, disk.Blocks)
	}
}

// TestMountAttributesPersist checks that chmod, chown, touch -d and
// symlinks survive a restart, and that the attributes are stored as the
// x-amz-meta-* metadata S3 clients see.
func TestMountAttributesPersist(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "attrs", true)
	f := filepath.Join(b, "f")
	mustWrite(t, f, []byte("content"))
	dir := filepath.Join(b, "dir")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	run(t, "touch", "-d", "2001-02-03 04:05:06.789", f)
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../some/target", filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|0o640 || st.Uid != 1234 || st.Gid != 5678 || st.Size != 7 {
			t.Errorf("%s: mode %o uid %d gid %d size %d", when, st.Mode, st.Uid, st.Gid, st.Size)
		}
		if st.Mtim.Sec != 981173106 || st.Mtim.Nsec != 789000000 {
			t.Errorf("%s: mtime %d.%09d, want 981173106.789000000", when, st.Mtim.Sec, st.Mtim.Nsec)
		}
		if err := syscall.Stat(dir, &st); err != nil || st.Mode != syscall.S_IFDIR|0o711 {
			t.Errorf("%s: directory mode %o, %v", when, st.Mode, err)
		}
		if err := syscall.Lstat(filepath.Join(b, "link"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			t.Errorf("%s: symlink lstat mode %o, %v", when, st.Mode, err)
		}
		if target, err := os.Readlink(filepath.Join(b, "link")); err != nil || target != "../some/target" {
			t.Errorf("%s: readlink %q, %v", when, target, err)
		}
	}
	check("before restart")
	d.Restart()
	check("after restart")

	// The same attributes are object metadata, the way other S3 file
	// systems store them.
	meta := map[string]string{}
	for _, name := range []string{"mode", "uid", "gid", "mtime"} {
		v := make([]byte, 64)
		n, err := unix.Getxattr(f, "sealfs.x-amz-meta-"+name, v)
		if err != nil {
			t.Fatalf("getxattr sealfs.x-amz-meta-%s: %v", name, err)
		}
		meta[name] = string(v[:n])
	}
	if meta["mode"] != "33184" || meta["uid"] != "1234" || meta["gid"] != "5678" || meta["mtime"] != "981173106.789000000" {
		t.Fatalf("stored metadata %v", meta)
	}
}
