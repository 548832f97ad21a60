package replicate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/meta"
)

// pair is a source region replicating bucket "src" to bucket "dst" of a
// target region served over HTTPS.
type pair struct {
	src, dst *region
	tg       *target
}

func newPair(t testing.TB, srcEncrypt, dstEncrypt bool, tweak func(*Config), enable *EnableInput) *pair {
	t.Helper()
	p := &pair{src: newRegion(t, "us-east-1", tweak), dst: newRegion(t, "eu-west-1", nil)}
	p.tg = newTarget(t, p.dst)
	p.src.bucket(t, "src", srcEncrypt)
	p.dst.bucket(t, "dst", dstEncrypt)
	connect(t, p.src, p.tg)
	p.src.mgr.Start(p.src.store)
	if enable == nil {
		enable = &EnableInput{To: "eu-west-1/dst"}
	}
	if _, err := p.src.mgr.Enable(ctx, "src", enable); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) waitStatus(t *testing.T, key, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to be %s (is %s)", key, want, statusOf(p.src, "src", key)), func() bool {
		return statusOf(p.src, "src", key) == want
	})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	return b
}

func TestReplicatesEncryptionFollowsTarget(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		srcEncrypt, dstEncrypt bool
	}{
		{name: "plain to plain"},
		{name: "plain to encrypted", dstEncrypt: true},
		{name: "encrypted to plain", srcEncrypt: true},
		{name: "encrypted to encrypted", srcEncrypt: true, dstEncrypt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, tc.srcEncrypt, tc.dstEncrypt, nil, nil)
			m := meta.ObjectMeta{
				ContentType:        "text/plain; charset=utf-8",
				ContentEncoding:    "identity",
				ContentDisposition: `attachment; filename="n.txt"`,
				ContentLanguage:    "fr",
				CacheControl:       "max-age=60",
				Expires:            "Thu, 01 Dec 2044 16:00:00 GMT",
				User:               map[string]string{"colour": "blue"},
			}
			m.SetPOSIX(0o100640, 1000, 100, time.Unix(1700000000, 250000000))
			objects := map[string][]byte{
				"small":     []byte("hello, region"),
				"empty":     {},
				"big/three": randBytes(3<<20 + 17), // a blob file, several chunks
			}
			for k, data := range objects {
				src := p.src.put(t, "src", k, data, m)
				if (src.Encryption != nil) != tc.srcEncrypt {
					t.Fatalf("source encryption of %s: %v", k, src.Encryption != nil)
				}
			}
			for k, data := range objects {
				p.waitStatus(t, k, cryptostore.ReplicationCompleted)
				got, rep := p.dst.read(t, "dst", k)
				if !bytes.Equal(got, data) {
					t.Fatalf("%s: replica has %d bytes, want the source's %d", k, len(got), len(data))
				}
				if (rep.Encryption != nil) != tc.dstEncrypt {
					t.Fatalf("%s: replica encrypted %v, target bucket encrypts %v", k, rep.Encryption != nil, tc.dstEncrypt)
				}
				if rep.ReplicationStatus != cryptostore.ReplicationReplica {
					t.Fatalf("%s: replica status %q", k, rep.ReplicationStatus)
				}
				src := mustHead(t, p.src, "src", k)
				if !rep.ReplicaSourceModified.Equal(src.LastModified) {
					t.Fatalf("%s: replica's source time %v, source modified %v", k, rep.ReplicaSourceModified, src.LastModified)
				}
				if !reflect.DeepEqual(rep.Meta, m) {
					t.Fatalf("%s: replica metadata\n got %+v\nwant %+v", k, rep.Meta, m)
				}
				if mode, ok := rep.Meta.Mode(); !ok || mode != 0o100640 {
					t.Fatalf("%s: replica mode %o", k, mode)
				}
			}
			// The big object streamed in one pass: unsigned payload with a
			// trailing checksum, not hashed up front.
			p.tg.mu.Lock()
			mode := p.tg.payload["big/three"]
			p.tg.mu.Unlock()
			if mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
				t.Fatalf("payload mode of the big object: %q", mode)
			}
			// Nothing comes back: the target's replicas are not queued.
			if q := p.dst.queue(t); len(q) != 0 {
				t.Fatalf("target queued %d items", len(q))
			}
			waitFor(t, "an empty source queue", func() bool { return len(p.src.queue(t)) == 0 })
		})
	}
}

