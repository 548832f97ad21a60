package integration

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/internal/lazyfs"
)

// The power-cut test runs the daemon on a data directory served by lazyfs,
// which keeps what was written but not synced in memory and loses it at a
// cut, and drives it through rounds of mixed S3 and mount writes cut at a
// random point. After each cut the daemon starts on what survived and every
// key is checked against what was acknowledged.
//
// SEALFS_POWERCUT_ROUNDS sets the number of rounds (make test runs a few,
// make crash many); SEALFS_POWERCUT_SEED fixes the random choices.

func init() { lazyfs.ChildMain() }

const pcBucket = "powercut"

// pcVersion is the content of version v written under key: a header that
// names it, then bytes drawn from a generator seeded by it, so that a body
// read back can be told whole (a known version) or not.
func pcVersion(key string, v, size int) []byte {
	head := fmt.Sprintf("sealfs-powercut key=%s v=%d n=%d\n", key, v, size)
	b := make([]byte, max(size, len(head)))
	copy(b, head)
	seed := sha256.Sum256([]byte(head))
	r := rand.NewChaCha8(seed)
	r.Read(b[len(head):])
	return b
}

// pcWhole reports whether b is a version pcVersion made.
func pcWhole(b []byte) bool {
	line, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return false
	}
	var key string
	var v, n int
	f := strings.Fields(string(line))
	if len(f) != 4 || f[0] != "sealfs-powercut" {
		return false
	}
	key = strings.TrimPrefix(f[1], "key=")
	v, err1 := strconv.Atoi(strings.TrimPrefix(f[2], "v="))
	n, err2 := strconv.Atoi(strings.TrimPrefix(f[3], "n="))
	if err1 != nil || err2 != nil {
		return false
	}
	return bytes.Equal(b, pcVersion(key, v, n))
}

// pcState is what a key holds: absent, or a body (by its hash).
type pcState struct {
	present bool
	sum     [32]byte
}

var pcAbsent = pcState{}

func pcPresent(b []byte) pcState { return pcState{present: true, sum: sha256.Sum256(b)} }

// pcKey is the history of one key since the last check: ops[0] is the
// state found then; each write attempted appends the state it leaves; an
// acknowledged (durable) one moves durable to its index. After a cut the
// key must be in one of ops[durable:].
type pcKey struct {
	ops     []pcState
	durable int
	events  []string // what happened to the key since the last check, for a failure's report
}

func (k *pcKey) attempt(s pcState, what string) int {
	k.ops = append(k.ops, s)
	k.note("op %d: %s leaving %s", len(k.ops)-1, what, s)
	return len(k.ops) - 1
}

func (k *pcKey) ack(i int) {
	k.durable = max(k.durable, i)
	k.note("op %d acknowledged", i)
}

func (k *pcKey) note(format string, args ...any) {
	k.events = append(k.events, time.Now().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
}

// String names a state by its digest's first bytes.
func (s pcState) String() string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("%x", s.sum[:4])
}

// pcModel is every key's history. Each worker owns its keys, so one key's
// writes are never concurrent and their order is the order of ops.
type pcModel struct {
	mu    sync.Mutex
	keys  map[string]*pcKey
	cutAt time.Time // when the last cut came
}

func (m *pcModel) key(name string) *pcKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys[name]
	if k == nil {
		k = &pcKey{ops: []pcState{pcAbsent}}
		m.keys[name] = k
	}
	return k
}

