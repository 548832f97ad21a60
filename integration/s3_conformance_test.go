package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestS3Conformance checks the S3 behaviours that real clients and the
// conformance suites written with them depend on, each with the client
// that exposed it: boto3 (testdata/s3_conformance.py, one check per
// subtest), aws-sdk-go-v2, or a raw signed request where an SDK hides the
// behaviour. Each subtest's comment says what AWS does. The daemon runs
// with its mount, so metadata is checked through both doors.
func TestS3Conformance(t *testing.T) {
	requireFUSE(t)
	python := boto3Python(t)
	d := &s3Daemon{Daemon: startDaemon(t, DaemonOptions{Mount: true}), t: t}
	c := d.sdk()
	ctx := context.Background()
	const bucket = "conform"
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	endpoint := "https://" + d.S3Addr
	script, err := filepath.Abs(filepath.Join("testdata", "s3_conformance.py"))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	boto := func(t *testing.T, check string) {
		t.Helper()
		cmd := exec.Command(python, script, endpoint, d.CAFile, bucket, check)
		// The machine's CA bundle and profile variables would override the
		// client's own settings: they are left out.
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			switch name {
			case "AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE":
				continue
			}
			cmd.Env = append(cmd.Env, kv)
		}
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+d.AccessKey, "AWS_SECRET_ACCESS_KEY="+d.SecretKey,
			"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("boto3 check %s: %v\n%s%s", check, err, out, stderr.String())
		}
		var res struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("boto3 check %s printed %q: %v\n%s", check, out, err, stderr.String())
		}
		if !res.OK {
			t.Fatalf("boto3 %s: %s", check, res.Detail)
		}
	}
	raw := func(t *testing.T, method, path string, hdr http.Header, body io.Reader, length int64) (int, s3ErrorDoc) {
		t.Helper()
		return d.signedRequest(t, method, path, hdr, body, length)
	}

	// 1. AWS stores a non-ASCII metadata value as the Unicode text sent
	// (decoding RFC 2047 words first) and returns it RFC 2047 encoded;
	// ASCII values as they are. The mount's xattr shows the text.
	t.Run("1_metadata_non_ascii", func(t *testing.T) {
		boto(t, "metadata_non_ascii")
		for key, want := range map[string]string{"meta-utf8": "Hello World\u00e9", "meta-2047": "Grüße", "meta-ascii": "plain value"} {
			if got := mustGetxattr(t, d.Path(bucket, key), "user.meta1"); got != want {
				t.Errorf("xattr user.meta1 of %s = %q, want %q", key, got, want)
			}
		}
	})

	// 2. A checksum that does not match the body is BadDigest (single
	// PUT, UploadPart: boto3; a trailer: the SDK's own aws-chunked
	// trailer, in package sigv4's tests). AWS documents BadDigest too for
	// an x-amz-checksum-* header of another algorithm than
	// x-amz-sdk-checksum-algorithm names — an SDK never sends that, so it
	// is sent raw. A value that is not a checksum at all is InvalidRequest
	// on AWS ("Value for x-amz-checksum-sha256 header is invalid.").
	t.Run("2_checksum_bad_digest", func(t *testing.T) {
		boto(t, "checksum_bad_digest")
		body := []byte("mismatched algorithms")
		sum := crc32.ChecksumIEEE(body)
		crc := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
		st, doc := raw(t, http.MethodPut, "/"+bucket+"/ck-alg", http.Header{
			"X-Amz-Checksum-Crc32":         {crc},
			"X-Amz-Sdk-Checksum-Algorithm": {"SHA256"},
		}, bytes.NewReader(body), int64(len(body)))
		if st != 400 || doc.Code != "BadDigest" {
			t.Fatalf("x-amz-checksum-crc32 with x-amz-sdk-checksum-algorithm SHA256: %d %s (%s), want 400 BadDigest", st, doc.Code, doc.Message)
		}
	})

	// 3. ListBuckets pages: max-buckets, continuation-token, prefix and
	// bucket-region, as AWS's ListBuckets takes them (aws-sdk-go-v2's
	// paginator; botocore 1.29 has no MaxBuckets).
	t.Run("3_list_buckets_paging", func(t *testing.T) {
		for _, b := range []string{"page-a", "page-b", "page-c", "other-x"} {
			if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatal(err)
			}
		}
		p := awss3.NewListBucketsPaginator(c, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(1), Prefix: aws.String("page-")})
		var names []string
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Buckets) > 1 {
				t.Fatalf("a page of max-buckets 1 has %d buckets", len(out.Buckets))
			}
			if aws.ToString(out.Prefix) != "page-" {
				t.Errorf("Prefix %q in the answer, want page-", aws.ToString(out.Prefix))
			}
			for _, b := range out.Buckets {
				names = append(names, aws.ToString(b.Name))
			}
			if len(names) > 10 {
				t.Fatal("the pages do not end")
			}
		}
		if strings.Join(names, ",") != "page-a,page-b,page-c" {
			t.Fatalf("paged through %v, want page-a, page-b, page-c", names)
		}
		// bucket-region keeps one region's buckets.
		for region, want := range map[string]int{s3Region: 3, "eu-west-1": 0} {
			out, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{Prefix: aws.String("page-"), BucketRegion: aws.String(region)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Buckets) != want {
				t.Errorf("ListBuckets with bucket-region %s: %d buckets, want %d", region, len(out.Buckets), want)
			}
		}
	})

	// 4. AWS answers a repeated CompleteMultipartUpload of an upload that
	// completed with 200 and the same result.
	t.Run("4_complete_twice", func(t *testing.T) { boto(t, "complete_twice") })

	// 5. A Complete naming one part number twice: AWS's rule is that the
	// list is in ascending part-number order (InvalidPartOrder otherwise),
	// and SDKs retry UploadPart under the same number (which replaces the
	// part), never listing it twice; so it stays InvalidPartOrder.
	t.Run("5_complete_duplicate_part", func(t *testing.T) { boto(t, "complete_duplicate_part") })

	// 6. An empty continuation-token is no token (aws-sdk-go-v2 sends the
	// parameter when the field is set, even empty).
	t.Run("6_empty_continuation_token", func(t *testing.T) {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("tok/a"), Body: strings.NewReader("a")}); err != nil {
			t.Fatal(err)
		}
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tok/"), ContinuationToken: aws.String("")})
		if err != nil {
			t.Fatalf("ListObjectsV2 with an empty continuation token: %v", err)
		}
		if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "tok/a" {
			t.Fatalf("listed %d objects", len(out.Contents))
		}
	})

	// 7. ListObjects (V1) with encoding-type=url: AWS encodes Marker,
	// NextMarker, Delimiter, keys and common prefixes, not the top-level
	// Prefix, which botocore (AWS's SDK) does not decode in V1.
	t.Run("7_list_v1_prefix", func(t *testing.T) { boto(t, "list_v1_prefix") })

	// 8. Content-Encoding comes back byte-exact.
	t.Run("8_content_encoding", func(t *testing.T) { boto(t, "content_encoding") })

	// 9. UploadPartCopy with a range past the source's end: InvalidRange
	// (416), as AWS answers.
	t.Run("9_part_copy_range", func(t *testing.T) { boto(t, "part_copy_range") })

	// 10. An x-amz-server-side-encryption value that is no algorithm
	// ("aes:kms") is 400 InvalidArgument on AWS, and so are SSE-KMS headers
	// on a GET or HEAD.
	t.Run("10_sse_invalid", func(t *testing.T) { boto(t, "sse_invalid") })

	// 11. aws:kms asked for in a bucket without default encryption: stored
	// unencrypted (only the bucket decides), no SSE header in the answer,
	// one info line in the log for the bucket.
	t.Run("11_sse_ignored", func(t *testing.T) {
		boto(t, "sse_ignored")
		const msg = "a request asked for server-side encryption in a bucket without default encryption"
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := 0
			for _, line := range strings.Split(d.Logs(), "\n") {
				var rec struct {
					Level, Msg, Bucket string
				}
				if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, msg) {
					if rec.Level != "INFO" || rec.Bucket != bucket {
						t.Fatalf("log line %s", line)
					}
					n++
				}
			}
			if n == 1 {
				break
			}
			if n > 1 || time.Now().After(deadline) {
				t.Fatalf("%d log lines about the ignored SSE header for two PUTs, want 1", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	// 12. Re-creating a bucket one owns: 200 in us-east-1 (AWS's legacy
	// behaviour there), BucketAlreadyOwnedByYou in every other region.
	t.Run("12_create_owned_bucket", func(t *testing.T) {
		if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("re-creating an owned bucket in us-east-1: %v, want 200", err)
		}
		eu := &s3Daemon{Daemon: startDaemon(t, DaemonOptions{Args: []string{"--region", "eu-west-1"}}), t: t}
		ec := eu.sdk()
		in := &awss3.CreateBucketInput{Bucket: aws.String("eu-bucket")}
		opt := func(o *awss3.Options) { o.Region = "eu-west-1" }
		if _, err := ec.CreateBucket(ctx, in, opt); err != nil {
			t.Fatal(err)
		}
		_, err := ec.CreateBucket(ctx, in, opt)
		wantSDKCode(t, err, "BucketAlreadyOwnedByYou")
	})

	// 13. A body sent with Transfer-Encoding: chunked and no length: AWS
	// answers 411 MissingContentLength; aws-chunked with
	// x-amz-decoded-content-length (what the SDKs send) works.
	t.Run("13_chunked_without_length", func(t *testing.T) {
		st, doc := raw(t, http.MethodPut, "/"+bucket+"/chunked", nil, io.MultiReader(strings.NewReader("streamed body")), -1)
		if st != http.StatusLengthRequired || doc.Code != "MissingContentLength" || doc.Message != "You must provide the Content-Length HTTP header." {
			t.Fatalf("chunked PUT without a length: %d %s (%s), want 411 MissingContentLength", st, doc.Code, doc.Message)
		}
		// aws-sdk-go-v2's default PutObject over TLS: aws-chunked with a
		// CRC32 trailer and x-amz-decoded-content-length.
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("aws-chunked"), Body: strings.NewReader("aws-chunked body")}); err != nil {
			t.Fatal(err)
		}
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("aws-chunked")})
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, out.Body); string(b) != "aws-chunked body" {
			t.Fatalf("read back %q", b)
		}
	})
}

