package cryptostore

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/sealfs/sealfs/meta"
)

// encryptedETag is the form of an encrypted object's ETag (sums.go), and
// partETag that of a part of an encrypting upload.
var (
	encryptedETag = regexp.MustCompile(`^[0-9a-f]{32}-[1-9][0-9]*$`)
	randomPartTag = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// checkETag checks o's ETag against the data it holds: the MD5 for a plain
// object written in one piece, a random tag that is no digest of the data
// for an encrypted one.
func checkETag(t testing.TB, o *meta.Object, data []byte) {
	t.Helper()
	sum := md5.Sum(data)
	if o.Encryption == nil {
		if o.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("plain object: ETag %s, want its MD5 %x", o.ETag, sum)
		}
		return
	}
	if !encryptedETag.MatchString(o.ETag) || strings.Contains(o.ETag, hex.EncodeToString(sum[:])) {
		t.Fatalf("encrypted object: ETag %s (MD5 of its data %x)", o.ETag, sum)
	}
}

// TestEncryptedETagRevealsNothing: the same plaintext written twice into an
// encrypting bucket gets two unrelated ETags, neither its MD5; the ETag is
// the version's, stable on every read, and serves conditional writes.
func TestEncryptedETagRevealsNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "sealed", true)
	e.bucket(t, "plain", false)
	for _, n := range []int{0, 5, DefaultInlineMax + 1, 300 << 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := bytes.Repeat([]byte("guess"), n/5+1)[:n]
			a := e.put(t, "sealed", "a", data)
			b := e.put(t, "sealed", "b", data)
			checkETag(t, a, data)
			checkETag(t, b, data)
			if a.ETag == b.ETag {
				t.Fatalf("equal plaintexts, equal ETags %s: the ETag confirms a guess", a.ETag)
			}
			if !strings.HasSuffix(a.ETag, "-1") {
				t.Fatalf("one-piece encrypted ETag %s: want the -1 form", a.ETag)
			}
			p := e.put(t, "plain", "a", data)
			checkETag(t, p, data)
			// Stable: every read of the version shows the same ETag.
			h, err := e.store.Head(ctx, "sealed", "a")
			if err != nil || h.ETag != a.ETag {
				t.Fatalf("head: %v, ETag %s, put returned %s", err, h.ETag, a.ETag)
			}
			page, err := e.store.List(ctx, "sealed", meta.ListOptions{MaxKeys: 10})
			if err != nil || len(page.Objects) != 2 || page.Objects[0].ETag != a.ETag {
				t.Fatalf("list: %v %+v", err, page)
			}
			// Conditions see it.
			put := func(cond func(*meta.Object) error) error {
				_, err := e.store.Put(ctx, &PutInput{Bucket: "sealed", Key: "a", Body: bytes.NewReader(data), Size: int64(n), Condition: cond})
				return err
			}
			if err := put(IfNoneMatch(`"` + a.ETag + `"`)); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("If-None-Match the current ETag: %v", err)
			}
			if err := put(IfMatch(`"` + b.ETag + `"`)); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("If-Match another version's ETag: %v", err)
			}
			if err := put(IfMatch(`"` + a.ETag + `"`)); err != nil {
				t.Fatalf("If-Match the current ETag: %v", err)
			}
			if h, _ := e.store.Head(ctx, "sealed", "a"); h.ETag == a.ETag {
				t.Fatal("a new version kept the old version's ETag")
			}
		})
	}
}

