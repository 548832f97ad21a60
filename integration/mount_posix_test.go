package integration

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips are the posixtest cases that do not apply to sealfs, and why.
var posixSkips = map[string]string{
	"Link":             "hard links are refused (EPERM): an object has exactly one key",
	"LinkUnlinkRename": "hard links are refused (EPERM): an object has exactly one key",
	"XAttrLarge": "user.* attributes are S3 user metadata, which S3 limits to 2 KiB per object: " +
		"the 8 KiB value is refused with E2BIG",
	"FcntlFlockLocksFile": "POSIX locks are the kernel's own, per process as on a local disk: the test wants a lock taken through one " +
		"descriptor to block the same process through another, which only a file system forwarding locks to per-descriptor locks gives",
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
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(b, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
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
