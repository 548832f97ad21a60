package kms

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrRootKeyMismatch: the root key given to OpenLocal is not the one that
// sealed the existing keyring. OpenLocal never replaces a keyring it cannot
// open.
var ErrRootKeyMismatch = errors.New("kms: the root key does not match this keyring")

// ErrKeyringUnavailable: the keyring is shared (MetaKeyring) and this
// gateway could not confirm that its copy is current for longer than
// LocalOptions.MaxStale (the metadata engine is unreachable, or the stored
// keyring failed its checks). Keys are not used until it can: a key
// disabled on another gateway must not keep working here.
var ErrKeyringUnavailable = errors.New("kms: the shared keyring cannot be confirmed current")

var errClosed = errors.New("kms: closed")

// errUnknownVersion: a wrapped key names a version the key does not have
// here (with a shared keyring: perhaps rotated on another gateway).
var errUnknownVersion = fmt.Errorf("%w: unknown key version", ErrInvalidCiphertext)

// Defaults for a shared keyring (LocalOptions).
const (
	DefaultRefreshInterval = time.Second
	DefaultMaxStale        = 5 * time.Second
)

// maxCASAttempts bounds how often a change is tried again after another
// gateway changed the keyring first.
const maxCASAttempts = 64

// purgeRetry is how long Local waits before trying again to remove keys past
// their deletion date from the keyring after a failed write. The keys are
// unusable (ErrKeyNotFound) meanwhile.
const purgeRetry = time.Minute

// LocalOptions configures OpenLocal.
type LocalOptions struct {
	Region    string           // for ARNs; "" means "us-east-1"
	Account   string           // for ARNs; "" means "000000000000"
	Logger    *slog.Logger     // nil discards
	CacheSize int              // unwrapped data keys kept; 0 means 4096; negative disables the cache
	Now       func() time.Time // nil means time.Now; tests move it to pass deletion dates

	// Store keeps the keyring. nil means the keyring file in the directory
	// given to OpenLocal (one process at a time). MetaKeyring shares it
	// with every gateway over one metadata engine; the directory is then
	// only where a keyring file is imported from (see OpenLocal), and may
	// be "". OpenLocal takes ownership: Close closes it.
	Store KeyringStore
	// RefreshInterval is how often a shared keyring's generation is read
	// to pick up other gateways' changes; 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MaxStale: with a shared keyring, a key is not used (the call fails
	// with ErrKeyringUnavailable) when the keyring has not been confirmed
	// current for this long and cannot be now; 0 means DefaultMaxStale.
	MaxStale time.Duration
}

// Local is the built-in KMS: master keys in a keyring sealed by a root key,
// kept in a KeyringStore: by default the keyring file in one directory,
// used by one process at a time (the directory is locked with flock while
// open); or, with MetaKeyring, in the metadata engine shared by several
// gateways. It is safe for concurrent use. Every state change is durable
// before the call that made it returns.
//
// With a shared keyring every change is a compare-and-swap on the
// keyring's generation: a change computed on a copy another gateway has
// replaced is not stored; Local reads the keyring again, applies the change
// to what it read (which may now refuse it: the key was deleted meanwhile)
// and tries again. Changes made by other gateways are picked up:
//
//   - every RefreshInterval (1 s), by reading the generation (one small
//     read) and, when it moved, the keyring;
//   - before a call fails because a key is unknown, disabled, pending
//     deletion or lacks the version a wrapped key names, and before
//     DescribeKey, ListKeys and every change;
//   - and a key is never used on a copy not confirmed current within
//     MaxStale (5 s): past that the call re-reads the generation itself,
//     and fails with ErrKeyringUnavailable if it cannot.
//
// So a key disabled on one gateway stops working on every other within
// RefreshInterval plus one metadata read while the engine is reachable,
// and within MaxStale in any case; cached data keys are evicted when the
// key's new state is read.
//
// A key scheduled for deletion whose DeletionDate has passed is destroyed on
// the next call (or the next OpenLocal): its material is wiped from memory and
// removed from the keyring, and the key is ErrKeyNotFound from then on.
type Local struct {
	store     KeyringStore
	where     string // the store, for logs and errors
	shared    bool
	arnPrefix string
	log       *slog.Logger
	now       func() time.Time
	scheme    *keyringScheme // seals master key material, authenticates the keyring
	cache     *dekCache
	unwraps   atomic.Uint64 // data keys opened with a master key (cache misses)

	// Freshness of a shared keyring, on the monotonic clock (mono).
	refreshEvery time.Duration
	maxStale     time.Duration
	base         time.Time
	fresh        atomic.Int64 // mono() when the copy was last confirmed current
	refreshMu    sync.Mutex   // one generation check at a time; others share it
	lastCheck    int64        // mono() when the last check started (refreshMu)
	lastErr      error        // its result (refreshMu)
	stop, done   chan struct{}

	mu        sync.RWMutex
	closed    bool
	check     []byte
	gen       uint64 // generation of the stored keyring k.keys came from
	keys      map[string]*masterKey
	nextPurge time.Time // earliest deletion date to act on; zero when none
}

