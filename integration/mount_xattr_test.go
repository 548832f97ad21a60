package integration

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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

// TestMountXattrs checks the two namespaces of extended attributes. The
// object's headers are sealfs.*: answered by getxattr (the encryption
// headers on encrypted objects only, the ETag, sealfs.headers with all of
// them), never listed, read-only. user.* is the user's: any name and value,
// listed, stored as S3 user metadata (and metadata set over S3 shows
// there), with S3's size limit.
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
	s3c := d.S3()
	ctx := context.Background()

	if v := mustGetxattr(t, enc, "sealfs.x-amz-server-side-encryption"); v != "aws:kms" {
		t.Fatalf("encryption xattr %q", v)
	}
	if out := run(t, "getfattr", "-n", "sealfs.x-amz-server-side-encryption", enc); !strings.Contains(out, `sealfs.x-amz-server-side-encryption="aws:kms"`) {
		t.Fatalf("getfattr -n:\n%s", out)
	}
	if v := mustGetxattr(t, enc, "sealfs.x-amz-server-side-encryption-aws-kms-key-id"); !strings.HasPrefix(v, "arn:aws:kms:") {
		t.Fatalf("key id xattr %q, want an ARN", v)
	}
	if _, err := getxattr(t, pl, "sealfs.x-amz-server-side-encryption"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("encryption xattr on a plain object: %v, want ENODATA", err)
	}
	// A plain object's ETag is its MD5; an encrypted one's is random, in
	// the -N form (cryptostore/sums.go), and the same as over S3.
	if v := mustGetxattr(t, pl, "sealfs.etag"); v != plainETag {
		t.Fatalf("plain sealfs.etag %q, want the MD5 %q", v, plainETag)
	}
	etag := mustGetxattr(t, enc, "sealfs.etag")
	if !encryptedETagRE.MatchString(etag) || strings.Contains(etag, plainETag) {
		t.Fatalf("encrypted sealfs.etag %q (MD5 of the content %s)", etag, plainETag)
	}
	if h, err := s3c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("xsealed"), Key: aws.String("f")}); err != nil || aws.ToString(h.ETag) != `"`+etag+`"` {
		t.Fatalf("S3 ETag %s, sealfs.etag %s (%v)", aws.ToString(h.ETag), etag, err)
	}
	if v := mustGetxattr(t, enc, "sealfs.x-amz-meta-mode"); v != "33188" {
		t.Fatalf("sealfs.x-amz-meta-mode %q", v)
	}
	headers := mustGetxattr(t, enc, "sealfs.headers")
	for _, want := range []string{"x-amz-server-side-encryption: aws:kms\n", "etag: " + etag + "\n", "x-amz-meta-mode: 33188\n"} {
		if !strings.Contains(headers, want) {
			t.Fatalf("sealfs.headers lacks %q:\n%s", want, headers)
		}
	}
	// None of it is listed: a file the user set nothing on lists nothing.
	if n, err := unix.Listxattr(enc, make([]byte, 4096)); err != nil || n != 0 {
		t.Fatalf("listxattr of a new file: %d bytes, %v; want none", n, err)
	}
	if out := run(t, "getfattr", "-d", "-m", "-", enc); strings.TrimSpace(out) != "" {
		t.Fatalf("getfattr -d -m - of a new file:\n%s", out)
	}

	// Size probe and a buffer too small.
	if n, err := unix.Getxattr(enc, "sealfs.etag", nil); err != nil || n != len(etag) {
		t.Fatalf("size probe: %d, %v; want %d", n, err, len(etag))
	}
	if _, err := unix.Getxattr(enc, "sealfs.etag", make([]byte, 4)); errnoOf(err) != syscall.ERANGE {
		t.Fatalf("small buffer: %v, want ERANGE", err)
	}
	if _, err := getxattr(t, enc, "user.nothing"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("absent xattr: %v, want ENODATA", err)
	}
	// The namespaces sealfs does not hold answer "not supported", as
	// setting them does: the kernel's capability probe, ls's ACL and
	// SELinux probes (TestMountLsProbesOnce), getfacl.
	for _, name := range []string{"security.capability", "system.posix_acl_access", "system.posix_acl_default", "security.selinux", "trusted.x"} {
		if _, err := getxattr(t, enc, name); errnoOf(err) != syscall.EOPNOTSUPP {
			t.Fatalf("%s: %v, want EOPNOTSUPP", name, err)
		}
		if name == "system.posix_acl_default" {
			continue // on a file, the kernel answers its removal itself (0)
		}
		if err := unix.Removexattr(enc, name); errnoOf(err) != syscall.EOPNOTSUPP {
			t.Fatalf("removing %s: %v, want EOPNOTSUPP", name, err)
		}
	}

	// The headers are read-only.
	if err := unix.Setxattr(enc, "sealfs.etag", []byte("0123"), 0); errnoOf(err) != syscall.EPERM {
		t.Fatalf("changing sealfs.etag: %v, want EPERM", err)
	}
	if err := unix.Setxattr(pl, "sealfs.x-amz-server-side-encryption", []byte("aws:kms"), 0); errnoOf(err) != syscall.EPERM {
		t.Fatalf("encrypting through an xattr: %v, want EPERM", err)
	}
	if err := unix.Removexattr(enc, "sealfs.etag"); errnoOf(err) != syscall.EPERM {
		t.Fatalf("removing sealfs.etag: %v, want EPERM", err)
	}
	if err := unix.Setxattr(enc, "trusted.x", []byte("v"), 0); errnoOf(err) != syscall.EOPNOTSUPP {
		t.Fatalf("trusted.*: %v, want EOPNOTSUPP", err)
	}

	// user.*: any name and value, listed, seen over S3 as user metadata,
	// removable.
	run(t, "setfattr", "-n", "user.color", "-v", "blue", enc)
	attrs := map[string]string{
		"user.Mixed_Case":  "x",
		"user.with space":  "y",
		"user.binary":      "\x00\xff\n",
		"user.empty":       "",
		"user.unicode":     "ünïcode",
		"user.mode":        "not the file's mode",
		"user.x-amz-meta-": "z",
	}
	for name, value := range attrs {
		if err := unix.Setxattr(enc, name, []byte(value), 0); err != nil {
			t.Fatalf("setxattr %s: %v", name, err)
		}
	}
	attrs["user.color"] = "blue"
	for name, value := range attrs {
		if v := mustGetxattr(t, enc, name); v != value {
			t.Fatalf("%s: %q, want %q", name, v, value)
		}
	}
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(enc, buf)
	if err != nil {
		t.Fatal(err)
	}
	listed := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(listed)
	var want []string
	for name := range attrs {
		want = append(want, name)
	}
	sort.Strings(want)
	if strings.Join(listed, ",") != strings.Join(want, ",") {
		t.Fatalf("listxattr %q, want %q", listed, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(enc, &st); err != nil || st.Mode&0o7777 != 0o644 {
		t.Fatalf("user.mode changed the mode: %o, %v", st.Mode, err)
	}
	head, err := s3c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("xsealed"), Key: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["color"] != "blue" || head.Metadata["mode"] != "33188" || head.Metadata["%6dode"] != "not the file's mode" ||
		head.Metadata["%4dixed_%43ase"] != "x" || head.Metadata["binary"] != "=?UTF-8?B?AP8K?=" {
		t.Fatalf("S3 HEAD metadata %v", head.Metadata)
	}
	run(t, "setfattr", "-x", "user.color", enc)
	if _, err := getxattr(t, enc, "user.color"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("after removal: %v", err)
	}
	if err := unix.Removexattr(enc, "user.color"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("removing an absent name: %v, want ENODATA", err)
	}
	if err := unix.Setxattr(enc, "user.new", []byte("v"), unix.XATTR_REPLACE); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("XATTR_REPLACE of an absent name: %v, want ENODATA", err)
	}
	if err := unix.Setxattr(enc, "user.empty", []byte("v"), unix.XATTR_CREATE); errnoOf(err) != syscall.EEXIST {
		t.Fatalf("XATTR_CREATE of a present name: %v, want EEXIST", err)
	}
	if err := unix.Setxattr(enc, "user.large", make([]byte, 3000), 0); errnoOf(err) != syscall.E2BIG {
		t.Fatalf("past S3's 2 KiB of user metadata: %v, want E2BIG", err)
	}
	// Metadata set over S3 is a user attribute.
	if _, err := s3c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("xplain"), Key: aws.String("s3"),
		Body: strings.NewReader("x"), Metadata: map[string]string{"project": "sealfs", "city": "Zürich"}}); err != nil {
		t.Fatal(err)
	}
	if v := mustGetxattr(t, filepath.Join(plain, "s3"), "user.project"); v != "sealfs" {
		t.Fatalf("S3 metadata as user.project: %q", v)
	}
	if v := mustGetxattr(t, filepath.Join(plain, "s3"), "user.city"); v != "Zürich" {
		t.Fatalf("S3 metadata as user.city: %q", v)
	}
	// And UTF-8 text set on the mount reads over S3 as S3 sends it.
	run(t, "setfattr", "-n", "user.city", "-v", "Zürich", pl)
	if h, err := s3c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("xplain"), Key: aws.String("f")}); err != nil || h.Metadata["city"] != "=?UTF-8?B?WsO8cmljaA==?=" {
		t.Fatalf("user.city over S3: %v (%v)", h.Metadata, err)
	}

	// cp -a between files of the mount keeps the user's attributes and
	// the mode; the copy is encrypted as its bucket says.
	for name := range attrs {
		if name != "user.color" {
			unix.Removexattr(enc, name)
		}
	}
	run(t, "setfattr", "-n", "user.project", "-v", "sealfs", enc)
	if err := os.Chmod(enc, 0o600); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(sealed, "copy")
	run(t, "cp", "-a", enc, cp)
	if v := mustGetxattr(t, cp, "user.project"); v != "sealfs" {
		t.Fatalf("cp -a: user metadata %q", v)
	}
	if v := mustGetxattr(t, cp, "sealfs.x-amz-server-side-encryption"); v != "aws:kms" {
		t.Fatalf("cp -a: encryption %q", v)
	}
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
	const name = "sealfs.default-encryption"
	if _, err := getxattr(t, b, name); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("plain bucket: %v, want ENODATA", err)
	}
	mustWrite(t, filepath.Join(b, "before"), []byte("x"))
	run(t, "setfattr", "-n", name, "-v", "aws:kms", b)
	if v := mustGetxattr(t, b, name); v != "aws:kms" {
		t.Fatalf("after setfattr: %q", v)
	}
	// Never listed; the name it had before user.* became the user's is
	// still answered.
	if n, err := unix.Listxattr(b, make([]byte, 1024)); err != nil || n != 0 {
		t.Fatalf("listxattr of a bucket: %d bytes, %v; want none", n, err)
	}
	if v := mustGetxattr(t, b, "user.sealfs.default-encryption"); v != "aws:kms" {
		t.Fatalf("the old name: %q", v)
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
		_, err := getxattr(t, filepath.Join(b, c.file), "sealfs.x-amz-server-side-encryption")
		if (err == nil) != c.encrypted {
			t.Errorf("%s: encrypted=%t (%v), want %t", c.file, err == nil, err, c.encrypted)
		}
	}
}

