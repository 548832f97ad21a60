package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"
)

// posixSkips are the posixtest cases that cannot pass on sealfs by design,
// and why. Each is skipped only after posixInstead checked what the mount
// does instead, so a change in that behaviour shows.
var posixSkips = map[string]string{
	"Link":             "hard links are refused (EPERM): an object has exactly one key",
	"LinkUnlinkRename": "hard links are refused (EPERM): an object has exactly one key",
	"XAttrLarge": "user.* attributes are S3 user metadata, which S3 limits to 2 KiB per object: " +
		"the 8 KiB value is refused with E2BIG",
	"FcntlFlockLocksFile": "POSIX locks are the kernel's own, per process as on a local disk: the test wants a lock taken through one " +
		"descriptor to block the same process through another, which only a file system forwarding locks to per-descriptor locks gives",
}

// posixInstead checks, for each case in posixSkips, what the mount does
// instead.
var posixInstead = map[string]func(t *testing.T, dir string){
	"Link":             linkRefused,
	"LinkUnlinkRename": linkRefused,
	"XAttrLarge": func(t *testing.T, dir string) {
		f := filepath.Join(dir, "file")
		mustWrite(t, f, nil)
		if err := unix.Setxattr(f, "user.large", pattern(8<<10+123, 1), 0); err != unix.E2BIG {
			t.Fatalf("setxattr of 8 KiB: %v; want E2BIG", err)
		}
		v := pattern(1<<10, 2)
		if err := unix.Setxattr(f, "user.large", v, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Getxattr(f, "user.large", nil); err != nil || n != len(v) {
			t.Fatalf("getxattr size: %d, %v; want %d", n, err, len(v))
		}
		buf := make([]byte, len(v))
		if n, err := unix.Getxattr(f, "user.large", buf); err != nil || !bytes.Equal(buf[:n], v) {
			t.Fatalf("getxattr: %d bytes, %v; want the 1 KiB set", n, err)
		}
	},
	"FcntlFlockLocksFile": func(t *testing.T, dir string) {
		requireTool(t, "python3")
		f := filepath.Join(dir, "test")
		f1, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		defer f1.Close()
		wlk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f1.Fd(), unix.F_SETLK, &wlk); err != nil {
			t.Fatal(err)
		}
		// Another process: refused.
		lock := "import fcntl, sys\nf = open(sys.argv[1], 'r+')\ntry:\n fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)\nexcept OSError as e:\n sys.exit(e.strerror)\n"
		out, err := exec.Command("python3", "-c", lock, f).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Resource temporarily unavailable") {
			t.Fatalf("a read lock by another process while this one holds a write lock: %v, %q; want EAGAIN", err, out)
		}
		// The same process through another descriptor: granted (it converts
		// the process's lock: POSIX locks belong to the process).
		f2, err := os.OpenFile(f, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		rlk := unix.Flock_t{Type: unix.F_RDLCK}
		if err := unix.FcntlFlock(f2.Fd(), unix.F_SETLK, &rlk); err != nil {
			t.Fatalf("a read lock by the process holding the write lock: %v; want it granted", err)
		}
	},
}

func linkRefused(t *testing.T, dir string) {
	f := filepath.Join(dir, "file")
	mustWrite(t, f, []byte("x"))
	if err := os.Link(f, filepath.Join(dir, "link")); errnoOf(err) != syscall.EPERM {
		t.Fatalf("link: %v; want EPERM", err)
	}
}

// TestMountPosix runs go-fuse's POSIX conformance suite against a
// directory in an encrypting bucket, each case in a fresh directory.
func TestMountPosix(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "posix", true)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(b, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if why, ok := posixSkips[name]; ok {
				posixInstead[name](t, dir)
				t.Skip(why)
			}
			posixtest.All[name](t, dir)
		})
	}
}

// TestMountRootMtime: the mount's root is the list of buckets, so its mtime
// and ctime move when a bucket is created or removed, through the mount or
// over S3 (as a directory's do when an entry is made or removed), and not
// when a bucket's settings change. Before, they stayed at the mount's
// start.
func TestMountRootMtime(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	root := d.MountDir
	_, m0, _ := statTimes(t, root)
	// later waits until the root's mtime and ctime are after since (the
	// kernel may hold the root's attributes until the mount's notification
	// arrives) and returns the mtime.
	later := func(what string, since time.Time) time.Time {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, m, c := statTimes(t, root)
			if m.After(since) && !c.Before(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the root's mtime %v, ctime %v; want them after %v", what, m, c, since)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	newBucket(t, d, "made", false)
	m1 := later("after mkdir of a bucket", m0)
	time.Sleep(20 * time.Millisecond)
	if err := os.Remove(d.Path("made")); err != nil {
		t.Fatal(err)
	}
	m2 := later("after rmdir of a bucket", m1)

	ctx := context.Background()
	c := d.S3()
	time.Sleep(20 * time.Millisecond)
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("overs3")}); err != nil {
		t.Fatal(err)
	}
	m3 := later("after a bucket was created over S3", m2)
	// Turning encryption on changes the bucket, not the list of buckets.
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("overs3"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, m, _ := statTimes(t, root); !m.Equal(m3) {
		t.Errorf("turning a bucket's encryption on moved the root's mtime from %v to %v", m3, m)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("overs3")}); err != nil {
		t.Fatal(err)
	}
	later("after a bucket was deleted over S3", m3)
}
