package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"
)

// writtenBytes returns the bytes the daemon has had written to disk so
// far (/proc/PID/io write_bytes).
func (d *Daemon) writtenBytes() int64 {
	d.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", d.Pid()))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				d.t.Fatal(err)
			}
			return n
		}
	}
	d.t.Fatal("no write_bytes in /proc/PID/io")
	return 0
}

// cost runs a command and returns how long it took and how much the
// daemon wrote to disk meanwhile (after a sync, so that writeback counts).
func cost(t *testing.T, d *Daemon, name string, args ...string) (time.Duration, int64) {
	t.Helper()
	before := d.writtenBytes()
	start := time.Now()
	run(t, name, args...)
	took := time.Since(start)
	run(t, "sync")
	return took, d.writtenBytes() - before
}

// readAtFile reads n bytes at off of a file.
func readAtFile(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatalf("reading %s at %d: %v", path, off, err)
	}
	return b
}

// s3Range GETs bytes [off, off+n) of an object.
func s3Range(t *testing.T, c *awss3.Client, bucket, key string, off, n int64) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
	if err != nil {
		t.Fatalf("GET %s/%s range %d+%d: %v", bucket, key, off, n, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s3Head returns an object's size and CRC64NVME (empty if none).
func s3Head(t *testing.T, c *awss3.Client, bucket, key string) (int64, string) {
	t.Helper()
	out, err := c.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("HEAD %s/%s: %v", bucket, key, err)
	}
	return aws.ToInt64(out.ContentLength), aws.ToString(out.ChecksumCRC64NVME)
}

// crcOfZeros returns CRC64NVME of n zero bytes, base64 as S3 sends it.
func crc64Base64(sum uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, sum))
}

func crcOfFile(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := crc64nvme.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return h.Sum64()
}

