package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/kms"
)

// markerBody repeats marker to n bytes.
func markerBody(marker []byte, n int) []byte {
	return bytes.Repeat(marker, n/len(marker)+1)[:n]
}

// filesHolding returns the files under dir whose bytes contain needle.
func filesHolding(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// fdsHolding returns the daemon's open regular files (deleted ones too:
// the spool is unlinked) whose bytes contain needle, and how many spools it
// has open.
func fdsHolding(t *testing.T, pid int, needle []byte) (hits []string, spools int) {
	t.Helper()
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(fdDir, e.Name())
		target, err := os.Readlink(p)
		if err != nil {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // sockets, pipes, /dev/fuse
		}
		if strings.Contains(target, "spool-") {
			spools++
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, target)
		}
	}
	return hits, spools
}

// TestMountNoPlaintextAtRest writes a marker through the mount into an
// encrypting bucket, as a small file (kept inline in the metadata store), a
// large one (streamed to a blob) and one written out of order (staged in a
// spool), and finds it nowhere under the data directory, nor in any file
// the daemon holds open, spool included, while the spool is in use and
// after. A plain bucket is the positive control: there the marker is found.
func TestMountNoPlaintextAtRest(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	sealed := newBucket(t, d, "sealed", true)
	plain := newBucket(t, d, "open", false)
	marker := []byte("SEALFS-MOUNT-MARKER-c0ffee-0123456789")

	mustWrite(t, filepath.Join(sealed, "small"), markerBody(marker, 3000))
	mustWrite(t, filepath.Join(sealed, "large"), markerBody(marker, 5<<20))
	spooled := filepath.Join(sealed, "spooled")
	mustWrite(t, spooled, markerBody(marker, 1<<20))
	f, err := os.OpenFile(spooled, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Out of order over a committed version: the spool. sync_file_range
	// makes the kernel hand the pages over without a flush, so the spool
	// stays open while we look.
	f.WriteAt(markerBody(marker, 300<<10), 700<<10)
	f.WriteAt(markerBody(marker, 64<<10), 100)
	if err := unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER); err != nil {
		t.Fatal(err)
	}
	hits, spools := fdsHolding(t, d.Pid(), marker)
	if spools == 0 {
		t.Fatal("the out-of-order write is not staged in a spool: this test checks nothing about spools")
	}
	if len(hits) > 0 {
		t.Fatalf("plaintext in files the daemon holds open: %v", hits)
	}
	if hits := filesHolding(t, d.DataDir, marker); len(hits) > 0 {
		t.Fatalf("plaintext under the data directory while writing: %v", hits)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, spooled); !bytes.Equal(got[100:100+len(marker)], marker) || len(got) != 1<<20 {
		t.Fatalf("the spooled file reads back wrong (%d bytes)", len(got))
	}
	if hits := filesHolding(t, d.DataDir, marker); len(hits) > 0 {
		t.Fatalf("plaintext under the data directory: %v", hits)
	}

	// Positive control: the same scan finds a plain bucket's data, both a
	// blob and an object kept inline in the metadata store.
	control := []byte("SEALFS-MOUNT-CONTROL-feedface-0042")
	mustWrite(t, filepath.Join(plain, "large"), markerBody(control, 1<<20))
	if hits := filesHolding(t, filepath.Join(d.DataDir, "blobs"), control); len(hits) == 0 {
		t.Fatal("positive control: the plain bucket's blob does not hold the marker; the scan is blind")
	}
	inline := []byte("SEALFS-MOUNT-INLINE-CONTROL-beef-77")
	mustWrite(t, filepath.Join(plain, "small"), markerBody(inline, 2000))
	if hits := filesHolding(t, filepath.Join(d.DataDir, "meta"), inline); len(hits) == 0 {
		t.Fatal("positive control: the metadata store does not hold a plain inline object; the scan is blind")
	}
}

