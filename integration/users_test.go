package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// sealfsAdmin runs an admin command (`sealfs user ...`) against d with the
// admin's credentials, stdin as its input, and returns its output.
func sealfsAdmin(t *testing.T, d *Daemon, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(sealfsBin(t), append(args, "--data", d.DataDir)...)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sealfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newAccessKey runs `sealfs accesskey create USER` and returns the key.
func newAccessKey(t *testing.T, d *Daemon, user string) (id, secret string) {
	t.Helper()
	out := sealfsAdmin(t, d, "", "accesskey", "create", user)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			secret = v
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("accesskey create printed no key:\n%s", out)
	}
	return id, secret
}

const (
	// readerPolicy reads the vault bucket, without permission to use its key.
	readerPolicy = `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::vault","arn:aws:s3:::vault/*","arn:aws:s3:::*"]}]}`
	// writerPolicy reads and writes the vault with its key, except under
	// private/.
	writerPolicy = `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::vault","arn:aws:s3:::vault/*"]},
  {"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:*:*:key/*"},
  {"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::vault/private/*"}]}`
)

// botoUsers is what boto3 does as each user; it prints one line per step.
const botoUsers = `
import os, boto3, botocore
from botocore.config import Config
def client(ak, sk):
    return boto3.client("s3", endpoint_url=os.environ["EP"], aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name="us-east-1", verify=os.environ["CA"], config=Config(s3={"addressing_style": "path"}))
def step(name, fn):
    try:
        r = fn()
        print(name, "ok", r if r is not None else "")
    except botocore.exceptions.ClientError as e:
        print(name, e.response["Error"]["Code"], e.response["Error"]["Message"])
r = client(os.environ["R_AK"], os.environ["R_SK"])
w = client(os.environ["W_AK"], os.environ["W_SK"])
step("reader-get-enc", lambda: r.get_object(Bucket="vault", Key="enc.txt")["Body"].read().decode())
step("reader-get-plain", lambda: r.get_object(Bucket="vault", Key="plain.txt")["Body"].read().decode())
step("reader-put", lambda: r.put_object(Bucket="vault", Key="r.txt", Body=b"x") and None)
step("reader-list", lambda: ",".join(o["Key"] for o in r.list_objects_v2(Bucket="vault")["Contents"]))
step("writer-put", lambda: w.put_object(Bucket="vault", Key="w.txt", Body=b"written") and None)
step("writer-get-enc", lambda: w.get_object(Bucket="vault", Key="enc.txt")["Body"].read().decode())
step("writer-get-private", lambda: w.get_object(Bucket="vault", Key="private/p.txt")["Body"].read().decode())
step("writer-put-private", lambda: w.put_object(Bucket="vault", Key="private/q.txt", Body=b"x") and None)
`

