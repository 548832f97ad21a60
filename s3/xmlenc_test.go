package s3

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sealfs/sealfs/s3/s3xml"
)

// listFixtures are listings whose strings exercise every escaping rule.
func listFixtures(key string) (*s3xml.ListBucketResult, *s3xml.ListBucketResultV2) {
	owner := &s3xml.Owner{ID: "abc&def", DisplayName: "<sealfs>"}
	objs := []s3xml.Object{
		{Key: key, LastModified: s3xml.NewTime(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))), ETag: `"etag"`, Size: 42, StorageClass: "STANDARD"},
		{Key: "plain", ETag: `"e"`, ChecksumAlgorithm: "CRC32", ChecksumType: "FULL_OBJECT", Size: 0, Owner: owner, StorageClass: "STANDARD"},
		{Key: "", Owner: &s3xml.Owner{ID: "id"}},
	}
	cps := []s3xml.CommonPrefix{{Prefix: key + "/"}, {Prefix: "p/"}}
	v1 := &s3xml.ListBucketResult{Name: "bucket", Prefix: key, Marker: "m" + key, NextMarker: key, MaxKeys: 1000, Delimiter: "/", IsTruncated: true,
		Contents: objs, CommonPrefixes: cps}
	v2 := &s3xml.ListBucketResultV2{Name: "bucket", Prefix: key, MaxKeys: 7, Delimiter: key, IsTruncated: false, KeyCount: 5,
		ContinuationToken: "tok", NextContinuationToken: "next" + key, StartAfter: key, EncodingType: "url", Contents: objs, CommonPrefixes: cps}
	return v1, v2
}

func checkSame(t testing.TB, what string, fast []byte, v any) {
	t.Helper()
	want, err := s3xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fast, want) {
		t.Fatalf("%s differs from encoding/xml:\nfast: %s\nwant: %s", what, fast, want)
	}
}

func TestListEncodersMatchEncodingXML(t *testing.T) {
	for _, key := range []string{
		"", "simple/key.txt", `all "five" <markup> & 'chars'`, "tab\there\nnewline\rreturn",
		"\x00\x01\x1f control", "bad utf8 \xff\xfe end", "é漢字🙂", "\uFFFD literal replacement", "\uFFFE\uFFFF nonchars", "\xed\xa0\x80 surrogate",
	} {
		v1, v2 := listFixtures(key)
		checkSame(t, fmt.Sprintf("V1 %q", key), appendListV1(nil, v1), v1)
		checkSame(t, fmt.Sprintf("V2 %q", key), appendListV2(nil, v2), v2)
		empty1, empty2 := &s3xml.ListBucketResult{Name: key}, &s3xml.ListBucketResultV2{Name: key}
		checkSame(t, "empty V1", appendListV1(nil, empty1), empty1)
		checkSame(t, "empty V2", appendListV2(nil, empty2), empty2)
	}
}

func FuzzListEncoders(f *testing.F) {
	for _, s := range []string{"a", "<&>", "\xff", "\t\r\n", "é"} {
		f.Add(s, int64(3))
	}
	f.Fuzz(func(t *testing.T, key string, size int64) {
		v1, v2 := listFixtures(key)
		v1.Contents[0].Size, v2.Contents[0].Size = size, size
		checkSame(t, "V1", appendListV1(nil, v1), v1)
		checkSame(t, "V2", appendListV2(nil, v2), v2)
	})
}

func BenchmarkListEncoding(b *testing.B) {
	res := &s3xml.ListBucketResultV2{Name: "bench", MaxKeys: 1000, IsTruncated: true, KeyCount: 1000, NextContinuationToken: "dG9rZW4"}
	for i := 0; i < 1000; i++ {
		res.Contents = append(res.Contents, s3xml.Object{Key: fmt.Sprintf("dir/sub/object-%06d.dat", i), LastModified: s3xml.NewTime(time.Now()),
			ETag: `"0123456789abcdef0123456789abcdef"`, ChecksumAlgorithm: "CRC64NVME", ChecksumType: "FULL_OBJECT", Size: 1 << 20, StorageClass: "STANDARD"})
	}
	b.Run("appender", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = appendListV2(buf[:0], res)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-xml", func(b *testing.B) {
		for b.Loop() {
			if _, err := s3xml.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