// TestMountSparse (issue 13, item 6): a truncate past a file's end stores a
// hole, not zeros: `truncate -s 4G` and `truncate -s 1T` cost (nearly)
// nothing on the data disk, read back as zeros through the mount and over
// S3 (with the right size and full-object checksum), and take data in the
// middle (dd, cp --sparse). The data directory is a small loop-mounted
// ext4: the old code filled it.
func TestMountSparse(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "truncate", "dd", "cp", "sync")
	disk := smallDisk(t, 512<<20)
	d := startMount(t, DaemonOptions{DataDir: disk})
	b := newBucket(t, d, "sparse", true)
	f := filepath.Join(b, "f")
	c := d.S3()

	used := usedBytes(t, disk)
	took, wrote := cost(t, d, "truncate", "-s", "4G", f)
	grew := usedBytes(t, disk) - used
	t.Logf("truncate -s 4G: %v, daemon wrote %d bytes, data disk grew %d bytes", took, wrote, grew)
	if wrote > 8<<20 || grew > 8<<20 {
		t.Fatalf("truncate -s 4G wrote %d bytes (disk grew %d): want (nearly) nothing", wrote, grew)
	}
	fi, err := os.Stat(f)
	if err != nil || fi.Size() != 4<<30 {
		t.Fatalf("stat: %v, size %d, want 4 GiB", err, fi.Size())
	}
	zero := make([]byte, 1<<20)
	for _, off := range []int64{0, 1<<30 + 12345, 4<<30 - 1<<20} {
		if !bytes.Equal(readAtFile(t, f, off, 1<<20), zero) {
			t.Fatalf("the mount reads non-zero bytes at %d", off)
		}
		if !bytes.Equal(s3Range(t, c, "sparse", "f", off, 1<<20), zero) {
			t.Fatalf("S3 reads non-zero bytes at %d", off)
		}
	}
	size, sum := s3Head(t, c, "sparse", "f")
	if want := crc64Base64(crc64nvme.Checksum(nil)); size != 4<<30 || sum == "" || sum == want {
		t.Fatalf("HEAD: size %d, CRC64NVME %q", size, sum)
	}

	// dd of 1 MiB into the middle, without truncating.
	local := t.TempDir()
	mid := filepath.Join(local, "mid")
	piece := make([]byte, 1<<20)
	rand.Read(piece)
	mustWrite(t, mid, piece)
	took, wrote = cost(t, d, "dd", "if="+mid, "of="+f, "bs=1M", "seek=2048", "conv=notrunc", "status=none")
	t.Logf("dd 1 MiB into the middle of the 4 GiB hole: %v, daemon wrote %d bytes", took, wrote)
	if wrote > 16<<20 {
		t.Fatalf("dd of 1 MiB wrote %d bytes", wrote)
	}
	if got := readAtFile(t, f, 2<<30, 1<<20); !bytes.Equal(got, piece) {
		t.Fatal("the mount does not read back what dd wrote")
	}
	if got := s3Range(t, c, "sparse", "f", 2<<30-10, 1<<20+20); !bytes.Equal(got[10:1<<20+10], piece) ||
		!bytes.Equal(got[:10], zero[:10]) || !bytes.Equal(got[1<<20+10:], zero[:10]) {
		t.Fatal("S3 does not read back what dd wrote, with zeros around it")
	}
	// The checksum S3 gives is the content's: zeros, the piece, zeros.
	want := crc64nvme.New()
	for _, part := range []struct {
		data []byte
		n    int64
	}{{nil, 2 << 30}, {piece, 1}, {nil, 2<<30 - 1<<20}} {
		if part.data != nil {
			want.Write(part.data)
			continue
		}
		for left := part.n; left > 0; left -= int64(len(zero)) {
			want.Write(zero[:min(left, int64(len(zero)))])
		}
	}
	if size, sum := s3Head(t, c, "sparse", "f"); size != 4<<30 || sum != crc64Base64(want.Sum64()) {
		t.Fatalf("HEAD after dd: size %d, CRC64NVME %s, content's %s", size, sum, crc64Base64(want.Sum64()))
	}

	// cp --sparse=always of a sparse local file.
	src := filepath.Join(local, "src")
	sf, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 300 << 20, 1<<30 - 1<<20} {
		if _, err := sf.WriteAt(piece, off); err != nil {
			t.Fatal(err)
		}
	}
	sf.Truncate(1 << 30)
	sf.Close()
	used = usedBytes(t, disk)
	took, wrote = cost(t, d, "cp", "--sparse=always", src, filepath.Join(b, "copy"))
	t.Logf("cp --sparse=always of a 1 GiB file holding 3 MiB: %v, daemon wrote %d bytes", took, wrote)
	if grew := usedBytes(t, disk) - used; grew > 32<<20 {
		t.Fatalf("cp --sparse of 3 MiB of data grew the data disk by %d bytes", grew)
	}
	if a, b := crcOfFile(t, src), crcOfFile(t, filepath.Join(b, "copy")); a != b {
		t.Fatal("the sparse copy reads back different")
	}
	if _, sum := s3Head(t, c, "sparse", "copy"); sum != crc64Base64(crcOfFile(t, src)) {
		t.Fatalf("HEAD of the copy: CRC64NVME %s, content's %s", sum, crc64Base64(crcOfFile(t, src)))
	}

	// Written and grown in one open: the streamed data is kept, not
	// copied, and the rest is a hole.
	requireTool(t, "python3")
	grow := "import sys\nf = open(sys.argv[1], 'wb')\nf.write(open(sys.argv[2], 'rb').read() * 5)\nf.truncate(1 << 30)\nf.close()"
	took, wrote = cost(t, d, "python3", "-c", grow, filepath.Join(b, "grown"), mid)
	t.Logf("5 MiB written then truncated to 1 GiB in one open: %v, daemon wrote %d bytes", took, wrote)
	if wrote > 12<<20 {
		t.Fatalf("5 MiB written then grown to 1 GiB: the daemon wrote %d bytes", wrote)
	}
	wantGrown := crc64nvme.New()
	for range 5 {
		wantGrown.Write(piece)
	}
	for left := int64(1<<30 - 5<<20); left > 0; left -= int64(len(zero)) {
		wantGrown.Write(zero)
	}
	if got := crcOfFile(t, filepath.Join(b, "grown")); got != wantGrown.Sum64() {
		t.Fatal("the grown file reads back different")
	}
	if _, sum := s3Head(t, c, "sparse", "grown"); sum != crc64Base64(wantGrown.Sum64()) {
		t.Fatalf("HEAD of the grown file: CRC64NVME %s, content's %s", sum, crc64Base64(wantGrown.Sum64()))
	}

	// 1 TiB.
	took, wrote = cost(t, d, "truncate", "-s", "1T", filepath.Join(b, "tera"))
	t.Logf("truncate -s 1T: %v, daemon wrote %d bytes", took, wrote)
	if wrote > 8<<20 {
		t.Fatalf("truncate -s 1T wrote %d bytes", wrote)
	}
	if size, _ := s3Head(t, c, "sparse", "tera"); size != 1<<40 {
		t.Fatalf("HEAD: size %d, want 1 TiB", size)
	}
	if !bytes.Equal(readAtFile(t, filepath.Join(b, "tera"), 1<<40-1<<20, 1<<20), zero) {
		t.Fatal("the end of the 1 TiB file is not zeros")
	}
	d.alive("after the sparse files")
	// The files survive a restart.
	d.Restart()
	if got := readAtFile(t, f, 2<<30, 1<<20); !bytes.Equal(got, piece) {
		t.Fatal("after a restart the mount does not read back what dd wrote")
	}
	start := time.Now()
	sc := exec.Command(sealfsBin(t), "scrub", "--data", d.DataDir)
	sc.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	out, err := sc.CombinedOutput()
	t.Logf("scrub (%v): %s", time.Since(start), out)
	if err != nil || !strings.Contains(string(out), " 0 damaged") {
		t.Fatalf("scrub: %v\n%s", err, out)
	}
}
