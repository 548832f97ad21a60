package meta

// The etcd engine: meta's keys under a key prefix of an etcd cluster (v3
// API; servers 3.4 and later), shared by every gateway that opens the same
// URL:
//
//	etcd://[user:password@]host1:2379,host2:2379/prefix[?option=value&...]
//
// The hosts are the cluster's client endpoints: the client spreads requests
// over them and moves to another when one fails. The path is a key prefix
// (a "/" is added after it), so several stores can share one cluster. The
// options: cacert, cert, key (TLS files: with any of them the client speaks
// TLS), timeout (of each request to the cluster, a Go duration, default
// 10s), max-txn-ops and max-request-bytes (the server's --max-txn-ops and
// --max-request-bytes when they are not etcd's defaults, 128 and 1.5 MiB).
//
// Transactions are optimistic. A transaction's first read pins the
// cluster's current revision (a linearizable read: it sees every commit
// acknowledged before it); every later read is at that revision, so the
// transaction reads one snapshot. Writes are buffered in the transaction
// (which reads its own writes). Commit sends one etcd Txn whose compares
// check everything the transaction read against its snapshot:
//
//   - every key read by get: its ModRevision is still the one read
//     (CreateRevision == 0 for a key that was absent), so an update, a
//     deletion or a creation of it since the snapshot fails the commit;
//   - every range an iterator covered (from where it was sought to the
//     last key it was at, or to the end of its prefix when it ran out): no
//     key in it has a ModRevision above the snapshot, so a key written or
//     inserted into a scanned range since the snapshot fails the commit;
//   - every key an iterator visited, by its ModRevision as for get, so that
//     its deletion fails the commit too, when the compares fit in the
//     server's limit (else only the range compares stand for them).
//
// A failed compare is ErrConflict (Update retries). A transaction that
// wrote nothing commits without a request: its reads were one snapshot.
//
// So unlike Badger's, an etcd transaction also conflicts on keys inserted
// into the ranges it scanned; meta's write fences (keys.go) do not need
// that, but it costs nothing more than one compare per range.
//
// Limits. etcd refuses a Txn with more than --max-txn-ops compares or more
// than --max-txn-ops writes, or a request above --max-request-bytes: set
// and delete fail with ErrTxnTooBig once a transaction holds max-txn-ops
// writes or its writes reach three quarters of max-request-bytes, and a
// read fails with ErrTxnTooBig once the compares it adds would not fit, so
// UpdateBulk splits its work as it does for Badger. Inline objects (up to
// 64 KiB) fit many to a transaction.
//
// Durability: etcd acknowledges a Txn once a quorum of members has it in
// their fsynced write-ahead log and the leader has applied it, so every
// commit is durable when it returns; sync has nothing to do and WithoutSync
// changes nothing. A commit whose request failed in flight (a member died,
// the request timed out) may or may not have happened: the client does not
// resend it, and commit reports the error as it is, never as ErrConflict.
// Reads are resent to another member by the client.
//
// Operating the cluster: etcd keeps every revision until it is compacted,
// and Debian's etcd does not compact by itself: run it with
// --auto-compaction-mode=periodic --auto-compaction-retention=1h (or
// shorter) and defragment now and then, or its database grows to
// --quota-backend-bytes and the cluster refuses writes. A transaction whose
// snapshot revision was compacted away fails with ErrConflict and runs
// again on a fresh one.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func init() {
	registerEngine("etcd", openEtcd)
}

// etcd's defaults for the server limits the engine keeps within.
const (
	etcdDefaultMaxTxnOps       = 128
	etcdDefaultMaxRequestBytes = 1536 << 10
	etcdDefaultTimeout         = 10 * time.Second
	// etcdFirstPage is the size of an iterator's first page; each next
	// page is etcdPageGrowth times larger, up to etcdMaxPage: a check for
	// one key costs one small request, a listing of 1000 a few.
	etcdFirstPage  = 16
	etcdPageGrowth = 8
	etcdMaxPage    = 1024
)

// etcdKV is the etcd engine.
type etcdKV struct {
	cli     *clientv3.Client
	prefix  string // added before every key
	timeout time.Duration
	// maxOps is the server's --max-txn-ops; maxWriteBytes the budget of a
	// transaction's writes (keys and values), under --max-request-bytes.
	maxOps        int
	maxWriteBytes int
}

