package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/kms"
)

// TestMountLongNames: a name of 256 bytes is ENAMETOOLONG for every call
// that makes, looks up, renames or removes one; 255 bytes work.
func TestMountLongNames(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "longnames", false)
	long := strings.Repeat("n", 256)
	ok := strings.Repeat("n", 255)
	mustWrite(t, filepath.Join(b, "f"), []byte("x"))
	if err := os.Mkdir(filepath.Join(b, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for what, call := range map[string]func(p string) error{
		"open(O_CREAT)": func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) },
		"mkdir":         func(p string) error { return os.Mkdir(p, 0o755) },
		"symlink":       func(p string) error { return os.Symlink("f", p) },
		"mknod":         func(p string) error { return unix.Mknod(p, syscall.S_IFREG|0o644, 0) },
		"rename to":     func(p string) error { return os.Rename(filepath.Join(b, "f"), p) },
		"rename dir to": func(p string) error { return os.Rename(filepath.Join(b, "dir"), p) },
		"rename from":   func(p string) error { return os.Rename(p, filepath.Join(b, "g")) },
		"stat":          func(p string) error { _, err := os.Lstat(p); return err },
		"unlink":        func(p string) error { return syscall.Unlink(p) },
		"rmdir":         func(p string) error { return syscall.Rmdir(p) },
	} {
		for _, dir := range []string{b, filepath.Join(b, "dir")} {
			if err := call(filepath.Join(dir, long)); errnoOf(err) != syscall.ENAMETOOLONG {
				t.Errorf("%s of a 256-byte name in %s: %v, want ENAMETOOLONG", what, dir, err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(d.MountDir, long), 0o755); errnoOf(err) != syscall.ENAMETOOLONG {
		t.Errorf("a bucket of 256 bytes: %v, want ENAMETOOLONG", err)
	}
	// Nothing of them was made.
	entries, err := os.ReadDir(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the bucket holds %d entries, want 2 (f, dir)", len(entries))
	}
	// 255 bytes: made, found, removed, with rm -r too.
	mustWrite(t, filepath.Join(b, ok), []byte("x"))
	if err := os.Mkdir(filepath.Join(b, "dir", ok), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(b, "dir", ok, ok), []byte("y"))
	if err := os.Remove(filepath.Join(b, ok)); err != nil {
		t.Fatal(err)
	}
	run(t, "rm", "-r", filepath.Join(b, "dir"))
}

func statTimes(t *testing.T, p string) (atime, mtime, ctime time.Time) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())
}

// TestMountTimes: atime is kept apart from mtime (also across a restart);
// chmod changes ctime, not mtime; and rmdir, unlink, create, mkdir and
// rename change their directory's mtime and ctime.
func TestMountTimes(t *testing.T) {
	requireTool(t, "touch")
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "times", false)
	f := filepath.Join(b, "f")
	mustWrite(t, f, []byte("x"))
	dir := filepath.Join(b, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f, dir} {
		if err := os.Chtimes(p, time.Unix(100000000, 0), time.Unix(200000000, 0)); err != nil {
			t.Fatal(err)
		}
		if a, m, _ := statTimes(t, p); a.Unix() != 100000000 || m.Unix() != 200000000 {
			t.Errorf("%s: atime %d mtime %d, want 100000000 and 200000000", p, a.Unix(), m.Unix())
		}
	}
	// touch -a changes atime only, touch -m mtime only.
	run(t, "touch", "-a", "-d", "@300000000", f)
	if a, m, _ := statTimes(t, f); a.Unix() != 300000000 || m.Unix() != 200000000 {
		t.Errorf("touch -a: atime %d mtime %d", a.Unix(), m.Unix())
	}
	run(t, "touch", "-m", "-d", "@400000000", f)
	if a, m, _ := statTimes(t, f); a.Unix() != 300000000 || m.Unix() != 400000000 {
		t.Errorf("touch -m: atime %d mtime %d", a.Unix(), m.Unix())
	}
	// chmod: ctime moves to now, mtime stays.
	before := time.Now().Add(-time.Second)
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, m, c := statTimes(t, f); m.Unix() != 400000000 || c.Before(before) {
		t.Errorf("chmod: mtime %d ctime %v, want 400000000 and now", m.Unix(), c)
	}

	// The directory's own times change with its entries.
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"mkdir", func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) }},
		{"rmdir", func() error { return os.Remove(filepath.Join(dir, "sub")) }},
		{"create", func() error { return os.WriteFile(filepath.Join(dir, "g"), []byte("g"), 0o644) }},
		{"rename", func() error { return os.Rename(filepath.Join(dir, "g"), filepath.Join(dir, "h")) }},
		{"unlink", func() error { return os.Remove(filepath.Join(dir, "h")) }},
	} {
		if err := os.Chtimes(dir, time.Unix(100000000, 0), time.Unix(200000000, 0)); err != nil {
			t.Fatal(err)
		}
		start := time.Now().Add(-time.Second)
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if _, m, c := statTimes(t, dir); m.Before(start) || c.Before(start) {
			t.Errorf("%s in a directory: its mtime %v, ctime %v; want both now", step.what, m, c)
		}
	}

	// The times persist.
	if err := os.Chtimes(f, time.Unix(500000000, 0), time.Unix(600000000, 0)); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	if a, m, _ := statTimes(t, f); a.Unix() != 500000000 || m.Unix() != 600000000 {
		t.Errorf("after a restart: atime %d mtime %d, want 500000000 and 600000000", a.Unix(), m.Unix())
	}
}

