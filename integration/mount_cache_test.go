package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// TestMountListingChanges: a change made over S3 — a new name, a new
// subdirectory, a deletion, one that empties an implicit directory — shows
// in the next listing at once, in the directory and in the bucket's, and
// so does one made through the mount.
func TestMountListingChanges(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "listed", true)
	c := d.S3()
	ctx := context.Background()
	put := func(key string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("listed"), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
			t.Fatalf("S3 put %s: %v", key, err)
		}
	}
	del := func(key string) {
		t.Helper()
		if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("listed"), Key: aws.String(key)}); err != nil {
			t.Fatalf("S3 delete %s: %v", key, err)
		}
	}
	list := func(dir string, want ...string) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("ls %s: %q, want %q", dir, got, want)
		}
	}
	dir := filepath.Join(b, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "a"), []byte("a"))
	list(dir, "a")

	put("dir/b")
	list(dir, "a", "b")
	put("dir/sub/c")
	list(dir, "a", "b", "sub")
	list(filepath.Join(dir, "sub"), "c")
	del("dir/b")
	list(dir, "a", "sub")
	// The last key under an implicit directory: the directory goes.
	del("dir/sub/c")
	list(dir, "a")
	put("top")
	list(b, "dir", "top")
	del("top")
	list(b, "dir")

	// A name looked up and found absent, then put over S3: creating it
	// exclusively through the mount fails.
	if _, err := os.Stat(filepath.Join(dir, "late")); !os.IsNotExist(err) {
		t.Fatalf("stat of a missing name: %v", err)
	}
	put("dir/late")
	if f, err := os.OpenFile(filepath.Join(dir, "late"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !os.IsExist(err) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("O_EXCL create of a name S3 put since the lookup: %v, want EEXIST", err)
	}
	list(dir, "a", "late")
	del("dir/late")

	// Through the mount.
	mustWrite(t, filepath.Join(dir, "x"), []byte("x"))
	list(dir, "a", "x")
	if err := os.Remove(filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	list(dir, "a")
}

// TestMountFreshDirectory: in a directory made through the mount, a lookup
// of a name nothing created there is answered without the store while
// nothing changes outside the mount, so every way a name can arrive must
// be seen: each name created, linked, made or renamed in through the
// mount is found again once the kernel has forgotten it, and an O_EXCL
// create of it fails; so is a name put over S3 into another new directory.
func TestMountFreshDirectory(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "fresh", true)
	mkdir := func(dir string) {
		t.Helper()
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// forget has the kernel forget the names it looked up in dir (or
	// waits until it asks for them again), but not dir itself, whose node
	// knows what was made in it: an open handle keeps it.
	forget := func(dir string) {
		t.Helper()
		h, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if os.Geteuid() == 0 {
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
				t.Fatal(err)
			}
			return
		}
		time.Sleep(6 * time.Second) // past the mount's entry timeout
	}
	found := func(dir string, names ...string) {
		t.Helper()
		for _, name := range names {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !os.IsExist(err) {
				if f != nil {
					f.Close()
				}
				t.Errorf("O_EXCL create of %s: %v, want EEXIST", name, err)
			}
		}
	}
	absent := func(dir string, names ...string) {
		t.Helper()
		for _, name := range names {
			if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
				t.Errorf("stat of %s, never made: %v", name, err)
			}
		}
	}

	dir := filepath.Join(b, "new")
	mkdir(dir)
	at := func(name string) string { return filepath.Join(dir, name) }
	absent(dir, "none")
	mustWrite(t, at("file"), []byte("file"))
	if err := os.Symlink("file", at("link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(at("node"), unix.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
	mkdir(at("sub"))
	mustWrite(t, filepath.Join(b, "away"), []byte("moved"))
	if err := os.Rename(filepath.Join(b, "away"), at("moved")); err != nil {
		t.Fatal(err)
	}
	mkdir(filepath.Join(b, "otherdir"))
	mustWrite(t, filepath.Join(b, "otherdir", "inside"), []byte("inside"))
	if err := os.Rename(filepath.Join(b, "otherdir"), at("movedir")); err != nil {
		t.Fatal(err)
	}
	forget(dir)
	found(dir, "file", "link", "node", "sub", "moved", "movedir", "movedir/inside")
	absent(dir, "none", "other")

	// A change outside the mount: every directory asks the store again.
	dir2 := filepath.Join(b, "new2")
	mkdir(dir2)
	absent(dir2, "s3")
	if _, err := d.S3().PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("fresh"), Key: aws.String("new2/s3"), Body: strings.NewReader("s3")}); err != nil {
		t.Fatal(err)
	}
	forget(dir2)
	found(dir2, "s3")
	absent(dir2, "none")
}