var _ KMS = (*Local)(nil)

// masterKey is one master key. Values reachable from Local.keys are never
// modified in place: a change builds a copy, persists it, then swaps it in.
// Versions are shared between copies and are immutable until destroyed.
type masterKey struct {
	id           string
	description  string
	state        KeyState
	created      time.Time
	deletionDate time.Time
	versions     []*keyVersion // versions[i] is version i+1
}

type keyVersion struct {
	created  time.Time
	sealed   []byte      // as stored in the keyring
	material []byte      // 32 bytes, in memory only
	aead     cipher.AEAD // AES-256-GCM keyed with material: unwraps format 1 wraps only
	retired  time.Time   // non-zero: retired, no material (sealed and material nil)
}

func newKeyVersion(material, sealed []byte, created time.Time) (*keyVersion, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	return &keyVersion{created: created, sealed: sealed, material: material, aead: aead}, nil
}

func (m *masterKey) clone() *masterKey {
	c := *m
	return &c
}

func (m *masterKey) expired(now time.Time) bool {
	return m.state == KeyPendingDeletion && !now.Before(m.deletionDate)
}

// destroy wipes the material of every version. The AES key schedule inside
// the cipher.AEAD cannot be wiped; dropping it leaves it to the collector.
func (m *masterKey) destroy() {
	for _, v := range m.versions {
		clear(v.material)
		v.aead = nil
	}
}

// OpenLocal opens the keyring: by default the file in dir (in sealfs,
// DATA/kms; see Dir), creating dir (mode 0700) and an empty keyring if there
// is none; with opts.Store, the keyring in that store (created empty if
// there is none). root is the 32-byte root key. A keyring sealed by another
// root key gives an error wrapping ErrRootKeyMismatch and is never
// replaced; a keyring altered outside sealfs gives an integrity error. Keys
// past their deletion date are destroyed before OpenLocal returns.
//
// A shared store (MetaKeyring) that holds no keyring yet imports the
// keyring file in dir, if there is one: the file is verified under root
// (ErrRootKeyMismatch if another root key sealed it: nothing is written),
// its keys are stored as the shared keyring's first generation, the import
// is logged, and the file is renamed keyring.imported, never read again.
// When the store already holds a keyring, a keyring file in dir is left
// alone and ignored, with a warning that says how many of its keys the
// shared keyring lacks. Two gateways importing at once cannot both win:
// the loser reads the winner's keyring.
func OpenLocal(dir string, root []byte, opts LocalOptions) (*Local, error) {
	if len(root) != RootKeySize {
		return nil, fmt.Errorf("%w: root key must be %d bytes, got %d", ErrInvalidArgument, RootKeySize, len(root))
	}
	scheme, err := newKeyringScheme(keyringFormat, root)
	if err != nil {
		return nil, err
	}
	store := opts.Store
	if store == nil {
		fst, err := openFileStore(dir)
		if err != nil {
			return nil, err
		}
		store = fst
	}
	region, account := opts.Region, opts.Account
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = "000000000000"
	}
	k := &Local{
		store:        store,
		where:        store.String(),
		shared:       store.Shared(),
		arnPrefix:    "arn:aws:kms:" + region + ":" + account + ":key/",
		log:          opts.Logger,
		now:          opts.Now,
		scheme:       scheme,
		cache:        newDEKCache(opts.CacheSize),
		keys:         make(map[string]*masterKey),
		refreshEvery: opts.RefreshInterval,
		maxStale:     opts.MaxStale,
		base:         time.Now(),
		lastCheck:    -1,
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.refreshEvery <= 0 {
		k.refreshEvery = DefaultRefreshInterval
	}
	if k.maxStale <= 0 {
		k.maxStale = DefaultMaxStale
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	if err := k.open(ctx, root, dir); err != nil {
		for _, m := range k.keys {
			m.destroy()
		}
		store.Close()
		return nil, err
	}
	if k.shared {
		k.stop, k.done = make(chan struct{}), make(chan struct{})
		go k.refresher()
	}
	return k, nil
}

// openTimeout bounds OpenLocal's reads and writes of a shared keyring.
const openTimeout = time.Minute

// open reads the keyring, or creates an empty one (a shared store may
// import a keyring file instead). A keyring in the first release's format
// is migrated. When another gateway stores a keyring meanwhile, open reads
// that one.
func (k *Local) open(ctx context.Context, root []byte, dir string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := k.openOnce(ctx, root, dir)
		if err == nil {
			return k.purgeLocked(ctx)
		}
		for _, m := range k.keys {
			m.destroy()
		}
		k.keys, k.gen = make(map[string]*masterKey), 0
		if !errors.Is(err, ErrKeyringChanged) || attempt == maxCASAttempts {
			return err
		}
	}
}