// TestMountWriteUnderDisabledKey: a write into a bucket whose master key is
// disabled is refused when the file is opened (ENOKEY), so that a shell's
// redirect fails visibly instead of losing the data at a close whose error
// it ignores; reading and writing plain buckets is untouched.
func TestMountWriteUnderDisabledKey(t *testing.T) {
	requireTool(t, "bash")
	d := startMount(t, DaemonOptions{})
	locked := newBucket(t, d, "keyoff", true)
	plain := newBucket(t, d, "keyon", false)
	mustWrite(t, filepath.Join(locked, "old"), []byte("before"))
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	withOfflineKMS(t, d.DataDir, func(k *kms.Local) {
		ctx := context.Background()
		keys, err := k.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keys {
			if m.Description == "sealfs bucket keyoff" {
				if err := k.DisableKey(ctx, &kms.KeyRequest{KeyID: m.KeyID}); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatal("no master key for bucket keyoff")
	})
	d.start()

	for _, c := range []struct{ what, script string }{
		{"redirect into a new file", "echo x > " + filepath.Join(locked, "new")},
		{"append to a file", "echo x >> " + filepath.Join(locked, "old")},
		{"truncating redirect", "echo x > " + filepath.Join(locked, "old")},
	} {
		out, err := exec.Command("bash", "-c", c.script).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Required key not available") {
			t.Errorf("%s: %v, %q; want bash to fail with ENOKEY", c.what, err, out)
		}
	}
	if _, err := os.OpenFile(filepath.Join(locked, "other"), os.O_CREATE|os.O_WRONLY, 0o644); errnoOf(err) != syscall.ENOKEY {
		t.Errorf("open(O_CREAT): %v, want ENOKEY", err)
	}
	if _, err := os.OpenFile(filepath.Join(locked, "old"), os.O_RDWR, 0); errnoOf(err) != syscall.ENOKEY {
		t.Errorf("open(O_RDWR): %v, want ENOKEY", err)
	}
	for _, name := range []string{"new", "other"} {
		if _, err := os.Lstat(filepath.Join(locked, name)); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want no such file", name, err)
		}
		if _, err := d.S3().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("keyoff"), Key: aws.String(name)}); err == nil {
			t.Errorf("%s exists over S3", name)
		}
	}
	// Metadata and listing still work; the plain bucket is untouched.
	if _, err := os.Stat(filepath.Join(locked, "old")); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command("bash", "-c", "echo y > "+filepath.Join(plain, "p")).CombinedOutput(); err != nil {
		t.Errorf("writing a plain bucket: %v %s", err, out)
	}
	if got := string(mustRead(t, filepath.Join(plain, "p"))); got != "y\n" {
		t.Errorf("plain bucket: %q", got)
	}
	if strings.Contains(d.Logs(), "lost") {
		t.Errorf("the daemon logged lost writes:\n%s", d.Logs())
	}
}
