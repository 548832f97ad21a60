package integration

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountTools drives the mount with the programs people use on it: cp in
// and out, ls -l, mv, rm -r, tar x (compared with tar d), dd with seek and
// conv=notrunc.
func TestMountTools(t *testing.T) {
	requireTool(t, "cp", "ls", "mv", "rm", "tar", "dd", "cmp")
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "tools", true)
	local := t.TempDir()

	// cp in and out.
	src := filepath.Join(local, "src.bin")
	mustWrite(t, src, pattern(7<<20+333, 11))
	run(t, "cp", src, filepath.Join(b, "copied.bin"))
	run(t, "cp", filepath.Join(b, "copied.bin"), filepath.Join(local, "back.bin"))
	run(t, "cmp", src, filepath.Join(local, "back.bin"))

	// ls -l shows the plaintext size and the stored mode.
	if err := os.Chmod(filepath.Join(b, "copied.bin"), 0o604); err != nil {
		t.Fatal(err)
	}
	out := run(t, "ls", "-l", b)
	if !strings.Contains(out, "-rw----r--") || !strings.Contains(out, fmt.Sprint(7<<20+333)) {
		t.Fatalf("ls -l:\n%s", out)
	}

	// tar x of a tree, then tar d finds no difference.
	tarball := filepath.Join(local, "tree.tar")
	writeTestTar(t, tarball, 300)
	dst := filepath.Join(b, "untarred")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "xf", tarball, "-C", dst)
	if out, err := runErr("tar", "df", tarball, "-C", dst); err != nil {
		t.Fatalf("tar d after tar x: %v\n%s", err, out)
	}
	var st os.FileInfo
	if st, _ = os.Stat(filepath.Join(dst, "tree/d0/f00042.txt")); st == nil || !st.ModTime().Equal(time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Fatalf("tar x kept no mtime: %v", st)
	}

	// mv of a directory, then rm -r.
	run(t, "mv", dst, filepath.Join(b, "renamed"))
	if out, err := runErr("tar", "df", tarball, "-C", filepath.Join(b, "renamed")); err != nil {
		t.Fatalf("tar d after mv: %v\n%s", err, out)
	}
	run(t, "rm", "-r", filepath.Join(b, "renamed"))
	if entries, _ := os.ReadDir(b); len(entries) != 1 {
		t.Fatalf("after rm -r the bucket holds %d entries, want 1", len(entries))
	}

	// dd: a sequential write, then an in-place patch in the middle.
	ddFile := filepath.Join(b, "dd.bin")
	run(t, "dd", "if="+src, "of="+ddFile, "bs=1M", "status=none")
	patch := filepath.Join(local, "patch")
	mustWrite(t, patch, bytes.Repeat([]byte("P"), 5000))
	run(t, "dd", "if="+patch, "of="+ddFile, "bs=1000", "seek=3001", "conv=notrunc", "status=none")
	want := mustRead(t, src)
	copy(want[3001000:], bytes.Repeat([]byte("P"), 5000))
	if got := mustRead(t, ddFile); !bytes.Equal(got, want) {
		t.Fatalf("dd conv=notrunc: %d bytes, equal=%t", len(got), bytes.Equal(got, want))
	}
}

// writeTestTar writes a tar of n small files in a few directories.
func writeTestTar(t *testing.T, path string, n int) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	dirs := map[string]bool{}
	for i := range n {
		dir := fmt.Sprintf("tree/d%d", i%7)
		for _, p := range []string{"tree", dir} {
			if !dirs[p] {
				dirs[p] = true
				tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
			}
		}
		body := pattern(i*37%5000, uint64(i))
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%05d.txt", dir, i), Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(body)), ModTime: mtime})
		tw.Write(body)
	}
	tw.WriteHeader(&tar.Header{Name: "tree/link", Typeflag: tar.TypeSymlink, Linkname: "d1/f00001.txt", Mode: 0o777, ModTime: mtime})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, buf.Bytes())
}
