package s3_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestCopyObject(t *testing.T) {
	e := newEnv(t)
	c := e.client
	e.mkBucket("src", true)
	e.mkBucket("dst", false)
	data := pattern(100<<10, 3)
	put, err := c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a b/obj"), Body: strings.NewReader(string(data)),
		ContentType: aws.String("text/x-src"), Metadata: map[string]string{"origin": "src"}})
	if err != nil {
		t.Fatal(err)
	}
	// The source is encrypted: its ETag is its version's own, no MD5; the
	// plain copy's is the MD5.
	etag := aws.ToString(put.ETag)
	if etag == `"`+md5hex(data)+`"` {
		t.Fatalf("encrypted source's ETag %s is its MD5", etag)
	}
	// COPY (the default directive): metadata follows the source; the copy
	// follows the destination bucket, plain here.
	cp, err := c.CopyObject(e.ctx(), &awss3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String(url.PathEscape("src") + "/" + "a%20b/obj")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cp.CopyObjectResult.ETag) != `"`+md5hex(data)+`"` || cp.ServerSideEncryption != "" || cp.CopyObjectResult.LastModified == nil {
		t.Fatalf("CopyObject result %+v SSE %q", cp.CopyObjectResult, cp.ServerSideEncryption)
	}
	h, err := c.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(h.ContentType) != "text/x-src" || h.Metadata["origin"] != "src" || h.ServerSideEncryption != "" {
		t.Fatalf("COPY directive: %q %v %q", aws.ToString(h.ContentType), h.Metadata, h.ServerSideEncryption)
	}
	if got := e.get("dst", "copy"); string(got) != string(data) {
		t.Fatal("copy has other bytes")
	}
	// REPLACE takes the request's metadata; into an encrypting bucket the
	// copy is encrypted.
	cp, err = c.CopyObject(e.ctx(), &awss3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("replaced"), CopySource: aws.String("dst/copy"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/x-new"), Metadata: map[string]string{"fresh": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatal("copy into an encrypting bucket is not reported encrypted")
	}
	h, err = c.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("replaced")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(h.ContentType) != "text/x-new" || h.Metadata["fresh"] != "yes" || h.Metadata["origin"] != "" {
		t.Fatalf("REPLACE directive: %q %v", aws.ToString(h.ContentType), h.Metadata)
	}
	// Copy-source conditions.
	mod := aws.ToTime(h.LastModified)
	for _, tc := range []struct {
		name string
		in   awss3.CopyObjectInput
		code string
	}{
		{name: "if-match hit", in: awss3.CopyObjectInput{CopySourceIfMatch: aws.String(etag)}},
		{name: "if-match miss", in: awss3.CopyObjectInput{CopySourceIfMatch: aws.String(`"x"`)}, code: "PreconditionFailed"},
		{name: "if-none-match hit", in: awss3.CopyObjectInput{CopySourceIfNoneMatch: aws.String(etag)}, code: "PreconditionFailed"},
		{name: "if-modified-since future", in: awss3.CopyObjectInput{CopySourceIfModifiedSince: aws.Time(mod.Add(time.Hour))}, code: "PreconditionFailed"},
		{name: "if-unmodified-since past", in: awss3.CopyObjectInput{CopySourceIfUnmodifiedSince: aws.Time(mod.Add(-time.Hour))}, code: "PreconditionFailed"},
		{name: "if-unmodified-since future", in: awss3.CopyObjectInput{CopySourceIfUnmodifiedSince: aws.Time(mod.Add(time.Hour))}},
		{name: "missing source", in: awss3.CopyObjectInput{CopySource: aws.String("src/absent")}, code: "NoSuchKey"},
		{name: "missing bucket", in: awss3.CopyObjectInput{CopySource: aws.String("nosuch/absent")}, code: "NoSuchBucket"},
		{name: "to itself unchanged", in: awss3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String("dst/copy")}, code: "InvalidRequest"},
		{name: "bad directive", in: awss3.CopyObjectInput{MetadataDirective: "MERGE"}, code: "InvalidArgument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Bucket == nil {
				in.Bucket, in.Key = aws.String("dst"), aws.String("cond")
			}
			if in.CopySource == nil {
				in.CopySource = aws.String("src/a%20b/obj")
			}
			_, err := c.CopyObject(e.ctx(), &in)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.code)
		})
	}
}

