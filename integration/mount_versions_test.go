package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// versionBody is version id of an object: size bytes that say which
// version they are and how long ("<v000012:000300000>"), then the letter of
// the version, so that a reader can tell a whole version from anything else.
func versionBody(id, size int) []byte {
	b := bytes.Repeat([]byte{byte('A' + id%26)}, size)
	copy(b, fmt.Sprintf("<v%06d:%09d>", id, size))
	return b
}

const versionHeader = len("<v000000:000000000>")

// checkVersion says what is wrong with b if it is not one whole version.
func checkVersion(b []byte) error {
	if len(b) < versionHeader {
		return fmt.Errorf("%d bytes: shorter than any version", len(b))
	}
	var id, size int
	if _, err := fmt.Sscanf(string(b[:versionHeader]), "<v%06d:%09d>", &id, &size); err != nil {
		return fmt.Errorf("%d bytes starting %q: no version header", len(b), b[:versionHeader])
	}
	if len(b) != size {
		return fmt.Errorf("version %d: %d bytes, want %d", id, len(b), size)
	}
	fill := byte('A' + id%26)
	for i := versionHeader; i < len(b); i++ {
		if b[i] != fill {
			return fmt.Errorf("version %d (%d bytes): byte %d is %q, want %q", id, size, i, b[i], fill)
		}
	}
	return nil
}

