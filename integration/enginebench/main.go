// Command enginebench measures sealfs over its metadata engines and blob
// stores side by side, in one run: Badger (embedded, the default),
// PostgreSQL and a 3-member etcd cluster for metadata, each with file://
// and s3:// blobs, with one gateway and (PostgreSQL, etcd: shared engines)
// two. For each configuration it measures, over HTTPS with aws-sdk-go-v2:
//
//   - 4 KiB PUT ops/s (16 clients),
//   - 1 MiB PUT MB/s (4 clients),
//   - ListObjectsV2 pages/s of 1000-key pages over 5000 keys (2 clients),
//
// and the time to untar a tree of small files (2000) into the mount of
// gateway 1 (until tar returns). With two gateways the S3 clients are split
// half and half between them. The bucket encrypts by default (SSE-KMS).
//
// The servers are started here, on loopback, in temporary directories:
// PostgreSQL (internal/pgtest: Debian's binaries, as the postgres user when
// run as root), etcd (internal/etcdtest), and, as the S3 blob backend, a
// second `sealfs serve` serving a plain bucket. Every configuration gets a
// fresh namespace (a PostgreSQL schema, an etcd key prefix, an S3 key
// prefix, new data directories). Badger+file is measured first and again
// last: every figure is printed with its ratio to the first, and the second
// shows how much the machine drifted during the run.
//
//	go run ./integration/enginebench -sealfs bin/sealfs
//
// It needs root (FUSE mounts; PostgreSQL as its own user) and fusermount3.
// A missing engine's rows are left out with a loud message, or fail the run
// under SEALFS_REQUIRE_ENGINES=1.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/sealfs/sealfs/internal/banner"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sealfs/sealfs/internal/etcdtest"
	"github.com/sealfs/sealfs/internal/freeport"
	"github.com/sealfs/sealfs/internal/mountinfo"
	"github.com/sealfs/sealfs/internal/pgtest"
	"github.com/sealfs/sealfs/internal/scrape"
)

const (
	accessKey = "SEALFSENGINEBENCH001"
	secretKey = "sealfs-enginebench/secret+key=0123456789"
	region    = "us-east-1"
	bucket    = "bench"

	blobAccessKey = "SEALFSBLOBBACKEND001"
	blobSecretKey = "sealfs-blob-backend/secret+key=01234567"
	blobBucket    = "blobs"

	listKeys = 5000
	listPage = 1000
)

// cfg is one measured configuration.
type cfg struct {
	meta     string // badger, postgres, etcd
	blobs    string // file, s3
	gateways int
	label    string // "" → derived
}

// put4kClients is -clients4k.
var put4kClients = 16

func (c cfg) name() string {
	if c.label != "" {
		return c.label
	}
	return fmt.Sprintf("%s+%s x%d", c.meta, c.blobs, c.gateways)
}

// result is one configuration's figures.
type result struct {
	put4k, put1m, list float64 // ops/s, MB/s, pages/s
	untar              time.Duration
	err                error

	// Where the cost goes: the metadata engine's write transactions
	// (PostgreSQL: transaction ids; etcd: revisions) per 4 KiB PUT and per
	// untarred file, and the mount's FUSE operations during the untar.
	txnPut, txnFile float64
	txnKnown        bool
	fuse            []fuseOp
}

// fuseOp is one kind of FUSE operation during the untar: how many, and
// their summed latency.
type fuseOp struct {
	op    string
	count float64
	secs  float64
}

func main() {
	// Output piped into a reader that stops early (make ... | head)
	// must not kill the run before it unmounts and stops its daemons: a
	// write to the closed pipe fails instead.
	signal.Ignore(syscall.SIGPIPE)
	bin := flag.String("sealfs", "bin/sealfs", "the sealfs binary")
	dur := flag.Duration("d", 3*time.Second, "duration of each throughput measurement")
	files := flag.Int("files", 2000, "small files in the untarred tree")
	only := flag.String("only", "", "run only configurations whose name contains this (the Badger+file reference always runs)")
	encrypt := flag.Bool("encrypt", true, "turn the bucket's default encryption (SSE-KMS) on")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.IntVar(&put4kClients, "clients4k", 16, "clients of the 4 KiB PUT workload")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("enginebench: ")
	// This machine may export AWS variables that would override the
	// client's own endpoint and trust.
	for _, v := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		os.Unsetenv(v)
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	if err := run(*bin, *dur, *files, *only, *encrypt, *keep); err != nil {
		log.Fatal(err)
	}
}