func TestListings(t *testing.T) {
	e := newEnv(t)
	c := e.client
	e.mkBucket("list", false)
	keys := []string{"a", "b/1", "b/2", "b/3/x", "c", "d/1", "e e", "f&<>\"'", "g\u00e9"}
	for _, k := range keys {
		e.put("list", k, []byte(k))
	}
	// V2: flat, paged by continuation token.
	var got []string
	var token *string
	pages := 0
	for {
		out, err := c.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(4), ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if aws.ToInt32(out.KeyCount) != int32(len(out.Contents)) {
			t.Errorf("KeyCount %d for %d objects", aws.ToInt32(out.KeyCount), len(out.Contents))
		}
		for _, o := range out.Contents {
			got = append(got, aws.ToString(o.Key))
			if o.StorageClass != types.ObjectStorageClassStandard || aws.ToString(o.ETag) != `"`+md5hex([]byte(aws.ToString(o.Key)))+`"` || o.Owner != nil {
				t.Errorf("entry %+v", o)
			}
			if !slices.Contains(o.ChecksumAlgorithm, types.ChecksumAlgorithmCrc32) {
				t.Errorf("entry %s: checksum algorithm %v, want the CRC32 the SDK sent", aws.ToString(o.Key), o.ChecksumAlgorithm)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	if !slices.Equal(got, keys) || pages != 3 {
		t.Fatalf("V2 paged listing (%d pages): %q", pages, got)
	}
	// V2 with a delimiter, a prefix, start-after and fetch-owner.
	out, err := c.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("list"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	for _, p := range out.CommonPrefixes {
		cps = append(cps, aws.ToString(p.Prefix))
	}
	if !slices.Equal(cps, []string{"b/", "d/"}) || len(out.Contents) != 5 || aws.ToInt32(out.KeyCount) != 7 {
		t.Fatalf("delimited: prefixes %q, %d objects, KeyCount %d", cps, len(out.Contents), aws.ToInt32(out.KeyCount))
	}
	out, err = c.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("list"), Prefix: aws.String("b/"), Delimiter: aws.String("/"), StartAfter: aws.String("b/1"), FetchOwner: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "b/2" || out.Contents[0].Owner == nil || len(out.CommonPrefixes) != 1 {
		t.Fatalf("prefix+start-after: %+v %+v", out.Contents, out.CommonPrefixes)
	}
	out, err = c.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(0)})
	if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) {
		t.Fatalf("max-keys=0: %+v %v", out, err)
	}
	// V1 with a marker; owner always present.
	v1, err := c.ListObjects(e.ctx(), &awss3.ListObjectsInput{Bucket: aws.String("list"), Marker: aws.String("b/3/x"), MaxKeys: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Contents) != 2 || aws.ToString(v1.Contents[0].Key) != "c" || !aws.ToBool(v1.IsTruncated) || aws.ToString(v1.NextMarker) != "d/1" || v1.Contents[0].Owner == nil {
		t.Fatalf("V1 with marker: %+v next %q", v1.Contents, aws.ToString(v1.NextMarker))
	}
	// encoding-type=url: keys come back encoded (aws-sdk-go-v2 leaves
	// them so; boto3 decodes them).
	v1, err = c.ListObjects(e.ctx(), &awss3.ListObjectsInput{Bucket: aws.String("list"), EncodingType: types.EncodingTypeUrl, Prefix: aws.String("e")})
	if err != nil || len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != "e%20e" {
		t.Fatalf("V1 encoding-type=url: %+v %v", v1, err)
	}
	resp := e.raw(http.MethodGet, e.https.URL, "/list?list-type=2&encoding-type=url&prefix=f", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	mustContain(t, string(body), "<Key>f%26%3C%3E%22%27</Key>")
	resp = e.raw(http.MethodGet, e.https.URL, "/list?list-type=2&prefix=f", nil, nil)
	body, _ = io.ReadAll(resp.Body)
	mustContain(t, string(body), "<Key>f&amp;&lt;&gt;&#34;&#39;</Key>")
	for _, q := range []string{"max-keys=-1", "max-keys=x", "encoding-type=base64", "list-type=2&continuation-token=%25%25"} {
		wantError(t, e.raw(http.MethodGet, e.https.URL, "/list?"+q, nil, nil), 400, "InvalidArgument")
	}
	// ListObjectVersions: every object once, version "null", latest.
	var versions []string
	var km *string
	for {
		vo, err := c.ListObjectVersions(e.ctx(), &awss3.ListObjectVersionsInput{Bucket: aws.String("list"), MaxKeys: aws.Int32(5), KeyMarker: km})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vo.Versions {
			if aws.ToString(v.VersionId) != "null" || !aws.ToBool(v.IsLatest) {
				t.Errorf("version %+v", v)
			}
			versions = append(versions, aws.ToString(v.Key))
		}
		if !aws.ToBool(vo.IsTruncated) {
			break
		}
		km = vo.NextKeyMarker
	}
	if !slices.Equal(versions, keys) {
		t.Fatalf("versions %q", versions)
	}
	// The document is well-formed for a plain XML parser too.
	resp = e.raw(http.MethodGet, e.https.URL, "/list?prefix=g", nil, nil)
	var doc struct {
		Contents []struct{ Key string }
	}
	if err := xml.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Contents) != 1 || doc.Contents[0].Key != "g\u00e9" {
		t.Fatalf("V1 document: %+v %v", doc, err)
	}
}
