package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealfs/sealfs/admin"
)

// TestKMSDeleteAndCancel: `sealfs kms delete BUCKET --after 7d` makes the
// bucket's objects unreadable and unwritable at once (S3
// KMS.KMSInvalidStateException), another bucket is untouched, a waiting
// period outside 7 to 30 days is refused (seconds too, on a daemon not run
// for tests), and `sealfs kms cancel-delete`
// followed by `sealfs kms enable` brings everything back. (What happens on
// the deletion date: TestKMSDeletionDatePasses.)
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
	for _, after := range []string{"3d", "5s"} { // 5s: only on a daemon run for tests (TestKMSDeletionDatePasses)
		if out, err := adminCmd(d, "kms", "delete", "shredme", "--after", after).CombinedOutput(); err == nil {
			t.Fatalf("--after %s was accepted:\n%s", after, out)
		}
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

// TestKMSDeletionDatePasses: a key's deletion date really passing, end to
// end. A daemon run with SEALFS_TEST_SHORT_KEY_DELETION=1 (test-only: a
// daemon without it refuses a waiting period under 7 days) schedules a
// bucket's key for deletion 3 s away; after that date S3 answers
// KMS.NotFoundException for its objects, small and large, the mount
// answers ENOKEY, scrub lists them as shredded and exits 0 (not damage),
// another bucket reads, and the audit log has the deletion scheduled.
func TestKMSDeletionDatePasses(t *testing.T) {
	requireFUSE(t)
	ctx := context.Background()
	d := startDaemon(t, DaemonOptions{Mount: true, Env: []string{admin.ShortKeyDeletionEnv + "=1"}})
	c := d.S3()
	encryptingBucket(t, c, "doomed")
	encryptingBucket(t, c, "kept")
	large := pattern(3<<20, 7)
	for key, body := range map[string][]byte{"small": []byte("alpha"), "large": large} {
		if err := s3Put(c, "doomed", key, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := s3Put(c, "kept", "b", []byte("beta")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(d.MountDir, "doomed", "large")); !bytes.Equal(got, large) {
		t.Fatal("the large object reads back wrong through the mount before")
	}
	out := adminRun(t, d, "kms", "delete", "doomed", "--after", "3s")
	if !strings.Contains(out, "scheduled for deletion on") {
		t.Fatalf("kms delete --after 3s: %s", out)
	}
	due := keyInfo(t, d, "doomed").DeletionDate
	if due.IsZero() || time.Until(due) > 4*time.Second {
		t.Fatalf("deletion date %v, want about 3 s from now", due)
	}
	time.Sleep(time.Until(due) + 500*time.Millisecond)

	for _, key := range []string{"small", "large"} {
		_, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("doomed"), Key: aws.String(key)})
		if sdkCode(err) != "KMS.NotFoundException" {
			t.Fatalf("GET %s after the deletion date: %v, want KMS.NotFoundException", key, err)
		}
		if _, err := os.ReadFile(filepath.Join(d.MountDir, "doomed", key)); errnoOf(err) != syscall.ENOKEY {
			t.Fatalf("reading %s through the mount after the deletion date: %v, want ENOKEY", key, err)
		}
	}
	if err := s3Put(c, "doomed", "new", []byte("x")); sdkCode(err) != "KMS.NotFoundException" {
		t.Fatalf("PUT after the deletion date: %v, want KMS.NotFoundException", err)
	}
	if got := s3Get(t, c, "kept", "b"); string(got) != "beta" {
		t.Fatalf("another bucket: %q", got)
	}
	scrub := adminCmd(d, "scrub")
	sout, err := scrub.CombinedOutput()
	if err != nil || !strings.Contains(string(sout), "SHREDDED doomed/small") || !strings.Contains(string(sout), "SHREDDED doomed/large") ||
		strings.Contains(string(sout), "DAMAGED") {
		t.Fatalf("scrub after the deletion date: %v\n%s", err, sout)
	}
	// The audit log has the scheduled deletion (written within a second).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		audit, _ := os.ReadFile(filepath.Join(d.DataDir, "audit", "key-use.jsonl"))
		if bytes.Contains(audit, []byte(`"action":"kms:ScheduleKeyDeletion"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log lacks the scheduled deletion:\n%s", audit)
		}
	}
}
