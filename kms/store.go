package kms

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// ErrKeyringChanged is wrapped by the error of KeyringStore.Store when the
// stored keyring is no longer the generation the caller read: another
// gateway changed it first. Local reads the keyring again and retries.
var ErrKeyringChanged = errors.New("kms: the keyring was changed by another gateway")

// KeyringStore keeps the sealed keyring: the bytes Local encodes (see
// keyring.go), never material in clear. A store only moves bytes; it does
// not parse or verify them. Two implementations:
//
//   - the keyring file DIR/keyring (the default, used with the embedded
//     Badger metadata): one process at a time, locked with flock;
//   - MetaKeyring: configuration records in the metadata engine, shared by
//     every gateway over that engine.
//
// Every change is a compare-and-swap on a generation: Store replaces
// generation gen with generation gen+1, or stores nothing when another
// writer got there first. Safe for concurrent use.
type KeyringStore interface {
	// Load returns the stored keyring and its generation, read together;
	// data is nil and gen 0 when there is no keyring yet.
	Load(ctx context.Context) (data []byte, gen uint64, err error)
	// Generation returns the generation of the stored keyring (0: none),
	// at the cost of one small read.
	Generation(ctx context.Context) (uint64, error)
	// Store replaces generation gen (0: no keyring yet) with data, which
	// is generation gen+1 once Store returns nil, durably. When the stored
	// generation is not gen it stores nothing and returns an error
	// wrapping ErrKeyringChanged.
	Store(ctx context.Context, data []byte, gen uint64) error
	// Shared reports whether other processes may change the keyring.
	Shared() bool
	// String names the store in logs and errors.
	String() string
	// Close releases the store (not the engine under it).
	Close() error
}

// fileStore is the keyring file DIR/keyring. Its generation is counted in
// memory (0 before the file exists, 1 once read or first written): the
// directory lock keeps every other process out, so no one else can change
// it. The file's bytes are exactly what Local encodes, as before stores
// existed.
type fileStore struct {
	dir, path string
	lockFile  *os.File

	mu  sync.Mutex
	gen uint64
}

// openFileStore creates dir (mode 0700) if needed, locks it, and removes
// temporary files a crash left.
func openFileStore(dir string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if err := removeStaleTemps(dir); err != nil {
		lock.Close()
		return nil, err
	}
	return &fileStore{dir: dir, path: filepath.Join(dir, keyringName), lockFile: lock}, nil
}

func (s *fileStore) Load(context.Context) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("kms: %w", err)
	}
	if s.gen == 0 {
		s.gen = 1
	}
	return data, s.gen, nil
}

func (s *fileStore) Generation(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, nil
}

func (s *fileStore) Store(_ context.Context, data []byte, gen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return fmt.Errorf("%w: %s is at generation %d, not %d", ErrKeyringChanged, s.path, s.gen, gen)
	}
	if err := writeFileAtomic(s.dir, keyringName, keyringTempGlob, data); err != nil {
		return err
	}
	s.gen++
	return nil
}

func (s *fileStore) Shared() bool   { return false }
func (s *fileStore) String() string { return s.path }

func (s *fileStore) Close() error {
	if err := s.lockFile.Close(); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	return nil
}
