package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// sdkCode returns the S3 error code of an aws-sdk-go-v2 error.
func sdkCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantSDKCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sdkCode(err); got != code {
		t.Fatalf("error %v, want S3 code %s", err, code)
	}
}

// encryptedETagRE is the form of an encrypted object's ETag, unquoted:
// random hex and the number of parts, "-1" for one piece
// (cryptostore/sums.go).
var encryptedETagRE = regexp.MustCompile(`^[0-9a-f]{32}-[1-9][0-9]*$`)

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fill returns n bytes that differ between seeds.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed ^ byte(i>>13)
	}
	return b
}

func readAll(t *testing.T, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3SDKOperations drives every S3 operation sealfs serves with
// aws-sdk-go-v2 in its default configuration against the daemon.
func TestS3SDKOperations(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{})
	c := d.sdk()
	ctx := context.Background()
	b := aws.String

	// Buckets.
	for _, name := range []string{"sdk-plain", "sdk-sealed"} {
		if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b(name)}); err != nil {
			t.Fatal(err)
		}
	}
	// us-east-1: re-creating an owned bucket is 200, as on AWS.
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: b("sdk-plain")}); err != nil {
		t.Fatalf("re-creating an owned bucket in us-east-1: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: b("sdk-plain")}); err != nil {
		t.Fatal(err)
	}
	lb, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 2 {
		t.Fatalf("ListBuckets: %+v %v", lb, err)
	}
	loc, err := c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: b("sdk-plain")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("GetBucketLocation: %q %v", loc.LocationConstraint, err)
	}
	ver, err := c.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: b("sdk-plain")})
	if err != nil || ver.Status != "" {
		t.Fatalf("GetBucketVersioning: %+v %v", ver, err)
	}

	// Default encryption.
	_, err = c.GetBucketEncryption(ctx, &awss3.GetBucketEncryptionInput{Bucket: b("sdk-sealed")})
	wantSDKCode(t, err, "ServerSideEncryptionConfigurationNotFoundError")
	sse := func(alg types.ServerSideEncryption, key *string) *types.ServerSideEncryptionConfiguration {
		return &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: alg, KMSMasterKeyID: key}}}}
	}
	_, err = c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: b("sdk-sealed"), ServerSideEncryptionConfiguration: sse(types.ServerSideEncryptionAes256, nil)})
	wantSDKCode(t, err, "InvalidArgument")
	_, err = c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: b("sdk-sealed"), ServerSideEncryptionConfiguration: sse(types.ServerSideEncryptionAwsKms, b("my-key"))})
	wantSDKCode(t, err, "InvalidArgument")
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: b("sdk-sealed"), ServerSideEncryptionConfiguration: sse(types.ServerSideEncryptionAwsKms, nil)}); err != nil {
		t.Fatal(err)
	}
	ge, err := c.GetBucketEncryption(ctx, &awss3.GetBucketEncryptionInput{Bucket: b("sdk-sealed")})
	if err != nil || ge.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != types.ServerSideEncryptionAwsKms {
		t.Fatalf("GetBucketEncryption: %+v %v", ge, err)
	}

	// PutObject / GetObject / HeadObject with metadata, in both buckets.
	data := fill(1<<20+123, 1)
	var arn string
	for _, bucket := range []string{"sdk-plain", "sdk-sealed"} {
		sealed := bucket == "sdk-sealed"
		put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b(bucket), Key: b("dir/obj"), Body: bytes.NewReader(data),
			ContentType: b("application/x-sealfs"), CacheControl: b("no-store"), ContentDisposition: b("inline"), ContentLanguage: b("en"),
			ContentEncoding: b("identity"), Expires: aws.Time(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)), Metadata: map[string]string{"k": "v"},
			ServerSideEncryption: types.ServerSideEncryptionAes256}) // rule 4: changes nothing
		if err != nil {
			t.Fatal(err)
		}
		// A plain object's ETag is its MD5, an encrypted one's random.
		if (!sealed && aws.ToString(put.ETag) != `"`+md5Hex(data)+`"`) || (sealed && !encryptedETagRE.MatchString(strings.Trim(aws.ToString(put.ETag), `"`))) ||
			strings.Contains(aws.ToString(put.ETag), md5Hex(data)) != !sealed || aws.ToString(put.ChecksumCRC32) == "" {
			t.Fatalf("%s PutObject: ETag %s CRC32 %q", bucket, aws.ToString(put.ETag), aws.ToString(put.ChecksumCRC32))
		}
		if sealed != (put.ServerSideEncryption == types.ServerSideEncryptionAwsKms) {
			t.Fatalf("%s PutObject SSE %q", bucket, put.ServerSideEncryption)
		}
		if sealed {
			arn = aws.ToString(put.SSEKMSKeyId)
			if !strings.HasPrefix(arn, "arn:aws:kms:") {
				t.Fatalf("key id %q", arn)
			}
		}
		g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, g.Body); !bytes.Equal(got, data) {
			t.Fatalf("%s GetObject: other bytes", bucket)
		}
		if aws.ToString(g.ContentType) != "application/x-sealfs" || aws.ToString(g.CacheControl) != "no-store" || g.Metadata["k"] != "v" ||
			aws.ToString(g.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) || (sealed && aws.ToString(g.SSEKMSKeyId) != arn) || (!sealed && g.ServerSideEncryption != "") {
			t.Fatalf("%s GetObject headers: %+v", bucket, g)
		}
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b(bucket), Key: b("dir/obj")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt64(h.ContentLength) != int64(len(data)) || aws.ToString(h.ContentLanguage) != "en" || aws.ToString(h.ContentDisposition) != "inline" ||
			(sealed && aws.ToString(h.SSEKMSKeyId) != arn) {
			t.Fatalf("%s HeadObject: %+v", bucket, h)
		}
		// Ranges: closed, open, suffix, unsatisfiable.
		for rng, want := range map[string][]byte{"bytes=100-199": data[100:200], "bytes=1048570-": data[1048570:], "bytes=-10": data[len(data)-10:]} {
			g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), Range: b(rng)})
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, g.Body); !bytes.Equal(got, want) || aws.ToString(g.ContentRange) == "" {
				t.Fatalf("%s %s: %d bytes, Content-Range %q", bucket, rng, len(got), aws.ToString(g.ContentRange))
			}
		}
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), Range: b(fmt.Sprintf("bytes=%d-", len(data)))})
		wantSDKCode(t, err, "InvalidRange")
		// Conditional reads.
		etag := put.ETag
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), IfMatch: b(`"other"`)})
		wantSDKCode(t, err, "PreconditionFailed")
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), IfNoneMatch: etag})
		if !strings.Contains(fmt.Sprint(err), "304") {
			t.Fatalf("If-None-Match with the ETag: %v, want 304", err)
		}
		_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), IfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
		if !strings.Contains(fmt.Sprint(err), "304") {
			t.Fatalf("If-Modified-Since in the future: %v, want 304", err)
		}
		_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b(bucket), Key: b("dir/obj"), IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))})
		if !strings.Contains(fmt.Sprint(err), "412") {
			t.Fatalf("If-Unmodified-Since in the past: %v, want 412", err)
		}
		g, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b(bucket), Key: b("dir/obj"), ResponseContentType: b("text/override"), ResponseContentDisposition: b("attachment")})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, g.Body)
		if aws.ToString(g.ContentType) != "text/override" || aws.ToString(g.ContentDisposition) != "attachment" {
			t.Fatalf("response-* overrides: %q %q", aws.ToString(g.ContentType), aws.ToString(g.ContentDisposition))
		}
	}

	// Conditional PutObject.
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b("dir/obj"), Body: strings.NewReader("x"), IfNoneMatch: b("*")})
	wantSDKCode(t, err, "PreconditionFailed")
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b("once"), Body: strings.NewReader("x"), IfNoneMatch: b("*")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b("once"), Body: strings.NewReader("y"), IfMatch: b(`"` + md5Hex([]byte("z")) + `"`)})
	wantSDKCode(t, err, "PreconditionFailed")

	// CopyObject: follows the destination; directives; source conditions.
	cp, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-plain"), Key: b("from-sealed"), CopySource: b("sdk-sealed/dir/obj")})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ServerSideEncryption != "" || aws.ToString(cp.CopyObjectResult.ETag) != `"`+md5Hex(data)+`"` {
		t.Fatalf("copy into the plain bucket: %q %+v", cp.ServerSideEncryption, cp.CopyObjectResult)
	}
	cp, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-sealed"), Key: b("from-plain"), CopySource: b("sdk-plain/dir/obj"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: b("text/replaced"), Metadata: map[string]string{"new": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(cp.SSEKMSKeyId) != arn ||
		!encryptedETagRE.MatchString(strings.Trim(aws.ToString(cp.CopyObjectResult.ETag), `"`)) {
		t.Fatalf("copy into the encrypting bucket: %q %q ETag %s", cp.ServerSideEncryption, aws.ToString(cp.SSEKMSKeyId), aws.ToString(cp.CopyObjectResult.ETag))
	}
	h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("sdk-sealed"), Key: b("from-plain")})
	if err != nil || aws.ToString(h.ContentType) != "text/replaced" || h.Metadata["new"] != "1" || h.Metadata["k"] != "" {
		t.Fatalf("REPLACE directive: %+v %v", h, err)
	}
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-plain"), Key: b("c2"), CopySource: b("sdk-plain/dir/obj"), CopySourceIfNoneMatch: b(`"` + md5Hex(data) + `"`)})
	wantSDKCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-plain"), Key: b("c2"), CopySource: b("sdk-plain/dir/obj"), CopySourceIfMatch: b(`"x"`)})
	wantSDKCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-plain"), Key: b("c2"), CopySource: b("sdk-plain/dir/obj"), CopySourceIfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
	wantSDKCode(t, err, "PreconditionFailed")
	if _, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: b("sdk-plain"), Key: b("c2"), CopySource: b("sdk-plain/dir/obj"), CopySourceIfUnmodifiedSince: aws.Time(time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}

	// Listings: V2 (paged, delimited), V1, versions.
	for i := 0; i < 12; i++ {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b(fmt.Sprintf("list/%02d", i)), Body: strings.NewReader("l")}); err != nil {
			t.Fatal(err)
		}
	}
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: b("sdk-plain"), Prefix: b("list/"), MaxKeys: aws.Int32(5)})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) != 12 || !slices.IsSorted(keys) {
		t.Fatalf("paged V2 listing: %q", keys)
	}
	l2, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: b("sdk-plain"), Delimiter: b("/"), FetchOwner: aws.Bool(true), StartAfter: b("c")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l2.CommonPrefixes) != 2 || len(l2.Contents) != 3 || aws.ToString(l2.Contents[0].Key) != "c2" || l2.Contents[0].Owner == nil {
		t.Fatalf("delimited V2: %d prefixes, %d objects", len(l2.CommonPrefixes), len(l2.Contents))
	}
	l1, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: b("sdk-plain"), Prefix: b("list/"), Marker: b("list/09"), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(l1.Contents) != 2 || aws.ToString(l1.Contents[0].Key) != "list/10" {
		t.Fatalf("V1 with marker: %+v %v", l1, err)
	}
	lv, err := c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: b("sdk-plain"), Prefix: b("list/0")})
	if err != nil || len(lv.Versions) != 10 || aws.ToString(lv.Versions[0].VersionId) != "null" || !aws.ToBool(lv.Versions[0].IsLatest) {
		t.Fatalf("ListObjectVersions: %+v %v", lv, err)
	}

	// Deletes.
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b("sdk-plain"), Key: b("never-existed")}); err != nil {
		t.Fatalf("DeleteObject of an absent key: %v", err)
	}
	var ids []types.ObjectIdentifier
	for _, k := range keys {
		ids = append(ids, types.ObjectIdentifier{Key: b(k)})
	}
	do, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("sdk-plain"), Delete: &types.Delete{Objects: ids[:6]}})
	if err != nil || len(do.Deleted) != 6 {
		t.Fatalf("DeleteObjects: %+v %v", do, err)
	}
	do, err = c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: b("sdk-plain"), Delete: &types.Delete{Objects: ids[6:], Quiet: aws.Bool(true)}})
	if err != nil || len(do.Deleted) != 0 || len(do.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects: %+v %v", do, err)
	}

	// Multipart, with the real 5 MiB minimum.
	const part = 5 << 20
	cr, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: b("sdk-sealed"), Key: b("mp"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cr.SSEKMSKeyId) != arn {
		t.Fatalf("CreateMultipartUpload key %q", aws.ToString(cr.SSEKMSKeyId))
	}
	p1 := fill(part, 2)
	u1, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("sdk-sealed"), Key: b("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(p1), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil || aws.ToString(u1.SSEKMSKeyId) != arn {
		t.Fatalf("UploadPart: %+v %v", u1, err)
	}
	u2, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: b("sdk-sealed"), Key: b("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(2),
		CopySource: b("sdk-plain/dir/obj"), CopySourceRange: b("bytes=0-99")})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: b("sdk-sealed"), Key: b("mp"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 2 {
		t.Fatalf("ListParts: %+v %v", lp, err)
	}
	lu, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: b("sdk-sealed")})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("ListMultipartUploads: %+v %v", lu, err)
	}
	// A part below 5 MiB that is not the last one.
	cr2, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: b("sdk-sealed"), Key: b("small")})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("sdk-sealed"), Key: b("small"), UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(fill(part-1, 3))})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: b("sdk-sealed"), Key: b("small"), UploadId: cr2.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("tail")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: b("sdk-sealed"), Key: b("small"), UploadId: cr2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: s1.ETag}, {PartNumber: aws.Int32(2), ETag: s2.ETag}}}})
	wantSDKCode(t, err, "EntityTooSmall")
	if _, err := c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: b("sdk-sealed"), Key: b("small"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: b("sdk-sealed"), Key: b("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: u1.ETag, ChecksumCRC32: u1.ChecksumCRC32},
			{PartNumber: aws.Int32(2), ETag: u2.CopyPartResult.ETag},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	sum1, sum2 := md5.Sum(p1), md5.Sum(data[:100])
	all := md5.Sum(append(sum1[:], sum2[:]...))
	// Encrypted: a random ETag with the part count, not S3's MD5 of MD5s.
	if e := strings.Trim(aws.ToString(done.ETag), `"`); !encryptedETagRE.MatchString(e) || !strings.HasSuffix(e, "-2") ||
		e == hex.EncodeToString(all[:])+"-2" || aws.ToString(done.SSEKMSKeyId) != arn {
		t.Fatalf("CompleteMultipartUpload: ETag %s key %q", aws.ToString(done.ETag), aws.ToString(done.SSEKMSKeyId))
	}
	g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("sdk-sealed"), Key: b("mp")})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, g.Body); !bytes.Equal(got, append(append([]byte{}, p1...), data[:100]...)) || aws.ToString(g.SSEKMSKeyId) != arn {
		t.Fatal("multipart object reads back wrong")
	}

	// Errors clients rely on.
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: b("sdk-plain"), Key: b("absent")})
	wantSDKCode(t, err, "NoSuchKey")
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b(strings.Repeat("k", 1025)), Body: strings.NewReader("x")})
	wantSDKCode(t, err, "KeyTooLongError")
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-plain"), Key: b("meta"), Body: strings.NewReader("x"), Metadata: map[string]string{"big": strings.Repeat("m", 2049)}})
	wantSDKCode(t, err, "MetadataTooLarge")
	_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: b("sdk-plain")})
	wantSDKCode(t, err, "BucketNotEmpty")

	// Bucket encryption off again: 204, twice; existing objects keep theirs.
	for i := 0; i < 2; i++ {
		if _, err := c.DeleteBucketEncryption(ctx, &awss3.DeleteBucketEncryptionInput{Bucket: b("sdk-sealed")}); err != nil {
			t.Fatal(err)
		}
	}
	h, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b("sdk-sealed"), Key: b("mp")})
	if err != nil || aws.ToString(h.SSEKMSKeyId) != arn {
		t.Fatalf("encrypted object after DeleteBucketEncryption: %+v %v", h, err)
	}
	put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b("sdk-sealed"), Key: b("later"), Body: strings.NewReader("plain now")})
	if err != nil || put.ServerSideEncryption != "" {
		t.Fatalf("PUT after DeleteBucketEncryption: %+v %v", put, err)
	}

	// Every response carried a request id, and the daemon logged a line
	// per request without the secret.
	logs := d.Logs()
	if strings.Contains(logs, d.SecretKey) {
		t.Fatal("the daemon logged the secret key")
	}
	for _, op := range []string{"CreateBucket", "HeadBucket", "ListBuckets", "GetBucketLocation", "GetBucketVersioning", "PutBucketEncryption",
		"GetBucketEncryption", "DeleteBucketEncryption", "PutObject", "GetObject", "HeadObject", "CopyObject", "ListObjectsV2", "ListObjects",
		"ListObjectVersions", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "ListParts",
		"ListMultipartUploads", "CompleteMultipartUpload", "AbortMultipartUpload", "DeleteBucket"} {
		if !strings.Contains(logs, `"op":"`+op+`"`) {
			t.Errorf("no log line for %s", op)
		}
	}
	resp, err := d.httpClient().Get("https://" + d.S3Addr + "/sdk-plain/once")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amz-Request-Id") == "" {
		t.Fatalf("anonymous GET: %d %v", resp.StatusCode, resp.Header)
	}
}
