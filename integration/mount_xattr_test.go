package integration

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

func getxattr(t *testing.T, path, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func mustGetxattr(t *testing.T, path, name string) string {
	t.Helper()
	v, err := getxattr(t, path, name)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return v
}

// TestMountXattrs checks object metadata as extended attributes: the
// encryption headers on encrypted objects only, the ETag, user metadata
// (writable, seen over S3), read-only names, size probes and ERANGE, and
// cp -a / getfattr / setfattr with the real tools.
func TestMountXattrs(t *testing.T) {
	requireTool(t, "getfattr", "setfattr")
	d := startMount(t, DaemonOptions{})
	sealed := newBucket(t, d, "xsealed", true)
	plain := newBucket(t, d, "xplain", false)
	content := []byte("attribute test content")
	sum := md5.Sum(content)
	plainETag := hex.EncodeToString(sum[:])
	enc := filepath.Join(sealed, "f")
	pl := filepath.Join(plain, "f")
	mustWrite(t, enc, content)
	mustWrite(t, pl, content)

	if v := mustGetxattr(t, enc, "user.x-amz-server-side-encryption"); v != "aws:kms" {
		t.Fatalf("encryption xattr %q", v)
	}
	if v := mustGetxattr(t, enc, "user.x-amz-server-side-encryption-aws-kms-key-id"); !strings.HasPrefix(v, "arn:aws:kms:") {
		t.Fatalf("key id xattr %q, want an ARN", v)
	}
	if _, err := getxattr(t, pl, "user.x-amz-server-side-encryption"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("encryption xattr on a plain object: %v, want ENODATA", err)
	}
	// A plain object's ETag is its MD5; an encrypted one's is random, in
	// the -N form (cryptostore/sums.go), and the same as over S3.
	if v := mustGetxattr(t, pl, "user.etag"); v != plainETag {
		t.Fatalf("plain user.etag %q, want the MD5 %q", v, plainETag)
	}
	etag := mustGetxattr(t, enc, "user.etag")
	if !encryptedETagRE.MatchString(etag) || strings.Contains(etag, plainETag) {
		t.Fatalf("encrypted user.etag %q (MD5 of the content %s)", etag, plainETag)
	}
	if h, err := d.S3().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("xsealed"), Key: aws.String("f")}); err != nil || aws.ToString(h.ETag) != `"`+etag+`"` {
		t.Fatalf("S3 ETag %s, user.etag %s (%v)", aws.ToString(h.ETag), etag, err)
	}

	// Size probe and a buffer too small.
	if n, err := unix.Getxattr(enc, "user.etag", nil); err != nil || n != len(etag) {
		t.Fatalf("size probe: %d, %v; want %d", n, err, len(etag))
	}
	if _, err := unix.Getxattr(enc, "user.etag", make([]byte, 4)); errnoOf(err) != syscall.ERANGE {
		t.Fatalf("small buffer: %v, want ERANGE", err)
	}
	if _, err := getxattr(t, enc, "user.nothing"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("absent xattr: %v, want ENODATA", err)
	}
	// The kernel's probes: answered, without errors in the log.
	for _, name := range []string{"security.capability", "system.posix_acl_access", "security.selinux"} {
		if _, err := getxattr(t, enc, name); errnoOf(err) != syscall.ENODATA {
			t.Fatalf("%s: %v, want ENODATA", name, err)
		}
	}

	// User metadata: writable, listed, seen over S3, removable.
	run(t, "setfattr", "-n", "user.x-amz-meta-color", "-v", "blue", enc)
	if v := mustGetxattr(t, enc, "user.x-amz-meta-color"); v != "blue" {
		t.Fatalf("user metadata %q", v)
	}
	if out := run(t, "getfattr", "-d", enc); !strings.Contains(out, `user.x-amz-meta-color="blue"`) || !strings.Contains(out, `user.etag="`+etag+`"`) {
		t.Fatalf("getfattr -d:\n%s", out)
	}
	head, err := d.S3().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("xsealed"), Key: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["color"] != "blue" || head.Metadata["mode"] != "33188" {
		t.Fatalf("S3 HEAD metadata %v", head.Metadata)
	}
	run(t, "setfattr", "-x", "user.x-amz-meta-color", enc)
	if _, err := getxattr(t, enc, "user.x-amz-meta-color"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("after removal: %v", err)
	}
	if err := unix.Removexattr(enc, "user.x-amz-meta-color"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("removing an absent name: %v, want ENODATA", err)
	}
	if err := unix.Setxattr(enc, "user.x-amz-meta-bad", []byte("line\nbreak"), 0); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("a value HTTP cannot carry: %v, want EINVAL", err)
	}

	// Read-only names: the same value is accepted, another is EPERM.
	if err := unix.Setxattr(enc, "user.etag", []byte(etag), 0); err != nil {
		t.Fatalf("setting user.etag to its value: %v", err)
	}
	if err := unix.Setxattr(enc, "user.etag", []byte("0123"), 0); errnoOf(err) != syscall.EPERM {
		t.Fatalf("changing user.etag: %v, want EPERM", err)
	}
	if err := unix.Setxattr(pl, "user.x-amz-server-side-encryption", []byte("aws:kms"), 0); errnoOf(err) != syscall.EPERM {
		t.Fatalf("encrypting through an xattr: %v, want EPERM", err)
	}
	if err := unix.Setxattr(enc, "user.x-amz-meta-mode", []byte("33261"), 0); errnoOf(err) != syscall.EPERM {
		t.Fatalf("changing the mode through an xattr: %v, want EPERM", err)
	}
	if err := unix.Removexattr(enc, "user.etag"); errnoOf(err) != syscall.EPERM {
		t.Fatalf("removing user.etag: %v, want EPERM", err)
	}
	if err := unix.Setxattr(enc, "user.other", []byte("v"), 0); errnoOf(err) != syscall.EOPNOTSUPP {
		t.Fatalf("a name that is no object header: %v, want EOPNOTSUPP", err)
	}

	// cp -a between files of the mount keeps user metadata: the read-only
	// attributes it copies match, since the copy is in the same bucket.
	run(t, "setfattr", "-n", "user.x-amz-meta-project", "-v", "sealfs", enc)
	if err := os.Chmod(enc, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "cp", "-a", enc, filepath.Join(sealed, "copy"))
	cp := filepath.Join(sealed, "copy")
	if v := mustGetxattr(t, cp, "user.x-amz-meta-project"); v != "sealfs" {
		t.Fatalf("cp -a: user metadata %q", v)
	}
	if v := mustGetxattr(t, cp, "user.x-amz-server-side-encryption"); v != "aws:kms" {
		t.Fatalf("cp -a: encryption %q", v)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(cp, &st); err != nil || st.Mode&0o777 != 0o600 {
		t.Fatalf("cp -a: mode %o, %v", st.Mode, err)
	}
	if strings.Contains(d.Logs(), `"level":"ERROR"`) {
		t.Fatalf("errors in the log:\n%s", d.Logs())
	}
}