func TestTargetDownThenBack(t *testing.T) {
	p := newPair(t, false, true, nil, nil)
	p.tg.stop()
	const n = 60
	for i := range n {
		p.src.put(t, "src", fmt.Sprintf("k%03d", i), []byte(fmt.Sprint("data ", i)), meta.ObjectMeta{})
	}
	waitFor(t, "a failed attempt", func() bool { return p.src.mgr.retried.Load() > 0 })
	st, err := p.src.mgr.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != n || st.Targets[0].State != "retrying" || st.Targets[0].LastError == "" || st.OldestPending.IsZero() {
		t.Fatalf("stats with the target down: %+v", st)
	}
	for i := range n {
		if s := statusOf(p.src, "src", fmt.Sprintf("k%03d", i)); s != cryptostore.ReplicationPending {
			t.Fatalf("k%03d: %s while the target is down", i, s)
		}
	}
	p.tg.restart(t)
	for i := range n {
		p.waitStatus(t, fmt.Sprintf("k%03d", i), cryptostore.ReplicationCompleted)
	}
	for i := range n {
		got, _ := p.dst.read(t, "dst", fmt.Sprintf("k%03d", i))
		if string(got) != fmt.Sprint("data ", i) {
			t.Fatalf("k%03d on the target: %q", i, got)
		}
	}
	st, err = p.src.mgr.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != 0 || st.Completed != n || st.Failed != 0 || st.Targets[0].State != "ok" {
		t.Fatalf("stats after draining: %+v", st)
	}
}

func TestPermanentErrorsFailAtOnce(t *testing.T) {
	t.Run("no such bucket", func(t *testing.T) {
		p := newPair(t, false, false, nil, &EnableInput{To: "eu-west-1/missing"})
		p.src.put(t, "src", "k", []byte("x"), meta.ObjectMeta{})
		p.waitStatus(t, "k", cryptostore.ReplicationFailed)
		if got := p.src.mgr.retried.Load(); got != 0 {
			t.Fatalf("a permanent error was retried %d times", got)
		}
		if q := p.src.queue(t); len(q) != 0 {
			t.Fatalf("queue after a permanent failure: %+v", q[0])
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		p := newPair(t, false, false, nil, nil)
		p.tg.sk = "not the secret the source has"
		p.src.put(t, "src", "k", []byte("x"), meta.ObjectMeta{})
		p.waitStatus(t, "k", cryptostore.ReplicationFailed)
		if got := p.src.mgr.retried.Load(); got != 0 {
			t.Fatalf("a permanent error was retried %d times", got)
		}
		st, err := p.src.mgr.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Failed != 1 || st.Targets[0].State != "error" || !strings.Contains(st.Targets[0].LastError, "SignatureDoesNotMatch") {
			t.Fatalf("stats: %+v", st)
		}
	})
}

func TestRetriesExhaustedThenResync(t *testing.T) {
	p := newPair(t, false, false, func(c *Config) { c.RetryFor = 300 * time.Millisecond }, nil)
	p.tg.setDown(true) // 503 SlowDown-like answers: transient
	p.src.put(t, "src", "k", []byte("will fail"), meta.ObjectMeta{})
	p.waitStatus(t, "k", cryptostore.ReplicationFailed)
	if p.src.mgr.retried.Load() == 0 {
		t.Fatal("a transient error was not retried before giving up")
	}
	p.tg.setDown(false)
	prog, err := p.src.mgr.StartResync(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resync to finish", func() bool {
		pr, err := p.src.mgr.ResyncStatus(prog.ID)
		return err == nil && pr.Done
	})
	pr, _ := p.src.mgr.ResyncStatus(prog.ID)
	if pr.Error != "" || pr.Total != 1 || pr.Scanned != 1 || pr.Queued != 1 || pr.Requeued != 1 {
		t.Fatalf("resync progress: %+v", pr)
	}
	p.waitStatus(t, "k", cryptostore.ReplicationCompleted)
	got, _ := p.dst.read(t, "dst", "k")
	if string(got) != "will fail" {
		t.Fatalf("replica: %q", got)
	}
}