// pcTally counts what the rounds found.
type pcTally struct {
	rounds, acked, writes   atomic.Int64
	lost, torn, dangling    atomic.Int64
	scrubDamaged, mountDiff atomic.Int64
	mountWrites, s3Writes   atomic.Int64
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestPowerCut cuts the power of a gateway whose data directory is on
// lazyfs: with Badger the metadata is in it and goes through the cut too;
// with PostgreSQL and etcd it is on a server the cut does not reach (another
// machine's, as in production) while the gateway's blobs and local state
// are cut. SEALFS_POWERCUT_ENGINES (a comma list; default all three)
// narrows it.
func TestPowerCut(t *testing.T) {
	for _, engine := range []string{"badger", "postgres", "etcd"} {
		t.Run(engine, func(t *testing.T) {
			if sel := os.Getenv("SEALFS_POWERCUT_ENGINES"); sel != "" && !slices.Contains(strings.Split(sel, ","), engine) {
				t.Skipf("SEALFS_POWERCUT_ENGINES=%s", sel)
			}
			powerCut(t, engine)
		})
	}
}

func powerCut(t *testing.T, engine string) {
	rounds := envInt("SEALFS_POWERCUT_ROUNDS", 4)
	if engine != "badger" {
		rounds = envInt("SEALFS_POWERCUT_SHARED_ROUNDS", 2)
	}
	seed := uint64(envInt("SEALFS_POWERCUT_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("power cut: %d rounds, SEALFS_POWERCUT_SEED=%d", rounds, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	h, backing, data := pcLazyData(t)
	trace := filepath.Join(filepath.Dir(data), "lazyfs.trace")
	opts := DaemonOptions{DataDir: data}
	if engine != "badger" {
		root := make([]byte, 32)
		crand.Read(root)
		opts.Args = []string{"--meta", engineURL(t, engine), "--blobs", "file://" + filepath.Join(data, "shared-blobs")}
		opts.Env = []string{"SEALFS_KMS_ROOT_KEY=" + hex.EncodeToString(root)}
	}
	d := startMount(t, opts)
	c := d.S3()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(pcBucket)}); err != nil {
		t.Fatal(err)
	}
	putSealedBucketConfig(t, c, pcBucket)

	model := &pcModel{keys: make(map[string]*pcKey)}
	var tally pcTally
	const workers, keysPerWorker = 3, 3
	for round := 1; round <= rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			wr := rand.New(rand.NewPCG(seed, uint64(round*100+w)))
			go func() {
				defer wg.Done()
				pcWorker(d, c, model, &tally, wr, w, keysPerWorker, round%2 == 0, stop)
			}()
		}
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		st := h.Stats()
		// The cut: the harness dies with everything unsynced, then the
		// daemon, then the dead mounts go.
		h.Cut()
		model.cutAt = time.Now()
		close(stop)
		d.cmd.Process.Kill()
		abortFUSE(t, d.MountDir)
		d.Kill()
		unmountLazy(d.MountDir)
		waitOrFail(t, &wg, time.Minute, "workers did not stop after the cut")
		h.Remount()
		d.start()
		c = d.S3()
		tally.rounds.Add(1)
		damaged, report := pcScrub(t, d)
		tally.scrubDamaged.Add(int64(damaged))
		if damaged > 0 {
			// Before pcCheck, whose clean-up deletes the damaged keys
			// and so their blobs.
			pcDiagnose(t, backing, data, trace, report)
		}
		lost, torn, dangling := pcCheck(t, d, c, model, &tally)
		t.Logf("round %d: cut with %d unsynced bytes in %d files; lost %d, torn %d, dangling %d, scrub damaged %d",
			round, st.DirtyBytes, st.Files, lost, torn, dangling, damaged)
	}
	summary := fmt.Sprintf("power cut (%s): rounds %d, writes %d (S3 %d, mount %d), acknowledged %d, lost %d, torn %d, dangling %d, scrub damaged %d, mount≠S3 %d",
		engine, tally.rounds.Load(), tally.writes.Load(), tally.s3Writes.Load(), tally.mountWrites.Load(), tally.acked.Load(),
		tally.lost.Load(), tally.torn.Load(), tally.dangling.Load(), tally.scrubDamaged.Load(), tally.mountDiff.Load())
	fmt.Println(summary)
	t.Log(summary)
	if tally.lost.Load()+tally.torn.Load()+tally.dangling.Load()+tally.scrubDamaged.Load()+tally.mountDiff.Load() > 0 {
		t.Errorf("the store broke its promise across power cuts (seed %d)", seed)
	}
}

