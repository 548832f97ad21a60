package meta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// A record with extents (holes, ranges of shared blobs, a borrowed wrapped
// key) round-trips under version 2; one without stays version 1, byte for
// byte what the first release wrote; either version with the other's
// fields is refused.
func TestObjectRecordExtents(t *testing.T) {
	o := fullObject()
	o.Inline = false
	o.Encryption.KeyObject = ObjectID{9, 9}
	o.Blobs = []BlobRef{
		{ID: BlobID{0xff, 1}, Size: 100, Off: 0, BlobSize: 1 << 30, Owner: ObjectID{9, 9}},
		{Hole: true, Size: 4 << 30},
		{ID: BlobID{0xfe, 2}, Size: 65536, Off: 65536, BlobSize: 131072},
		{ID: BlobID{0xff, 1}, Index: 3, Size: 7, Off: 100, BlobSize: 1 << 30, Owner: ObjectID{9, 9}},
	}
	o.FormatVersion = FormatVersionExtents
	data := encodeObject(nil, o)
	if data[0] != FormatVersionExtents {
		t.Fatalf("version byte %d, want %d", data[0], FormatVersionExtents)
	}
	var got Object
	if err := decodeObject(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, o) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", &got, o)
	}
	var ids []BlobID
	if err := objectRecordBlobs(data, func(id BlobID) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 { // the hole names no blob
		t.Fatalf("blobs %v", ids)
	}
	if n, err := objectRecordSize(data); err != nil || n != o.Size {
		t.Fatalf("size %d, %v", n, err)
	}

	// Version 1 is unchanged for whole blobs.
	plain := fullObject()
	v1 := encodeObject(nil, plain)
	if v1[0] != FormatVersion {
		t.Fatalf("a record of whole blobs is written with version %d", v1[0])
	}
	// Relabelled: refused both ways.
	for _, bad := range [][]byte{
		append([]byte{FormatVersion}, data[1:]...),
		append([]byte{FormatVersionExtents}, v1[1:]...),
	} {
		var o Object
		if err := decodeObject(bad, &o); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("relabelled record (version %d): %v, want ErrCorruptRecord", bad[0], err)
		}
	}
	if !bytes.Equal(encodeObject(nil, plain), v1) {
		t.Fatal("encoding is not deterministic")
	}
}

// The version 2 encoding, pinned: a record written by this release must
// decode the same in every later one (FORMAT.md section 12).
func TestObjectRecordExtentsGolden(t *testing.T) {
	o := &Object{ID: ObjectID{1}, Size: 3 << 20, FormatVersion: FormatVersionExtents,
		Encryption: &Encryption{Algorithm: "aws:kms", KeyID: "k", KeyVersion: 1, WrappedKey: []byte{7}, KeyObject: ObjectID{2}},
		Blobs: []BlobRef{{ID: BlobID{3}, Size: 1 << 20, BlobSize: 2 << 20, Owner: ObjectID{2}}, {Hole: true, Size: 1 << 20},
			{ID: BlobID{4}, Size: 1 << 20, Off: 65536, BlobSize: 2 << 20}}}
	const golden = "02" + "0110" + "01000000000000000000000000000000" + "020480808003" +
		"0724" + "0107" + "61777 33a6b6d73" + "02016b" + "030101" + "040107" + "0510" + "02000000000000000000000000000000" +
		"0830" + "0110" + "03000000000000000000000000000000" + "030480808001" + "060480808002" + "0710" + "02000000000000000000000000000000" +
		"0809" + "030480808001" + "040101" +
		"0823" + "0110" + "04000000000000000000000000000000" + "030480808001" + "0503808008" + "060480808002"
	want, err := hex.DecodeString(strings.ReplaceAll(golden, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := encodeObject(nil, o); !bytes.Equal(got, want) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
	}
	var got Object
	if err := decodeObject(want, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, o) {
		t.Fatalf("decoded %+v\nwant %+v", &got, o)
	}
}