// parseEtcdURL takes apart etcd://[user:pass@]h1:p1,h2:p2/prefix?opts.
func parseEtcdURL(raw string) (cfg clientv3.Config, prefix string, kv etcdKV, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("meta: %s: "+format, append([]any{RedactURL(raw)}, a...)...)
	}
	rest, ok := strings.CutPrefix(raw, "etcd://")
	if !ok {
		return cfg, "", kv, bad("want etcd://host:port[,host:port...]/prefix")
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		user, pass, _ := strings.Cut(hosts[:at], ":")
		cfg.Username, cfg.Password = user, pass
		hosts = hosts[at+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Endpoints = append(cfg.Endpoints, h)
		}
	}
	if len(cfg.Endpoints) == 0 {
		return cfg, "", kv, bad("no etcd endpoint (want etcd://host:port[,host:port...]/prefix)")
	}
	prefix = "/" + strings.Trim(path, "/")
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	kv = etcdKV{timeout: etcdDefaultTimeout, maxOps: etcdDefaultMaxTxnOps}
	maxReq := etcdDefaultMaxRequestBytes
	var tlsInfo transport.TLSInfo
	for _, kvp := range strings.Split(query, "&") {
		if kvp == "" {
			continue
		}
		name, value, _ := strings.Cut(kvp, "=")
		switch name {
		case "cacert":
			tlsInfo.TrustedCAFile = value
		case "cert":
			tlsInfo.CertFile = value
		case "key":
			tlsInfo.KeyFile = value
		case "timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return cfg, "", kv, bad("bad timeout %q", value)
			}
			kv.timeout = d
		case "max-txn-ops":
			n, err := strconv.Atoi(value)
			if err != nil || n < 8 {
				return cfg, "", kv, bad("bad max-txn-ops %q (at least 8)", value)
			}
			kv.maxOps = n
		case "max-request-bytes":
			n, err := strconv.Atoi(value)
			if err != nil || n < 256<<10 {
				return cfg, "", kv, bad("bad max-request-bytes %q (at least 262144)", value)
			}
			maxReq = n
		default:
			return cfg, "", kv, bad("unknown option %q (have cacert, cert, key, timeout, max-txn-ops, max-request-bytes)", name)
		}
	}
	kv.maxWriteBytes = maxReq * 3 / 4
	if tlsInfo.TrustedCAFile != "" || tlsInfo.CertFile != "" || tlsInfo.KeyFile != "" {
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			return cfg, "", kv, bad("tls: %w", err)
		}
		cfg.TLS = tc
	}
	cfg.DialTimeout = kv.timeout
	cfg.DialKeepAliveTime = 10 * time.Second
	cfg.DialKeepAliveTimeout = 5 * time.Second
	// Room for a full transaction (answers are unlimited by default).
	cfg.MaxCallSendMsgSize = maxReq + 64<<10
	cfg.Logger = zap.NewNop()
	return cfg, prefix, kv, nil
}

// openEtcd connects to the cluster of url and checks that a member answers
// and runs etcd 3.4 or later.
func openEtcd(url string, opts Options) (kvEngine, error) {
	cfg, prefix, kv, err := parseEtcdURL(url)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("meta: etcd %s: %w", RedactURL(url), err)
	}
	// Ask every endpoint at once: the first answer will do, so a member
	// that is down does not delay the open.
	type status struct {
		version string
		err     error
	}
	ctx, cancel := context.WithTimeout(context.Background(), kv.timeout)
	answers := make(chan status, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		go func() {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				answers <- status{err: fmt.Errorf("%s: %w", ep, err)}
				return
			}
			answers <- status{version: st.Version}
		}()
	}
	var version string
	var errs []error
	for range cfg.Endpoints {
		a := <-answers
		if a.err == nil {
			version = a.version
			break
		}
		errs = append(errs, a.err)
	}
	cancel()
	if version == "" {
		cli.Close()
		return nil, fmt.Errorf("meta: etcd %s: no member answers: %w", RedactURL(url), errors.Join(errs...))
	}
	if major, minor, ok := parseVersion(version); !ok || major < 3 || major == 3 && minor < 4 {
		cli.Close()
		return nil, fmt.Errorf("meta: etcd %s: server version %s, want 3.4 or later", RedactURL(url), version)
	}
	kv.cli = cli
	kv.prefix = prefix
	opts.Logger.Info("meta: etcd engine", "endpoints", strings.Join(cfg.Endpoints, ","), "prefix", prefix, "server", version)
	return &kv, nil
}

