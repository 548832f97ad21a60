package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestS3CLIs runs the aws CLI (Debian's and the one first on PATH), boto3,
// rclone and s3cmd, unchanged, against the daemon's self-signed HTTPS
// endpoint: create a bucket, turn default encryption on, upload a 1 MiB
// file in one request and a 20 MiB file in parts, list, download, compare,
// delete. Each tool checks what it can against the ETags of encrypted
// objects (no MD5: cryptostore/sums.go) and must not report a checksum
// error. A tool that is not installed is skipped, loudly, unless
// SEALFS_REQUIRE_TOOLS=1 (CI installs them: awscli rclone s3cmd
// python3-boto3).
func TestS3CLIs(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{})
	srcDir := t.TempDir()
	src := filepath.Join(srcDir, "f20")
	data := fill(20<<20, 7)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src1 := filepath.Join(srcDir, "f1")
	data1 := fill(1<<20+17, 8)
	if err := os.WriteFile(src1, data1, 0o600); err != nil {
		t.Fatal(err)
	}
	wants := map[string][sha256.Size]byte{"f20": sha256.Sum256(data), "f1": sha256.Sum256(data1)}
	endpoint := "https://" + d.S3Addr
	home := t.TempDir()
	// The children get a clean environment: no CA bundle variables (this
	// machine exports some, and they override the tools' own options), no
	// AWS configuration, a HOME of their own.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "RCLONE_") || name == "HOME" ||
			name == "SSL_CERT_FILE" || name == "CURL_CA_BUNDLE" || name == "REQUESTS_CA_BUNDLE" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home)

	// runBoth runs a tool and returns its standard output and error.
	runBoth := func(t *testing.T, extraEnv []string, name string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		cmd.Dir = home
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	run := func(t *testing.T, extraEnv []string, name string, args ...string) string {
		t.Helper()
		out, _ := runBoth(t, extraEnv, name, args...)
		return out
	}
	// check verifies what the tool left behind: an encrypted object,
	// uploaded in parts (f20) or in one request (f1), with an ETag that is
	// no MD5, and the downloaded copy.
	check := func(t *testing.T, bucket, key, downloaded string) {
		t.Helper()
		h, err := d.sdk().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		etag := strings.Trim(aws.ToString(h.ETag), `"`)
		multipart := aws.ToInt32(h.PartsCount) > 1
		if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !encryptedETagRE.MatchString(etag) || multipart != (key == "f20") ||
			multipart == strings.HasSuffix(etag, "-1") {
			t.Fatalf("uploaded %s: SSE %q ETag %s, %d parts (want encrypted, multipart %v)", key, h.ServerSideEncryption, etag, aws.ToInt32(h.PartsCount), key == "f20")
		}
		got, err := os.ReadFile(downloaded)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != wants[key] {
			t.Fatalf("downloaded %s differs (%d bytes)", key, len(got))
		}
	}
	// turnOnEncryption sends a signed PutBucketEncryption for the tools
	// that have no command for it.
	turnOnEncryption := func(t *testing.T, bucket string) {
		t.Helper()
		putSealedBucketConfig(t, d.sdk(), bucket)
	}
	need := func(t *testing.T, tool string, candidates ...string) string {
		t.Helper()
		for _, c := range candidates {
			if p, err := exec.LookPath(c); err == nil {
				return p
			}
		}
		msg := fmt.Sprintf("SKIPPING %s: %s is not installed (Debian: apt-get install awscli rclone s3cmd python3-boto3); SEALFS_REQUIRE_TOOLS=1 makes this a failure", t.Name(), tool)
		if os.Getenv("SEALFS_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, "*** "+msg)
		t.Skip(msg)
		return ""
	}

	// Debian's awscli package is /usr/bin/aws (v2); another aws (v1 from
	// pip, say) may come first on PATH: both are run.
	awsCLIs := []string{"/usr/bin/aws"}
	if p, err := exec.LookPath("aws"); err == nil && p != "/usr/bin/aws" {
		awsCLIs = append(awsCLIs, p)
	}
	for i, cli := range awsCLIs {
		name := "aws"
		if i > 0 {
			name = "aws-path"
		}
		bucket := "cli-" + name
		t.Run(name, func(t *testing.T) {
			aws := need(t, "aws", cli)
			awsEnv := []string{"AWS_ACCESS_KEY_ID=" + d.AccessKey, "AWS_SECRET_ACCESS_KEY=" + d.SecretKey, "AWS_DEFAULT_REGION=" + s3Region,
				"AWS_CA_BUNDLE=" + d.CAFile, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_PAGER="}
			a := func(args ...string) string {
				return run(t, awsEnv, aws, append([]string{"--endpoint-url", endpoint}, args...)...) // AWS_PAGER= turns v2's pager off; v1 has none (and no --no-cli-pager)
			}
			a("s3", "mb", "s3://"+bucket)
			a("s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration",
				`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}`)
			if out := a("s3api", "get-bucket-encryption", "--bucket", bucket); !strings.Contains(out, "aws:kms") {
				t.Fatalf("get-bucket-encryption: %s", out)
			}
			a("s3", "cp", "--only-show-errors", src, "s3://"+bucket+"/f20")
			a("s3", "cp", "--only-show-errors", src1, "s3://"+bucket+"/f1")
			if out := a("s3", "ls", "s3://"+bucket+"/"); !strings.Contains(out, "20971520 f20") || !strings.Contains(out, fmt.Sprintf("%d f1", len(data1))) {
				t.Fatalf("ls: %q", out)
			}
			for _, key := range []string{"f20", "f1"} {
				dst := filepath.Join(home, name+"-"+key)
				a("s3", "cp", "--only-show-errors", "s3://"+bucket+"/"+key, dst)
				if out := a("s3api", "head-object", "--bucket", bucket, "--key", key); !strings.Contains(out, `"ServerSideEncryption": "aws:kms"`) {
					t.Fatalf("head-object: %s", out)
				}
				check(t, bucket, key, dst)
				// s3api get-object, which checks the response's checksum.
				a("s3api", "get-object", "--bucket", bucket, "--key", key, "--checksum-mode", "ENABLED", dst+".api")
				check(t, bucket, key, dst+".api")
			}
			a("s3", "rm", "--only-show-errors", "--recursive", "s3://"+bucket+"/")
			a("s3", "rb", "s3://"+bucket)
		})
	}

	t.Run("boto3", func(t *testing.T) {
		// boto3 is a library: find a python3 that has it.
		var python string
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import boto3").Run() == nil {
				python = p
				break
			}
		}
		if python == "" {
			need(t, "python3 with boto3 (python3-boto3)")
		}
		script := filepath.Join(home, "boto3_check.py")
		if err := os.WriteFile(script, []byte(boto3Script), 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(home, "boto3-")
		boto3Env := []string{"AWS_ACCESS_KEY_ID=" + d.AccessKey, "AWS_SECRET_ACCESS_KEY=" + d.SecretKey, "AWS_DEFAULT_REGION=" + s3Region,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}
		run(t, boto3Env, python, script, endpoint, d.CAFile, srcDir, dst, "upload")
		check(t, "cli-boto3", "f20", dst+"f20")
		check(t, "cli-boto3", "f1", dst+"f1")
		run(t, boto3Env, python, script, endpoint, d.CAFile, srcDir, dst, "cleanup")
	})

	t.Run("rclone", func(t *testing.T) {
		rclone := need(t, "rclone", "rclone")
		conf := filepath.Join(home, "rclone.conf")
		os.WriteFile(conf, nil, 0o600)
		r := func(args ...string) string {
			return run(t, nil, rclone, append(args, "--config", conf, "--s3-provider", "Other", "--s3-endpoint", endpoint,
				"--s3-access-key-id", d.AccessKey, "--s3-secret-access-key", d.SecretKey, "--s3-region", s3Region,
				"--ca-cert", d.CAFile, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1", "-q")...)
		}
		r("mkdir", ":s3:cli-rclone")
		turnOnEncryption(t, "cli-rclone")
		// rclone compares an MD5-shaped ETag with the MD5 of what it sent
		// and received, and deletes an upload that differs ("corrupted on
		// transfer"): the -N form tells it the ETag is no MD5.
		r("copyto", src, ":s3:cli-rclone/f20")
		r("copyto", src1, ":s3:cli-rclone/f1")
		if out := r("ls", ":s3:cli-rclone"); !strings.Contains(out, "20971520 f20") || !strings.Contains(out, fmt.Sprintf("%d f1", len(data1))) {
			t.Fatalf("ls: %q", out)
		}
		for _, key := range []string{"f20", "f1"} {
			dst := filepath.Join(home, "rclone-"+key)
			r("copyto", ":s3:cli-rclone/"+key, dst)
			check(t, "cli-rclone", key, dst)
		}
		r("check", srcDir, ":s3:cli-rclone")
		r("deletefile", ":s3:cli-rclone/f20")
		r("deletefile", ":s3:cli-rclone/f1")
		// With a provider whose multipart ETags rclone recomputes (AWS,
		// Minio, ...: use_multipart_etag), it refuses any multipart ETag
		// that is not the MD5 of the parts' MD5s ("multipart upload
		// corrupted: Etag differ") unless told the bucket uses SSE-KMS, as
		// for AWS's own SSE-KMS buckets. Told so, it works.
		rAWS := func(args ...string) string {
			return run(t, nil, rclone, append(args, "--config", conf, "--s3-provider", "Minio", "--s3-server-side-encryption", "aws:kms",
				"--s3-endpoint", endpoint, "--s3-access-key-id", d.AccessKey, "--s3-secret-access-key", d.SecretKey,
				"--s3-region", s3Region, "--ca-cert", d.CAFile, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1", "-q")...)
		}
		for _, key := range []string{"f20", "f1"} {
			rAWS("copyto", filepath.Join(srcDir, key), ":s3:cli-rclone/"+key)
			dst := filepath.Join(home, "rclone-aws-"+key)
			rAWS("copyto", ":s3:cli-rclone/"+key, dst)
			check(t, "cli-rclone", key, dst)
			rAWS("deletefile", ":s3:cli-rclone/"+key)
		}
		r("rmdir", ":s3:cli-rclone")
	})

	t.Run("s3cmd", func(t *testing.T) {
		s3cmd := need(t, "s3cmd", "s3cmd")
		cfg := filepath.Join(home, "s3cfg")
		conf := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = True\n"+
			"ca_certs_file = %s\ncheck_ssl_certificate = True\nsignature_v2 = False\nbucket_location = %s\nmultipart_chunk_size_mb = 5\n",
			d.AccessKey, d.SecretKey, d.S3Addr, d.S3Addr, d.CAFile, s3Region)
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s := func(args ...string) string {
			t.Helper()
			out, errOut := runBoth(t, nil, s3cmd, append([]string{"-c", cfg, "--no-progress"}, args...)...)
			return out + errOut
		}
		s("mb", "s3://cli-s3cmd")
		turnOnEncryption(t, "cli-s3cmd")
		// s3cmd warns ("MD5 Sums don't match!", "MD5 signatures do not
		// match") and retries when an MD5-shaped ETag differs from its
		// MD5: its output must carry no warning.
		for _, f := range []string{src, src1} {
			if out := s("put", f, "s3://cli-s3cmd/"+filepath.Base(f)); strings.Contains(out, "WARNING") {
				t.Fatalf("s3cmd put warned:\n%s", out)
			}
		}
		if out := s("ls", "s3://cli-s3cmd"); !strings.Contains(out, "20971520") || !strings.Contains(out, "s3://cli-s3cmd/f20") || !strings.Contains(out, "s3://cli-s3cmd/f1") {
			t.Fatalf("ls: %q", out)
		}
		for _, key := range []string{"f20", "f1"} {
			dst := filepath.Join(home, "s3cmd-"+key)
			if out := s("get", "s3://cli-s3cmd/"+key, dst); strings.Contains(out, "WARNING") {
				t.Fatalf("s3cmd get warned:\n%s", out)
			}
			check(t, "cli-s3cmd", key, dst)
		}
		s("del", "s3://cli-s3cmd/f20")
		s("del", "s3://cli-s3cmd/f1")
		s("rb", "s3://cli-s3cmd")
	})
}

// boto3Script does with boto3 what the CLIs do: argv is endpoint, CA file,
// source directory (f20 and f1), download path prefix, and "upload" or
// "cleanup".
const boto3Script = `import sys, os, boto3
from boto3.s3.transfer import TransferConfig
endpoint, ca, srcdir, dst, step = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, verify=ca)
if step == "upload":
    s3.create_bucket(Bucket="cli-boto3")
    s3.put_bucket_encryption(Bucket="cli-boto3", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert s3.get_bucket_encryption(Bucket="cli-boto3")["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    for key in ("f20", "f1"):
        s3.upload_file(os.path.join(srcdir, key), "cli-boto3", key, Config=cfg)
    keys = [(o["Key"], o["Size"]) for o in s3.list_objects_v2(Bucket="cli-boto3")["Contents"]]
    assert keys == [("f1", os.path.getsize(os.path.join(srcdir, "f1"))), ("f20", 20 << 20)], keys
    for key in ("f20", "f1"):
        head = s3.head_object(Bucket="cli-boto3", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", head
        s3.download_file("cli-boto3", key, dst + key, Config=cfg)
    # get_object with checksum validation.
    body = s3.get_object(Bucket="cli-boto3", Key="f1", ChecksumMode="ENABLED")["Body"].read()
    assert body == open(os.path.join(srcdir, "f1"), "rb").read()
else:
    for key in ("f20", "f1"):
        s3.delete_object(Bucket="cli-boto3", Key=key)
    s3.delete_bucket(Bucket="cli-boto3")
`

// putSealedBucketConfig turns default encryption on for an existing bucket.
func putSealedBucketConfig(t *testing.T, c *awss3.Client, bucket string) {
	t.Helper()
	if _, err := c.PutBucketEncryption(context.Background(), &awss3.PutBucketEncryptionInput{Bucket: aws.String(bucket),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}}); err != nil {
		t.Fatal(err)
	}
}
