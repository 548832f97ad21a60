package seaweed

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/internal/mountinfo"
)

func TestServerArgs(t *testing.T) {
	dir := t.TempDir()
	ports := []int{1, 2, 3, 4, 5, 6, 7, 8}
	args, err := serverArgs(Options{Dir: dir}, ports)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-s3") || a == "-filer.encryptVolumeData" {
			t.Errorf("without S3 or encryption: %s in %q", a, args)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "s3.json")); !os.IsNotExist(err) {
		t.Errorf("an S3 configuration was written without S3: %v", err)
	}

	args, err = serverArgs(Options{Dir: dir, S3: true, CertFile: "c.pem", KeyFile: "k.pem",
		AccessKey: "AK", SecretKey: "SK", EncryptVolumeData: true}, ports)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-master.port=1", "-master.port.grpc=2", "-volume.port=3", "-filer.port=5",
		"-filer.encryptVolumeData", "-s3", "-s3.port=7", "-s3.port.grpc=8", "-s3.cert.file=c.pem", "-s3.key.file=k.pem",
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + filepath.Join(dir, "s3.json"),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"), "-s3.localSocket=" + filepath.Join(dir, "s3.sock")} {
		if !slices.Contains(args, want) {
			t.Errorf("%s missing from %q", want, args)
		}
	}
	var conf struct {
		Identities []struct {
			Credentials []struct{ AccessKey, SecretKey string }
			Actions     []string
		}
		KMS struct {
			DefaultProvider string `json:"default_provider"`
			Providers       map[string]struct{ Type string }
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "s3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Identities) != 1 || conf.Identities[0].Credentials[0].AccessKey != "AK" || conf.Identities[0].Credentials[0].SecretKey != "SK" ||
		!slices.Contains(conf.Identities[0].Actions, "Admin") {
		t.Errorf("identities: %s", b)
	}
	if conf.KMS.DefaultProvider != "local" || conf.KMS.Providers["local"].Type != "local" {
		t.Errorf("kms: %s", b)
	}
}

func TestDataNodes(t *testing.T) {
	for status, want := range map[string]int{
		`{"Topology":{"Max":0,"Free":0,"DataCenters":null,"Layouts":null},"Version":"x"}`:                                    0,
		`{"Topology":{"DataCenters":[{"Id":"dc","Racks":[{"Id":"r","DataNodes":[{"Url":"127.0.0.1:1"}]}]}]}}`:                1,
		`{"Topology":{"DataCenters":[{"Racks":[{"DataNodes":[{},{}]},{"DataNodes":[{}]}]},{"Racks":[{"DataNodes":null}]}]}}`: 3,
	} {
		n, err := dataNodes([]byte(status))
		if err != nil || n != want {
			t.Errorf("dataNodes(%s) = %d, %v; want %d", status, n, err, want)
		}
	}
	if _, err := dataNodes([]byte("<html>")); err == nil {
		t.Error("dataNodes of a non-JSON answer: no error")
	}
}

// TestPeer runs the peer as the benchmarks do, where a weed command is
// present (make weed): the S3 gateway over HTTPS with a bucket whose
// default encryption is aws:kms, and the mount of an encrypting filer with
// every write synced; what each stores must not be on disk in plaintext.
func TestPeer(t *testing.T) {
	bin, err := Binary("")
	if err != nil {
		bin, err = Binary(filepath.Join("..", "..", "bin", "weed"))
	}
	if err != nil {
		msg := fmt.Sprintf("SKIPPING %s: %v; SEALFS_REQUIRE_WEED=1 makes this a failure", t.Name(), err)
		if os.Getenv("SEALFS_REQUIRE_WEED") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg) // seen without -v
		t.Skip(msg)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		msg := fmt.Sprintf("SKIPPING %s: the mount needs root and /dev/fuse", t.Name())
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	work := t.TempDir()
	tmpBefore := weedTmpFiles(t)
	certFile, keyFile, pool := selfSigned(t, work)
	data := filepath.Join(work, "data")
	var log bytes.Buffer
	s, err := Start(bin, Options{Dir: data, S3: true, CertFile: certFile, KeyFile: keyFile,
		AccessKey: "SEAWEEDPEERTEST00001", SecretKey: "seaweed-peer-secret", EncryptVolumeData: true, Fsync: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(log.String()))
	}
	t.Cleanup(s.Stop)
	conf, err := s.shell("fs.configure")
	if err != nil || !strings.Contains(conf, `"fsync": true`) {
		t.Errorf("the fsync rule is not set: %v\n%s", err, conf)
	}

	// S3: default encryption aws:kms, and an object stored under it.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + s.S3), UsePathStyle: true, HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "SEAWEEDPEERTEST00001", SecretAccessKey: "seaweed-peer-secret"}, nil
		})})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("peer-sse")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("peer-sse"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}}); err != nil {
		t.Fatal(err)
	}
	obj := random(t, 256<<10)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("peer-sse"), Key: aws.String("k"), Body: bytes.NewReader(obj)}); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("peer-sse"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if head.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Errorf("object's encryption %q, want aws:kms", head.ServerSideEncryption)
	}

	// The mount of the encrypting filer.
	m, err := s.Mount(filepath.Join(work, "mnt"), filepath.Join(work, "cache"), &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(log.String()))
	}
	t.Cleanup(func() { m.Unmount() })
	file := random(t, 1<<20)
	if err := os.WriteFile(filepath.Join(m.Dir, "f"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(m.Dir, "f"))
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(file))
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mountinfo.Mounted(m.Dir) {
		t.Fatal("still mounted after Unmount")
	}
	s.Stop()
	for _, name := range weedTmpFiles(t) {
		if !slices.Contains(tmpBefore, name) {
			t.Errorf("left behind in /tmp: %s", name)
		}
	}
	for _, needle := range [][]byte{obj[100<<10 : 100<<10+64], file[500<<10 : 500<<10+64]} {
		filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, needle) {
				t.Errorf("plaintext (%x...) in %s", needle[:8], p)
			}
			return nil
		})
	}
}

// weedTmpFiles lists what SeaweedFS would leave in /tmp by default: its
// sockets (seaweedfs-*) and log files (weed.*).
func weedTmpFiles(t *testing.T) []string {
	entries, err := os.ReadDir("/tmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "seaweedfs-") || strings.HasPrefix(e.Name(), "weed.") {
			names = append(names, e.Name())
		}
	}
	return names
}

// random is n random bytes: SeaweedFS compresses what compresses, so
// only data that does not would show on disk as it was written.
func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "seaweed peer test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestMakefileBuildsThisVersion: make weed builds the version this package
// names.
func TestMakefileBuildsThisVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nWEED_VERSION := "+Version+"\n") {
		t.Errorf("the Makefile's WEED_VERSION is not %s", Version)
	}
}
