package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// replPair is a source daemon (us-east-1) with a target daemon (eu-west-1)
// registered as its replication target.
type replPair struct {
	src, dst *replDaemon
}

func newReplPair(t *testing.T, srcEnv ...string) *replPair {
	t.Helper()
	base := t.TempDir()
	p := &replPair{
		dst: replStart(t, replMustMkdir(t, filepath.Join(base, "eu")), "eu-west-1", freeAddr(t)),
	}
	p.src = replStart(t, replMustMkdir(t, filepath.Join(base, "us")), "us-east-1", freeAddr(t), srcEnv...)
	replConnect(t, p.src, p.dst)
	return p
}

func replCreateBucket(t *testing.T, d *replDaemon, name string, encrypt bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s in %s: %v", name, d.region, err)
	}
	if !encrypt {
		return
	}
	_, err := d.client.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(name),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}},
	})
	if err != nil {
		t.Fatalf("bucket encryption of %s: %v", name, err)
	}
}

func replPut(ctx context.Context, d *replDaemon, bucket, key string, body []byte, md map[string]string) error {
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/x-sealfs-test"), Metadata: md,
	})
	return err
}

func replGet(t *testing.T, d *replDaemon, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := d.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s from %s: %v", bucket, key, d.region, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data, out
}

// replWaitStatus waits until the source object's x-amz-replication-status
// is want.
func replWaitStatus(t *testing.T, d *replDaemon, bucket, key string, want types.ReplicationStatus) {
	t.Helper()
	replWait(t, fmt.Sprintf("%s/%s to be %s", bucket, key, want), time.Minute, func() (bool, error) {
		h, err := d.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return false, err
		}
		if h.ReplicationStatus != want {
			return false, fmt.Errorf("status %q", h.ReplicationStatus)
		}
		return true, nil
	})
}

// replMarker returns a plaintext marker: random, so that it has no repeated
// run Badger's block compression could fold.
func replMarker() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return []byte("SEALFS-MARKER-" + hex.EncodeToString(b))
}