// TestUsersAndKeyPermission: users made with `sealfs user` and `sealfs
// accesskey`; boto3 and aws-sdk-go-v2 as a read-only user without
// kms:Decrypt (an encrypted object is AccessDenied naming kms:Decrypt, a
// plain one reads, a PUT is refused) and as a writer with key permission
// and a Deny on a prefix; the admin reads everything; then the mount acting
// as the read-only user: ls works, cat of the encrypted file is EACCES, of
// the plain one works.
func TestUsersAndKeyPermission(t *testing.T) {
	requireFUSE(t)
	py := boto3Python(t)
	d := startDaemon(t, DaemonOptions{Mount: true})
	admin := d.S3()
	ctx := t.Context()
	if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("vault")}); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) {
		t.Helper()
		if _, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("vault"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("plain.txt", "plain")
	sealfsAdmin(t, d, "", "bucket", "encryption", "set", "vault")
	put("enc.txt", "encrypted")
	put("private/p.txt", "private")

	dir := t.TempDir()
	for name, pol := range map[string]string{"reader": readerPolicy, "writer": writerPolicy} {
		file := filepath.Join(dir, name+".json")
		if err := os.WriteFile(file, []byte(pol), 0o600); err != nil {
			t.Fatal(err)
		}
		sealfsAdmin(t, d, "", "user", "create", name, "--policy", file)
	}
	rak, rsk := newAccessKey(t, d, "reader")
	wak, wsk := newAccessKey(t, d, "writer")
	if out := sealfsAdmin(t, d, "", "user", "ls"); !strings.Contains(out, "reader") || !strings.Contains(out, rak) || strings.Contains(out, rsk) {
		t.Fatalf("user ls:\n%s", out)
	}

	// boto3.
	cmd := exec.Command(py, "-c", botoUsers)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") { // no profile, bundle or endpoint of the machine's
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "EP=https://"+d.S3Addr, "CA="+d.CAFile, "R_AK="+rak, "R_SK="+rsk, "W_AK="+wak, "W_SK="+wsk,
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	steps := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, rest, _ := strings.Cut(line, " ")
		steps[name] = rest
	}
	for name, want := range map[string]string{
		"reader-get-enc":     "AccessDenied User: arn:aws:iam::000000000000:user/reader is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:",
		"reader-get-plain":   "ok plain",
		"reader-put":         "AccessDenied User: arn:aws:iam::000000000000:user/reader is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::vault/r.txt",
		"reader-list":        "ok enc.txt,plain.txt,private/p.txt",
		"writer-put":         "ok",
		"writer-get-enc":     "ok encrypted",
		"writer-get-private": "AccessDenied User: arn:aws:iam::000000000000:user/writer is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::vault/private/p.txt with an explicit deny",
		"writer-put-private": "AccessDenied",
	} {
		if !strings.HasPrefix(steps[name], want) {
			t.Errorf("boto3 %s: %q, want %q...", name, steps[name], want)
		}
	}

	// aws-sdk-go-v2 as the reader.
	reader := d.S3()
	reader = awss3.New(reader.Options(), func(o *awss3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(rak, rsk, "")
	})
	_, err = reader.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("vault"), Key: aws.String("enc.txt")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(ae.ErrorMessage(), "kms:Decrypt") {
		t.Fatalf("sdk reader GET enc: %v", err)
	}
	g, err := reader.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("vault"), Key: aws.String("plain.txt")})
	if err != nil {
		t.Fatalf("sdk reader GET plain: %v", err)
	}
	b, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if string(b) != "plain" {
		t.Fatalf("sdk reader GET plain: %q", b)
	}
	_, err = reader.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("vault"), Key: aws.String("plain.txt")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("sdk reader DELETE: %v", err)
	}
	// The admin, the break-glass account, reads everything.
	for key, want := range map[string]string{"enc.txt": "encrypted", "w.txt": "written", "private/p.txt": "private"} {
		g, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("vault"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("admin GET %s: %v", key, err)
		}
		b, _ := io.ReadAll(g.Body)
		g.Body.Close()
		if string(b) != want {
			t.Fatalf("admin GET %s: %q", key, b)
		}
	}
	h, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("vault"), Key: aws.String("w.txt")})
	if err != nil || h.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("the writer's object is not encrypted: %v, %v", h, err)
	}

	// The audit log of key use has the reader's refused Decrypt and the
	// writer's GenerateDataKey, with the key, bucket and object. Lines are
	// written within a second (the log's writer flushes every second).
	var audit []byte
	var denied, generated, created bool
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if audit, err = os.ReadFile(filepath.Join(d.DataDir, "audit", "key-use.jsonl")); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(audit, []byte(`"user":"reader","action":"kms:Decrypt"`)) && bytes.Contains(audit, []byte(`"user":"writer","action":"kms:GenerateDataKey"`)) || time.Now().After(deadline) {
			break
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var rec struct {
			User, Action, Result, Bucket string
			KeyARN                       string `json:"key_arn"`
			Object                       string `json:"object_id"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec.Action == "kms:CreateKey" { // the bucket's key, made at its first encrypted write
			created = created || rec.User == "admin" && rec.Result == "allowed" && strings.HasPrefix(rec.KeyARN, "arn:aws:kms:")
			continue
		}
		if rec.Bucket != "vault" || !strings.HasPrefix(rec.KeyARN, "arn:aws:kms:") || len(rec.Object) != 32 {
			t.Errorf("audit line %q", line)
		}
		denied = denied || rec.User == "reader" && rec.Action == "kms:Decrypt" && rec.Result == "denied"
		generated = generated || rec.User == "writer" && rec.Action == "kms:GenerateDataKey" && rec.Result == "allowed"
	}
	if !denied || !generated || !created {
		t.Errorf("the audit log lacks the reader's denied Decrypt (%v), the writer's GenerateDataKey (%v) or the key's creation (%v):\n%s", denied, generated, created, audit)
	}

	// The mount acting as the reader.
	d.opts.Args = append(d.opts.Args, "--as", "reader")
	d.Restart()
	mnt := filepath.Join(d.MountDir, "vault")
	entries, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatalf("ls as reader: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "enc.txt,plain.txt,private,w.txt" {
		t.Fatalf("ls as reader: %v", names)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "enc.txt")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("cat enc.txt as reader: %v, want EACCES", err)
	}
	if out, err := exec.Command("cat", filepath.Join(mnt, "enc.txt")).CombinedOutput(); err == nil || !bytes.Contains(out, []byte("Permission denied")) {
		t.Fatalf("cat(1) of enc.txt as reader: %v %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "plain.txt")); err != nil || string(got) != "plain" {
		t.Fatalf("cat plain.txt as reader: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("write as reader: %v, want EACCES", err)
	}
	if err := os.Remove(filepath.Join(mnt, "plain.txt")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("rm as reader: %v, want EACCES", err)
	}
	// The access keys outlive a restart (their secrets are stored sealed).
	reader = awss3.New(d.S3().Options(), func(o *awss3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(rak, rsk, "")
	})
	if _, err := reader.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("vault"), Key: aws.String("plain.txt")}); err != nil {
		t.Fatalf("the reader's key after a restart: %v", err)
	}
	// The secret is nowhere in the data directory in clear.
	err = filepath.WalkDir(d.DataDir, func(path string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(rsk)) || bytes.Contains(data, []byte(wsk)) {
			t.Errorf("%s holds a user's secret in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
