package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/meta"
)

// smallDisk makes a loop-mounted ext4 of size bytes and returns its mount
// point; it is unmounted (and the loop device released) at the end of the
// test, after the daemons on it have stopped.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		notRun(t, "a loop-mounted file system needs root")
	}
	requireTool(t, "mkfs.ext4", "mount", "umount")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	mnt := filepath.Join(dir, "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := runErr("mkfs.ext4", "-q", "-F", "-m", "0", img); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if out, err := runErr("mount", "-o", "loop", img, mnt); err != nil {
		notRun(t, fmt.Sprintf("cannot loop-mount an ext4 image: %v: %s", err, strings.TrimSpace(out)))
	}
	// Registered before any daemon starts, so it runs after they stop.
	t.Cleanup(func() {
		if out, err := runErr("umount", mnt); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
			runErr("umount", "-l", mnt)
		}
	})
	return mnt
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// alive fails the test if the daemon has exited.
func (d *Daemon) alive(what string) {
	d.t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err
		d.t.Fatalf("the daemon died (%v) %s:\n%s", err, what, crash(d.Logs()))
	default:
	}
	if d.MountDir != "" {
		if _, err := os.Stat(d.MountDir); err != nil {
			d.t.Fatalf("the mount is dead %s: %v", what, err)
		}
	}
}

// crash returns the start of a Go crash report in logs (else their end).
func crash(logs string) string {
	for _, m := range []string{"unexpected fault address", "fatal error:", "panic:", "SIGBUS"} {
		if i := strings.Index(logs, m); i >= 0 {
			return tail(logs[i:min(len(logs), i+2000)], 2000)
		}
	}
	return tail(logs, 4000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wantDiskFull checks that err is S3's answer to a full disk.
func wantDiskFull(t *testing.T, what string, err error) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InsufficientStorage" {
		t.Fatalf("%s on a full disk: %v; want the S3 error InsufficientStorage", what, err)
	}
}