// boto3Python returns a python3 that has boto3, or skips (failing under
// SEALFS_REQUIRE_TOOLS=1).
func boto3Python(t *testing.T) string {
	t.Helper()
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import boto3").Run() == nil {
			return p
		}
	}
	msg := fmt.Sprintf("SKIPPING %s: python3 with boto3 is not installed (Debian: apt-get install python3-boto3); SEALFS_REQUIRE_TOOLS=1 makes this a failure", t.Name())
	if os.Getenv("SEALFS_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	fmt.Fprintln(os.Stderr, "*** "+msg)
	t.Skip(msg)
	return ""
}

// s3ErrorDoc is an S3 error document.
type s3ErrorDoc struct {
	Code    string
	Message string
}

// signedRequest sends a request signed with Signature Version 4 and an
// UNSIGNED-PAYLOAD body to the HTTPS listener, and returns the status and
// the error document, if any. A length of -1 sends the body chunked.
func (d *s3Daemon) signedRequest(t *testing.T, method, path string, hdr http.Header, body io.Reader, length int64) (int, s3ErrorDoc) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+d.S3Addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if length < 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: d.AccessKey, SecretAccessKey: d.SecretKey}
	if err := signer.SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", s3Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := d.httpClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var doc s3ErrorDoc
	if resp.StatusCode >= 300 {
		if err := xml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s %s: %d with body %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, doc
}
