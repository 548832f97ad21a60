package integration

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestReservedBucketNamesBothDoors: the first path segments the daemon's
// listener serves itself (health, sealfs-admin) are no bucket names,
// whichever door asks: mkdir on the mount is EINVAL, S3 CreateBucket is
// InvalidBucketName, and neither creates anything.
func TestReservedBucketNamesBothDoors(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	for _, name := range []string{"health", "sealfs-admin"} {
		if err := os.Mkdir(d.Path(name), 0o755); errnoOf(err) != syscall.EINVAL {
			t.Fatalf("mkdir %s: %v, want EINVAL", name, err)
		}
		_, err := d.S3().CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)})
		if code := sdkCode(err); code != "InvalidBucketName" {
			t.Fatalf("CreateBucket %s: %v, want InvalidBucketName", name, err)
		}
		if _, err := os.Stat(d.Path(name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after the refusals: %v", name, err)
		}
	}
	if err := os.Mkdir(d.Path("healthy"), 0o755); err != nil {
		t.Fatal(err)
	}
}