// TestReplicateEncryptionMatrix: source {plain, encrypted} × target
// {plain, encrypted}. The replica reads back the same through the target's
// S3 API; its encryption follows the target bucket alone; the target's data
// directory holds no plaintext of it when the target bucket encrypts (and
// does when it does not: the marker search works). Two quick overwrites end
// with the newer content; the rules set with the CLI read back through
// GetBucketReplication.
func TestReplicateEncryptionMatrix(t *testing.T) {
	p := newReplPair(t)
	ctx := context.Background()
	replCreateBucket(t, p.dst, "plain-dst", false)
	replCreateBucket(t, p.dst, "enc-dst", true)
	replCreateBucket(t, p.src, "plain-src", false)
	replCreateBucket(t, p.src, "enc-src", true)
	for _, src := range []string{"plain-src", "enc-src"} {
		p.src.mustCLI("replicate", "enable", src, "--to", "eu-west-1/plain-dst", "--prefix", "to-plain/", "--id", "plain", "--priority", "1")
		p.src.mustCLI("replicate", "enable", src, "--to", "eu-west-1/enc-dst", "--prefix", "to-enc/", "--id", "enc", "--priority", "2")
	}
	rc, err := p.src.client.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String("enc-src")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rc.ReplicationConfiguration.Rules); n != 2 || aws.ToString(rc.ReplicationConfiguration.Rules[1].Destination.Bucket) != "arn:aws:s3:eu-west-1::enc-dst" {
		t.Fatalf("GetBucketReplication: %d rules, %+v", n, rc.ReplicationConfiguration.Rules)
	}

	type cell struct {
		src, prefix, dst string
		dstEncrypts      bool
		small, big       []byte
	}
	var cells []*cell
	for _, src := range []string{"plain-src", "enc-src"} {
		for _, dst := range []string{"plain", "enc"} {
			c := &cell{src: src, prefix: "to-" + dst + "/", dst: dst + "-dst", dstEncrypts: dst == "enc"}
			m := replMarker()
			c.small = bytes.Repeat(append(m, '\n'), 4) // kept inline in the metadata store
			c.big = append(bytes.Repeat([]byte("padding "), 40<<10), replMarker()...)
			cells = append(cells, c)
		}
	}
	md := map[string]string{"mode": "33188", "uid": "1000", "gid": "1000", "mtime": "1700000000"}
	for _, c := range cells {
		for key, body := range map[string][]byte{"small": c.small, "big": c.big} {
			if err := replPut(ctx, p.src, c.src, c.prefix+c.src+"/"+key, body, md); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Ordering: two quick overwrites of one key.
	if err := replPut(ctx, p.src, "plain-src", "to-enc/hot", []byte("older"), nil); err != nil {
		t.Fatal(err)
	}
	if err := replPut(ctx, p.src, "plain-src", "to-enc/hot", []byte("newer"), nil); err != nil {
		t.Fatal(err)
	}

	for _, c := range cells {
		for name, body := range map[string][]byte{"small": c.small, "big": c.big} {
			key := c.src + "/" + name // both sources write to both targets
			replWaitStatus(t, p.src, c.src, c.prefix+key, types.ReplicationStatusCompleted)
			got, out := replGet(t, p.dst, c.dst, c.prefix+key)
			if !bytes.Equal(got, body) {
				t.Fatalf("%s %s%s: the replica differs (%d bytes, want %d)", c.src, c.prefix, key, len(got), len(body))
			}
			wantSSE := types.ServerSideEncryption("")
			if c.dstEncrypts {
				wantSSE = types.ServerSideEncryptionAwsKms
			}
			if out.ServerSideEncryption != wantSSE {
				t.Fatalf("%s %s%s: replica SSE %q, want %q (the target bucket decides)", c.src, c.prefix, key, out.ServerSideEncryption, wantSSE)
			}
			if out.ReplicationStatus != types.ReplicationStatusReplica {
				t.Fatalf("%s %s%s: replica status %q", c.src, c.prefix, key, out.ReplicationStatus)
			}
			if aws.ToString(out.ContentType) != "application/x-sealfs-test" || out.Metadata["mode"] != "33188" || out.Metadata["mtime"] != "1700000000" {
				t.Fatalf("%s %s%s: replica headers: type %q, metadata %v", c.src, c.prefix, key, aws.ToString(out.ContentType), out.Metadata)
			}
		}
	}
	replWaitStatus(t, p.src, "plain-src", "to-enc/hot", types.ReplicationStatusCompleted)
	if got, _ := replGet(t, p.dst, "enc-dst", "to-enc/hot"); string(got) != "newer" {
		t.Fatalf("after two quick overwrites the target holds %q", got)
	}
	// The target has nothing of its own to send back.
	if st := p.dst.status(); st.Backlog != 0 {
		t.Fatalf("target backlog: %d", st.Backlog)
	}

	// Objects from before the rule are sent by resync (plain progress
	// lines: stderr is no terminal here).
	replCreateBucket(t, p.src, "old-src", false)
	for i := range 30 {
		if err := replPut(ctx, p.src, "old-src", fmt.Sprintf("old/%02d", i), []byte(fmt.Sprint("old ", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	p.src.mustCLI("replicate", "enable", "old-src", "--to", "eu-west-1/plain-dst", "--prefix", "old/")
	out := p.src.mustCLI("replicate", "resync", "old-src")
	if !strings.Contains(out, "30 queued") || !strings.Contains(out, "old-src: 30 COMPLETED, 0 FAILED") {
		t.Fatalf("resync output:\n%s", out)
	}
	if got, _ := replGet(t, p.dst, "plain-dst", "old/29"); string(got) != "old 29" {
		t.Fatalf("resynced object on the target: %q", got)
	}
	// The admin surface: text status, targets, refusals.
	if out := p.src.mustCLI("replicate", "status"); !strings.Contains(out, "eu-west-1") || !strings.Contains(out, "backlog:") {
		t.Fatalf("status output:\n%s", out)
	}
	if out := p.src.mustCLI("replicate", "target", "ls"); !strings.Contains(out, p.dst.endpoint()) {
		t.Fatalf("target ls output:\n%s", out)
	}
	if out, err := p.src.cli("replicate", "target", "rm", "eu-west-1"); err == nil || !strings.Contains(out, "disable it first") {
		t.Fatalf("removing a target in use: %v\n%s", err, out)
	}
	if out, err := p.src.cli("replicate", "enable", "old-src", "--to", "mars-1/backup"); err == nil || !strings.Contains(out, "not a registered replication target") {
		t.Fatalf("enabling towards an unknown region: %v\n%s", err, out)
	}
	resp, err := p.src.client.Options().HTTPClient.(*http.Client).Get(p.src.endpoint() + "/sealfs-admin/v1/replication/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous admin request: %s", resp.Status)
	}

	// Look for the plaintext markers in the target's data directory while
	// it runs (Badger's write-ahead log holds recent records uncompressed)
	// and once it has stopped (flushed to its tables).
	markers := func(body []byte) []byte {
		m := body[bytes.Index(body, []byte("SEALFS-MARKER-")):]
		return m[:len("SEALFS-MARKER-")+32]
	}
	running := map[string][]string{}
	for _, c := range cells {
		for _, body := range [][]byte{c.small, c.big} {
			running[string(markers(body))] = replGrep(t, p.dst.DataDir, markers(body))
		}
	}
	p.dst.stop()
	for _, c := range cells {
		for key, body := range map[string][]byte{"small": c.small, "big": c.big} {
			m := markers(body)
			hits := append(replGrep(t, p.dst.DataDir, m), running[string(m)]...)
			if c.dstEncrypts && len(hits) > 0 {
				t.Errorf("%s %s%s: plaintext in the encrypting target's data directory: %v", c.src, c.prefix, key, hits)
			}
			if !c.dstEncrypts && len(hits) == 0 {
				t.Errorf("%s %s%s: positive control: marker not found in the plain target's data directory", c.src, c.prefix, key)
			}
		}
	}
}

// TestReplicateTargetDownBurst: the target is stopped during a burst of
// 500 writes; the queue holds; when the target starts again, every object
// arrives and every status ends COMPLETED.
func TestReplicateTargetDownBurst(t *testing.T) {
	p := newReplPair(t)
	ctx := context.Background()
	replCreateBucket(t, p.dst, "dst", true)
	replCreateBucket(t, p.src, "src", false)
	p.src.mustCLI("replicate", "enable", "src", "--to", "eu-west-1/dst")

	const n = 500
	const writers = 8
	body := func(i int) []byte { return []byte(fmt.Sprintf("object %d of the burst", i)) }
	var wg sync.WaitGroup
	var failed atomic.Int64
	var done atomic.Int64
	stopped := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				if err := replPut(ctx, p.src, "src", fmt.Sprintf("burst/%03d", i), body(i), nil); err != nil {
					failed.Add(1)
					t.Errorf("put %d: %v", i, err)
				}
				if done.Add(1) == n/5 {
					close(stopped)
				}
			}
		}()
	}
	<-stopped
	p.dst.stop() // mid-burst
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	replWait(t, "a failed attempt to reach the stopped target", time.Minute, func() (bool, error) {
		return p.src.status().Retries > 0, nil
	})
	if st := p.src.bucketStatus("src"); st.Objects["PENDING"] == 0 || st.Backlog == 0 {
		t.Fatalf("with the target down: objects %v, backlog %d; want some queued", st.Objects, st.Backlog)
	}
	p.dst.restart()
	replWait(t, "every object COMPLETED", 3*time.Minute, func() (bool, error) {
		st := p.src.bucketStatus("src")
		return st.Objects["COMPLETED"] == n && st.Backlog == 0, fmt.Errorf("objects %v, backlog %d", st.Objects, st.Backlog)
	})
	for i := range n {
		got, out := replGet(t, p.dst, "dst", fmt.Sprintf("burst/%03d", i))
		if !bytes.Equal(got, body(i)) || out.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
			t.Fatalf("burst/%03d on the target: %q, SSE %q", i, got, out.ServerSideEncryption)
		}
	}
	if st := p.src.status(); st.Failed != 0 || st.Backlog != 0 {
		t.Fatalf("source status: %+v", st)
	}
}