// TestMD5OnlyWhenAsked: an encrypted write computes no MD5 unless asked for
// one (to check a client's Content-MD5); a plain write always does.
func TestMD5OnlyWhenAsked(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinPartSize = 1 })
	e.bucket(t, "sealed", true)
	e.bucket(t, "plain", false)
	data := randBytes(200 << 10)
	want := md5.Sum(data)
	for _, tc := range []struct {
		bucket string
		ask    bool
		want   []byte
	}{
		{bucket: "sealed", ask: false, want: nil},
		{bucket: "sealed", ask: true, want: want[:]},
		{bucket: "plain", ask: false, want: want[:]},
	} {
		t.Run(fmt.Sprintf("%s/ask=%v", tc.bucket, tc.ask), func(t *testing.T) {
			var seen, seenPart []byte
			o, err := e.store.Put(ctx, &PutInput{Bucket: tc.bucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), MD5: tc.ask,
				Verify: func(s *Sums) error { seen = s.MD5; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(seen, tc.want) {
				t.Fatalf("Put: Verify saw MD5 %x, want %x", seen, tc.want)
			}
			checkETag(t, o, data)
			u, err := e.store.CreateMultipart(ctx, tc.bucket, "m", meta.ObjectMeta{}, "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.store.UploadPart(ctx, &PartInput{Bucket: tc.bucket, Key: "m", UploadID: u.ID, Number: 1, Body: bytes.NewReader(data), Size: int64(len(data)), MD5: tc.ask,
				Verify: func(s *Sums) error { seenPart = s.MD5; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(seenPart, tc.want) {
				t.Fatalf("UploadPart: Verify saw MD5 %x, want %x", seenPart, tc.want)
			}
			if tc.bucket == "sealed" {
				if !randomPartTag.MatchString(p.ETag) || p.ETag == hex.EncodeToString(want[:]) {
					t.Fatalf("encrypted part ETag %s (its MD5 %x)", p.ETag, want)
				}
			} else if p.ETag != hex.EncodeToString(want[:]) {
				t.Fatalf("plain part ETag %s, want its MD5 %x", p.ETag, want)
			}
			m, err := e.store.CompleteMultipart(ctx, tc.bucket, "m", u.ID, []CompletePart{{Number: 1, ETag: `"` + p.ETag + `"`}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			mm := md5.Sum(want[:])
			if tc.bucket == "sealed" {
				if !encryptedETag.MatchString(m.ETag) || !strings.HasSuffix(m.ETag, "-1") || m.ETag == fmt.Sprintf("%x-1", mm) {
					t.Fatalf("encrypted multipart ETag %s", m.ETag)
				}
			} else if m.ETag != fmt.Sprintf("%x-1", mm) {
				t.Fatalf("plain multipart ETag %s, want %x-1", m.ETag, mm)
			}
		})
	}
}

// TestETagFollowsStoredEncryption: when the bucket's setting flips between
// writing the data and committing it, the data is rewritten under the new
// setting and the ETag follows what is stored: an encrypted upload
// completed plain gets S3's MD5-of-MD5s ETag (the part MD5s computed while
// rewriting), a plain one completed encrypted a random one.
func TestETagFollowsStoredEncryption(t *testing.T) {
	for _, start := range []bool{true, false} {
		t.Run(fmt.Sprintf("from-encrypted=%v", start), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MinPartSize = 1 })
			e.bucket(t, "bkt", start)
			u, err := e.store.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{}, "")
			if err != nil {
				t.Fatal(err)
			}
			d := [][]byte{randBytes(70 << 10), randBytes(5), randBytes(3000)}
			var parts []CompletePart
			var md5s []byte
			var all []byte
			for i, data := range d {
				p, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: int32(i + 1), Body: bytes.NewReader(data), Size: int64(len(data))})
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, CompletePart{Number: int32(i + 1), ETag: p.ETag})
				sum := md5.Sum(data)
				md5s = append(md5s, sum[:]...)
				all = append(all, data...)
			}
			if err := e.store.SetBucketEncryption(ctx, "bkt", !start); err != nil {
				t.Fatal(err)
			}
			o, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, parts, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%x-3", md5.Sum(md5s))
			if start {
				if o.Encryption != nil || o.ETag != want {
					t.Fatalf("completed plain: encrypted %v, ETag %s, want %s", o.Encryption != nil, o.ETag, want)
				}
			} else if o.Encryption == nil || !encryptedETag.MatchString(o.ETag) || !strings.HasSuffix(o.ETag, "-3") || o.ETag == want {
				t.Fatalf("completed encrypted: encrypted %v, ETag %s", o.Encryption != nil, o.ETag)
			}
			if !bytes.Equal(e.mustGet(t, "bkt", "m"), all) {
				t.Fatal("content differs")
			}
			rep, err := e.store.Scrub(ctx, ScrubOptions{})
			if err != nil || len(rep.Damaged) != 0 {
				t.Fatalf("scrub: %v %+v", err, rep.Damaged)
			}
		})
	}
}

// TestScrubEncryptedETags: scrub passes encrypted objects, whose ETags are
// no MD5, and still catches a plain object whose data does not match its
// MD5 ETag.
func TestScrubEncryptedETags(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "sealed", true)
	e.bucket(t, "plain", false)
	e.put(t, "sealed", "small", randBytes(100))
	e.put(t, "sealed", "big", randBytes(300<<10))
	e.put(t, "plain", "big", randBytes(300<<10))
	rep, err := e.store.Scrub(ctx, ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects != 3 || len(rep.Damaged) != 0 {
		t.Fatalf("scrub: %d objects, damaged %+v", rep.Objects, rep.Damaged)
	}
	// A plain object whose ETag is not its data's MD5 is damage.
	err = e.db.Update(ctx, func(tx *meta.Txn) error {
		o, err := tx.GetObject("plain", "big")
		if err != nil {
			return err
		}
		o.ETag = strings.Repeat("0", 32)
		return tx.PutObject(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = e.store.Scrub(ctx, ScrubOptions{Bucket: "plain"})
	if err != nil || len(rep.Damaged) != 1 || !strings.Contains(rep.Damaged[0].Err, "does not match ETag") {
		t.Fatalf("scrub of a plain object with a wrong ETag: %v %+v", err, rep)
	}
}

// TestReservedBucketNames: names the daemon's listener routes to itself
// cannot be buckets, whichever door asks.
func TestReservedBucketNames(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"health", "sealfs-admin"} {
		err := e.store.CreateBucket(ctx, name, "")
		if !errors.Is(err, ErrInvalidBucketName) || !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("CreateBucket(%q): %v", name, err)
		}
	}
	for _, name := range []string{"healthy", "sealfs-admins", "my-health"} {
		if err := e.store.CreateBucket(ctx, name, ""); err != nil {
			t.Fatalf("CreateBucket(%q): %v", name, err)
		}
	}
}