func (k *Local) openOnce(ctx context.Context, root []byte, dir string) error {
	start := k.mono()
	data, gen, err := k.store.Load(ctx)
	if err != nil {
		return err
	}
	if data == nil {
		if k.shared && dir != "" {
			if imported, err := k.importFile(ctx, dir, root); err != nil || imported {
				return err
			}
		}
		if k.check, err = sealWithRoot(k.scheme.seal, nil, []byte(k.scheme.checkAD)); err != nil {
			return err
		}
		if err := k.persistLocked(ctx, nil); err != nil {
			return err
		}
		k.log.Info("kms keyring created", "keyring", k.where)
		return nil
	}
	body, sc, err := k.decodeKeyring(data, root, k.where)
	if err != nil {
		if k.shared && errors.Is(err, ErrRootKeyMismatch) {
			return fmt.Errorf("%w: every gateway sharing the metadata must be given the root key the first one used", err)
		}
		return err
	}
	if err := k.checkBodyGeneration(body, gen); err != nil {
		return err
	}
	if k.keys, err = k.loadKeys(body, sc, nil, k.where); err != nil {
		k.keys = make(map[string]*masterKey)
		return err
	}
	k.check, k.gen = body.Check, gen
	k.markFresh(start)
	if sc != k.scheme {
		// Written by the first release: seal it again under the derived
		// keys and replace it (atomically, as every change is).
		if k.check, err = sealWithRoot(k.scheme.seal, nil, []byte(k.scheme.checkAD)); err != nil {
			return err
		}
		if err := k.persistLocked(ctx, nil); err != nil {
			return fmt.Errorf("kms: migrating keyring %s to format %d: %w", k.where, k.scheme.format, err)
		}
		k.log.Info("kms keyring migrated", "keyring", k.where, "from_format", sc.format, "to_format", k.scheme.format, "keys", len(k.keys))
	}
	if k.shared && dir != "" {
		k.noteIgnoredFile(dir, root)
	}
	k.log.Info("kms keyring opened", "keyring", k.where, "keys", len(k.keys), "generation", k.gen)
	return nil
}

// lockDir takes an exclusive flock on dir's lock file so that a second
// process (or a second OpenLocal) cannot rewrite the keyring underneath.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("kms: the keyring in %s is already open (another sealfs is running?)", dir)
		}
		return nil, fmt.Errorf("kms: locking %s: %w", dir, err)
	}
	return f, nil
}

// Close stops re-reading a shared keyring, wipes key material from memory,
// empties the cache and releases the store (for the file: the directory
// lock). Calls after Close fail.
func (k *Local) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	for _, m := range k.keys {
		m.destroy()
	}
	k.keys = nil
	k.cache.clear()
	k.mu.Unlock()
	if k.stop != nil {
		close(k.stop)
		<-k.done
	}
	k.log.Info("kms keyring closed", "keyring", k.where)
	return k.store.Close()
}

// ARN returns the ARN of keyID: arn:aws:kms:<region>:<account>:key/<keyID>.
func (k *Local) ARN(keyID string) string {
	return k.arnPrefix + keyID
}

