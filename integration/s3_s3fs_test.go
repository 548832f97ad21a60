package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/internal/mountinfo"
)

// TestS3FSClient mounts an encrypting bucket of `sealfs serve` with s3fs
// (s3fs-fuse, Debian package s3fs), unchanged, over the self-signed HTTPS
// endpoint: files written through it are stored encrypted, in one request
// (1 MiB) and in parts (30 MiB, above its multipart threshold of 10 MiB
// here), with ETags that are no MD5 (cryptostore/sums.go); s3fs reads them
// back, and reads an object it did not write, without an error. Run once
// with s3fs's defaults and once with enable_content_md5 (it then sends
// Content-MD5, which sealfs checks) and use_sse=kmsid.
func TestS3FSClient(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "s3fs", "fusermount3")
	d := startS3Daemon(t, s3DaemonOptions{})
	c := d.sdk()
	ctx := context.Background()
	small := fill(1<<20+5, 11)
	big := fill(30<<20, 12)
	for _, variant := range []struct {
		name string
		opts []string
	}{
		{name: "defaults"},
		// With enable_content_md5 s3fs also compares each part's ETag
		// with the part's MD5 unless told the bucket uses SSE-KMS (as on
		// AWS, whose SSE-KMS part ETags are no MD5 either): use_sse=kmsid.
		// (s3fs wants a key id there: the bucket's own, as PUT reports it.)
		{name: "content-md5", opts: []string{"-o", "enable_content_md5", "-o", "use_sse=kmsid:"}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			bucket := "s3fs-" + variant.name
			if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Fatal(err)
			}
			putSealedBucketConfig(t, c, bucket)
			// An object s3fs did not write, for it to read.
			put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("from-sdk"), Body: bytes.NewReader(small)})
			if err != nil {
				t.Fatal(err)
			}
			opts := append([]string{}, variant.opts...)
			for i, o := range opts {
				if o == "use_sse=kmsid:" {
					opts[i] += aws.ToString(put.SSEKMSKeyId)
				}
			}
			mnt := mountS3FS(t, d, bucket, opts...)

			got, err := os.ReadFile(filepath.Join(mnt, "from-sdk"))
			if err != nil || !bytes.Equal(got, small) {
				t.Fatalf("reading an object through s3fs: %d bytes, %v", len(got), err)
			}
			for name, data := range map[string][]byte{"small": small, "big": big} {
				p := filepath.Join(mnt, name)
				if err := writeAndSync(p, data); err != nil {
					t.Fatalf("writing %s through s3fs: %v", name, err)
				}
				h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(name), PartNumber: aws.Int32(1)})
				if err != nil {
					t.Fatal(err)
				}
				etag := strings.Trim(aws.ToString(h.ETag), `"`)
				if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !encryptedETagRE.MatchString(etag) || strings.Contains(etag, md5Hex(data)) ||
					(aws.ToInt32(h.PartsCount) > 1) != (name == "big") {
					t.Fatalf("%s as stored: SSE %q ETag %s, %d parts", name, h.ServerSideEncryption, etag, aws.ToInt32(h.PartsCount))
				}
				g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
				if err != nil {
					t.Fatal(err)
				}
				if b := readAll(t, g.Body); !bytes.Equal(b, data) {
					t.Fatalf("%s over S3: %d bytes differ", name, len(b))
				}
				if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, data) {
					t.Fatalf("%s read back through s3fs: %d bytes, %v", name, len(b), err)
				}
			}
		})
	}
}

// writeAndSync writes a file and fsyncs it (s3fs uploads on flush).
func writeAndSync(p string, data []byte) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mountS3FS mounts bucket with s3fs in the foreground, as a child process,
// and unmounts it at the end of the test. s3fs trusts the daemon's
// certificate through CURL_CA_BUNDLE; every other CA or AWS variable the
// machine exports is left out of its environment.
func mountS3FS(t *testing.T, d *s3Daemon, bucket string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(d.AccessKey+":"+d.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS") || name == "HOME" || name == "SSL_CERT_FILE" || name == "SSL_CERT_DIR" ||
			name == "CURL_CA_BUNDLE" || name == "REQUESTS_CA_BUNDLE" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir, "CURL_CA_BUNDLE="+d.CAFile)
	args := append([]string{bucket, mnt, "-f",
		"-o", "url=https://" + d.S3Addr, "-o", "use_path_request_style", "-o", "endpoint=" + s3Region,
		"-o", "passwd_file=" + passwd, "-o", "sigv4", "-o", "dbglevel=warn",
		"-o", "multipart_size=5", "-o", "multipart_threshold=10", "-o", "stat_cache_expire=1"}, extra...)
	cmd := exec.Command("s3fs", args...)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", mnt).Run()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			exec.Command("fusermount3", "-uz", mnt).Run()
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("s3fs output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if mountinfo.Mounted(mnt) {
			return mnt
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("s3fs exited before mounting: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3fs did not mount %s in 30 s:\n%s", mnt, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