// TestReplicateSourceKilled: the source daemon is killed (SIGKILL) in the
// middle of a burst and started again: every object whose PUT was
// acknowledged reaches the target, and none is left PENDING. The target is
// stopped part way through the burst, so that the kill finds work queued
// and not yet sent.
func TestReplicateSourceKilled(t *testing.T) {
	p := newReplPair(t)
	ctx := context.Background()
	replCreateBucket(t, p.dst, "dst", false)
	replCreateBucket(t, p.src, "src", true)
	p.src.mustCLI("replicate", "enable", "src", "--to", "eu-west-1/dst")

	const writers = 8
	body := func(key string) []byte { return []byte("content of " + key + strings.Repeat(".", 100)) }
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	var count atomic.Int64
	stopTargetAt, killAt := make(chan struct{}), make(chan struct{})
	var once, onceTarget sync.Once
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d/%04d", w, i)
				if err := replPut(ctx, p.src, "src", key, body(key), nil); err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
				switch n := count.Add(1); {
				case n >= 300:
					once.Do(func() { close(killAt) })
				case n >= 100:
					onceTarget.Do(func() { close(stopTargetAt) })
				}
			}
		}()
	}
	<-stopTargetAt
	p.dst.stop()
	<-killAt
	p.src.kill()
	wg.Wait()
	if len(acked) < 300 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	p.src.restart()
	pending := p.src.bucketStatus("src")
	if pending.Objects["PENDING"] == 0 || pending.Backlog != int(pending.Objects["PENDING"]) {
		t.Fatalf("after the kill, with the target down: objects %v, backlog %d; want the unsent ones PENDING and queued",
			pending.Objects, pending.Backlog)
	}
	p.dst.restart()
	replWait(t, "the source's backlog to drain", 3*time.Minute, func() (bool, error) {
		st := p.src.bucketStatus("src")
		return st.Backlog == 0 && st.Objects["PENDING"] == 0, fmt.Errorf("objects %v, backlog %d", st.Objects, st.Backlog)
	})
	st := p.src.bucketStatus("src")
	if st.Objects["FAILED"] != 0 || st.Objects["NONE"] != 0 {
		t.Fatalf("source objects after the crash: %v", st.Objects)
	}
	for _, key := range acked {
		got, _ := replGet(t, p.dst, "dst", key)
		if !bytes.Equal(got, body(key)) {
			t.Fatalf("%s on the target: %q", key, got)
		}
	}
	t.Logf("%d acknowledged writes before the kill (%d still queued at the kill), all replicated", len(acked), pending.Backlog)
}