// resolve turns a bare key id or one of this KMS's ARNs into a key id.
func (k *Local) resolve(name string) (string, bool) {
	if strings.HasPrefix(name, "arn:") {
		id, ok := strings.CutPrefix(name, k.arnPrefix)
		return id, ok && id != ""
	}
	return name, name != ""
}

// rlock takes k.mu for reading, first destroying keys past their deletion
// date if any are due. On success the caller holds the read lock.
func (k *Local) rlock(ctx context.Context) error {
	k.mu.RLock()
	if k.closed {
		k.mu.RUnlock()
		return errClosed
	}
	if !k.purgeDueLocked() {
		return nil
	}
	k.mu.RUnlock()
	if err := k.lock(ctx); err != nil {
		return err
	}
	k.mu.Unlock()
	k.mu.RLock()
	if k.closed {
		k.mu.RUnlock()
		return errClosed
	}
	return nil
}

// lock takes k.mu for writing, first destroying keys past their deletion
// date if any are due. On success the caller holds the write lock.
func (k *Local) lock(ctx context.Context) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return errClosed
	}
	if k.purgeDueLocked() {
		if err := k.purgeLocked(ctx); err != nil {
			k.log.Error("kms: removing keys past their deletion date", "err", err)
		}
	}
	return nil
}

func (k *Local) purgeDueLocked() bool {
	return !k.nextPurge.IsZero() && !k.now().Before(k.nextPurge)
}

// purgeLocked destroys every key past its deletion date and sets nextPurge.
// With a shared keyring whichever gateway gets there first removes a key;
// the others find it gone. The caller holds k.mu for writing.
func (k *Local) purgeLocked(ctx context.Context) error {
	var victims []*masterKey
	err := k.updateLocked(ctx, func() (map[string]*masterKey, error) {
		now := k.now()
		changes := make(map[string]*masterKey)
		victims = victims[:0]
		for id, m := range k.keys {
			if m.expired(now) {
				changes[id] = nil
				victims = append(victims, m)
			}
		}
		return changes, nil
	})
	if err != nil {
		k.nextPurge = k.now().Add(purgeRetry)
		return err
	}
	for _, m := range victims {
		m.destroy()
		k.cache.evictKey(m.id)
		k.log.Info("kms key deleted", "key_id", m.id, "deletion_date", m.deletionDate)
	}
	k.schedulePurgeLocked()
	return nil
}

// schedulePurgeLocked sets nextPurge to the earliest deletion date of a key
// pending deletion. The caller holds k.mu for writing.
func (k *Local) schedulePurgeLocked() {
	k.nextPurge = time.Time{}
	for _, m := range k.keys {
		if m.state == KeyPendingDeletion && (k.nextPurge.IsZero() || m.deletionDate.Before(k.nextPurge)) {
			k.nextPurge = m.deletionDate
		}
	}
}

// lookupLocked finds a key by id or ARN. A key past its deletion date is not
// found even if it could not be removed yet.
func (k *Local) lookupLocked(name string) (*masterKey, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty key id", ErrInvalidArgument)
	}
	id, ok := k.resolve(name)
	m := k.keys[id]
	if !ok || m == nil || (m.state == KeyPendingDeletion && m.expired(k.now())) {
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, name)
	}
	return m, nil
}

// usable says whether m may wrap and unwrap.
func usable(m *masterKey) error {
	switch m.state {
	case KeyEnabled:
		return nil
	case KeyDisabled:
		return fmt.Errorf("%w: %s", ErrKeyDisabled, m.id)
	default:
		return fmt.Errorf("%w: %s (deletion date %s)", ErrKeyPendingDeletion, m.id, m.deletionDate.Format(time.RFC3339))
	}
}

func (k *Local) metadata(m *masterKey) *KeyMetadata {
	md := &KeyMetadata{
		KeyID:          m.id,
		ARN:            k.ARN(m.id),
		Description:    m.description,
		State:          m.state,
		Created:        m.created,
		CurrentVersion: uint32(len(m.versions)),
		DeletionDate:   m.deletionDate,
	}
	if n := len(m.versions); n > 0 {
		md.CurrentVersionCreated = m.versions[n-1].created
	}
	for i, v := range m.versions {
		if !v.retired.IsZero() {
			md.RetiredVersions = append(md.RetiredVersions, uint32(i+1))
		}
	}
	return md
}

