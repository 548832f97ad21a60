package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// The extended attributes of the tools tree: what the user set, which is
// all a copy may carry (nothing of sealfs's own).
var toolsTreeXattrs = map[string]map[string]string{
	"a":         {"user.color": "blue", "user.Mixed.Case": "Value With Spaces", "user.bin": "\x00\x01\xfe\xff"},
	"sub":       {"user.dirnote": "a directory's own"},
	"sub/b":     {"user.xdg.origin.url": "https://example.com/b?x=1", "user.empty": ""},
	"sub/plain": {},
	"link":      {},
	"sub/up":    {},
}

// makeToolsTree writes the tools tree into dir (local or in the mount):
// files with user attributes, a directory with one, a file without, and
// symlinks to a file and to a directory.
func makeToolsTree(t *testing.T, dir string) {
	t.Helper()
	makeToolsTreeWith(t, dir, toolsTreeXattrs)
}

// noXattrs is the tools tree without attributes.
var noXattrs = map[string]map[string]string{"a": {}, "sub": {}, "sub/b": {}, "sub/plain": {}, "link": {}, "sub/up": {}}

func makeToolsTreeWith(t *testing.T, dir string, xattrs map[string]map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "a"), []byte("file a\n"))
	mustWrite(t, filepath.Join(dir, "sub", "b"), pattern(70000, 5))
	mustWrite(t, filepath.Join(dir, "sub", "plain"), []byte("no attributes"))
	if err := os.Chmod(filepath.Join(dir, "sub", "plain"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../sub", filepath.Join(dir, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	for rel, attrs := range xattrs {
		for name, value := range attrs {
			if err := unix.Lsetxattr(filepath.Join(dir, rel), name, []byte(value), 0); err != nil {
				t.Fatalf("setting %s on %s: %v", name, rel, err)
			}
		}
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 890000000, time.UTC)
	for _, rel := range []string{"a", "sub/b", "sub/plain", "sub"} {
		if err := os.Chtimes(filepath.Join(dir, rel), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// lxattrs returns every extended attribute listed on path (any namespace,
// the link itself for a symlink).
func lxattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", path, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			t.Errorf("%s lists %s, but lgetxattr says %v", path, name, err)
			continue
		}
		out[name] = string(v[:m])
	}
	return out
}

// checkToolsTree compares dst with the tools tree: the same entries, types,
// modes, contents, link targets and file mtimes, and on each entry exactly
// the user's extended attributes.
func checkToolsTree(t *testing.T, dst string) {
	t.Helper()
	checkToolsTreeWith(t, dst, toolsTreeXattrs)
}

