package s3_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestMultipart(t *testing.T) {
	e := newEnv(t)
	c := e.client
	e.mkBucket("mpu", true)
	e.mkBucket("plainsrc", false)
	src := pattern(300<<10, 9)
	e.put("plainsrc", "source", src)

	cr, err := c.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"),
		ContentType: aws.String("video/x-test"), Metadata: map[string]string{"m": "1"}, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	if cr.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(cr.SSEKMSKeyId) == "" || cr.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32 {
		t.Fatalf("CreateMultipartUpload: SSE %q %q checksum %q", cr.ServerSideEncryption, aws.ToString(cr.SSEKMSKeyId), cr.ChecksumAlgorithm)
	}
	arn := aws.ToString(cr.SSEKMSKeyId)
	id := cr.UploadId
	p1 := pattern(testMinPart+1000, 1)
	p3 := []byte("short last part")
	up1, err := c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(p1), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	// Parts of an encrypting upload have random ETags, no MD5.
	if !randomPartETag.MatchString(aws.ToString(up1.ETag)) || aws.ToString(up1.ETag) == `"`+md5hex(p1)+`"` || up1.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(up1.SSEKMSKeyId) != arn || aws.ToString(up1.ChecksumCRC32) == "" {
		t.Fatalf("UploadPart: %q %q %q crc %q", aws.ToString(up1.ETag), up1.ServerSideEncryption, aws.ToString(up1.SSEKMSKeyId), aws.ToString(up1.ChecksumCRC32))
	}
	// Part 2 copies a range of a plain object.
	upc, err := c.UploadPartCopy(e.ctx(), &awss3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumber: aws.Int32(2),
		CopySource: aws.String("plainsrc/source"), CopySourceRange: aws.String(fmt.Sprintf("bytes=1000-%d", 1000+testMinPart+99))})
	if err != nil {
		t.Fatal(err)
	}
	p2 := src[1000 : 1000+testMinPart+100]
	if !randomPartETag.MatchString(aws.ToString(upc.CopyPartResult.ETag)) || aws.ToString(upc.CopyPartResult.ETag) == `"`+md5hex(p2)+`"` || upc.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("UploadPartCopy: %+v %q", upc.CopyPartResult, upc.ServerSideEncryption)
	}
	_, err = c.UploadPartCopy(e.ctx(), &awss3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumber: aws.Int32(2),
		CopySource: aws.String("plainsrc/source"), CopySourceRange: aws.String("bytes=0-999999999")})
	wantCode(t, err, "InvalidRange") // as AWS answers a range past the source's end (416)
	up3, err := c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumber: aws.Int32(3),
		Body: bytes.NewReader(p3), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumber: aws.Int32(10001), Body: bytes.NewReader(p3)})
	wantCode(t, err, "InvalidArgument")
	_, err = c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String("nosuchupload"), PartNumber: aws.Int32(1), Body: bytes.NewReader(p3)})
	wantCode(t, err, "NoSuchUpload")

	lp, err := c.ListParts(e.ctx(), &awss3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, MaxParts: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" || aws.ToInt64(lp.Parts[0].Size) != int64(len(p1)) {
		t.Fatalf("ListParts: %d parts truncated %v next %q", len(lp.Parts), aws.ToBool(lp.IsTruncated), aws.ToString(lp.NextPartNumberMarker))
	}
	lp, err = c.ListParts(e.ctx(), &awss3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, PartNumberMarker: aws.String("2")})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 3 {
		t.Fatalf("ListParts after 2: %+v %v", lp, err)
	}
	// A second upload, for ListMultipartUploads with a delimiter.
	cr2, err := c.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/other")})
	if err != nil {
		t.Fatal(err)
	}
	lu, err := c.ListMultipartUploads(e.ctx(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("mpu"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(id) || len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "dir/" {
		t.Fatalf("ListMultipartUploads: %+v %+v", lu.Uploads, lu.CommonPrefixes)
	}
	if _, err := c.AbortMultipartUpload(e.ctx(), &awss3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/other"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AbortMultipartUpload(e.ctx(), &awss3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/other"), UploadId: cr2.UploadId})
	wantCode(t, err, "NoSuchUpload")

	parts := func(ps ...types.CompletedPart) *types.CompletedMultipartUpload {
		return &types.CompletedMultipartUpload{Parts: ps}
	}
	part := func(n int32, etag *string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: etag}
	}
	complete := func(cmu *types.CompletedMultipartUpload) (*awss3.CompleteMultipartUploadOutput, error) {
		return c.CompleteMultipartUpload(e.ctx(), &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id, MultipartUpload: cmu})
	}
	_, err = complete(parts(part(1, up1.ETag), part(2, aws.String(`"0000"`))))
	wantCode(t, err, "InvalidPart")
	_, err = complete(parts(part(2, upc.CopyPartResult.ETag), part(1, up1.ETag)))
	wantCode(t, err, "InvalidPartOrder")
	_, err = complete(parts(part(1, up1.ETag), part(2, upc.CopyPartResult.ETag), part(4, up3.ETag)))
	wantCode(t, err, "InvalidPart")
	// Part 3 is below the minimum size: only the last part may be.
	cr3, err := c.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small")})
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: cr3.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(p3)})
	s2, _ := c.UploadPart(e.ctx(), &awss3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: cr3.UploadId, PartNumber: aws.Int32(2), Body: bytes.NewReader(p3)})
	_, err = c.CompleteMultipartUpload(e.ctx(), &awss3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: cr3.UploadId,
		MultipartUpload: parts(part(1, s1.ETag), part(2, s2.ETag))})
	wantCode(t, err, "EntityTooSmall")
	// A checksum in the Complete request that does not match the part's.
	bad := part(1, up1.ETag)
	bad.ChecksumCRC32 = aws.String("AAAAAA==")
	_, err = complete(parts(bad, part(2, upc.CopyPartResult.ETag), part(3, up3.ETag)))
	wantCode(t, err, "InvalidPart")

	p1c := part(1, up1.ETag)
	p1c.ChecksumCRC32 = up1.ChecksumCRC32
	done, err := complete(parts(p1c, part(2, upc.CopyPartResult.ETag), part(3, up3.ETag)))
	if err != nil {
		t.Fatal(err)
	}
	var md5s []byte
	for _, p := range [][]byte{p1, p2, p3} {
		s := md5.Sum(p)
		md5s = append(md5s, s[:]...)
	}
	all := md5.Sum(md5s)
	md5ETag := `"` + hex.EncodeToString(all[:]) + `-3"`
	if !encryptedETag.MatchString(aws.ToString(done.ETag)) || !strings.HasSuffix(aws.ToString(done.ETag), `-3"`) || aws.ToString(done.ETag) == md5ETag || done.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(done.SSEKMSKeyId) != arn {
		t.Fatalf("CompleteMultipartUpload: ETag %s (not %s) SSE %q %q", aws.ToString(done.ETag), md5ETag, done.ServerSideEncryption, aws.ToString(done.SSEKMSKeyId))
	}
	if !strings.HasSuffix(aws.ToString(done.ChecksumCRC32), "-3") || !strings.HasSuffix(aws.ToString(done.Location), "/mpu/big") {
		t.Errorf("CompleteMultipartUpload checksum %q location %q", aws.ToString(done.ChecksumCRC32), aws.ToString(done.Location))
	}
	whole := append(append(append([]byte{}, p1...), p2...), p3...)
	if got := e.get("mpu", "big"); !bytes.Equal(got, whole) {
		t.Fatal("completed object has other bytes")
	}
	h, err := c.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(h.PartsCount) != 3 || aws.ToInt64(h.ContentLength) != int64(len(p2)) || aws.ToString(h.ContentType) != "video/x-test" || h.Metadata["m"] != "1" {
		t.Fatalf("HeadObject part 2: parts %d length %d type %q meta %v", aws.ToInt32(h.PartsCount), aws.ToInt64(h.ContentLength), aws.ToString(h.ContentType), h.Metadata)
	}
	_, err = c.ListParts(e.ctx(), &awss3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: id})
	wantCode(t, err, "NoSuchUpload")
	// Malformed Complete bodies.
	cr4, _ := c.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("x")})
	for _, body := range []string{"", "<CompleteMultipartUpload/>", "<CompleteMultipartUpload><Part>"} {
		resp := e.raw(http.MethodPost, e.https.URL, "/mpu/x?uploadId="+aws.ToString(cr4.UploadId), nil, []byte(body))
		wantError(t, resp, 400, "MalformedXML")
	}
}