// TestMountBackingDevice: the mount raises its readahead to 1 MiB and its
// share of the kernel's dirty pages to 256 MiB (the kernel's 1% stalls a
// large cp in its dirty throttling every few MiB).
func TestMountBackingDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		notRun(t, "tuning the mount's backing device needs root")
	}
	d := startMount(t, DaemonOptions{})
	var st unix.Stat_t
	if err := unix.Stat(d.MountDir, &st); err != nil {
		t.Fatal(err)
	}
	bdi := fmt.Sprintf("/sys/class/bdi/%d:%d/", unix.Major(st.Dev), unix.Minor(st.Dev))
	read := func(name string) int64 {
		t.Helper()
		b, err := os.ReadFile(bdi + name)
		if err != nil {
			notRun(t, fmt.Sprintf("this kernel has no %s: %v", bdi+name, err))
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if ra := read("read_ahead_kb"); ra != 1024 {
		t.Errorf("read_ahead_kb %d, want 1024", ra)
	}
	// The kernel keeps the limit as a ratio: max_bytes reads back close to
	// what was written, not exactly.
	if mb := read("max_bytes"); mb < 200<<20 || mb > 300<<20 {
		t.Errorf("max_bytes %d, want about 256 MiB", mb)
	}
	if s := read("strict_limit"); s != 1 {
		t.Errorf("strict_limit %d: the mount's dirty pages must stay bounded", s)
	}
}

// TestMountLookupKinds: a name is a directory when keys run through it
// (a directory wins over an object of the same name), else a file, else
// absent, also where other keys sort between the name and its directory
// ("f.1" lies between "f" and "f/").
func TestMountLookupKinds(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "kinds", false)
	c := d.S3()
	ctx := context.Background()
	keys := []string{"f", "d", "d/x", "e/", "g/deep/y"}
	for i := 1; i <= 6; i++ {
		keys = append(keys, fmt.Sprintf("f.%d", i), fmt.Sprintf("e-%d", i), fmt.Sprintf("d.%d", i))
	}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("kinds"), Key: aws.String(k), Body: strings.NewReader("body of " + k)}); err != nil {
			t.Fatalf("S3 put %s: %v", k, err)
		}
	}
	for name, want := range map[string]string{
		"f": "file", "f.3": "file", "d": "dir", "d.6": "file", "e": "dir", "e-1": "file", "g": "dir", "g/deep": "dir",
		"h": "absent", "f.7": "absent", "e-": "absent",
	} {
		st, err := os.Stat(filepath.Join(b, name))
		got := "absent"
		switch {
		case err == nil && st.IsDir():
			got = "dir"
		case err == nil && st.Mode().IsRegular():
			got = "file"
			if st.Size() != int64(len("body of "+name)) {
				t.Errorf("%s: size %d, want %d", name, st.Size(), len("body of "+name))
			}
		case !os.IsNotExist(err):
			t.Fatalf("stat %s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s is a %s, want %s", name, got, want)
		}
	}
}

// TestMountListingOffsets: a reader that lists a directory a few entries
// at a time (getdents with a small buffer) sees every name that exists
// for the whole read exactly once, while other readers list it and
// writers change it in between, and a listing after the change is whole.
// With entry positions as offsets and the kernel's readdir cache, a name
// removed before the reader's place, or a new file committed (which moved
// it from the files-being-created group to its place by name), made the
// reader skip a name that never changed, and the kernel's cache, filled
// from two listings, then left it out of every later listing.
func TestMountListingOffsets(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "offsets", false)
	const n = 60
	fill := func(dir string) []string {
		t.Helper()
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range n {
			name := fmt.Sprintf("f%03d", i)
			mustWrite(t, filepath.Join(dir, name), []byte(name))
			names = append(names, name)
		}
		return names
	}
	// open starts a listing and reads its first few entries.
	open := func(dir string) (int, []string) {
		t.Helper()
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd, getdents(t, fd, 128, 1)
	}
	rest := func(fd int) []string { return getdents(t, fd, 128, -1) }
	check := func(what string, got, want []string) {
		t.Helper()
		seen := map[string]int{}
		for _, name := range got {
			seen[name]++
		}
		for _, name := range want {
			if seen[name] != 1 {
				t.Errorf("%s: %s listed %d times, want once (listing %q)", what, name, seen[name], got)
			}
		}
	}
	all := func(dir string) []string {
		t.Helper()
		fd, first := open(dir)
		return append(first, rest(fd)...)
	}

	// A name removed before the reader's place, and another reader
	// listing the changed directory before the first one goes on.
	dir := filepath.Join(b, "removed")
	names := fill(dir)
	check("first listing", all(dir), names)
	fd, got := open(dir)
	if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
		t.Fatal(err)
	}
	check("listing after the removal", all(dir), names[1:])
	check("listing across the removal", append(got, rest(fd)...), names[1:])

	// A file created before the reader started and committed while it
	// reads.
	dir = filepath.Join(b, "committed")
	names = fill(dir)
	w, err := os.Create(filepath.Join(dir, "zz-late"))
	if err != nil {
		t.Fatal(err)
	}
	fd, got = open(dir)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check("listing while the file commits", all(dir), append(names, "zz-late"))
	check("listing across the commit", append(got, rest(fd)...), names)
	check("listing after the commit", all(dir), append(names, "zz-late"))

	// A reader that started before a change goes on after a second
	// reader, started after the change, has read a little: every listing
	// after both is whole and current. (With the kernel's readdir cache
	// the first reader extended the cache the second had begun from the
	// listing it read at its start, and the listing after both showed the
	// removed name and left out the new one.)
	dir = filepath.Join(b, "interleaved")
	names = fill(dir)
	fd, got = open(dir)
	check("listing before the change", all(dir), names)
	if err := os.Remove(filepath.Join(dir, names[50])); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "f055x"), []byte("new"))
	open(dir)
	check("listing across the change", append(got, rest(fd)...), append(slices.Clone(names[:50]), names[51:]...))
	now := append(append(slices.Clone(names[:50]), names[51:]...), "f055x")
	after := all(dir)
	check("listing after both readers", after, now)
	if slices.Contains(after, names[50]) {
		t.Errorf("listing after both readers shows %s, removed before either read it: %q", names[50], after)
	}
}

// getdents reads names from a directory descriptor with a buffer of size
// bytes: calls getdents(2) calls, or until the end if calls is negative.
func getdents(t *testing.T, fd, size, calls int) []string {
	t.Helper()
	buf := make([]byte, size)
	var names []string
	for i := 0; calls < 0 || i < calls; i++ {
		k, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatalf("getdents: %v", err)
		}
		if k == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:k], -1, names)
	}
	return names
}