func checkToolsTreeWith(t *testing.T, dst string, xattrs map[string]map[string]string) {
	t.Helper()
	want := map[string]bool{}
	for rel := range xattrs {
		want[rel] = true
	}
	err := filepath.WalkDir(dst, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		if rel == "." {
			return nil
		}
		if !want[rel] {
			t.Errorf("%s: unexpected entry %s", dst, rel)
			return nil
		}
		delete(want, rel)
		if got := lxattrs(t, p); !maps.Equal(got, xattrs[rel]) {
			t.Errorf("%s: extended attributes %q, want %q", p, got, xattrs[rel])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) > 0 {
		t.Errorf("%s: missing %v", dst, slices.Sorted(maps.Keys(want)))
		return
	}
	for rel, target := range map[string]string{"link": "a", "sub/up": "../sub"} {
		if got, err := os.Readlink(filepath.Join(dst, rel)); err != nil || got != target {
			t.Errorf("%s/%s: readlink %q, %v; want %q", dst, rel, got, err, target)
		}
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 890000000, time.UTC)
	for rel, c := range map[string]struct {
		mode os.FileMode
		data []byte
	}{
		"a":         {0o644, []byte("file a\n")},
		"sub/b":     {0o644, pattern(70000, 5)},
		"sub/plain": {0o600, []byte("no attributes")},
	} {
		p := filepath.Join(dst, rel)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode() != c.mode || !st.ModTime().Equal(old) {
			t.Errorf("%s: mode %v mtime %v; want %v %v", p, st.Mode(), st.ModTime(), c.mode, old)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("%s: content differs (%v)", p, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dst, "sub")); err != nil || !st.IsDir() || !st.ModTime().Equal(old) {
		t.Errorf("%s/sub: %v (mtime %v), want a directory with mtime %v", dst, err, st.ModTime(), old)
	}
}

// runTool runs a tool and fails the test unless it exits 0 with nothing on
// its standard error: a tool that copies attributes reports each one it
// could not copy there.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 {
		t.Errorf("%s %s: %v\nstderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), err, firstLines(stderr.String(), 20), firstLines(stdout.String(), 5))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		return strings.Join(lines[:n], "") + fmt.Sprintf("... (%d lines in all)\n", len(lines))
	}
	return s
}

// TestMountXattrTools copies a tree with user attributes and symlinks into
// the mount and out of it with rsync -aX, cp -a, cp --preserve=xattr, tar
// --xattrs and mv (also between buckets): every tool exits 0 and prints no
// error, and every copy carries exactly the user's attributes — nothing of
// sealfs's own is planted on local files, nothing the user set is lost. In
// the mount the user's attributes are S3 user metadata.
func TestMountXattrTools(t *testing.T) {
	requireTool(t, "rsync", "cp", "tar", "mv", "getfattr", "setfattr")
	d := startMount(t, DaemonOptions{})
	in := newBucket(t, d, "toolsin", true)
	out := newBucket(t, d, "toolsout", false)
	local := t.TempDir()
	src := filepath.Join(local, "src")
	makeToolsTree(t, src)
	checkToolsTree(t, src)

	// Into the mount.
	t.Run("rsync-in", func(t *testing.T) {
		runTool(t, "rsync", "-aX", src+"/", filepath.Join(in, "rsync")+"/")
		checkToolsTree(t, filepath.Join(in, "rsync"))
		// Again, over what is there: nothing to change, nothing to remove.
		runTool(t, "rsync", "-aX", "--checksum", src+"/", filepath.Join(in, "rsync")+"/")
		checkToolsTree(t, filepath.Join(in, "rsync"))
	})
	t.Run("cp-in", func(t *testing.T) {
		runTool(t, "cp", "-a", src, filepath.Join(in, "cp"))
		checkToolsTree(t, filepath.Join(in, "cp"))
	})
	t.Run("tar-in", func(t *testing.T) {
		tarball := filepath.Join(local, "in.tar")
		runTool(t, "tar", "--xattrs", "-cf", tarball, "-C", src, ".")
		dst := filepath.Join(in, "tar")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		runTool(t, "tar", "--xattrs", "--xattrs-include=*", "-xf", tarball, "-C", dst)
		checkToolsTree(t, dst)
	})
	t.Run("mv-in", func(t *testing.T) {
		moving := filepath.Join(local, "moving-in")
		runTool(t, "cp", "-a", src, moving)
		runTool(t, "mv", moving, filepath.Join(in, "mv"))
		checkToolsTree(t, filepath.Join(in, "mv"))
	})
	// The user's attributes are the object's S3 user metadata.
	head, err := d.S3().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("toolsin"), Key: aws.String("rsync/a")})
	if err != nil {
		t.Fatal(err)
	}
	if head.Metadata["color"] != "blue" || head.Metadata["bin"] != "=?UTF-8?B?AAH+/w==?=" || head.ServerSideEncryption != "aws:kms" {
		t.Errorf("S3 HEAD of a file rsync wrote: metadata %v, encryption %q", head.Metadata, head.ServerSideEncryption)
	}

	// Out of the mount: a tree made in the mount with setfattr.
	tree := filepath.Join(out, "tree")
	makeToolsTree(t, tree)
	checkToolsTree(t, tree)
	t.Run("rsync-out", func(t *testing.T) {
		runTool(t, "rsync", "-aX", tree+"/", filepath.Join(local, "rsync")+"/")
		checkToolsTree(t, filepath.Join(local, "rsync"))
	})
	t.Run("cp-out", func(t *testing.T) {
		runTool(t, "cp", "-a", tree, filepath.Join(local, "cp"))
		checkToolsTree(t, filepath.Join(local, "cp"))
	})
	t.Run("cp-preserve-xattr-out", func(t *testing.T) {
		runTool(t, "cp", "-r", "--preserve=mode,timestamps,xattr", "--no-dereference", tree, filepath.Join(local, "cpx"))
		checkToolsTree(t, filepath.Join(local, "cpx"))
	})
	t.Run("tar-out", func(t *testing.T) {
		tarball := filepath.Join(local, "out.tar")
		runTool(t, "tar", "--xattrs", "--xattrs-include=*", "-cf", tarball, "-C", tree, ".")
		dst := filepath.Join(local, "tar")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		runTool(t, "tar", "--xattrs", "--xattrs-include=*", "-xf", tarball, "-C", dst)
		checkToolsTree(t, dst)
	})
	t.Run("mv-out", func(t *testing.T) {
		moving := filepath.Join(out, "moving-out")
		runTool(t, "cp", "-a", tree, moving)
		runTool(t, "mv", moving, filepath.Join(local, "mv"))
		checkToolsTree(t, filepath.Join(local, "mv"))
		if _, err := os.Lstat(moving); !os.IsNotExist(err) {
			t.Errorf("after mv out of the mount the source is still there: %v", err)
		}
	})
	t.Run("mv-between-buckets", func(t *testing.T) {
		moving := filepath.Join(out, "moving-across")
		runTool(t, "cp", "-a", tree, moving)
		runTool(t, "mv", moving, filepath.Join(in, "across"))
		checkToolsTree(t, filepath.Join(in, "across"))
		// The copy follows its new bucket's encryption.
		if v := mustGetxattr(t, filepath.Join(in, "across", "a"), "sealfs.x-amz-server-side-encryption"); v != "aws:kms" {
			t.Errorf("moved into an encrypting bucket: %q", v)
		}
	})
	if strings.Contains(d.Logs(), `"level":"ERROR"`) {
		t.Errorf("errors in the log:\n%s", d.Logs())
	}
}

