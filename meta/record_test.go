package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

func fullObject() *Object {
	return &Object{
		ID:   ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Size: 1<<40 + 3,
		ETag: `"9b2cf535f27731c974343645a3985328-2"`,
		Checksums: []Checksum{
			{Algorithm: "CRC32C", Value: "yZRlqg=="},
			{Algorithm: "SHA256", Value: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		},
		LastModified: time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC),
		Meta: ObjectMeta{
			ContentType:        "text/plain; charset=utf-8",
			ContentEncoding:    "gzip",
			ContentDisposition: `attachment; filename="a.txt"`,
			ContentLanguage:    "fr-CA",
			CacheControl:       "max-age=60",
			Expires:            "Thu, 01 Dec 2034 16:00:00 GMT",
			User:               map[string]string{"mode": "33188", "uid": "1000", "gid": "1000", "mtime": "1700000000.5", "empty": "", "": "nameless"},
		},
		Encryption: &Encryption{
			Algorithm:  "aws:kms",
			KeyID:      "sealfs/bucket/photos",
			KeyVersion: 7,
			WrappedKey: bytes.Repeat([]byte{0xa5, 0x00}, 30),
		},
		Blobs: []BlobRef{
			{ID: BlobID{0xff, 1}, Index: 1, Size: 5 << 20},
			{ID: BlobID{0xfe, 2}, Index: 1<<32 - 1, Size: 17},
		},
		Inline:                true,
		ReplicationStatus:     "REPLICA",
		ReplicaSourceModified: time.Date(2024, 2, 29, 23, 59, 57, 5, time.UTC),
		FormatVersion:         FormatVersion,
	}
}

func TestObjectRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		obj  *Object
	}{
		{name: "every field", obj: fullObject()},
		{name: "zero", obj: &Object{FormatVersion: FormatVersion}},
		{name: "empty encryption", obj: &Object{Encryption: &Encryption{}, FormatVersion: FormatVersion}},
		{name: "negative size and old time", obj: &Object{
			Size: -1, LastModified: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), FormatVersion: FormatVersion,
		}},
		{name: "empty checksum entry", obj: &Object{Checksums: []Checksum{{}}, FormatVersion: FormatVersion}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeObject(nil, tc.obj)
			var got Object
			if err := decodeObject(data, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(&got, tc.obj) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", &got, tc.obj)
			}
		})
	}
}

func TestBucketRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		bucket *Bucket
	}{
		{name: "every field", bucket: &Bucket{
			Created:      time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
			Region:       "eu-west-3",
			EncryptionOn: true,
			MasterKeyID:  "bucket/photos",
			Replication:  []byte("<ReplicationConfiguration/>"),
		}},
		{name: "zero", bucket: &Bucket{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Bucket
			if err := decodeBucket(encodeBucket(nil, tc.bucket), &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(&got, tc.bucket) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", &got, tc.bucket)
			}
		})
	}
}

func TestUploadAndPartRecordRoundTrip(t *testing.T) {
	full := fullObject()
	u := &Upload{
		ObjectID:          full.ID,
		Initiated:         time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC),
		Meta:              full.Meta,
		Encryption:        full.Encryption,
		ChecksumAlgorithm: "CRC64NVME",
	}
	var gotU Upload
	if err := decodeUpload(encodeUpload(nil, u), &gotU); err != nil {
		t.Fatalf("decode upload: %v", err)
	}
	if !reflect.DeepEqual(&gotU, u) {
		t.Fatalf("upload round trip:\n got %+v\nwant %+v", &gotU, u)
	}

	p := &Part{
		Blob:         BlobRef{ID: BlobID{9, 9, 9}, Index: 3, Size: 5 << 20},
		ETag:         `"d41d8cd98f00b204e9800998ecf8427e"`,
		Size:         5 << 20,
		LastModified: time.Date(2025, 5, 6, 7, 8, 10, 0, time.UTC),
		Checksums:    []Checksum{{Algorithm: "CRC32", Value: "AAAAAA=="}},
	}
	var gotP Part
	if err := decodePart(encodePart(nil, p), &gotP); err != nil {
		t.Fatalf("decode part: %v", err)
	}
	if !reflect.DeepEqual(&gotP, p) {
		t.Fatalf("part round trip:\n got %+v\nwant %+v", &gotP, p)
	}
}

// The decoder must not keep references into its input: Badger reuses the
// memory of a value once item.Value returns.
func TestDecodeDoesNotAlias(t *testing.T) {
	data := encodeObject(nil, fullObject())
	var o Object
	if err := decodeObject(data, &o); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xee
	}
	if !reflect.DeepEqual(&o, fullObject()) {
		t.Fatalf("decoded record changed with its input: %+v", &o)
	}
}

func TestEncodingDeterministic(t *testing.T) {
	a := fullObject()
	b := fullObject()
	// Build b's map in another order; Go randomises iteration anyway.
	b.Meta.User = map[string]string{}
	for _, k := range []string{"uid", "", "mtime", "empty", "gid", "mode"} {
		b.Meta.User[k] = a.Meta.User[k]
	}
	first := encodeObject(nil, a)
	for range 20 {
		if got := encodeObject(nil, b); !bytes.Equal(got, first) {
			t.Fatalf("encodings differ:\n% x\n% x", got, first)
		}
	}
}