// env is what every configuration shares: the servers and the tarball.
type env struct {
	bin     string
	dir     string
	rootKey string // hex, shared by the gateways
	tarball string
	pg      *pgtest.Server
	etcd    *etcdtest.Cluster
	blobs   *daemon // the S3 blob backend
	dur     time.Duration
	files   int
	encrypt bool
	seq     int
}

func run(bin string, dur time.Duration, files int, only string, encrypt, keep bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: it mounts (FUSE)")
	}
	for _, tool := range []string{"fusermount3", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install fuse3 tar)", tool)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("/var/tmp", "enginebench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	root := make([]byte, 32)
	rand.Read(root)
	e := &env{bin: bin, dir: dir, rootKey: hex.EncodeToString(root), dur: dur, files: files, encrypt: encrypt}
	e.tarball = filepath.Join(dir, "tree.tar")
	treeBytes, err := writeTree(e.tarball, files)
	if err != nil {
		return err
	}
	require := os.Getenv("SEALFS_REQUIRE_ENGINES") == "1"
	missing := func(what string, err error) error {
		if require {
			return fmt.Errorf("%s: %w (SEALFS_REQUIRE_ENGINES=1)", what, err)
		}
		log.Printf("!!! %s NOT MEASURED: %v !!!", what, err)
		return nil
	}

	configs := []cfg{{meta: "badger", blobs: "file", gateways: 1, label: "badger+file x1 (ref)"}}
	want := func(c cfg) bool { return strings.Contains(c.name(), only) }
	var rest []cfg
	rest = append(rest, cfg{meta: "badger", blobs: "s3", gateways: 1})
	for _, m := range []string{"postgres", "etcd"} {
		for _, b := range []string{"file", "s3"} {
			for _, g := range []int{1, 2} {
				rest = append(rest, cfg{meta: m, blobs: b, gateways: g})
			}
		}
	}
	needs := map[string]bool{}
	for _, c := range rest {
		if want(c) {
			configs = append(configs, c)
			needs[c.meta], needs[c.blobs] = true, true
		}
	}
	configs = append(configs, cfg{meta: "badger", blobs: "file", gateways: 1, label: "badger+file x1 (again)"})

	if needs["postgres"] {
		log.Printf("starting PostgreSQL")
		if e.pg, err = pgtest.Start(); err != nil {
			if err := missing("PostgreSQL rows", err); err != nil {
				return err
			}
		} else {
			defer e.pg.Stop()
		}
	}
	if needs["etcd"] {
		log.Printf("starting a 3-member etcd cluster")
		if e.etcd, err = etcdtest.New(3); err != nil {
			if err := missing("etcd rows", err); err != nil {
				return err
			}
		} else {
			defer e.etcd.Stop()
		}
	}
	if needs["s3"] {
		log.Printf("starting the S3 blob backend (a second sealfs, plain bucket)")
		e.blobs, err = startDaemon(bin, []string{"serve", "--data", filepath.Join(dir, "blob-backend")},
			[]string{"SEALFS_ACCESS_KEY=" + blobAccessKey, "SEALFS_SECRET_KEY=" + blobSecretKey})
		if err != nil {
			return fmt.Errorf("S3 blob backend: %w", err)
		}
		defer e.blobs.stop()
		c, err := s3Client(e.blobs, blobAccessKey, blobSecretKey)
		if err != nil {
			return err
		}
		if _, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(blobBucket)}); err != nil {
			return fmt.Errorf("S3 blob backend: %w", err)
		}
	}

	results := make([]result, len(configs))
	var ran []int
	for i, c := range configs {
		if (c.meta == "postgres" && e.pg == nil) || (c.meta == "etcd" && e.etcd == nil) {
			continue
		}
		log.Printf("== %s", c.name())
		start := time.Now()
		results[i] = e.measure(c)
		if results[i].err != nil {
			log.Printf("%s: %v", c.name(), results[i].err)
		}
		log.Printf("   %s took %v", c.name(), time.Since(start).Round(time.Second))
		ran = append(ran, i)
	}

	enc := "plain"
	if encrypt {
		enc = "SSE-KMS by default"
	}
	fmt.Printf("\nsealfs metadata engines × blob stores × gateways (bucket %s; %v per throughput figure; untar of %d files, %.1f MiB, into gateway 1's mount, until tar returns)\n",
		enc, dur, files, float64(treeBytes)/(1<<20))
	fmt.Printf("S3 clients: aws-sdk-go-v2 over HTTPS, split evenly between the gateways; ×ref = figure / Badger+file's (for untar: time / Badger+file's)\n\n")
	ref := results[0]
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "configuration\tPUT 4KiB x%d ops/s\t×ref\tPUT 1MiB x4 MB/s\t×ref\tLIST x2 pages/s\t×ref\tuntar s\t×ref\t\n", put4kClients)
	for _, i := range ran {
		r := results[i]
		if r.err != nil {
			fmt.Fprintf(tw, "%s\tFAILED: %v\t\t\t\t\t\t\t\t\n", configs[i].name(), r.err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.1f\t%s\t%.1f\t%s\t%.2f\t%s\t\n", configs[i].name(),
			r.put4k, ratio(r.put4k, ref.put4k), r.put1m, ratio(r.put1m, ref.put1m),
			r.list, ratio(r.list, ref.list), r.untar.Seconds(), ratio(r.untar.Seconds(), ref.untar.Seconds()))
	}
	tw.Flush()

	fmt.Printf("\nwhere the cost goes: the metadata engine's write transactions (PostgreSQL: transaction ids, committed or not; etcd: revisions,\n" +
		"committed) per 4 KiB PUT and per untarred file, and gateway 1's FUSE operations during the untar (count × mean latency, share of the summed latency)\n\n")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "configuration\twrite txns/PUT\twrite txns/file\tuntar: FUSE ops by summed latency")
	for _, i := range ran {
		r := results[i]
		if r.err != nil {
			continue
		}
		txp, txf := "-", "-"
		if r.txnKnown {
			txp, txf = fmt.Sprintf("%.2f", r.txnPut), fmt.Sprintf("%.2f", r.txnFile)
		}
		var total float64
		for _, f := range r.fuse {
			total += f.secs
		}
		var ops []string
		for _, f := range r.fuse[:min(4, len(r.fuse))] {
			ops = append(ops, fmt.Sprintf("%s %.0f×%.2fms %.0f%%", f.op, f.count, 1000*f.secs/f.count, 100*f.secs/total))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", configs[i].name(), txp, txf, strings.Join(ops, ", "))
	}
	tw.Flush()
	for _, i := range ran {
		if results[i].err != nil {
			return errors.New("some configurations failed")
		}
	}
	return nil
}