// pcLazyData makes a data directory served by lazyfs over a backing
// directory, both under a new temporary directory, with the harness
// tracing into lazyfs.trace beside them. It needs root and FUSE.
func pcLazyData(t *testing.T) (h *lazyfs.Harness, backing, data string) {
	t.Helper()
	requireFUSE(t)
	if os.Geteuid() != 0 {
		notRun(t, "lazyfs mounts directly and needs root")
	}
	dir := t.TempDir()
	backing, data = filepath.Join(dir, "backing"), filepath.Join(dir, "data")
	for _, d := range []string{backing, data} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SEALFS_LAZYFS_TRACE", filepath.Join(dir, "lazyfs.trace"))
	return lazyfs.Start(t, backing, data), backing, data
}

// pcCut cuts the power, as powerCut's rounds do: the harness dies with
// everything unsynced, then the daemon, then the dead mounts go. Then the
// data directory is mounted again and the daemon restarted on what
// survived.
func pcCut(t *testing.T, h *lazyfs.Harness, d *Daemon) {
	t.Helper()
	h.Cut()
	d.cmd.Process.Kill()
	abortFUSE(t, d.MountDir)
	d.Kill()
	unmountLazy(d.MountDir)
	h.Remount()
	d.start()
}

// abortFUSE aborts the FUSE connection of the mount at dir (fusectl's
// abort file): every request waiting on it fails. A daemon killed while one
// of its threads waits for a directory lock in a cache invalidation, held
// by a client waiting for that very daemon, would otherwise never finish
// dying, nor the client its request.
func abortFUSE(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var minor string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			_, minor, _ = strings.Cut(f[2], ":")
		}
	}
	if minor == "" {
		return
	}
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(filepath.Join(ctl, minor)); err != nil {
		if err := syscall.Mount("none", ctl, "fusectl", 0, ""); err != nil {
			t.Logf("mounting fusectl: %v", err)
			return
		}
	}
	if err := os.WriteFile(filepath.Join(ctl, minor, "abort"), []byte("1"), 0); err != nil {
		t.Logf("aborting the FUSE connection of %s: %v", dir, err)
	}
}

// pcDiagnose logs, for every blob a scrub report names, what the backing
// directory and the mount hold for it and every line of the harness's
// trace about it (a diagnosis aid).
func pcDiagnose(t *testing.T, backing, data, trace, report string) {
	tr, _ := os.ReadFile(trace)
	lines := strings.Split(string(tr), "\n")
	for _, m := range regexp.MustCompile(`blob ([0-9a-f]{32})`).FindAllStringSubmatch(report, -1) {
		id := m[1]
		for _, root := range []string{backing, data} {
			rel := filepath.Join("blobs", id[:2], id)
			if _, err := os.Stat(filepath.Join(root, "shared-blobs")); err == nil {
				rel = filepath.Join("shared-blobs", id[:2], id)
			}
			var sx syscall.Stat_t
			err := syscall.Stat(filepath.Join(root, rel), &sx)
			b, rerr := os.ReadFile(filepath.Join(root, rel))
			t.Logf("blob %s under %s: stat size %d ino %d (err %v); read %d bytes (err %v)", id, root, sx.Size, sx.Ino, err, len(b), rerr)
		}
		keys := map[string]bool{}
		for _, line := range lines {
			if strings.Contains(line, id) {
				for _, f := range strings.Fields(line) {
					if strings.HasPrefix(f, "key=") && f != "key=0/0" {
						keys[f] = true
					}
				}
			}
		}
		for _, line := range lines {
			hit := strings.Contains(line, id) || strings.Contains(line, " mount ")
			for k := range keys {
				hit = hit || strings.Contains(line, k)
			}
			if hit {
				t.Log(line)
			}
		}
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, d time.Duration, msg string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal(msg)
	}
}