// readWhole reads f from where it is to the end in 128 KiB reads, as cat does.
func readWhole(f *os.File, out []byte) ([]byte, error) {
	buf := make([]byte, 128<<10)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestMountVersionsUnderS3Overwrites runs S3 clients that overwrite one key
// with whole versions of distinct sizes, and renames through the mount
// (of that key, and of new versions written through the mount over
// another), while readers open and read both files through the mount:
// every read must be exactly one whole version. Each reader also reopens its open file
// through /proc/self/fd, which reaches the inode the kernel already has
// (no lookup), the way an open racing an overwrite does.
func TestMountVersionsUnderS3Overwrites(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	dir := newBucket(t, d, "versions", true)
	hot, cold := filepath.Join(dir, "hot.bin"), filepath.Join(dir, "cold.bin")
	sizes := []int{1000, 5000, 300_000, 1_500_000, 70_001, 2_100_000, 131_072 + 7, 20_000}
	ctx := context.Background()
	put := func(c *awss3.Client, key string, id int) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("versions"), Key: aws.String(key),
			Body: bytes.NewReader(versionBody(id, sizes[id%len(sizes)]))})
		return err
	}
	first := d.S3()
	for i, key := range []string{"hot.bin", "cold.bin"} {
		if err := put(first, key, i); err != nil {
			t.Fatal(err)
		}
	}

	const (
		writers   = 4
		readers   = 3
		wantReads = 5000
		maxTime   = 50 * time.Second
	)
	var (
		stop        atomic.Bool
		nextID      atomic.Int64
		puts, reads atomic.Int64
		tornReads   atomic.Int64
		renames     atomic.Int64
		mu          sync.Mutex
		torn        []string
		failures    []string
		wg          sync.WaitGroup
	)
	nextID.Store(2)
	fail := func(list *[]string, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(*list) < 20 {
			*list = append(*list, fmt.Sprintf(format, args...))
		}
	}
	for w := range writers {
		c := first
		if w > 0 {
			c = d.S3()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := put(c, "hot.bin", int(nextID.Add(1))); err != nil {
					fail(&failures, "S3 PUT: %v", err)
					return
				}
				puts.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() { // renames through the mount
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			src := hot
			if i%2 == 1 {
				// Save-by-rename: a whole new version written through
				// the mount, then renamed over the file.
				src = filepath.Join(dir, "tmp-"+strconv.Itoa(i))
				id := int(nextID.Add(1))
				if err := os.WriteFile(src, versionBody(id, sizes[id%len(sizes)]), 0o644); err != nil {
					fail(&failures, "writing through the mount: %v", err)
					return
				}
			}
			if err := os.Rename(src, cold); err != nil && !errors.Is(err, fs.ErrNotExist) {
				fail(&failures, "rename: %v", err)
				return
			}
			renames.Add(1)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !stop.Load() {
				path := hot
				if rng.IntN(4) == 0 {
					path = cold
				}
				f, err := os.Open(path)
				if errors.Is(err, fs.ErrNotExist) {
					continue // renamed away for a moment
				}
				if err != nil {
					fail(&failures, "open %s: %v", filepath.Base(path), err)
					return
				}
				head := make([]byte, 64<<10)
				n, err := io.ReadFull(f, head)
				if err != nil && err != io.ErrUnexpectedEOF {
					f.Close()
					fail(&failures, "read %s: %v", filepath.Base(path), err)
					return
				}
				var again []byte
				if rng.IntN(2) == 0 {
					// The same inode opened again, while f is open.
					g, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
					if errors.Is(err, fs.ErrNotExist) {
						// Replaced by a rename: that inode is gone.
					} else if err != nil {
						f.Close()
						fail(&failures, "reopen through /proc: %v", err)
						return
					}
					if g != nil {
						again, err = readWhole(g, nil)
						g.Close()
						if err != nil {
							f.Close()
							fail(&failures, "read reopened %s: %v", filepath.Base(path), err)
							return
						}
					}
				}
				whole, err := readWhole(f, head[:n])
				f.Close()
				if err != nil {
					fail(&failures, "read %s: %v", filepath.Base(path), err)
					return
				}
				for _, b := range [][]byte{whole, again} {
					if b == nil {
						continue
					}
					reads.Add(1)
					if err := checkVersion(b); err != nil {
						tornReads.Add(1)
						fail(&torn, "%s: %v", filepath.Base(path), err)
					}
				}
			}
		}()
	}
	start := time.Now()
	for reads.Load() < wantReads && time.Since(start) < maxTime {
		mu.Lock()
		bad := len(failures)
		mu.Unlock()
		if bad > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reads (%d torn), %d S3 overwrites, %d renames in %v", reads.Load(), tornReads.Load(), puts.Load(), renames.Load(), time.Since(start).Round(time.Millisecond))
	for _, f := range failures {
		t.Error(f)
	}
	for _, f := range torn {
		t.Errorf("torn read: %s", f)
	}
	if reads.Load() < 1000 || puts.Load() < 100 {
		t.Errorf("too little happened to tell: %d reads, %d overwrites", reads.Load(), puts.Load())
	}
}

// TestMountHandleKeepsItsVersion opens a file, has S3 overwrite it, and
// checks that the handle reads the version it opened to the end, that a new
// open of the name reads the new version, and that the same inode opened
// again (through /proc/self/fd) reads one whole version while the first
// handle goes on reading its own: the kernel's page cache, shared by both,
// must not mix them.
func TestMountHandleKeepsItsVersion(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	dir := newBucket(t, d, "pinned", true)
	c := d.S3()
	ctx := context.Background()
	put := func(id, size int) {
		t.Helper()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("pinned"), Key: aws.String("f.bin"),
			Body: bytes.NewReader(versionBody(id, size))}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "f.bin")
	for _, tc := range []struct {
		name             string
		oldSize, newSize int
	}{
		{name: "shrinks", oldSize: 2_000_000, newSize: 300_000},
		{name: "grows", oldSize: 300_000, newSize: 1_700_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put(1, tc.oldSize)
			// Read it once whole, so that the kernel caches it.
			if err := checkVersion(mustRead(t, path)); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 64<<10)
			if _, err := io.ReadFull(f, head); err != nil {
				t.Fatal(err)
			}
			put(2, tc.newSize)
			g, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			// Interleave the two handles, a piece at a time.
			var fb, gb []byte
			buf := make([]byte, 100_000)
			for fdone, gdone := false, false; !fdone || !gdone; {
				for _, h := range []struct {
					f    *os.File
					out  *[]byte
					done *bool
				}{{f, &fb, &fdone}, {g, &gb, &gdone}} {
					if *h.done {
						continue
					}
					n, err := h.f.Read(buf)
					*h.out = append(*h.out, buf[:n]...)
					if err == io.EOF {
						*h.done = true
					} else if err != nil {
						t.Fatal(err)
					}
				}
			}
			fb = append(head, fb...)
			if err := checkVersion(fb); err != nil || !bytes.Equal(fb, versionBody(1, tc.oldSize)) {
				t.Errorf("the handle opened before the overwrite: %v (want version 1, %d bytes)", err, tc.oldSize)
			}
			if err := checkVersion(gb); err != nil {
				t.Errorf("the inode opened again after the overwrite: %v", err)
			}
			// Read the first handle again from the start, through the page
			// cache the second one may have filled.
			again := make([]byte, tc.oldSize+10)
			n, err := f.ReadAt(again, 0)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(again[:n], versionBody(1, tc.oldSize)) {
				t.Errorf("the first handle read again: %v", checkVersion(again[:n]))
			}
			// A new open of the name: the new version, whole.
			if b := mustRead(t, path); !bytes.Equal(b, versionBody(2, tc.newSize)) {
				t.Errorf("a new open after the overwrite: %v (want version 2)", checkVersion(b))
			}
		})
	}
}

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)
	return b[off : off+n]
}