func sortKeys(keys []*masterKey) {
	slices.SortFunc(keys, func(a, b *masterKey) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
}

// newKeyID returns a random UUID (version 4) string.
func newKeyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("kms: reading random key id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// newVersion makes fresh material for version ver of key id, sealed by the
// root key.
func (k *Local) newVersion(id string, ver uint32, created time.Time) (*keyVersion, error) {
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		return nil, fmt.Errorf("kms: reading random key: %w", err)
	}
	sealed, err := sealWithRoot(k.scheme.seal, material, k.scheme.masterSealAD(id, ver))
	if err != nil {
		return nil, err
	}
	return newKeyVersion(material, sealed, created)
}

// CreateKey creates an enabled master key with one version.
func (k *Local) CreateKey(ctx context.Context, req *CreateKeyRequest) (*KeyMetadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		req = &CreateKeyRequest{}
	}
	if err := k.lock(ctx); err != nil {
		return nil, err
	}
	defer k.mu.Unlock()
	var m *masterKey
	err := k.updateLocked(ctx, func() (map[string]*masterKey, error) {
		id, err := newKeyID()
		for err == nil && k.keys[id] != nil {
			id, err = newKeyID()
		}
		if err != nil {
			return nil, err
		}
		now := k.now().UTC()
		v, err := k.newVersion(id, 1, now)
		if err != nil {
			return nil, err
		}
		m = &masterKey{id: id, description: req.Description, state: KeyEnabled, created: now, versions: []*keyVersion{v}}
		return map[string]*masterKey{id: m}, nil
	})
	if err != nil {
		return nil, err
	}
	k.log.Info("kms key created", "key_id", m.id)
	return k.metadata(m), nil
}