// TestMountXattrSymlinks: a symlink lists no attribute (the kernel answers
// user.* on symlinks with ENODATA, so a listed one breaks every copying
// tool), its headers are still readable, and user.* cannot be set on it.
func TestMountXattrSymlinks(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "links", true)
	mustWrite(t, filepath.Join(b, "f"), []byte("x"))
	link := filepath.Join(b, "l")
	if err := os.Symlink("f", link); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Llistxattr(link, make([]byte, 4096)); err != nil || n != 0 {
		t.Errorf("llistxattr of a symlink: %d bytes, %v; want none", n, err)
	}
	v := make([]byte, 256)
	if n, err := unix.Lgetxattr(link, "sealfs.x-amz-server-side-encryption", v); err != nil || string(v[:n]) != "aws:kms" {
		t.Errorf("the symlink's encryption header: %q, %v", v[:n], err)
	}
	if err := unix.Lsetxattr(link, "user.x", []byte("v"), 0); errnoOf(err) != syscall.EPERM {
		t.Errorf("user.* on a symlink: %v, want EPERM (as on a local file system)", err)
	}
}

// TestMountXattrToolsPlainTree copies a tree made in the mount without any
// attribute of the user's out of the mount and between buckets: each tool
// exits 0 without a message (no attribute listed that cannot be read, on
// symlinks either), and the copies carry no attribute at all.
func TestMountXattrToolsPlainTree(t *testing.T) {
	requireTool(t, "rsync", "cp", "tar", "mv")
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "plaintree", true)
	other := newBucket(t, d, "plainother", false)
	local := t.TempDir()
	tree := filepath.Join(b, "tree")
	makeToolsTreeWith(t, tree, nil)
	checkToolsTreeWith(t, tree, noXattrs)
	t.Run("rsync-out", func(t *testing.T) {
		runTool(t, "rsync", "-aX", tree+"/", filepath.Join(local, "rsync")+"/")
		checkToolsTreeWith(t, filepath.Join(local, "rsync"), noXattrs)
	})
	t.Run("cp-out", func(t *testing.T) {
		runTool(t, "cp", "-a", tree, filepath.Join(local, "cp"))
		checkToolsTreeWith(t, filepath.Join(local, "cp"), noXattrs)
	})
	t.Run("cp-preserve-xattr-out", func(t *testing.T) {
		runTool(t, "cp", "-r", "--preserve=mode,timestamps,xattr", "--no-dereference", tree, filepath.Join(local, "cpx"))
		checkToolsTreeWith(t, filepath.Join(local, "cpx"), noXattrs)
	})
	t.Run("tar-out", func(t *testing.T) {
		tarball := filepath.Join(local, "out.tar")
		runTool(t, "tar", "--xattrs", "--xattrs-include=*", "-cf", tarball, "-C", tree, ".")
		dst := filepath.Join(local, "tar")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		runTool(t, "tar", "--xattrs", "--xattrs-include=*", "-xf", tarball, "-C", dst)
		checkToolsTreeWith(t, dst, noXattrs)
	})
	t.Run("mv-between-buckets", func(t *testing.T) {
		runTool(t, "mv", tree, filepath.Join(other, "moved"))
		checkToolsTreeWith(t, filepath.Join(other, "moved"), noXattrs)
	})
}