// TestMountLsProbesOnce: ls -l asks every file for its SELinux label and
// its POSIX ACL. sealfs holds neither, and says so with EOPNOTSUPP, which
// ls remembers for the whole file system; an ENODATA answer ("this file
// has none") made it ask again for every file, two FUSE round trips each,
// most of a warm ls -lR.
func TestMountLsProbesOnce(t *testing.T) {
	d, addr := startMetered(t)
	dir := filepath.Join(d.MountDir, "probed")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 200
	for i := range files {
		mustWrite(t, filepath.Join(dir, fmt.Sprintf("f%03d", i)), []byte("x"))
	}
	// The mount's root answers as every other node does.
	if _, err := getxattr(t, d.MountDir, "security.selinux"); errnoOf(err) != syscall.EOPNOTSUPP {
		t.Fatalf("security.selinux of the mount's root: %v, want EOPNOTSUPP", err)
	}
	if _, err := getxattr(t, d.MountDir, "user.x"); errnoOf(err) != syscall.ENODATA {
		t.Fatalf("user.x of the mount's root: %v, want ENODATA", err)
	}
	before := fuseOpCount(t, scrape(t, addr), "GetXAttr")
	out := run(t, "/usr/bin/ls", "-lR", dir)
	if n := strings.Count(out, "\n-rw"); n != files {
		t.Fatalf("ls -lR listed %d files, want %d:\n%s", n, files, out)
	}
	if asked := fuseOpCount(t, scrape(t, addr), "GetXAttr") - before; asked > 8 {
		t.Fatalf("ls -lR of %d files asked for %d extended attributes; want a few for the whole mount", files, asked)
	}
}

// fuseOpCount sums sealfs_fuse_operations_total for op over its results.
func fuseOpCount(t *testing.T, metrics, op string) int {
	t.Helper()
	total := 0
	prefix := `sealfs_fuse_operations_total{op="` + op + `",`
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += int(n)
	}
	return total
}
