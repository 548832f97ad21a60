package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestKMSDeleteAndCancel: `sealfs kms delete BUCKET --after 7d` makes the
// bucket's objects unreadable and unwritable at once (S3
// KMS.KMSInvalidStateException), another bucket is untouched, a waiting
// period outside 7 to 30 days is refused, and `sealfs kms cancel-delete`
// followed by `sealfs kms enable` brings everything back. (What happens on
// the deletion date is cryptostore's TestShred, with a clock.)
func TestKMSDeleteAndCancel(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, DaemonOptions{})
	c := d.S3()
	encryptingBucket(t, c, "shredme")
	encryptingBucket(t, c, "keepme")
	if err := s3Put(c, "shredme", "a", []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	if err := s3Put(c, "keepme", "b", []byte("beta")); err != nil {
		t.Fatal(err)
	}
	if out, err := adminCmd(d, "kms", "delete", "shredme", "--after", "3d").CombinedOutput(); err == nil {
		t.Fatalf("--after 3d was accepted:\n%s", out)
	}
	if out := adminRun(t, d, "kms", "delete", "shredme", "--after", "7d"); !strings.Contains(out, "scheduled for deletion on") {
		t.Fatalf("kms delete: %s", out)
	}
	_, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("shredme"), Key: aws.String("a")})
	if sdkCode(err) != "KMS.KMSInvalidStateException" {
		t.Fatalf("GET under a key pending deletion: %v, want KMS.KMSInvalidStateException", err)
	}
	if err := s3Put(c, "shredme", "new", []byte("x")); sdkCode(err) != "KMS.KMSInvalidStateException" {
		t.Fatalf("PUT under a key pending deletion: %v", err)
	}
	if got := s3Get(t, c, "keepme", "b"); string(got) != "beta" {
		t.Fatalf("another bucket: %q", got)
	}
	if k := keyInfo(t, d, "shredme"); k.State != "PendingDeletion" || k.DeletionDate.IsZero() {
		t.Fatalf("kms keys: %+v", k)
	}
	if out := adminRun(t, d, "kms", "cancel-delete", "shredme"); !strings.Contains(out, "state Disabled") {
		t.Fatalf("cancel-delete: %s", out)
	}
	adminRun(t, d, "kms", "enable", "shredme")
	if got := s3Get(t, c, "shredme", "a"); string(got) != "alpha" {
		t.Fatalf("after cancel and enable: %q", got)
	}
}

// TestKMSRotateEvery: `sealfs kms rotate KEY --every 365d` sets a key's
// automatic rotation, `kms keys` shows it and when it is next due, and
// `--every 0` turns it off.
func TestKMSRotateEvery(t *testing.T) {
	d := startDaemon(t, DaemonOptions{})
	c := d.S3()
	encryptingBucket(t, c, "yearly")
	if err := s3Put(c, "yearly", "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if out := adminRun(t, d, "kms", "rotate", "yearly", "--every", "365d"); !strings.Contains(out, "rotates every 365 days; next on ") {
		t.Fatalf("rotate --every: %s", out)
	}
	k := keyInfo(t, d, "yearly")
	if k.RotateEveryDays != 365 || k.CurrentVersion != 1 || k.NextRotation.Sub(k.CurrentVersionCreated).Hours() != 365*24 {
		t.Fatalf("kms keys: %+v", k)
	}
	if table := adminRun(t, d, "kms", "keys"); !strings.Contains(table, "every 365d, next ") {
		t.Fatalf("kms keys table:\n%s", table)
	}
	if st := adminRun(t, d, "status"); !strings.Contains(st, "key "+k.KeyID+" rotates every 365d, next on ") {
		t.Fatalf("status:\n%s", st)
	}
	if out, err := adminCmd(d, "kms", "rotate", "yearly", "--every", "12h").CombinedOutput(); err == nil {
		t.Fatalf("--every 12h accepted:\n%s", out)
	}
	adminRun(t, d, "kms", "rotate", "yearly", "--every", "0")
	if k := keyInfo(t, d, "yearly"); k.RotateEveryDays != 0 {
		t.Fatalf("after --every 0: %+v", k)
	}
	// Without --every it rotates now, as before.
	adminRun(t, d, "kms", "rotate", "yearly")
	if k := keyInfo(t, d, "yearly"); k.CurrentVersion != 2 {
		t.Fatalf("after rotate: %+v", k)
	}
}

// TestBucketRmShred: `sealfs bucket rm BUCKET --shred 7d` removes the empty
// bucket and schedules its master key's deletion.
func TestBucketRmShred(t *testing.T) {
	d := startDaemon(t, DaemonOptions{})
	c := d.S3()
	encryptingBucket(t, c, "gonebucket")
	if err := s3Put(c, "gonebucket", "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	keyID := keyInfo(t, d, "gonebucket").KeyID
	if out, err := adminCmd(d, "bucket", "rm", "gonebucket", "--shred", "7d").CombinedOutput(); err == nil {
		t.Fatalf("a bucket with an object was removed:\n%s", out)
	}
	if _, err := c.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: aws.String("gonebucket"), Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if out := adminRun(t, d, "bucket", "rm", "gonebucket", "--shred", "7d"); !strings.Contains(out, "scheduled for deletion on") {
		t.Fatalf("bucket rm --shred: %s", out)
	}
	var found bool
	for _, line := range strings.Split(adminRun(t, d, "kms", "keys"), "\n") {
		if strings.HasPrefix(line, keyID) {
			found = true
			if !strings.Contains(line, "PendingDeletion") {
				t.Fatalf("the bucket's key after rm --shred: %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("key %s is not listed", keyID)
	}
}
