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

// TestS3CLIs runs the aws CLI, boto3, rclone and s3cmd, unchanged, against
// the daemon's self-signed HTTPS endpoint: create a bucket, turn default
// encryption on, upload a 20 MiB file in parts, list, download, compare,
// delete. A tool that is not installed is skipped, loudly, unless
// SEALFS_REQUIRE_TOOLS=1 (CI installs them: awscli rclone s3cmd
// python3-boto3).
func TestS3CLIs(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{})
	src := filepath.Join(t.TempDir(), "f20")
	data := fill(20<<20, 7)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
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

	run := func(t *testing.T, extraEnv []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		cmd.Dir = home
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	// check verifies what the tool left behind: an encrypted object
	// uploaded in parts, and the downloaded copy.
	check := func(t *testing.T, bucket, downloaded string) {
		t.Helper()
		h, err := d.sdk().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("f20")})
		if err != nil {
			t.Fatal(err)
		}
		if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.Contains(aws.ToString(h.ETag), "-") {
			t.Fatalf("uploaded object: SSE %q ETag %s (want encrypted, multipart)", h.ServerSideEncryption, aws.ToString(h.ETag))
		}
		got, err := os.ReadFile(downloaded)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != want {
			t.Fatalf("downloaded file differs (%d bytes)", len(got))
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

	t.Run("aws", func(t *testing.T) {
		// Debian's awscli package is /usr/bin/aws (v2); another aws may
		// come first on PATH.
		aws := need(t, "aws", "/usr/bin/aws", "aws")
		awsEnv := []string{"AWS_ACCESS_KEY_ID=" + d.AccessKey, "AWS_SECRET_ACCESS_KEY=" + d.SecretKey, "AWS_DEFAULT_REGION=" + s3Region,
			"AWS_CA_BUNDLE=" + d.CAFile, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_PAGER="}
		a := func(args ...string) string {
			return run(t, awsEnv, aws, append([]string{"--endpoint-url", endpoint, "--no-cli-pager"}, args...)...)
		}
		a("s3", "mb", "s3://cli-aws")
		a("s3api", "put-bucket-encryption", "--bucket", "cli-aws", "--server-side-encryption-configuration",
			`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}`)
		if out := a("s3api", "get-bucket-encryption", "--bucket", "cli-aws"); !strings.Contains(out, "aws:kms") {
			t.Fatalf("get-bucket-encryption: %s", out)
		}
		a("s3", "cp", "--only-show-errors", src, "s3://cli-aws/f20")
		if out := a("s3", "ls", "s3://cli-aws/"); !strings.Contains(out, "20971520 f20") {
			t.Fatalf("ls: %q", out)
		}
		dst := filepath.Join(home, "aws-f20")
		a("s3", "cp", "--only-show-errors", "s3://cli-aws/f20", dst)
		if out := a("s3api", "head-object", "--bucket", "cli-aws", "--key", "f20"); !strings.Contains(out, `"ServerSideEncryption": "aws:kms"`) {
			t.Fatalf("head-object: %s", out)
		}
		check(t, "cli-aws", dst)
		a("s3", "rm", "--only-show-errors", "s3://cli-aws/f20")
		a("s3", "rb", "s3://cli-aws")
	})

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
		dst := filepath.Join(home, "boto3-f20")
		run(t, []string{"AWS_ACCESS_KEY_ID=" + d.AccessKey, "AWS_SECRET_ACCESS_KEY=" + d.SecretKey, "AWS_DEFAULT_REGION=" + s3Region,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")},
			python, script, endpoint, d.CAFile, src, dst, "upload")
		check(t, "cli-boto3", dst)
		run(t, []string{"AWS_ACCESS_KEY_ID=" + d.AccessKey, "AWS_SECRET_ACCESS_KEY=" + d.SecretKey, "AWS_DEFAULT_REGION=" + s3Region,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")},
			python, script, endpoint, d.CAFile, src, dst, "cleanup")
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
		r("copyto", src, ":s3:cli-rclone/f20")
		if out := r("ls", ":s3:cli-rclone"); !strings.Contains(out, "20971520 f20") {
			t.Fatalf("ls: %q", out)
		}
		dst := filepath.Join(home, "rclone-f20")
		r("copyto", ":s3:cli-rclone/f20", dst)
		check(t, "cli-rclone", dst)
		r("deletefile", ":s3:cli-rclone/f20")
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
			return run(t, nil, s3cmd, append([]string{"-c", cfg, "--no-progress"}, args...)...)
		}
		s("mb", "s3://cli-s3cmd")
		turnOnEncryption(t, "cli-s3cmd")
		s("put", src, "s3://cli-s3cmd/f20")
		if out := s("ls", "s3://cli-s3cmd"); !strings.Contains(out, "20971520") || !strings.Contains(out, "s3://cli-s3cmd/f20") {
			t.Fatalf("ls: %q", out)
		}
		dst := filepath.Join(home, "s3cmd-f20")
		s("get", "s3://cli-s3cmd/f20", dst)
		check(t, "cli-s3cmd", dst)
		s("del", "s3://cli-s3cmd/f20")
		s("rb", "s3://cli-s3cmd")
	})
}

// boto3Script does with boto3 what the CLIs do: argv is endpoint, CA file,
// source file, download path, and "upload" or "cleanup".
const boto3Script = `import sys, boto3
from boto3.s3.transfer import TransferConfig
endpoint, ca, src, dst, step = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, verify=ca)
if step == "upload":
    s3.create_bucket(Bucket="cli-boto3")
    s3.put_bucket_encryption(Bucket="cli-boto3", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert s3.get_bucket_encryption(Bucket="cli-boto3")["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    s3.upload_file(src, "cli-boto3", "f20", Config=cfg)
    keys = [(o["Key"], o["Size"]) for o in s3.list_objects_v2(Bucket="cli-boto3")["Contents"]]
    assert keys == [("f20", 20 << 20)], keys
    head = s3.head_object(Bucket="cli-boto3", Key="f20")
    assert head["ServerSideEncryption"] == "aws:kms", head
    s3.download_file("cli-boto3", "f20", dst, Config=cfg)
else:
    s3.delete_object(Bucket="cli-boto3", Key="f20")
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
