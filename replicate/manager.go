package replicate

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sealfs/sealfs/cryptostore"
)

// ErrNotStarted: the Manager has no store yet (Start was not called).
var ErrNotStarted = errors.New("replication is not started")

// Defaults of Config.
const (
	DefaultWorkers         = 4
	DefaultRetryBase       = 200 * time.Millisecond
	DefaultRetryMaxDelay   = 5 * time.Second
	DefaultRetryFor        = 24 * time.Hour
	DefaultResponseTimeout = 2 * time.Minute
	DefaultPollInterval    = 5 * time.Second
)

// Config wires a Manager.
type Config struct {
	// Queue is replication's durable state in the store's metadata (the
	// queue, target records, leases) and the sealing of target secrets;
	// required (cryptostore.NewReplicationQueue).
	Queue  *cryptostore.ReplicationQueue
	Region string // this daemon's region; required
	Logger *slog.Logger

	// Workers is how many objects are sent at once; 0 → DefaultWorkers.
	Workers int
	// RetryBase is the first retry's delay; it doubles with every failure
	// up to RetryMaxDelay (each delay drawn from [d/2, d)). 0 → defaults.
	RetryBase     time.Duration
	RetryMaxDelay time.Duration
	// RetryFor is the give-up budget: an item still failing this long after
	// its first failure is marked FAILED. 0 → DefaultRetryFor.
	RetryFor time.Duration
	// ResponseTimeout bounds the wait for a target's answer once a request
	// is sent. 0 → DefaultResponseTimeout.
	ResponseTimeout time.Duration
	// PollInterval is how often the queue is looked at with nothing else
	// to wake the workers (Notify is the usual wake-up). 0 → default.
	PollInterval time.Duration
}

// Manager runs replication for one daemon: the commit hook, the queue's
// workers, targets and rules. Build it with New before the store opens
// (the store's Config.OnCommit is OnCommit), then Start it with the store.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	backoff backoff

	store atomic.Pointer[cryptostore.Store]

	wake chan struct{} // 1-buffered: something may be ready

	// lease takes the leases of a store shared by several gateways
	// (lease.go); nil for one gateway.
	lease *leaser

	mu       sync.Mutex
	clients  map[string]*targetClient // region → client
	inflight map[string]bool          // bucket\0key → being sent
	configs  map[string]*Configuration
	jobs     map[string]*resyncJob
	jobSeq   int

	// Counters since start.
	completed, failed, retried, skipped atomic.Uint64

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Manager. Its commit hook works at once; nothing is sent
// until Start.
func New(cfg Config) (*Manager, error) {
	if cfg.Queue == nil || cfg.Region == "" {
		return nil, errors.New("replicate: Queue and Region are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.RetryBase > cfg.RetryMaxDelay {
		cfg.RetryBase = cfg.RetryMaxDelay
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	return &Manager{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "replicate"),
		backoff:  backoff{base: cfg.RetryBase, max: cfg.RetryMaxDelay},
		wake:     make(chan struct{}, 1),
		clients:  make(map[string]*targetClient),
		inflight: make(map[string]bool),
		configs:  make(map[string]*Configuration),
		jobs:     make(map[string]*resyncJob),
		done:     make(chan struct{}),
	}, nil
}

// Start starts the workers over store. Call it once; Close stops them.
func (m *Manager) Start(store *cryptostore.Store) {
	m.startOnce.Do(func() {
		m.store.Store(store)
		if store.Shared() {
			m.lease = &leaser{q: m.cfg.Queue, owner: store.GatewayID(), ttl: DefaultLeaseTTL}
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		g, ctx := errgroup.WithContext(ctx)
		work := make(chan *cryptostore.QueueItem)
		g.Go(func() error { return m.dispatch(ctx, work) })
		for range m.cfg.Workers {
			g.Go(func() error { return m.work(ctx, work) })
		}
		go func() {
			if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Error("replication stopped", "err", err)
			}
			close(m.done)
		}()
	})
}

// Close stops the workers and resync jobs and waits for them. Items being
// sent stay queued and are sent again after the next Start. The commit
// hook keeps working (writes committed after Close are queued for the next
// run). Close before closing the store.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		started := false
		m.startOnce.Do(func() {}) // a later Start does nothing
		if m.cancel != nil {
			started = true
			m.cancel()
		}
		if started {
			<-m.done
		}
		m.mu.Lock()
		jobs := make([]*resyncJob, 0, len(m.jobs))
		for _, j := range m.jobs {
			jobs = append(jobs, j)
		}
		clients := m.clients
		m.clients = make(map[string]*targetClient)
		m.mu.Unlock()
		for _, j := range jobs {
			j.cancel()
			<-j.done
		}
		for _, tc := range clients {
			tc.http.CloseIdleConnections()
		}
	})
	return nil
}

// Notify tells the workers that work may be ready (an object was
// committed). It never blocks; the daemon calls it from the store's
// OnChange.
func (m *Manager) Notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) storeOrErr() (*cryptostore.Store, error) {
	s := m.store.Load()
	if s == nil {
		return nil, ErrNotStarted
	}
	return s, nil
}

// parsed decodes a bucket's configuration, through a small cache keyed by
// the encoded bytes (the hook runs on every commit).
func (m *Manager) parsed(data []byte) (*Configuration, error) {
	if len(data) == 0 {
		return nil, nil
	}
	m.mu.Lock()
	c, ok := m.configs[string(data)]
	m.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := DecodeConfiguration(data)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.configs) >= 256 {
		clear(m.configs)
	}
	m.configs[string(data)] = c
	m.mu.Unlock()
	return c, nil
}

// backoff computes retry delays: base doubling per failure up to max, each
// drawn from [d/2, d).
type backoff struct{ base, max time.Duration }

func (b backoff) delay(failures int) time.Duration {
	d := b.base
	for i := 1; i < failures && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func inflightKey(bucket, key string) string { return bucket + "\x00" + key }