// GenerateDataKey returns a fresh 32-byte data key and its wrapping by the
// key's newest version, bound to req.Context.
func (k *Local) GenerateDataKey(ctx context.Context, req *GenerateDataKeyRequest) (DEK, error) {
	if err := ctx.Err(); err != nil {
		return DEK{}, err
	}
	if req == nil {
		return DEK{}, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	plaintext := make([]byte, dataKeySize)
	if _, err := rand.Read(plaintext); err != nil {
		return DEK{}, fmt.Errorf("kms: reading random data key: %w", err)
	}
	id, ver, ct, err := k.wrapWithCurrent(ctx, req.KeyID, req.Context, plaintext)
	if err != nil {
		return DEK{}, err
	}
	return DEK{KeyID: id, Version: ver, Plaintext: plaintext, Ciphertext: ct}, nil
}

// Encrypt wraps a secret of 1 to 4096 bytes with the key's newest version,
// bound to req.Context, in the same format as a data key.
func (k *Local) Encrypt(ctx context.Context, req *EncryptRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	if len(req.Plaintext) == 0 || len(req.Plaintext) > maxSecretSize {
		return nil, fmt.Errorf("%w: plaintext must be 1 to %d bytes, got %d", ErrInvalidArgument, maxSecretSize, len(req.Plaintext))
	}
	_, _, ct, err := k.wrapWithCurrent(ctx, req.KeyID, req.Context, req.Plaintext)
	return ct, err
}

func (k *Local) wrapWithCurrent(ctx context.Context, name string, c Context, plaintext []byte) (string, uint32, []byte, error) {
	var (
		id  string
		ver uint32
		ct  []byte
	)
	err := k.use(ctx, name, true, func(m *masterKey) error {
		var err error
		id, ver = m.id, uint32(len(m.versions))
		ct, err = wrap(m.versions[ver-1].material, m.id, ver, appendContext(nil, c), plaintext)
		return err
	})
	if err != nil {
		return "", 0, nil, err
	}
	return id, ver, ct, nil
}

// wrappedBy parses a wrapped data key's header and, when keyID (an id or
// ARN) is set, checks that it names the key that wrapped it: what Decrypt
// and ReWrap check before they unwrap.
func (k *Local) wrappedBy(ctx context.Context, ciphertext []byte, keyID string) (wrapHeader, error) {
	if err := ctx.Err(); err != nil {
		return wrapHeader{}, err
	}
	h, err := parseWrapped(ciphertext)
	if err != nil {
		return wrapHeader{}, err
	}
	if keyID != "" {
		if id, ok := k.resolve(keyID); !ok || id != h.keyID {
			return wrapHeader{}, fmt.Errorf("%w: wrapped by key %s, not %s", ErrInvalidCiphertext, h.keyID, keyID)
		}
	}
	return h, nil
}

// Decrypt unwraps what GenerateDataKey or Encrypt wrapped, given the same
// context. If req.KeyID is set (id or ARN) it must name the key the
// ciphertext names. Unwrapped data keys are cached; the key's state is checked
// on every call, cached or not.
func (k *Local) Decrypt(ctx context.Context, req *DecryptRequest) ([]byte, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	h, err := k.wrappedBy(ctx, req.Ciphertext, req.KeyID)
	if err != nil {
		return nil, err
	}
	encCtx := appendContext(nil, req.Context)
	var ck cacheKey
	if k.cache != nil {
		ck = makeCacheKey(req.Ciphertext, encCtx)
	}
	var pt []byte
	err = k.use(ctx, h.keyID, true, func(m *masterKey) error {
		if int(h.version) > len(m.versions) {
			return fmt.Errorf("%w: key %s has no version %d", errUnknownVersion, h.keyID, h.version)
		}
		if err := checkNotRetired(m, h.version); err != nil {
			return err
		}
		if cached, ok := k.cache.get(ck); ok {
			pt = cached
			return nil
		}
		var err error
		if pt, err = unwrap(m.versions[h.version-1], req.Ciphertext, h, encCtx); err != nil {
			return err
		}
		k.unwraps.Add(1)
		// Only data keys are cached; secrets from Encrypt are rare and
		// larger. The entry is added under the read lock, so a change of
		// state waiting for the write lock evicts it afterwards.
		if len(pt) == dataKeySize {
			k.cache.put(ck, h.keyID, pt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// DescribeKey returns a key's metadata, whatever its state. A shared
// keyring is brought up to date first.
func (k *Local) DescribeKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	if err := k.refreshShared(ctx); err != nil {
		return nil, err
	}
	var md *KeyMetadata
	err := k.use(ctx, req.KeyID, false, func(m *masterKey) error {
		md = k.metadata(m)
		return nil
	})
	return md, err
}

// refreshShared brings a shared keyring up to date (one small read).
func (k *Local) refreshShared(ctx context.Context) error {
	if !k.shared {
		return nil
	}
	if err := k.refresh(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyringUnavailable, err)
	}
	return nil
}

// ListKeys returns every key, oldest first. A shared keyring is brought up
// to date first.
func (k *Local) ListKeys(ctx context.Context) ([]*KeyMetadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := k.refreshShared(ctx); err != nil {
		return nil, err
	}
	if err := k.rlock(ctx); err != nil {
		return nil, err
	}
	defer k.mu.RUnlock()
	now := k.now()
	keys := make([]*masterKey, 0, len(k.keys))
	for _, m := range k.keys {
		if !m.expired(now) {
			keys = append(keys, m)
		}
	}
	sortKeys(keys)
	out := make([]*KeyMetadata, len(keys))
	for i, m := range keys {
		out[i] = k.metadata(m)
	}
	return out, nil
}

// change runs fn on a copy of the named key under the write lock. If fn
// returns a non-empty message, the copy is persisted, swapped in, and the
// message is logged at info with the key's id and new state. With a shared
// keyring fn runs on an up-to-date copy, and again on a fresh one whenever
// another gateway changed the keyring first.
func (k *Local) change(ctx context.Context, name string, fn func(c *masterKey, now time.Time) (string, error)) (*masterKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := k.lock(ctx); err != nil {
		return nil, err
	}
	defer k.mu.Unlock()
	var (
		result *masterKey
		msg    string
	)
	err := k.updateLocked(ctx, func() (map[string]*masterKey, error) {
		m, err := k.lookupLocked(name)
		if err != nil {
			return nil, err
		}
		c := m.clone()
		if msg, err = fn(c, k.now().UTC()); err != nil || msg == "" {
			result = m
			return nil, err
		}
		result = c
		return map[string]*masterKey{c.id: c}, nil
	})
	if err != nil {
		return nil, err
	}
	if msg == "" {
		return result, nil
	}
	c := result
	if c.state != KeyEnabled {
		k.cache.evictKey(c.id)
	}
	if c.state == KeyPendingDeletion && (k.nextPurge.IsZero() || c.deletionDate.Before(k.nextPurge)) {
		k.nextPurge = c.deletionDate
	}
	attrs := []any{"key_id", c.id, "state", c.state, "version", len(c.versions)}
	if !c.deletionDate.IsZero() {
		attrs = append(attrs, "deletion_date", c.deletionDate)
	}
	k.log.Info(msg, attrs...)
	return c, nil
}

func keyRequestID(req *KeyRequest) string {
	if req == nil {
		return ""
	}
	return req.KeyID
}

// EnableKey enables a disabled key. A key pending deletion must have its
// deletion cancelled first.
func (k *Local) EnableKey(ctx context.Context, req *KeyRequest) error {
	_, err := k.change(ctx, keyRequestID(req), func(c *masterKey, _ time.Time) (string, error) {
		switch c.state {
		case KeyEnabled:
			return "", nil
		case KeyPendingDeletion:
			return "", fmt.Errorf("%w: %s: cancel the deletion before enabling it", ErrKeyPendingDeletion, c.id)
		}
		c.state = KeyEnabled
		return "kms key enabled", nil
	})
	return err
}

// DisableKey disables a key: from the moment it returns, no data key under it
// is issued or unwrapped (cached ones included) until EnableKey.
func (k *Local) DisableKey(ctx context.Context, req *KeyRequest) error {
	_, err := k.change(ctx, keyRequestID(req), func(c *masterKey, _ time.Time) (string, error) {
		switch c.state {
		case KeyDisabled:
			return "", nil
		case KeyPendingDeletion:
			return "", fmt.Errorf("%w: %s", ErrKeyPendingDeletion, c.id)
		}
		c.state = KeyDisabled
		return "kms key disabled", nil
	})
	return err
}

// ScheduleKeyDeletion puts a key in PendingDeletion with a deletion date
// PendingDays (7 to 30; 0 means 30) days from now. The key is unusable at
// once; on the deletion date its material is destroyed.
func (k *Local) ScheduleKeyDeletion(ctx context.Context, req *ScheduleDeletionRequest) (*KeyMetadata, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	days := req.PendingDays
	if days == 0 {
		days = 30
	}
	if req.Pending == 0 && (days < 7 || days > 30) {
		return nil, fmt.Errorf("%w: pending window must be 7 to 30 days, got %d", ErrInvalidArgument, req.PendingDays)
	}
	wait := time.Duration(days) * 24 * time.Hour
	if req.Pending > 0 {
		wait = req.Pending
	}
	m, err := k.change(ctx, req.KeyID, func(c *masterKey, now time.Time) (string, error) {
		if c.state == KeyPendingDeletion {
			return "", fmt.Errorf("%w: %s is already scheduled for deletion", ErrKeyPendingDeletion, c.id)
		}
		c.state = KeyPendingDeletion
		c.deletionDate = now.Add(wait)
		return "kms key scheduled for deletion", nil
	})
	if err != nil {
		return nil, err
	}
	return k.metadata(m), nil
}

// CancelKeyDeletion takes a key out of PendingDeletion. It becomes Disabled,
// as in AWS KMS; EnableKey makes it usable again.
func (k *Local) CancelKeyDeletion(ctx context.Context, req *KeyRequest) error {
	_, err := k.change(ctx, keyRequestID(req), func(c *masterKey, _ time.Time) (string, error) {
		if c.state != KeyPendingDeletion {
			return "", fmt.Errorf("%w: key %s is %s, not pending deletion", ErrInvalidArgument, c.id, c.state)
		}
		c.state = KeyDisabled
		c.deletionDate = time.Time{}
		return "kms key deletion cancelled", nil
	})
	return err
}

// RotateKey adds a version to an enabled key. New data keys are wrapped by
// it; older versions keep unwrapping what they wrapped.
func (k *Local) RotateKey(ctx context.Context, req *KeyRequest) (*KeyMetadata, error) {
	m, err := k.change(ctx, keyRequestID(req), func(c *masterKey, now time.Time) (string, error) {
		if err := usable(c); err != nil {
			return "", err
		}
		ver := uint32(len(c.versions)) + 1
		v, err := k.newVersion(c.id, ver, now)
		if err != nil {
			return "", err
		}
		c.versions = append(slices.Clip(c.versions), v)
		return "kms key rotated", nil
	})
	if err != nil {
		return nil, err
	}
	return k.metadata(m), nil
}
