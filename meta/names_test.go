package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidBucketName(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{name: "abc", valid: true},
		{name: "my-bucket.2024", valid: true},
		{name: strings.Repeat("a", 63), valid: true},
		{name: "1.2.3", valid: true},
		{name: "192.168.5.4x", valid: true},
		{name: "ab", valid: false},
		{name: strings.Repeat("a", 64), valid: false},
		{name: "", valid: false},
		{name: "MyBucket", valid: false},
		{name: "my_bucket", valid: false},
		{name: "my bucket", valid: false},
		{name: "-bucket", valid: false},
		{name: "bucket-", valid: false},
		{name: ".bucket", valid: false},
		{name: "bucket.", valid: false},
		{name: "my..bucket", valid: false},
		{name: "192.168.5.4", valid: false},
		{name: "xn--bucket", valid: false},
		{name: "sthree-bucket", valid: false},
		{name: "amzn-s3-demo-bucket", valid: false},
		{name: "bucket-s3alias", valid: false},
		{name: "bucket--ol-s3", valid: false},
		{name: "bucket.mrap", valid: false},
		{name: "bucket--x-s3", valid: false},
		{name: "bucket--table-s3", valid: false},
		{name: "bu\x00ck", valid: false},
		{name: "bücket", valid: false},
	}
	for _, tc := range tests {
		err := ValidBucketName(tc.name)
		if tc.valid && err != nil {
			t.Errorf("ValidBucketName(%q) = %v, want nil", tc.name, err)
		}
		if !tc.valid && !errors.Is(err, ErrInvalidBucketName) {
			t.Errorf("ValidBucketName(%q) = %v, want ErrInvalidBucketName", tc.name, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		key   string
		valid bool
	}{
		{key: "a", valid: true},
		{key: "photos/2024/été.jpg", valid: true},
		{key: "日本語/キー", valid: true},
		{key: strings.Repeat("k", MaxKeyLen), valid: true},
		{key: "", valid: false},
		{key: strings.Repeat("k", MaxKeyLen+1), valid: false},
		{key: "bad\xffutf8", valid: false},
		{key: "nul\x00inside", valid: false},
	}
	for _, tc := range tests {
		err := ValidKey(tc.key)
		if tc.valid && err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", tc.key, err)
		}
		if !tc.valid && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", tc.key, err)
		}
	}
}

func TestNewUploadID(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewUploadID()
	}
	seen := make(map[string]bool)
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("id %q: want 32 lower-case hex digits", id)
		}
	}
	// Made one after another, ids sort by creation time: the time part
	// (first 16 digits) never decreases.
	for i := 1; i < len(ids); i++ {
		if ids[i][:16] < ids[i-1][:16] {
			t.Fatalf("id %d (%s) sorts before id %d (%s)", i, ids[i], i-1, ids[i-1])
		}
	}
}

// TestNewObjectID: ids are unique, begin with the time they were made in
// milliseconds, and sort by it, so a later object's inline data sorts after
// an earlier one's; blob ids stay random in their first byte, which spreads
// blob files over directories.
func TestNewObjectID(t *testing.T) {
	before := uint64(time.Now().UnixMilli())
	ids := make([]ObjectID, 1000)
	for i := range ids {
		ids[i] = NewObjectID()
	}
	after := uint64(time.Now().UnixMilli())
	seen := make(map[ObjectID]bool)
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		ms := binary.BigEndian.Uint64(id[:8]) >> 16
		if ms < before || ms > after {
			t.Fatalf("id %s: time %d ms, want %d..%d", id, ms, before, after)
		}
		if i > 0 && bytes.Compare(id[:6], ids[i-1][:6]) < 0 {
			t.Fatalf("id %d (%s) sorts before id %d (%s)", i, id, i-1, ids[i-1])
		}
	}
	first := NewObjectID()
	time.Sleep(2 * time.Millisecond)
	later := NewObjectID()
	if bytes.Compare(inlineKey(first), inlineKey(later)) >= 0 {
		t.Errorf("the inline key of %s, made 2 ms later, does not sort after that of %s", later, first)
	}

	firstBytes := make(map[byte]bool)
	for range 256 {
		id := NewBlobID()
		firstBytes[id[0]] = true
	}
	// 256 random bytes take ~162 distinct values; under 100 is not chance.
	if len(firstBytes) < 100 {
		t.Errorf("256 blob ids begin with only %d distinct bytes", len(firstBytes))
	}
}

func TestKeyPrefixesDistinct(t *testing.T) {
	ps := []byte{prefixBucket, prefixObject, prefixInline, prefixUpload, prefixPart, prefixFence, prefixReplication, prefixConfig}
	sorted := slices.Clone(ps)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ps) {
		t.Fatalf("key prefixes collide: %q", ps)
	}
}

func TestKeysParse(t *testing.T) {
	if b, k, ok := parseObjectKey(objectKey("bkt", "a/b\x01c")); !ok || b != "bkt" || k != "a/b\x01c" {
		t.Errorf("parseObjectKey = %q %q %v", b, k, ok)
	}
	if b, ok := parseBucketKey(bucketKey("bkt")); !ok || b != "bkt" {
		t.Errorf("parseBucketKey = %q %v", b, ok)
	}
	if b, k, id, ok := parseUploadKey(uploadKey("bkt", "dir/key", "0123")); !ok || b != "bkt" || k != "dir/key" || id != "0123" {
		t.Errorf("parseUploadKey = %q %q %q %v", b, k, id, ok)
	}
	if id, n, ok := parsePartKey(partKey("0123", 10000)); !ok || id != "0123" || n != 10000 {
		t.Errorf("parsePartKey = %q %d %v", id, n, ok)
	}
	if !bytes.HasPrefix(objectKey("bkt", "abc"), objectPrefix("bkt", "ab")) {
		t.Errorf("objectPrefix is not a prefix of the object key")
	}
	if bytes.HasPrefix(objectKey("bkt2", "x"), objectPrefix("bkt", "")) {
		t.Errorf("bucket prefix matches another bucket")
	}
	// Part keys sort by number.
	if bytes.Compare(partKey("u", 2), partKey("u", 10)) >= 0 {
		t.Errorf("part 2 does not sort before part 10")
	}
	// Upload keys sort by object key, then id: "a" before "a/b".
	if bytes.Compare(uploadKey("b", "a", "zz"), uploadKey("b", "a/b", "00")) >= 0 {
		t.Errorf("uploads of key a do not sort before those of a/b")
	}
	if bytes.Compare(uploadKeyAfter("b", "a"), uploadKey("b", "a", "\xff\xff")) <= 0 ||
		bytes.Compare(uploadKeyAfter("b", "a"), uploadKey("b", "a\x01", "0")) > 0 {
		t.Errorf("uploadKeyAfter is not between key a's uploads and the next key's")
	}
}

func TestSuccessor(t *testing.T) {
	tests := []struct {
		in, want []byte
	}{
		{in: []byte("ab/"), want: []byte("ab0")},
		{in: []byte{'a', 0xff, 0xff}, want: []byte{'b'}},
		{in: []byte{0xff}, want: nil},
		{in: []byte{}, want: nil},
	}
	for _, tc := range tests {
		if got := successor(tc.in); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("successor(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