func TestResyncCopiesObjectsFromBeforeTheRule(t *testing.T) {
	src, dst := newRegion(t, "us-east-1", nil), newRegion(t, "eu-west-1", nil)
	tg := newTarget(t, dst)
	src.bucket(t, "src", true)
	dst.bucket(t, "dst", false)
	const n = 40
	for i := range n {
		src.put(t, "src", fmt.Sprintf("old/%02d", i), []byte(fmt.Sprint("old ", i)), meta.ObjectMeta{})
	}
	src.put(t, "src", "outside", []byte("no rule"), meta.ObjectMeta{})
	connect(t, src, tg)
	src.mgr.Start(src.store)
	if _, err := src.mgr.StartResync(ctx, "src"); err == nil {
		t.Fatal("resync without a rule was accepted")
	}
	if _, err := src.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst", Prefix: "old/"}); err != nil {
		t.Fatal(err)
	}
	if q := src.queue(t); len(q) != 0 {
		t.Fatal("enabling a rule queued existing objects by itself")
	}
	prog, err := src.mgr.StartResync(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resync to finish", func() bool {
		pr, err := src.mgr.ResyncStatus(prog.ID)
		return err == nil && pr.Done
	})
	pr, _ := src.mgr.ResyncStatus(prog.ID)
	if pr.Total != n+1 || pr.Scanned != n+1 || pr.Queued != n || pr.Skipped != 1 || pr.Requeued != 0 {
		t.Fatalf("resync progress: %+v", pr)
	}
	for i := range n {
		k := fmt.Sprintf("old/%02d", i)
		waitFor(t, k+" COMPLETED", func() bool { return statusOf(src, "src", k) == cryptostore.ReplicationCompleted })
		if got, _ := dst.read(t, "dst", k); string(got) != fmt.Sprint("old ", i) {
			t.Fatalf("%s on the target: %q", k, got)
		}
	}
	if s := statusOf(src, "src", "outside"); s != "" {
		t.Fatalf("object outside the rule: status %q", s)
	}
	bs, err := src.mgr.BucketStatus(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if bs.Objects["COMPLETED"] != n || bs.Objects["NONE"] != 1 || len(bs.Rules) != 1 {
		t.Fatalf("bucket status: %+v", bs)
	}
	// A second resync finds nothing to do.
	prog, err = src.mgr.StartResync(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second resync", func() bool {
		pr, err := src.mgr.ResyncStatus(prog.ID)
		return err == nil && pr.Done
	})
	if pr, _ := src.mgr.ResyncStatus(prog.ID); pr.Queued != 0 {
		t.Fatalf("second resync queued %d", pr.Queued)
	}
}

func TestOverwritesEndWithNewest(t *testing.T) {
	p := newPair(t, false, false, nil, nil)
	for i := range 20 {
		p.src.put(t, "src", "hot", []byte(fmt.Sprint("version ", i)), meta.ObjectMeta{})
	}
	p.waitStatus(t, "hot", cryptostore.ReplicationCompleted)
	got, rep := p.dst.read(t, "dst", "hot")
	if string(got) != "version 19" {
		t.Fatalf("target holds %q, want the newest", got)
	}
	if src := mustHead(t, p.src, "src", "hot"); !rep.ReplicaSourceModified.Equal(src.LastModified) {
		t.Fatalf("replica source time %v, source %v", rep.ReplicaSourceModified, src.LastModified)
	}
}