// A full data disk is an ordinary error: writes are refused (S3: 507
// InsufficientStorage, mount: ENOSPC), reads go on, the daemon starts on a
// full disk read-only, and writes are accepted again once space returns,
// without a restart. The daemon never dies.
func TestDiskFull(t *testing.T) {
	requireFUSE(t)
	mnt := smallDisk(t, 384<<20)
	// The data directory is the file system's root, so that the daemon's
	// log (written beside the data directory) is not on the full disk.
	d := startMount(t, DaemonOptions{DataDir: mnt})
	ctx := context.Background()
	c := d.S3()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("full")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	get := func(key string) ([]byte, error) {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	seeds := map[string][]byte{"seed/small": pattern(1000, 1), "seed/inline": pattern(40<<10, 2), "seed/large": pattern(3<<20, 3)}
	for k, v := range seeds {
		if err := put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	checkReads := func(when string) {
		t.Helper()
		for k, v := range seeds {
			got, err := get(k)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("S3 GET %s %s: %d bytes, %v", k, when, len(got), err)
			}
			if b, err := os.ReadFile(d.Path("full", k)); err != nil || !bytes.Equal(b, v) {
				t.Fatalf("reading %s through the mount %s: %d bytes, %v", k, when, len(b), err)
			}
		}
	}

	// Large PUTs until the disk is full.
	big := pattern(4<<20, 4)
	var err error
	n := 0
	for ; n < 200; n++ {
		if err = put(fmt.Sprintf("large/%03d", n), big); err != nil {
			break
		}
	}
	t.Logf("%d large PUTs, then: %v (free %d MiB)", n, err, freeBytes(t, mnt)>>20)
	d.alive("after large PUTs filled the disk")
	largeErr := err

	// Small (inline) PUTs from several clients until they are refused.
	var accepted, refused atomic.Int64
	var other atomic.Value
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := pattern(30<<10, uint64(w))
			for i := 0; i < 5000; i++ {
				err := put(fmt.Sprintf("small/%d/%05d", w, i), body)
				var ae smithy.APIError
				switch {
				case err == nil:
					accepted.Add(1)
					continue
				case errors.As(err, &ae) && ae.ErrorCode() == "InsufficientStorage":
					refused.Add(1)
				default:
					other.CompareAndSwap(nil, err)
				}
				return
			}
		}()
	}
	wg.Wait()
	t.Logf("small PUTs: %d accepted, %d refused (free %d MiB)", accepted.Load(), refused.Load(), freeBytes(t, mnt)>>20)
	d.alive("after small PUTs filled the disk")
	wantDiskFull(t, "a large PUT", largeErr)
	if e := other.Load(); e != nil {
		t.Fatalf("a small PUT on a full disk failed otherwise than InsufficientStorage: %v", e)
	}
	if refused.Load() != 8 {
		t.Fatalf("small PUTs were never refused (%d accepted)", accepted.Load())
	}

	// The mount answers ENOSPC, for a small file and a large one.
	for _, size := range []int{100, 8 << 20} {
		err := os.WriteFile(d.Path("full", fmt.Sprintf("viamount-%d", size)), pattern(size, 5), 0o644)
		if errnoOf(err) != syscall.ENOSPC {
			t.Fatalf("writing %d bytes through the mount on a full disk: %v; want ENOSPC", size, err)
		}
	}
	d.alive("after writes through the mount on a full disk")
	checkReads("on a full disk")

	// Deleting frees space, and is allowed on a full disk.
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("full"), Key: aws.String("large/000")}); err != nil {
		t.Fatalf("DELETE on a full disk: %v", err)
	}

	// Restart on a disk with no space at all: read-only.
	if err := d.Stop(); err != nil {
		t.Fatalf("sealfs exited with %v:\n%s", err, d.Logs())
	}
	filler := filepath.Join(mnt, "lost+found", "filler")
	fillDisk(t, filler, freeBytes(t, mnt))
	t.Logf("restarting with %d KiB free", freeBytes(t, mnt)>>10)
	d.start()
	d.alive("after a restart on a full disk")
	if !strings.Contains(d.Logs(), "open read-only") {
		t.Errorf("the daemon did not say it started read-only:\n%s", tail(d.Logs(), 4000))
	}
	c = d.S3()
	checkReads("after a restart on a full disk")
	wantDiskFull(t, "a PUT after a restart on a full disk", put("refused", []byte("x")))
	if err := os.WriteFile(d.Path("full", "refused"), []byte("x"), 0o644); errnoOf(err) != syscall.ENOSPC {
		t.Fatalf("writing through the mount of a read-only store: %v; want ENOSPC", err)
	}
	d.alive("after writes to a read-only store")

	// Space returns: writes are accepted again, without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := put("after", []byte("space is back"))
		if err == nil {
			break
		}
		wantDiskFull(t, "a PUT while space returns", err)
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused 30s after space returned (free %d MiB): %v", freeBytes(t, mnt)>>20, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustWrite(t, d.Path("full", "after-mount"), pattern(2<<20, 6))
	if b := mustRead(t, d.Path("full", "after-mount")); !bytes.Equal(b, pattern(2<<20, 6)) {
		t.Fatal("a file written after space returned reads back wrong")
	}
	checkReads("after space returned")

	// Fill it again, through the mount this time: large files, then small
	// ones.
	var merr error
	for i := 0; i < 200 && merr == nil; i++ {
		merr = os.WriteFile(d.Path("full", fmt.Sprintf("mount-large-%03d", i)), big, 0o644)
	}
	if errnoOf(merr) != syscall.ENOSPC {
		t.Fatalf("large files through the mount until the disk is full: %v; want ENOSPC", merr)
	}
	merr = nil
	small := pattern(30<<10, 7)
	for i := 0; i < 5000 && merr == nil; i++ {
		merr = os.WriteFile(d.Path("full", fmt.Sprintf("mount-small-%04d", i)), small, 0o644)
	}
	if errnoOf(merr) != syscall.ENOSPC {
		t.Fatalf("small files through the mount until the disk is full: %v; want ENOSPC", merr)
	}
	d.alive("after the mount filled the disk")
	checkReads("after the mount filled the disk")

	// A crash on the full disk: Badger cannot open read-only a store not
	// closed cleanly; it recovers read-write, writes still refused.
	// The mount meets a full disk at the commit, not at the write (fs
	// doc.go): once its writes stop, what the refused ones had staged
	// (spool files, blobs) is given back, and the disk may have a little
	// more than the reserve free (2 MiB in one run in three). Take that,
	// so that the crash happens on a disk below the reserve.
	if free := freeBytes(t, mnt); free > meta.Reserve-8<<20 {
		f, err := os.Create(filepath.Join(mnt, "lost+found", "filler2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Fallocate(int(f.Fd()), 0, 0, free-(meta.Reserve-8<<20)); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Logf("crashing with %d KiB free (the reserve is %d KiB)", freeBytes(t, mnt)>>10, meta.Reserve>>10)
	d.Kill()
	unmountLazy(d.MountDir)
	d.start()
	d.alive("after a crash and a restart on a full disk")
	if !strings.Contains(d.Logs(), "recovered read-write") {
		t.Errorf("the daemon did not say it recovered a store not closed cleanly on a full disk:\n%s", tail(d.Logs(), 4000))
	}
	c = d.S3()
	checkReads("after a crash and a restart on a full disk")
	wantDiskFull(t, "a PUT after a crash and a restart on a full disk", put("refused", []byte("x")))
	d.alive("at the end")
}

// fillDisk takes n bytes of the disk with a file of real blocks (fallocate,
// then writes for what fallocate leaves).
func fillDisk(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	// Whatever is left, in small writes until ENOSPC.
	buf := make([]byte, 4096)
	off, _ := f.Seek(0, io.SeekEnd)
	for {
		if _, err := f.WriteAt(buf, off); err != nil {
			break
		}
		off += int64(len(buf))
	}
	f.Sync()
	exec.Command("sync").Run()
}