func parseVersion(v string) (major, minor int, ok bool) {
	a, rest, ok1 := strings.Cut(v, ".")
	b, _, _ := strings.Cut(rest, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, ok1 && err1 == nil && err2 == nil
}

func (e *etcdKV) begin(ctx context.Context, write bool) (kvTxn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := &etcdTxn{e: e, ctx: ctx, write: write}
	if write {
		t.reads = map[string]etcdRead{}
		t.writes = map[string]*[]byte{}
	}
	return t, nil
}

// retryPolicy: as PostgreSQL's (kv_postgres.go), commits take a round trip.
func (e *etcdKV) retryPolicy() (int, time.Duration) { return 64, 50 * time.Millisecond }

func (e *etcdKV) writable(ctx context.Context) error { return nil }
func (e *etcdKV) sync() error                        { return nil }
func (e *etcdKV) checkSpace() error                  { return nil }
func (e *etcdKV) readOnly() bool                     { return false }
func (e *etcdKV) close() error                       { return e.cli.Close() }

// etcdRead is a key a read-write transaction read: the ModRevision it had
// at the snapshot (0: absent), and whether get read it (else only an
// iterator visited it, and a range compare covers it too).
type etcdRead struct {
	mod   int64
	byGet bool
}

// etcdRange is a range [start, end) of keys (without the store's prefix)
// an iterator covered.
type etcdRange struct{ start, end string }

// etcdTxn is a transaction of the etcd engine.
type etcdTxn struct {
	e     *etcdKV
	ctx   context.Context
	write bool
	done  bool
	// rev is the snapshot's revision, pinned by the first read; 0 before.
	rev int64

	// Read-write transactions only.
	reads  map[string]etcdRead
	ranges []etcdRange
	gets   int // keys in reads with byGet
	// writes maps a key to its new value, or to nil for a deletion.
	writes     map[string]*[]byte
	writeBytes int
	// deleted are the prefixes deletePrefix deleted: one write each.
	deleted []string
}

// deletedUnder reports whether k is under a prefix the transaction deleted.
func (t *etcdTxn) deletedUnder(k string) bool {
	for _, p := range t.deleted {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// readOpts returns the options of a read at the snapshot.
func (t *etcdTxn) readOpts(serializable bool, opts ...clientv3.OpOption) []clientv3.OpOption {
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
		if serializable {
			// Any member that has the revision can serve it: no
			// round trip through the leader.
			opts = append(opts, clientv3.WithSerializable())
		}
	}
	return opts
}

// read runs one range request at the snapshot, pinning it on the first
// read.
func (t *etcdTxn) read(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.done {
		return nil, errors.New("meta: etcd: transaction used after discard")
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.e.timeout)
	defer cancel()
	resp, err := t.e.cli.Get(ctx, key, t.readOpts(true, opts...)...)
	if errors.Is(err, rpctypes.ErrFutureRev) {
		// A member behind the snapshot: ask for a linearizable read.
		resp, err = t.e.cli.Get(ctx, key, t.readOpts(false, opts...)...)
	}
	if err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("meta: etcd: snapshot revision %d compacted away: %w", t.rev, ErrConflict)
		}
		return nil, fmt.Errorf("meta: etcd read: %w", err)
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// compares returns how many compares the commit would need at least: one
// per key read by get, one per range.
func (t *etcdTxn) compares() int { return t.gets + len(t.ranges) }

// noteGet records a key read by get.
func (t *etcdTxn) noteGet(k string, mod int64) error {
	if !t.write {
		return nil
	}
	r, seen := t.reads[k]
	if seen && r.byGet {
		return nil
	}
	if t.compares()+1 > t.e.maxOps {
		return fmt.Errorf("meta: etcd: a transaction reads at most %d keys and ranges: %w", t.e.maxOps, ErrTxnTooBig)
	}
	t.reads[k] = etcdRead{mod: mod, byGet: true}
	t.gets++
	return nil
}

func (t *etcdTxn) get(key []byte) ([]byte, bool, error) {
	if t.write {
		if v, ok := t.writes[string(key)]; ok {
			if v == nil {
				return nil, false, nil
			}
			return *v, true, nil
		}
		if t.deletedUnder(string(key)) {
			return nil, false, nil
		}
	}
	resp, err := t.read(t.e.prefix + string(key))
	if err != nil {
		return nil, false, err
	}
	var mod int64
	if len(resp.Kvs) > 0 {
		mod = resp.Kvs[0].ModRevision
	}
	if err := t.noteGet(string(key), mod); err != nil {
		return nil, false, err
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// bufferWrite buffers a write of key (v nil: a deletion).
func (t *etcdTxn) bufferWrite(key []byte, v *[]byte) error {
	if t.done {
		return errors.New("meta: etcd: transaction used after discard")
	}
	if !t.write {
		return ErrReadOnlyTxn
	}
	size := len(t.e.prefix) + len(key) + 16
	if v != nil {
		size += len(*v)
	}
	if t.deletedUnder(string(key)) {
		return fmt.Errorf("meta: etcd: a write under a prefix the transaction deleted")
	}
	old, had := t.writes[string(key)]
	if had {
		size -= len(t.e.prefix) + len(key) + 16
		if old != nil {
			size -= len(*old)
		}
	} else if len(t.writes)+len(t.deleted)+1 > t.e.maxOps {
		return fmt.Errorf("meta: etcd: a transaction writes at most %d keys: %w", t.e.maxOps, ErrTxnTooBig)
	}
	if t.writeBytes+size > t.e.maxWriteBytes {
		return fmt.Errorf("meta: etcd: a transaction writes at most %d bytes: %w", t.e.maxWriteBytes, ErrTxnTooBig)
	}
	t.writes[string(key)] = v
	t.writeBytes += size
	return nil
}

func (t *etcdTxn) set(key, value []byte) error {
	// The caller leaves value alone after set (kv.go): keep it as is.
	if value == nil {
		value = []byte{}
	}
	return t.bufferWrite(key, &value)
}

func (t *etcdTxn) delete(key []byte) error { return t.bufferWrite(key, nil) }

// deletePrefix is one range deletion in the commit. The prefix also counts
// as a range the transaction read, so a key written under it since the
// snapshot fails the commit instead of being deleted unseen.
func (t *etcdTxn) deletePrefix(prefix []byte) error {
	if t.done {
		return errors.New("meta: etcd: transaction used after discard")
	}
	if !t.write {
		return ErrReadOnlyTxn
	}
	p := string(prefix)
	if t.deletedUnder(p) {
		return nil
	}
	if len(t.writes)+len(t.deleted)+1 > t.e.maxOps {
		return fmt.Errorf("meta: etcd: a transaction writes at most %d keys: %w", t.e.maxOps, ErrTxnTooBig)
	}
	if t.compares()+1 > t.e.maxOps {
		return fmt.Errorf("meta: etcd: a transaction reads at most %d keys and ranges: %w", t.e.maxOps, ErrTxnTooBig)
	}
	if t.rev == 0 {
		// Pin the snapshot the range compare is against.
		if _, err := t.read(t.e.prefix+p, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
			return err
		}
	}
	t.ranges = append(t.ranges, etcdRange{start: p, end: prefixEnd(p)})
	for k, v := range t.writes {
		if strings.HasPrefix(k, p) {
			size := len(t.e.prefix) + len(k) + 16
			if v != nil {
				size += len(*v)
			}
			t.writeBytes -= size
			delete(t.writes, k)
		}
	}
	t.writeBytes += len(t.e.prefix) + len(p) + 32
	t.deleted = append(t.deleted, p)
	return nil
}

func (t *etcdTxn) commit() error {
	if t.done {
		return errors.New("meta: etcd: commit after discard")
	}
	if !t.write || len(t.writes)+len(t.deleted) == 0 {
		t.done = true
		return nil
	}
	p := t.e.prefix
	ranges := mergeRanges(t.ranges)
	var cmps []clientv3.Cmp
	var visited []clientv3.Cmp
	for k, r := range t.reads {
		var c clientv3.Cmp
		if r.mod == 0 {
			c = clientv3.Compare(clientv3.CreateRevision(p+k), "=", 0)
		} else {
			c = clientv3.Compare(clientv3.ModRevision(p+k), "=", r.mod)
		}
		if r.byGet {
			cmps = append(cmps, c)
		} else {
			visited = append(visited, c)
		}
	}
	for _, r := range ranges {
		end := p + r.end
		if r.end == "" {
			end = clientv3.GetPrefixRangeEnd(p)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p+r.start), "<", t.rev+1).WithRange(end))
	}
	if len(cmps) > t.e.maxOps {
		return fmt.Errorf("meta: etcd: %d compares, at most %d: %w", len(cmps), t.e.maxOps, ErrTxnTooBig)
	}
	if len(cmps)+len(visited) <= t.e.maxOps {
		cmps = append(cmps, visited...)
	}
	ops := make([]clientv3.Op, 0, len(t.writes)+len(t.deleted))
	for _, d := range t.deleted {
		ops = append(ops, clientv3.OpDelete(p+d, clientv3.WithPrefix()))
	}
	for k, v := range t.writes {
		if v == nil {
			ops = append(ops, clientv3.OpDelete(p+k))
		} else {
			ops = append(ops, clientv3.OpPut(p+k, string(*v)))
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.e.timeout)
	defer cancel()
	resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	t.done = true
	if err != nil {
		if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
			return fmt.Errorf("meta: etcd commit: %w: %w", ErrTxnTooBig, err)
		}
		return fmt.Errorf("meta: etcd commit (outcome unknown): %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("meta: etcd commit: a key read changed since revision %d: %w", t.rev, ErrConflict)
	}
	return nil
}

func (t *etcdTxn) discard() { t.done = true }

// mergeRanges returns the union of rs as disjoint ranges in key order (""
// as an end is the end of the store's key space).
func mergeRanges(rs []etcdRange) []etcdRange {
	if len(rs) < 2 {
		return rs
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b etcdRange) int { return strings.Compare(a.start, b.start) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if last.end == "" || r.start <= last.end {
			if last.end != "" && (r.end == "" || r.end > last.end) {
				last.end = r.end
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func (t *etcdTxn) iterate(prefix []byte, keysOnly bool) kvIterator {
	it := &etcdIter{
		t:        t,
		prefix:   string(prefix),
		end:      prefixEnd(string(prefix)),
		keysOnly: keysOnly,
	}
	if t.write {
		for k, v := range t.writes {
			if strings.HasPrefix(k, it.prefix) {
				it.local = append(it.local, etcdLocal{key: k, v: v})
			}
		}
		slices.SortFunc(it.local, func(a, b etcdLocal) int { return strings.Compare(a.key, b.key) })
	}
	return it
}

// prefixEnd returns the first key after every key starting with p ("":
// none, the end of the key space).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// etcdLocal is a write of the transaction seen by an iterator.
type etcdLocal struct {
	key string
	v   *[]byte // nil: deleted
}

// etcdIter merges the snapshot's keys under a prefix, read in pages, with
// the transaction's writes made before the iterator was created.
type etcdIter struct {
	t        *etcdTxn
	prefix   string
	end      string // prefixEnd(prefix)
	keysOnly bool

	local []etcdLocal
	li    int

	page     []*mvccpb.KeyValue // keys with the store prefix
	pi       int
	more     bool   // the snapshot has keys after page
	nextFrom string // where the next page starts (without the store prefix)
	pageSize int

	from   string // where the current walk was sought to; its range is recorded on seek and close
	walked bool
	curKey string
	curVal []byte
	ok     bool
	fail   error
}

func (it *etcdIter) seek(k []byte) {
	start := string(k)
	if start < it.prefix {
		start = it.prefix
	}
	if it.seekInPage(start) || it.seekPastPage(start) {
		return
	}
	it.finishWalk()
	it.from, it.walked = start, true
	it.li, _ = slices.BinarySearchFunc(it.local, start, func(l etcdLocal, s string) int { return strings.Compare(l.key, s) })
	it.page, it.pi, it.more, it.nextFrom = nil, 0, true, start
	it.pageSize = etcdFirstPage
	it.fill()
	it.settle()
}

// seekInPage moves forward to start without a request when the page at
// hand already holds it (a listing that skips a common prefix usually
// lands in the same page): the walk goes on, and its range will cover the
// keys skipped too.
func (it *etcdIter) seekInPage(start string) bool {
	if !it.ok || start <= it.curKey || it.fail != nil {
		return false
	}
	p := len(it.t.e.prefix)
	n := len(it.page)
	if it.pi >= n || (it.more && start > string(it.page[n-1].Key[p:])) {
		return false
	}
	i, _ := slices.BinarySearchFunc(it.page[it.pi:], start, func(kv *mvccpb.KeyValue, s string) int {
		return strings.Compare(string(kv.Key[p:]), s)
	})
	it.pi += i
	j, _ := slices.BinarySearchFunc(it.local[it.li:], start, func(l etcdLocal, s string) int { return strings.Compare(l.key, s) })
	it.li += j
	it.settle()
	return true
}

// seekPastPage moves forward to start, beyond the page at hand, by
// fetching the next page from start at the walk's current page size: a
// listing that skips many common prefixes costs a few growing pages, not a
// small page per prefix. The walk goes on, and its range will cover the
// keys skipped too.
func (it *etcdIter) seekPastPage(start string) bool {
	if !it.ok || start <= it.curKey || it.fail != nil {
		return false
	}
	it.page, it.pi, it.more, it.nextFrom = nil, 0, true, start
	j, _ := slices.BinarySearchFunc(it.local[it.li:], start, func(l etcdLocal, s string) int { return strings.Compare(l.key, s) })
	it.li += j
	it.settle()
	return true
}

// finishWalk records the range the walk since the last seek covered: up
// to the key it is at, or to the end of the prefix when it ran out.
func (it *etcdIter) finishWalk() {
	if !it.walked || !it.t.write || it.fail != nil {
		it.walked = false
		return
	}
	it.walked = false
	end := it.end
	if it.ok {
		end = it.curKey + "\x00"
	}
	if it.end != "" && end > it.end {
		end = it.end
	}
	if end != "" && end <= it.from {
		return
	}
	it.t.ranges = append(it.t.ranges, etcdRange{start: it.from, end: end})
	if it.t.compares() > it.t.e.maxOps {
		it.t.ranges = mergeRanges(it.t.ranges)
	}
}

// fill fetches the next page when the current one is used up.
func (it *etcdIter) fill() {
	for it.fail == nil && it.pi >= len(it.page) && it.more {
		if it.t.write && it.t.compares()+1 > it.t.e.maxOps {
			it.fail = fmt.Errorf("meta: etcd: a transaction reads at most %d keys and ranges: %w", it.t.e.maxOps, ErrTxnTooBig)
			return
		}
		p := it.t.e.prefix
		end := p + it.end
		if it.end == "" {
			end = clientv3.GetPrefixRangeEnd(p)
		}
		opts := []clientv3.OpOption{
			clientv3.WithRange(end),
			clientv3.WithLimit(int64(it.pageSize)),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend),
		}
		if it.keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		resp, err := it.t.read(p+it.nextFrom, opts...)
		if err != nil {
			it.fail = err
			return
		}
		it.page, it.pi, it.more = resp.Kvs, 0, resp.More
		if n := len(resp.Kvs); n > 0 {
			it.nextFrom = string(resp.Kvs[n-1].Key[len(p):]) + "\x00"
		} else {
			it.more = false
		}
		it.pageSize = min(it.pageSize*etcdPageGrowth, etcdMaxPage)
	}
}

// settle makes the iterator's current key the smaller of the snapshot's
// and the local writes' next keys, skipping deleted ones.
func (it *etcdIter) settle() {
	p := len(it.t.e.prefix)
	for {
		it.fill()
		if it.fail != nil {
			it.ok = false
			return
		}
		var rk string
		haveR := it.pi < len(it.page)
		if haveR {
			rk = string(it.page[it.pi].Key[p:])
			if it.t.write && len(it.t.deleted) > 0 && it.t.deletedUnder(rk) {
				it.pi++
				continue
			}
			if it.t.write {
				k := rk
				if _, seen := it.t.reads[k]; !seen {
					it.t.reads[k] = etcdRead{mod: it.page[it.pi].ModRevision}
				}
			}
		}
		haveL := it.li < len(it.local)
		switch {
		case !haveR && !haveL:
			it.ok = false
			return
		case haveL && (!haveR || it.local[it.li].key <= rk):
			l := it.local[it.li]
			if haveR && l.key == rk {
				it.pi++ // the transaction's write hides the snapshot's
			}
			if l.v == nil {
				it.li++
				continue
			}
			it.curKey, it.curVal, it.ok = l.key, *l.v, true
			return
		default:
			kv := it.page[it.pi]
			it.curKey, it.curVal, it.ok = rk, kv.Value, true
			return
		}
	}
}

func (it *etcdIter) valid() bool { return it.ok }

func (it *etcdIter) next() {
	if !it.ok {
		return
	}
	if it.li < len(it.local) && it.local[it.li].key == it.curKey {
		it.li++
	} else {
		it.pi++
	}
	it.settle()
}

func (it *etcdIter) key() []byte { return []byte(it.curKey) }

func (it *etcdIter) value() ([]byte, error) {
	if it.keysOnly {
		return nil, errors.New("meta: etcd: value of a keys-only iterator")
	}
	return it.curVal, nil
}

func (it *etcdIter) err() error { return it.fail }

func (it *etcdIter) close() {
	it.finishWalk()
	it.ok = false
	it.page, it.local = nil, nil
}