func ratio(v, ref float64) string {
	if ref == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/ref)
}

// measure starts c's gateways on a fresh namespace, runs the workloads and
// stops them.
func (e *env) measure(c cfg) (res result) {
	e.seq++
	base := filepath.Join(e.dir, fmt.Sprintf("cfg%02d", e.seq))
	var args []string
	switch c.meta {
	case "postgres":
		url, err := e.pg.NewSchema(context.Background())
		if err != nil {
			return result{err: err}
		}
		args = append(args, "--meta", url)
	case "etcd":
		args = append(args, "--meta", e.etcd.URL(fmt.Sprintf("bench%02d", e.seq)))
	}
	switch c.blobs {
	case "file":
		if c.meta != "badger" {
			args = append(args, "--blobs", "file://"+filepath.Join(base, "blobs"))
		}
	case "s3":
		args = append(args, "--blobs", fmt.Sprintf("s3://%s/cfg%02d", blobBucket, e.seq),
			"--blobs-endpoint", "https://"+e.blobs.addr, "--blobs-ca", e.blobs.ca,
			"--blobs-access-key", blobAccessKey)
	}
	envv := []string{"SEALFS_ACCESS_KEY=" + accessKey, "SEALFS_SECRET_KEY=" + secretKey,
		"SEALFS_KMS_ROOT_KEY=" + e.rootKey, "SEALFS_BLOBS_SECRET_KEY=" + blobSecretKey}
	var gws []*daemon
	defer func() {
		for _, g := range gws {
			g.stop()
		}
	}()
	var clients []*awss3.Client
	for g := 0; g < c.gateways; g++ {
		mnt := filepath.Join(base, fmt.Sprintf("mnt%d", g+1))
		a := append([]string{"mount", mnt, "--data", filepath.Join(base, fmt.Sprintf("gw%d", g+1))}, args...)
		if g == 0 {
			port, err := freeport.Port()
			if err != nil {
				return result{err: err}
			}
			a = append(a, "--metrics", fmt.Sprintf("127.0.0.1:%d", port))
		}
		d, err := startDaemon(e.bin, a, envv)
		if err != nil {
			return result{err: fmt.Errorf("gateway %d: %w", g+1, err)}
		}
		d.mnt = mnt
		gws = append(gws, d)
		cl, err := s3Client(d, accessKey, secretKey)
		if err != nil {
			return result{err: err}
		}
		clients = append(clients, cl)
	}
	ctx := context.Background()
	if _, err := clients[0].CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return result{err: err}
	}
	if e.encrypt {
		if _, err := clients[0].PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String(bucket),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}}); err != nil {
			return result{err: err}
		}
	}
	// client i's gateway: half each with two.
	pick := func(i int) *awss3.Client { return clients[i%len(clients)] }

	counts := e.txnCounter(c)
	res.txnKnown = counts != nil
	c0 := counts.read()
	var err error
	var n4k int64
	if res.put4k, n4k, err = measureOps(put4kClients, e.dur, func(cl, i int) (int64, error) {
		_, err := pick(cl).PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("p4k/c%02d/%d", cl, i%4)),
			Body: newPattern(4 << 10), ContentLength: aws.Int64(4 << 10)})
		return 4 << 10, err
	}); err != nil {
		return result{err: fmt.Errorf("PUT 4 KiB: %w", err)}
	}
	res.txnPut = float64(counts.read()-c0) / float64(n4k)
	log.Printf("   PUT 4 KiB x%d: %.0f ops/s, %.2f write txns each", put4kClients, res.put4k, res.txnPut)
	var bytes float64
	if bytes, err = measure(4, e.dur, func(cl, i int) (int64, error) {
		_, err := pick(cl).PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("p1m/c%02d/%d", cl, i%4)),
			Body: newPattern(1 << 20), ContentLength: aws.Int64(1 << 20)})
		return 1 << 20, err
	}); err != nil {
		return result{err: fmt.Errorf("PUT 1 MiB: %w", err)}
	}
	res.put1m = bytes
	log.Printf("   PUT 1 MiB x4: %.1f MB/s", res.put1m)

	pstart := time.Now()
	if err := parallel(16, listKeys, func(i int) error {
		_, err := pick(i).PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(listKey(i)), Body: strings.NewReader("")})
		return err
	}); err != nil {
		return result{err: fmt.Errorf("populating the listing: %w", err)}
	}
	log.Printf("   populated %d listing keys in %v", listKeys, time.Since(pstart).Round(10*time.Millisecond))
	if res.list, err = measure(2, e.dur, func(cl, i int) (int64, error) {
		page := (i + cl) % (listKeys / listPage)
		in := &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("list/"), MaxKeys: aws.Int32(listPage)}
		if page > 0 {
			in.StartAfter = aws.String(listKey(page*listPage - 1))
		}
		out, err := pick(cl).ListObjectsV2(ctx, in)
		if err == nil && len(out.Contents) != listPage {
			err = fmt.Errorf("page %d has %d keys", page, len(out.Contents))
		}
		return 0, err
	}); err != nil {
		return result{err: fmt.Errorf("LIST: %w", err)}
	}
	log.Printf("   LIST x2: %.1f pages/s", res.list)

	tree := filepath.Join(gws[0].mnt, bucket, "untar")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return result{err: err}
	}
	f0 := scrapeFUSE(gws[0].metrics)
	c0 = counts.read()
	start := time.Now()
	if out, err := exec.Command("tar", "xf", e.tarball, "-C", tree).CombinedOutput(); err != nil {
		return result{err: fmt.Errorf("untar: %w: %s", err, out)}
	}
	res.untar = time.Since(start)
	res.txnFile = float64(counts.read()-c0) / float64(e.files)
	f1 := scrapeFUSE(gws[0].metrics)
	for op, v := range f1 {
		d := fuseOp{op: op, count: v.count - f0[op].count, secs: v.secs - f0[op].secs}
		if d.count > 0 {
			res.fuse = append(res.fuse, d)
		}
	}
	sort.Slice(res.fuse, func(i, j int) bool { return res.fuse[i].secs > res.fuse[j].secs })
	log.Printf("   untar: %.2f s", res.untar.Seconds())
	return res
}