// A field with a tag this version does not know is skipped.
func TestDecodeSkipsUnknownTags(t *testing.T) {
	o := fullObject()
	data := encodeObject(nil, o)
	data = appendString(data, 99, "from the future")
	data = appendNested(data, 1000, func(b []byte) []byte { return appendString(b, 1, "nested") })
	var got Object
	if err := decodeObject(data, &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(&got, o) {
		t.Fatalf("got %+v, want %+v", &got, o)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	valid := encodeObject(nil, fullObject())
	field := func(tag uint64, val []byte) []byte {
		b := binary.AppendUvarint(nil, tag)
		b = binary.AppendUvarint(b, uint64(len(val)))
		return append(b, val...)
	}
	rec := func(fields ...[]byte) []byte {
		return append([]byte{FormatVersion}, bytes.Join(fields, nil)...)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "unknown version", data: []byte{FormatVersionExtents + 1}},
		{name: "version zero", data: []byte{0}},
		{name: "truncated", data: valid[:len(valid)-1]},
		{name: "length past end", data: rec([]byte{byte(objectETag), 5, 'a'})},
		{name: "tag zero", data: rec(field(0, nil))},
		{name: "malformed tag", data: rec([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{name: "malformed length", data: rec([]byte{byte(objectETag), 0x80})},
		{name: "short id", data: rec(field(objectID, []byte{1, 2, 3}))},
		{name: "duplicate id", data: rec(field(objectID, make([]byte, 16)), field(objectID, make([]byte, 16)))},
		{name: "duplicate meta", data: rec(field(objectMeta, nil), field(objectMeta, nil))},
		{name: "size not filling value", data: rec(field(objectSize, []byte{2, 0}))},
		{name: "size malformed", data: rec(field(objectSize, []byte{0x80}))},
		{name: "bool two", data: rec(field(objectInline, []byte{2}))},
		{name: "bool long", data: rec(field(objectInline, []byte{1, 1}))},
		{name: "nanoseconds too big", data: rec(field(objectLastModified, binary.AppendUvarint([]byte{2}, 1e9)))},
		{name: "time trailing byte", data: rec(field(objectLastModified, []byte{2, 0, 0}))},
		{name: "blob index too big", data: rec(field(objectBlob, field(blobIndex, binary.AppendUvarint(nil, 1<<32))))},
		{name: "nested truncated", data: rec(field(objectChecksum, []byte{byte(checksumValue), 9}))},
		{name: "user entry without name", data: rec(field(objectMeta, field(metaUser, field(userValue, []byte("v")))))},
		{name: "user name twice", data: rec(field(objectMeta, append(
			field(metaUser, field(userName, []byte("a"))),
			field(metaUser, field(userName, []byte("a")))...)))},
		{name: "key version too big", data: rec(field(objectEncryption, field(encKeyVersion, binary.AppendUvarint(nil, 1<<33))))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o Object
			err := decodeObject(tc.data, &o)
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("decode % x: got %v, want ErrCorruptRecord", tc.data, err)
			}
		})
	}
}

func TestObjectRecordHelpers(t *testing.T) {
	o := fullObject()
	data := encodeObject(nil, o)
	size, err := objectRecordSize(data)
	if err != nil || size != o.Size {
		t.Fatalf("objectRecordSize = %d, %v; want %d", size, err, o.Size)
	}
	var ids []BlobID
	err = objectRecordBlobs(data, func(id BlobID) error { ids = append(ids, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []BlobID{o.Blobs[0].ID, o.Blobs[1].ID}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("blobs = %v, want %v", ids, want)
	}
	if _, err := objectRecordSize(data[:len(data)-2]); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("size of truncated record: got %v, want ErrCorruptRecord", err)
	}
}

func FuzzDecodeObject(f *testing.F) {
	f.Add(encodeObject(nil, fullObject()))
	f.Add(encodeObject(nil, &Object{}))
	f.Add(encodeObject(nil, &Object{Encryption: &Encryption{}, Checksums: []Checksum{{}}}))
	f.Add(encodePart(nil, &Part{Blob: BlobRef{ID: BlobID{1}}, ETag: "x"}))
	f.Add([]byte{FormatVersion, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Object
		if err := decodeObject(data, &a); err != nil {
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("error %v does not wrap ErrCorruptRecord", err)
			}
			return
		}
		again := encodeObject(nil, &a)
		var b Object
		if err := decodeObject(again, &b); err != nil {
			t.Fatalf("decoding a re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(&a, &b) {
			t.Fatalf("re-encoded record decodes differently:\n%+v\n%+v", &a, &b)
		}
		if !bytes.Equal(encodeObject(nil, &b), again) {
			t.Fatalf("encoding is not stable")
		}
	})
}

func FuzzDecodeBucket(f *testing.F) {
	f.Add(encodeBucket(nil, &Bucket{
		Created: time.Unix(1700000000, 5), Region: "us-east-1", EncryptionOn: true,
		MasterKeyID: "k", Replication: []byte{1, 2, 3},
	}))
	f.Add(encodeBucket(nil, &Bucket{}))
	f.Add([]byte{recordVersion, byte(bucketCreated), 1, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Bucket
		if err := decodeBucket(data, &a); err != nil {
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("error %v does not wrap ErrCorruptRecord", err)
			}
			return
		}
		again := encodeBucket(nil, &a)
		var b Bucket
		if err := decodeBucket(again, &b); err != nil {
			t.Fatalf("decoding a re-encoded record: %v", err)
		}
		if !reflect.DeepEqual(&a, &b) {
			t.Fatalf("re-encoded record decodes differently:\n%+v\n%+v", &a, &b)
		}
	})
}

func BenchmarkDecodeObject(b *testing.B) {
	o := fullObject()
	o.Encryption = nil
	o.Meta.User = map[string]string{"mode": "33188", "uid": "1000", "gid": "1000", "mtime": "1700000000"}
	data := encodeObject(nil, o)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var got Object
		if err := decodeObject(data, &got); err != nil {
			b.Fatal(err)
		}
	}
}
