package integration

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/crc64nvme"
)

// TestMountPatchInPlace (issue 13, item 7): a 4 KiB `dd conv=notrunc` into
// a 1 GiB file costs about the bytes changed, not a rewrite of the file;
// afterwards random reads through the mount, an S3 GET and the S3
// checksum agree with a local copy patched the same way, and scrub finds
// nothing wrong.
func TestMountPatchInPlace(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "dd", "cp", "sync")
	const size = 1 << 30
	disk := smallDisk(t, 3<<30)
	d := startMount(t, DaemonOptions{DataDir: disk})
	b := newBucket(t, d, "patch", true)
	f := filepath.Join(b, "f")

	local := t.TempDir()
	ref := filepath.Join(local, "ref")
	lf, err := os.Create(ref)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{13, 7}))
	buf := make([]byte, 4<<20)
	for off := 0; off < size; off += len(buf) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := lf.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	lf.Close()
	took, wrote := cost(t, d, "cp", ref, f)
	t.Logf("cp of 1 GiB into the mount: %v, daemon wrote %d bytes", took, wrote)

	patch := filepath.Join(local, "patch")
	p := make([]byte, 4096)
	var worst time.Duration
	var worstBytes int64
	for i, block := range []int64{123457, 0, 262143, 5, 200000, 123458} {
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		mustWrite(t, patch, p)
		args := []string{"if=" + patch, "bs=4k", "seek=" + strconv.FormatInt(block, 10), "conv=notrunc", "status=none"}
		took, wrote := cost(t, d, "dd", append(args, "of="+f)...)
		t.Logf("patch %d: dd 4 KiB at %d into 1 GiB: %v, daemon wrote %d bytes", i, block*4096, took, wrote)
		worst, worstBytes = max(worst, took), max(worstBytes, wrote)
		run(t, "dd", append(args, "of="+ref)...)
	}
	if worstBytes > 4<<20 {
		t.Errorf("a 4 KiB patch into 1 GiB wrote up to %d bytes to disk: want about the bytes changed", worstBytes)
	}
	if worst > 2*time.Second {
		t.Errorf("a 4 KiB patch into 1 GiB took up to %v", worst)
	}

	check := func(when string) {
		t.Helper()
		c := d.S3() // a restart moves the listener
		rf, err := os.Open(ref)
		if err != nil {
			t.Fatal(err)
		}
		defer rf.Close()
		mf, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 200; i++ {
			off := r.Int64N(size)
			n := min(r.Int64N(300000)+1, size-off)
			if i%4 == 0 { // around the patches
				off = []int64{123457, 0, 262143, 5, 200000}[i/4%5]*4096 - r.Int64N(5000)
				off, n = max(off, 0), 10000
			}
			want, got := make([]byte, n), make([]byte, n)
			if _, err := rf.ReadAt(want, off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if _, err := mf.ReadAt(got, off); err != nil && err != io.EOF {
				t.Fatalf("%s: reading the mount at %d: %v", when, off, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: the mount reads [%d, +%d) different from the local copy", when, off, n)
			}
		}
		want := crcOfFile(t, ref)
		out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String("patch"), Key: aws.String("f")})
		if err != nil {
			t.Fatal(err)
		}
		h := crc64nvme.New()
		n, err := io.CopyBuffer(h, out.Body, make([]byte, 1<<20))
		out.Body.Close()
		if err != nil || n != size || h.Sum64() != want {
			t.Fatalf("%s: S3 GET: %d bytes, %v, CRC %x, local %x", when, n, err, h.Sum64(), want)
		}
		if sz, sum := s3Head(t, c, "patch", "f"); sz != size || sum != crc64Base64(want) {
			t.Fatalf("%s: HEAD: %d bytes, CRC64NVME %s, local %s", when, sz, sum, crc64Base64(want))
		}
	}
	check("after the patches")
	d.Restart()
	check("after a restart")
	sc := exec.Command(sealfsBin(t), "scrub", "--data", d.DataDir)
	sc.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	out, err := sc.CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 damaged") {
		t.Fatalf("scrub: %v\n%s", err, out)
	}
	if used := usedBytes(t, disk); used > size+size/2 {
		t.Errorf("the data disk holds %d bytes for a 1 GiB file patched 6 times", used)
	}
}