func listKey(i int) string { return fmt.Sprintf("list/g%05d", i) }

// measure runs clients goroutines calling op(client, i) for about dur (at
// least once each) and returns MB/s when an op moved more than 64 KiB, else
// ops/s.
func measure(clients int, dur time.Duration, op func(client, i int) (int64, error)) (float64, error) {
	v, _, err := measureOps(clients, dur, op)
	return v, err
}

// measureOps is measure, returning the number of operations too.
func measureOps(clients int, dur time.Duration, op func(client, i int) (int64, error)) (float64, int64, error) {
	var ops, moved atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	var big atomic.Bool
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i == 0 || time.Now().Before(deadline); i++ {
				n, err := op(c, i)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if n > 64<<10 {
					big.Store(true)
				}
				ops.Add(1)
				moved.Add(n)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	secs := time.Since(start).Seconds()
	if big.Load() {
		return float64(moved.Load()) / secs / 1e6, ops.Load(), nil
	}
	return float64(ops.Load()) / secs, ops.Load(), nil
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(workers, n int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// patternBody is an object body generated on the fly: seekable, so the SDK
// can compute its checksum and retry.
type patternBody struct{ size, off int64 }

func newPattern(size int64) *patternBody { return &patternBody{size: size} }

func (p *patternBody) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if rem := p.size - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		b[i] = byte(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

func (p *patternBody) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += p.off
	case io.SeekEnd:
		off += p.size
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	p.off = off
	return off, nil
}

// s3Client is an aws-sdk-go-v2 client of d's listener, trusting its
// certificate, over HTTPS/1.1.
func s3Client(d *daemon, ak, sk string) (*awss3.Client, error) {
	pem, err := os.ReadFile(d.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", d.ca)
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     time.Minute,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		config.WithHTTPClient(hc),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		return nil, err
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String("https://" + d.addr)
		o.UsePathStyle = true
	}), nil
}

// ---- daemons

type daemon struct {
	cmd     *exec.Cmd
	addr    string // S3 listener host:port
	ca      string // its certificate
	mnt     string // "" unless mounted
	metrics string // its /metrics URL, "" unless --metrics
	log     string
	done    chan struct{}
}

// startDaemon runs `sealfs ARGS --s3 127.0.0.1:0` and waits for its banner
// (and its mount).
func startDaemon(bin string, args, envv []string) (*daemon, error) {
	var data, mnt string
	for i, a := range args {
		if a == "--data" {
			data = args[i+1]
		}
	}
	if args[0] == "mount" {
		mnt = args[1]
	}
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		return nil, err
	}
	args = append(args, "--s3", "127.0.0.1:0", "--log-format", "text", "--log-level", "warn")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), envv...)
	d := &daemon{cmd: cmd, mnt: mnt, log: data + ".log", done: make(chan struct{})}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b, _ := banner.Wait(out, time.Minute)
	go func() { cmd.Wait(); close(d.done) }()
	d.addr, d.metrics, d.ca = b.S3Addr, b.Metrics, b.CAFile
	if d.addr == "" {
		d.stop()
		return nil, fmt.Errorf("sealfs %s did not start: %s", args[0], tail(d.log))
	}
	if !filepath.IsAbs(d.ca) {
		d.ca = filepath.Join(data, "tls", "cert.pem")
	}
	if mnt != "" && !mountinfo.Mounted(mnt) {
		d.stop()
		return nil, fmt.Errorf("sealfs printed its banner but %s is not mounted: %s", mnt, tail(d.log))
	}
	return d, nil
}