// TestMountTamperedBlob damages an encrypted blob on disk: reading it
// through the mount fails with EIO, never returns wrong bytes, and the log
// names the bucket and key once.
func TestMountTamperedBlob(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "tamper", true)
	blobs := func() map[string]bool {
		m := map[string]bool{}
		for _, p := range storedBlobs(t, d.DataDir) {
			m[p] = true
		}
		return m
	}
	before := blobs()
	data := pattern(2<<20, 9)
	mustWrite(t, filepath.Join(b, "victim.bin"), data)
	var blob string
	for p := range blobs() {
		if !before[p] {
			blob = p
		}
	}
	if blob == "" {
		t.Fatal("no new blob file for a 2 MiB object")
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	// A bit in the ciphertext of the chunk holding plaintext offset 1 MiB
	// (FORMAT.md: a 48-byte header, then 64 KiB chunks with a 16-byte tag).
	raw[48+16*(64<<10+16)+100] ^= 0x40
	if err := os.WriteFile(blob, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()

	f, err := os.Open(filepath.Join(b, "victim.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, data[:4096]) {
		t.Fatalf("reading an undamaged chunk: %v", err)
	}
	for range 3 {
		buf := make([]byte, 64<<10)
		n, err := f.ReadAt(buf, 1<<20)
		if errnoOf(err) != syscall.EIO {
			t.Fatalf("reading the damaged chunk: %d bytes, %v; want EIO", n, err)
		}
	}
	var lines int
	for _, line := range strings.Split(d.Logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == "ERROR" && rec["bucket"] == "tamper" && rec["key"] == "victim.bin" && strings.Contains(rec["msg"].(string), "EIO") {
			lines++
		}
	}
	if lines != 1 {
		t.Fatalf("want one log line naming the bucket and key of the damaged object, have %d:\n%s", lines, d.Logs())
	}
}

// TestMountDisabledKey disables the bucket's master key: reads and writes
// of its encrypted objects fail with ENOKEY (not EIO), a plain bucket is
// untouched, and enabling the key brings everything back. The daemon owns
// the keyring while it runs, so the key is changed the way an operator
// would with the daemon stopped: the kms package on the data directory
// (withOfflineKMS), then a restart.
func TestMountDisabledKey(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	locked := newBucket(t, d, "locked", true)
	open := newBucket(t, d, "unlocked", false)
	mustWrite(t, filepath.Join(locked, "small"), []byte("under a key"))
	mustWrite(t, filepath.Join(locked, "large"), pattern(1<<20, 3))
	mustWrite(t, filepath.Join(open, "plain"), []byte("no key"))
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	setKey := func(enable bool) {
		withOfflineKMS(t, d.DataDir, func(k *kms.Local) {
			ctx := context.Background()
			keys, err := k.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range keys {
				if m.Description != "sealfs bucket locked" {
					continue
				}
				if enable {
					err = k.EnableKey(ctx, &kms.KeyRequest{KeyID: m.KeyID})
				} else {
					err = k.DisableKey(ctx, &kms.KeyRequest{KeyID: m.KeyID})
				}
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Fatalf("no master key for bucket locked among %d keys", len(keys))
		})
	}
	setKey(false)
	d.start()
	for _, name := range []string{"small", "large"} {
		if _, err := os.ReadFile(filepath.Join(locked, name)); errnoOf(err) != syscall.ENOKEY {
			t.Fatalf("reading %s under a disabled key: %v, want ENOKEY", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(locked, "new"), []byte("x"), 0o644); errnoOf(err) != syscall.ENOKEY {
		t.Fatalf("writing under a disabled key: %v, want ENOKEY", err)
	}
	// The file that could not be committed is not in the store.
	if _, err := d.S3().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("new")}); err == nil {
		t.Fatal("a file whose commit failed exists over S3")
	}
	if got := string(mustRead(t, filepath.Join(open, "plain"))); got != "no key" {
		t.Fatalf("plain bucket: %q", got)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	setKey(true)
	d.start()
	if got := string(mustRead(t, filepath.Join(locked, "small"))); got != "under a key" {
		t.Fatalf("after enabling the key: %q", got)
	}
}