// TestPowerCutDeleteAfterMountRemove: an S3 DELETE (or DeleteObjects) of
// a key the mount has just removed, without syncing, answers success: the
// key is absent. That absence must survive a power cut, as a delete that
// found the key would. (The power-cut rounds found it lost once: the key
// came back with the version the mount had removed.)
func TestPowerCutDeleteAfterMountRemove(t *testing.T) {
	h, _, data := pcLazyData(t)
	// No background sync: only what the requests make durable is.
	d := startMount(t, DaemonOptions{DataDir: data, Args: []string{"--sync-interval", "0"}})
	c := d.S3()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(pcBucket)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"one", "many"} {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(k), Body: strings.NewReader("version 1 of " + k)}); err != nil {
			t.Fatal(err)
		}
	}
	// Both removals after the last synced write: neither is durable.
	for _, k := range []string{"one", "many"} {
		if err := os.Remove(d.Path(pcBucket, k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(pcBucket), Key: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String(pcBucket), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("many")}}}})
	if err != nil || len(out.Errors) > 0 {
		t.Fatalf("DeleteObjects: %v %+v", err, out)
	}

	pcCut(t, h, d)
	c = d.S3()
	for _, k := range []string{"one", "many"} {
		_, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(k)})
		if sdkCode(err) != "NotFound" {
			t.Errorf("%s: deleted (the delete answered success), and after a power cut HEAD says %v", k, err)
		}
	}
}

// pcWorker writes its keys until stop: S3 PUTs, DELETEs and multipart
// uploads; through the mount overwrites, save-by-rename and rm, each
// sometimes followed by fsync. Errors (the cut) end nothing but the op. In
// mountMostly rounds S3 writes are rare: every S3 write syncs the store,
// so these rounds leave more unsynced mount commits for the cut.
func pcWorker(d *Daemon, c *awss3.Client, m *pcModel, tally *pcTally, r *rand.Rand, w, nkeys int, mountMostly bool, stop chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	sizes := []int{700, 20 << 10, 100 << 10, 300 << 10, 1500 << 10}
	// One write in 16 is larger than the 8 MiB after which a blob's data
	// is synced in the background while it is written.
	const large = 9<<20 + 300<<10
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("w%d-k%d", w, r.IntN(nkeys))
		k := m.key(name)
		v := int(time.Now().UnixNano() % 1e12)
		size := sizes[r.IntN(len(sizes))]
		if r.IntN(16) == 0 {
			size = large
		}
		body := pcVersion(name, v, size)
		path := d.Path(pcBucket, name)
		tally.writes.Add(1)
		op := r.IntN(16)
		if mountMostly && op < 6 && r.IntN(8) != 0 {
			op = 6 + r.IntN(10)
		}
		syncOdds := 2 // fsync after one mount write in syncOdds
		if mountMostly {
			syncOdds = 6
		}
		switch {
		case op < 4: // S3 PUT
			tally.s3Writes.Add(1)
			i := k.attempt(pcPresent(body), "S3 PUT")
			if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(name), Body: bytes.NewReader(body)}); err == nil {
				k.ack(i)
				tally.acked.Add(1)
			} else {
				k.note("op %d: %v", i, err)
			}
		case op < 5: // S3 DELETE
			tally.s3Writes.Add(1)
			i := k.attempt(pcAbsent, "S3 DELETE")
			if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(name)}); err == nil {
				k.ack(i)
				tally.acked.Add(1)
			} else {
				k.note("op %d: %v", i, err)
			}
		case op < 6: // S3 multipart
			tally.s3Writes.Add(1)
			body = pcVersion(name, v, 5<<20+100<<10)
			i := k.attempt(pcPresent(body), "S3 multipart upload")
			if err := pcMultipart(ctx, c, name, body); err == nil {
				k.ack(i)
				tally.acked.Add(1)
			} else {
				k.note("op %d: %v", i, err)
			}
		case op < 11: // overwrite through the mount
			tally.mountWrites.Add(1)
			k.attempt(pcPresent(nil), "mount O_TRUNC") // O_TRUNC may commit an empty version first
			sync := r.IntN(syncOdds) == 0
			i := k.attempt(pcPresent(body), fmt.Sprintf("mount write (fsync %v)", sync))
			if err := pcWriteFile(path, body, sync); err != nil {
				k.note("op %d: %v", i, err)
			} else if sync {
				k.ack(i)
				tally.acked.Add(1)
			}
		case op < 14: // save by rename through the mount
			tally.mountWrites.Add(1)
			tmpName := name + ".tmp"
			tk := m.key(tmpName)
			sync := r.IntN(syncOdds) == 0
			ti := tk.attempt(pcPresent(body), fmt.Sprintf("mount write (fsync %v)", sync))
			if err := pcWriteFile(path+".tmp", body, sync); err != nil {
				tk.note("op %d: %v", ti, err)
				continue
			}
			if sync {
				tk.ack(ti)
			}
			ti = tk.attempt(pcAbsent, "renamed away")
			i := k.attempt(pcPresent(body), "mount rename from "+tmpName)
			if err := os.Rename(path+".tmp", path); err != nil {
				k.note("op %d: %v", i, err)
				continue
			}
			if r.IntN(syncOdds) == 0 && pcSyncDir(filepath.Dir(path)) == nil {
				k.note("op %d: directory synced", i)
				tk.ack(ti)
				k.ack(i)
				tally.acked.Add(1)
			}
		default: // rm through the mount
			tally.mountWrites.Add(1)
			i := k.attempt(pcAbsent, "mount rm")
			err := os.Remove(path)
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
			if err == nil && r.IntN(syncOdds) == 0 && pcSyncDir(filepath.Dir(path)) == nil {
				k.ack(i)
				tally.acked.Add(1)
			}
		}
	}
}