// TestMountWritesInvisibleBeforeClose writes a file out of order through
// the mount (O_DIRECT, so every write reaches the daemon at once, as the
// kernel's writeback does for a large file): nothing of it may be visible
// over S3 before close, even after the mount had to move the streamed data
// aside, and the close commits the version that was opened plus the
// writes, even though an S3 PUT landed in between (the close is the later
// write: it wins).
func TestMountWritesInvisibleBeforeClose(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	dir := newBucket(t, d, "partial", true)
	c := d.S3()
	ctx := context.Background()
	v1 := pattern(4096, 1)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("partial"), Key: aws.String("doc.bin"), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}
	get := func() []byte {
		t.Helper()
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("partial"), Key: aws.String("doc.bin")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	head := func() int64 {
		t.Helper()
		out, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("partial"), Key: aws.String("doc.bin")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt64(out.ContentLength)
	}

	f, err := os.OpenFile(filepath.Join(dir, "doc.bin"), os.O_RDWR|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := append([]byte(nil), v1...)
	pwrite := func(p []byte, off int64) {
		t.Helper()
		buf := alignedBuf(len(p))
		copy(buf, p)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatalf("pwrite %d bytes at %d: %v", len(p), off, err)
		}
		if end := int(off) + len(p); end > len(want) {
			want = append(want, make([]byte, end-len(want))...)
		}
		copy(want[off:], p)
	}
	// Appended in order: the mount streams it into the store.
	for i := range 3 {
		pwrite(pattern(1<<20, uint64(10+i)), 4096+int64(i)<<20)
	}
	// Behind what was streamed: the mount moves the file aside (it used
	// to commit the streamed part here, as a version of its own).
	pwrite(pattern(4096, 20), 0)
	time.Sleep(100 * time.Millisecond) // longer than any wait of the mount's
	if n := head(); n != int64(len(v1)) {
		t.Fatalf("before close, S3 sees %d bytes: a partial file became visible (want the %d bytes of the version before)", n, len(v1))
	}
	if b := get(); !bytes.Equal(b, v1) {
		t.Fatalf("before close, S3 GET returns %d bytes that are not the version before", len(b))
	}
	// Someone else writes the object over S3 meanwhile.
	v2 := pattern(10_000, 2)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("partial"), Key: aws.String("doc.bin"), Body: bytes.NewReader(v2)}); err != nil {
		t.Fatal(err)
	}
	pwrite(pattern(8192, 21), 8192)
	if b := get(); !bytes.Equal(b, v2) {
		t.Fatalf("before close, after an S3 PUT: GET returns %d bytes, want the PUT's %d", len(b), len(v2))
	}
	// Read back through the handle: what was opened plus the writes.
	back := alignedBuf(len(want))
	if n, err := f.ReadAt(back, 0); (err != nil && err != io.EOF) || n != len(want) || !bytes.Equal(back[:n], want) {
		t.Fatalf("reading back through the open file: %d bytes, %v; want the opened version with the writes (%d bytes)", n, err, len(want))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b := get(); !bytes.Equal(b, want) {
		t.Fatalf("after close: %d bytes; want the version that was opened plus the writes (%d bytes), not built on the S3 PUT", len(b), len(want))
	}
}

// newBlobs returns the blob files under the data directory that are not in
// before.
func newBlobs(t *testing.T, d *Daemon, before map[string]bool) []string {
	t.Helper()
	var out []string
	for _, p := range storedBlobs(t, d.DataDir) {
		if !before[p] {
			out = append(out, p)
		}
	}
	return out
}