// stop stops d (SIGTERM, then SIGKILL after a minute) and removes a mount
// it left.
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		d.cmd.Process.Kill()
		<-d.done
	}
	if d.mnt != "" && mountinfo.Mounted(d.mnt) {
		if err := exec.Command("fusermount3", "-u", "-z", d.mnt).Run(); err != nil {
			syscall.Unmount(d.mnt, syscall.MNT_DETACH)
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// writeTree writes a tar of n small files in 100-file directories, sizes
// mostly under 8 KiB like a source tree (integration/benchfs's tree), and
// returns the bytes of file data.
func writeTree(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rng := mrand.New(mrand.NewPCG(1, 2))
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	buf := make([]byte, 256<<10)
	var total int64
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("tree/d%02d/s%02d", i/1000, i/100%10)
		for _, p := range []string{"tree", filepath.Dir(d), d} {
			if !seen[p] {
				seen[p] = true
				if err := tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
					return 0, err
				}
			}
		}
		size := min(int64(rng.ExpFloat64()*6000), int64(len(buf)))
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/file%05d.txt", d, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
			return 0, err
		}
		for j := range buf[:size] {
			buf[j] = byte('a' + rng.IntN(26))
		}
		if _, err := tw.Write(buf[:size]); err != nil {
			return 0, err
		}
		total += size
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return total, f.Close()
}