func pcWriteFile(path string, body []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	for p := body; len(p) > 0; {
		n := min(len(p), 128<<10)
		if _, err := f.Write(p[:n]); err != nil {
			f.Close()
			return err
		}
		p = p[n:]
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func pcSyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func pcMultipart(ctx context.Context, c *awss3.Client, key string, body []byte) error {
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(pcBucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for i, p := range [][]byte{body[:5<<20], body[5<<20:]} {
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(pcBucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(pcBucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// pcCheck reads every key after a restart, over S3 and through the mount,
// and compares it with its history; then it resets every history to what
// was found. Objects found damaged are deleted (so later rounds count their
// own).
func pcCheck(t *testing.T, d *Daemon, c *awss3.Client, m *pcModel, tally *pcTally) (lost, torn, dangling int) {
	t.Helper()
	ctx := context.Background()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Every listed object must read whole: a key outside the model would be
	// a version nobody wrote.
	listed := map[string]bool{}
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(pcBucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing after the cut: %v\n%s", err, d.Logs())
		}
		for _, o := range page.Contents {
			listed[*o.Key] = true
			if m.keys[*o.Key] == nil {
				m.keys[*o.Key] = &pcKey{ops: []pcState{pcAbsent}}
			}
		}
	}
	for name, k := range m.keys {
		got, found := pcAbsent, false
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(name)})
		var body []byte
		if err == nil {
			body, err = io.ReadAll(out.Body)
			out.Body.Close()
		}
		switch {
		case err != nil && sdkCode(err) == "NoSuchKey":
			if listed[name] {
				t.Errorf("%s: listed but GET says NoSuchKey", name)
				dangling++
			}
		case err != nil:
			t.Errorf("%s: unreadable after the cut (dangling record?): %v", name, err)
			dangling++
			c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(name)})
			k.ops, k.durable, k.events = []pcState{pcAbsent}, 0, nil
			continue
		case len(body) > 0 && !pcWhole(body):
			t.Errorf("%s: not a whole version after the cut (%d bytes)", name, len(body))
			torn++
			c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(name)})
			k.ops, k.durable, k.events = []pcState{pcAbsent}, 0, nil
			continue
		default:
			got, found = pcPresent(body), true
			if len(body) == 0 {
				got = pcPresent(nil)
			}
		}
		// The mount must show the same.
		mb, merr := os.ReadFile(d.Path(pcBucket, name))
		switch {
		case found && merr != nil:
			t.Errorf("%s: S3 reads it, the mount does not: %v", name, merr)
			tally.mountDiff.Add(1)
		case found && !bytes.Equal(mb, body):
			t.Errorf("%s: the mount reads other bytes than S3", name)
			tally.mountDiff.Add(1)
		case !found && merr == nil:
			t.Errorf("%s: the mount reads a file S3 does not have", name)
			tally.mountDiff.Add(1)
		}
		ok := false
		for _, s := range k.ops[k.durable:] {
			if s == got {
				ok = true
			}
		}
		if !ok {
			what := "absent"
			if found {
				what = "an older version"
			}
			found := "none of them"
			for i, s := range k.ops[:k.durable] {
				if s == got {
					found = fmt.Sprintf("op %d", i)
				}
			}
			t.Errorf("%s: an acknowledged write was lost: the key is %s (%s, left by %s; the last acknowledged is op %d). Since the last check (the cut came at %s):\n\t%s",
				name, what, got, found, k.durable, m.cutAt.Format("15:04:05.000000"), strings.Join(k.events, "\n\t"))
			lost++
		}
		k.ops, k.durable, k.events = []pcState{got}, 0, nil
	}
	tally.lost.Add(int64(lost))
	tally.torn.Add(int64(torn))
	tally.dangling.Add(int64(dangling))
	return lost, torn, dangling
}