// TestStaleReplicaRefused: a replica older than what the target holds is
// not stored (the target answers success, skipped); a delete older than
// the stored version does not delete it.
func TestStaleReplicaRefused(t *testing.T) {
	dst := newRegion(t, "eu-west-1", nil)
	dst.bucket(t, "dst", false)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	put := func(data string, at time.Time) error {
		in := &cryptostore.PutInput{Bucket: "dst", Key: "k", Body: strings.NewReader(data), Size: int64(len(data))}
		cryptostore.Replica{SourceTime: at, SourceRegion: "us-east-1"}.Apply(in)
		_, err := dst.store.Put(ctx, in)
		return err
	}
	if err := put("newer", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := put("older", t0); err != cryptostore.ErrStaleReplica {
		t.Fatalf("older replica: want ErrStaleReplica, have %v", err)
	}
	if got, _ := dst.read(t, "dst", "k"); string(got) != "newer" {
		t.Fatalf("target holds %q", got)
	}
	if err := put("same time, new metadata", t0.Add(time.Second)); err != nil {
		t.Fatalf("replica of the same time: %v", err)
	}
	if ok, err := dst.store.DeleteReplica(ctx, "dst", "k", t0); err != nil || ok {
		t.Fatalf("older delete: %v, %v", ok, err)
	}
	if ok, err := dst.store.DeleteReplica(ctx, "dst", "k", t0.Add(2*time.Second)); err != nil || !ok {
		t.Fatalf("newer delete: %v, %v", ok, err)
	}
}

func TestDeletesReplicate(t *testing.T) {
	p := newPair(t, false, false, nil, &EnableInput{To: "eu-west-1/dst", Deletes: true})
	p.src.put(t, "src", "gone", []byte("x"), meta.ObjectMeta{})
	p.waitStatus(t, "gone", cryptostore.ReplicationCompleted)
	if err := p.src.store.Delete(ctx, "src", "gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete to reach the target", func() bool {
		_, err := p.dst.head("dst", "gone")
		return err != nil
	})
	waitFor(t, "an empty queue", func() bool { return len(p.src.queue(t)) == 0 })
}

func TestTwoWayRulesDoNotLoop(t *testing.T) {
	a, b := newRegion(t, "us-east-1", nil), newRegion(t, "eu-west-1", nil)
	ta, tb := newTarget(t, a), newTarget(t, b)
	a.bucket(t, "shared", false)
	b.bucket(t, "shared", true)
	connect(t, a, tb)
	connect(t, b, ta)
	a.mgr.Start(a.store)
	b.mgr.Start(b.store)
	if _, err := a.mgr.Enable(ctx, "shared", &EnableInput{To: "eu-west-1/shared", Deletes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.mgr.Enable(ctx, "shared", &EnableInput{To: "us-east-1/shared", Deletes: true}); err != nil {
		t.Fatal(err)
	}
	a.put(t, "shared", "from-a", []byte("a"), meta.ObjectMeta{})
	b.put(t, "shared", "from-b", []byte("b"), meta.ObjectMeta{})
	waitFor(t, "from-a COMPLETED", func() bool { return statusOf(a, "shared", "from-a") == cryptostore.ReplicationCompleted })
	waitFor(t, "from-b COMPLETED", func() bool { return statusOf(b, "shared", "from-b") == cryptostore.ReplicationCompleted })
	if s := statusOf(b, "shared", "from-a"); s != cryptostore.ReplicationReplica {
		t.Fatalf("from-a on b: %q", s)
	}
	if s := statusOf(a, "shared", "from-b"); s != cryptostore.ReplicationReplica {
		t.Fatalf("from-b on a: %q", s)
	}
	waitFor(t, "empty queues", func() bool { return len(a.queue(t)) == 0 && len(b.queue(t)) == 0 })
	if ta.puts.Load() != 1 || tb.puts.Load() != 1 {
		t.Fatalf("puts received: a %d, b %d; want one each (no echo)", ta.puts.Load(), tb.puts.Load())
	}
}

// TestReadyOrderAndRetrySchedule: the dispatcher takes items oldest first,
// leaves an item whose retry time has not come, and an item whose target is
// held back, and tells when the earliest of those is due.
func TestReadyOrderAndRetrySchedule(t *testing.T) {
	r := hookRegion(t, false)
	for _, k := range []string{"r/1", "r/2", "r/3", "r/4"} {
		r.put(t, "src", k, []byte(k), meta.ObjectMeta{})
	}
	q := r.queue(t)
	later := time.Now().Add(time.Hour).UTC()
	if err := r.db.Update(ctx, func(tx *meta.Txn) error {
		it := *q[1]
		it.Attempts, it.NextAttempt = 1, later
		return tx.UpdateQueueItem(&it)
	}); err != nil {
		t.Fatal(err)
	}
	batch, due, err := r.mgr.ready(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(batch); !reflect.DeepEqual(got, []string{"r/1", "r/3"}) {
		t.Fatalf("first batch: %v", got)
	}
	if !due.Equal(later) {
		t.Fatalf("due: %v, want %v", due, later)
	}
	// In flight items are not handed out twice.
	batch2, _, err := r.mgr.ready(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(batch2); !reflect.DeepEqual(got, []string{"r/4"}) {
		t.Fatalf("second batch: %v", got)
	}
	for _, it := range append(batch, batch2...) {
		r.mgr.release(it)
	}
	// A held-back target holds its items back.
	tc, err := r.mgr.client(ctx, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	tc.failed(time.Now(), fmt.Errorf("connection refused"), backoff{base: time.Hour, max: time.Hour})
	batch3, due3, err := r.mgr.ready(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch3) != 0 || due3.IsZero() || due3.After(later) {
		t.Fatalf("with the target held back: batch %v, due %v", keysOf(batch3), due3)
	}
}

func keysOf(items []*meta.QueueItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func TestBackoff(t *testing.T) {
	b := backoff{base: 100 * time.Millisecond, max: 5 * time.Second}
	for failures, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 7: 5 * time.Second, 60: 5 * time.Second} {
		for range 20 {
			if d := b.delay(failures); d < want/2 || d >= want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v)", failures, d, want/2, want)
			}
		}
	}
}