func blobSet(t *testing.T, d *Daemon) map[string]bool {
	m := map[string]bool{}
	for _, p := range newBlobs(t, d, nil) {
		m[p] = true
	}
	return m
}

// TestMountMissingBlob removes the blob file of a listed object behind the
// daemon's back: the file is still listed and stat(2) still works, and
// every read of the missing data fails with EIO (damage), never ENOENT
// (which would say the listed file does not exist).
func TestMountMissingBlob(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	dir := newBucket(t, d, "lost", true)
	c := d.S3()
	ctx := context.Background()

	// A single-blob object, open before its blob goes, and one opened
	// after. Written over S3, so that the kernel caches none of it.
	before := blobSet(t, d)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("lost"), Key: aws.String("single.bin"),
		Body: bytes.NewReader(pattern(2<<20, 3))}); err != nil {
		t.Fatal(err)
	}
	blobs := newBlobs(t, d, before)
	if len(blobs) != 1 {
		t.Fatalf("%d new blob files for a 2 MiB file, want 1", len(blobs))
	}
	f, err := os.Open(filepath.Join(dir, "single.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(blobs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 4096), 1<<20); errnoOf(err) != syscall.EIO {
		t.Errorf("reading a file whose blob vanished while it was open: %v, want EIO", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "single.bin")); errnoOf(err) != syscall.EIO {
		t.Errorf("open+read of a listed file whose blob is missing: %v, want EIO", err)
	}

	// A multipart object whose second part's blob is missing.
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("lost"), Key: aws.String("multi.bin")})
	if err != nil {
		t.Fatal(err)
	}
	part1, part2 := pattern(5<<20, 4), pattern(1<<20, 5)
	var done []types.CompletedPart
	var second []string
	for i, p := range [][]byte{part1, part2} {
		before := blobSet(t, d)
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("lost"), Key: aws.String("multi.bin"),
			UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
		second = newBlobs(t, d, before)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("lost"), Key: aws.String("multi.bin"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 {
		t.Fatalf("%d new blob files for a part, want 1", len(second))
	}
	if err := os.Remove(second[0]); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"single.bin", "multi.bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("stat %s: %v; a listed file whose blob is missing still exists", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Errorf("listing: %d entries, %v; want both files", len(entries), err)
	}
	g, err := os.Open(filepath.Join(dir, "multi.bin"))
	if err != nil {
		t.Fatalf("open multi.bin (its first part is there): %v", err)
	}
	defer g.Close()
	head := make([]byte, 4096)
	if _, err := g.ReadAt(head, 0); err != nil || !bytes.Equal(head, part1[:4096]) {
		t.Errorf("reading the part that is there: %v", err)
	}
	if _, err := g.ReadAt(make([]byte, 4096), 5<<20+4096); errnoOf(err) != syscall.EIO {
		t.Errorf("reading the part whose blob is missing: %v, want EIO", err)
	}
}

// TestMountWriteJoinsOpenVersion opens a file for reading, has S3 overwrite
// it, then opens the same inode for writing (through /proc/self/fd, no
// lookup): the writer reads and writes the version the inode's open
// handles hold, and its close commits that version with its writes, never
// the S3 version with them spliced in.
func TestMountWriteJoinsOpenVersion(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	dir := newBucket(t, d, "joined", true)
	c := d.S3()
	ctx := context.Background()
	putVersion := func(id, size int) {
		t.Helper()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("joined"), Key: aws.String("f.bin"),
			Body: bytes.NewReader(versionBody(id, size))}); err != nil {
			t.Fatal(err)
		}
	}
	putVersion(1, 300_000)
	path := filepath.Join(dir, "f.bin")
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	putVersion(2, 100_000)
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(r.Fd())), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readWhole(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkVersion(got); err != nil {
		t.Fatalf("the writer reads: %v", err)
	}
	want := got
	if _, err := w.WriteAt([]byte("PATCH"), 50_000); err != nil {
		t.Fatal(err)
	}
	copy(want[50_000:], "PATCH")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("joined"), Key: aws.String("f.bin")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	stored, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, want) {
		t.Fatalf("after close: %d bytes starting %q; want what the writer read (%d bytes starting %q) with its write", len(stored), stored[:versionHeader], len(want), want[:versionHeader])
	}
}