// TestMountBucketEncryptionXattr turns a bucket's default encryption on and
// off through user.sealfs.default-encryption: objects written afterwards
// follow, objects already stored keep their state.
func TestMountBucketEncryptionXattr(t *testing.T) {
	requireTool(t, "getfattr", "setfattr")
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "toggle", false)
	const name = "user.sealfs.default-encryption"
	if _, err := getxattr(t, b, name); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("plain bucket: %v, want ENODATA", err)
	}
	mustWrite(t, filepath.Join(b, "before"), []byte("x"))
	run(t, "setfattr", "-n", name, "-v", "aws:kms", b)
	if v := mustGetxattr(t, b, name); v != "aws:kms" {
		t.Fatalf("after setfattr: %q", v)
	}
	if err := unix.Setxattr(b, name, []byte("AES256"), 0); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("AES256: %v, want EINVAL", err)
	}
	mustWrite(t, filepath.Join(b, "during"), []byte("x"))
	run(t, "setfattr", "-x", name, b)
	if _, err := getxattr(t, b, name); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("after setfattr -x: %v", err)
	}
	mustWrite(t, filepath.Join(b, "after"), []byte("x"))
	for _, c := range []struct {
		file      string
		encrypted bool
	}{
		{file: "before", encrypted: false},
		{file: "during", encrypted: true},
		{file: "after", encrypted: false},
	} {
		_, err := getxattr(t, filepath.Join(b, c.file), "user.x-amz-server-side-encryption")
		if (err == nil) != c.encrypted {
			t.Errorf("%s: encrypted=%t (%v), want %t", c.file, err == nil, err, c.encrypted)
		}
	}
}