// pcScrub runs `sealfs scrub` against the restarted daemon and returns how
// many objects it found damaged (exit code 3).
func pcScrub(t *testing.T, d *Daemon) (int, string) {
	t.Helper()
	cmd := exec.Command(sealfsBin(t), "scrub", "--data", d.DataDir)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).ExitStatus() == 3:
		t.Errorf("scrub found damage:\n%s", out)
		return max(1, strings.Count(string(out), "DAMAGED ")), string(out)
	default:
		t.Fatalf("scrub: %v\n%s", err, out)
		return 0, ""
	}
}

// TestPowerCutAfterSyncError: the disk fails one sync of the metadata
// (lazyfs injects EIO on an fsync of DATA/meta; what that fsync should have
// written is lost at the cut). Writes are refused from then on, blobs that
// commits made since the last good sync replaced stay, and after a power cut
// every object is whole: acknowledged writes kept, nothing dangling, scrub
// clean.
func TestPowerCutAfterSyncError(t *testing.T) {
	h, _, data := pcLazyData(t)
	d := startMount(t, DaemonOptions{DataDir: data, Env: []string{"SEALFS_SYNC_INTERVAL=200ms"}})
	c := d.S3()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(pcBucket)}); err != nil {
		t.Fatal(err)
	}
	putSealedBucketConfig(t, c, pcBucket)
	put := func(key string, body []byte) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	a1, b1 := pcVersion("a", 1, 300<<10), pcVersion("b", 1, 300<<10)
	for key, body := range map[string][]byte{"a": a1, "b": b1, "gone": b1} {
		if err := put(key, body); err != nil {
			t.Fatal(err)
		}
	}

	h.FailNextFsync("meta/")
	// Through the mount, without fsync: overwrite a, remove gone. The
	// background sync that would make these durable fails.
	a2 := pcVersion("a", 2, 300<<10)
	if err := pcWriteFile(d.Path(pcBucket, "a"), a2, false); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.Path(pcBucket, "gone")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := put("c", pcVersion("c", 1, 300<<10))
		if err != nil {
			if err := put("d", pcVersion("d", 1, 1000)); err == nil {
				t.Error("a write succeeded after a failed sync")
			}
			break // the failed sync is permanent
		}
		if time.Now().After(deadline) {
			t.Error("S3 writes still succeed 3s after the metadata sync failed")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	pcCut(t, h, d)
	c = d.S3()
	if n, _ := pcScrub(t, d); n != 0 {
		t.Errorf("scrub found %d damaged objects after the cut", n)
	}
	get := func(key string) ([]byte, error) {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(pcBucket), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	if got, err := get("b"); err != nil || !bytes.Equal(got, b1) {
		t.Errorf("b, acknowledged before the failure: %v", err)
	}
	if got, err := get("a"); err != nil || !(bytes.Equal(got, a1) || bytes.Equal(got, a2)) {
		t.Errorf("a is not one whole version after the cut (dangling?): %v", err)
	}
	if got, err := get("gone"); err == nil && !bytes.Equal(got, b1) || err != nil && sdkCode(err) != "NoSuchKey" {
		t.Errorf("gone after the cut: %v", err)
	}
	for _, key := range []string{"c", "d"} {
		if got, err := get(key); err == nil && !pcWhole(got) || err != nil && sdkCode(err) != "NoSuchKey" {
			t.Errorf("%s (refused write) after the cut: %v", key, err)
		}
	}
}