// scrapeFUSE reads the count and summed seconds of
// sealfs_fuse_operation_duration_seconds by op from a /metrics URL.
func scrapeFUSE(url string) map[string]fuseOp {
	out := map[string]fuseOp{}
	if url == "" {
		return out
	}
	f, err := scrape.Fetch(url)
	if err != nil {
		log.Printf("metrics: %v", err)
		return out
	}
	for op, s := range f.Histograms("sealfs_fuse_operation_duration_seconds", "op") {
		out[op] = fuseOp{op: op, count: s.N, secs: s.Sum}
	}
	return out
}

// txnCounter counts the write transactions of c's metadata engine, or is
// nil (Badger: not counted).
type txnCounter struct {
	pg     string   // PostgreSQL URL
	etcd   []string // etcd endpoints
	probes int64    // transaction ids read's probes took
}

func (e *env) txnCounter(c cfg) *txnCounter {
	switch c.meta {
	case "postgres":
		return &txnCounter{pg: e.pg.URL("postgres")}
	case "etcd":
		return &txnCounter{etcd: e.etcd.Endpoints()}
	}
	return nil
}

// read returns a counter of write transactions: PostgreSQL's next
// transaction id (one per transaction that wrote, committed or not; the
// probe's own is taken off), or etcd's revision (one per committed write
// transaction).
func (t *txnCounter) read() int64 {
	if t == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if t.pg != "" {
		conn, err := pgx.Connect(ctx, t.pg)
		if err != nil {
			log.Printf("pg_current_xact_id: %v", err)
			return 0
		}
		defer conn.Close(ctx)
		var xid int64
		if err := conn.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xid); err != nil {
			log.Printf("pg_current_xact_id: %v", err)
		}
		t.probes++
		return xid - t.probes
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: t.etcd, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Printf("etcd revision: %v", err)
		return 0
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "enginebench-revision-probe")
	if err != nil {
		log.Printf("etcd revision: %v", err)
		return 0
	}
	return resp.Header.Revision
}
