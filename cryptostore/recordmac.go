package cryptostore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// ErrRecordTampered: a bucket, object, upload or part record failed
// authentication: it was changed, moved to another key, stripped of its MAC
// or planted by someone who could write the data disk but does not hold the
// KMS. It is meta.ErrRecordTampered; the mount answers EIO, S3 a 500.
var ErrRecordTampered = meta.ErrRecordTampered

// ErrRecordAuthKeyMissing: the store's records carry MACs (or were written
// by a sealfs that seals them) but the record-authentication key is gone
// from the metadata. It is refused, never silently replaced.
var ErrRecordAuthKeyMissing = errors.New("cryptostore: the record-authentication key is missing from the metadata, but records were sealed with one")

// Record authentication (FORMAT.md, section 10). The key is a 256-bit data
// key issued once by the KMS under the system master key and stored wrapped
// in the configuration record recordAuthConfig; it is unwrapped once, at
// open, so reads and writes cost one HMAC-SHA256 each and no KMS call.
const (
	recordAuthConfig = "system/record-auth"
	// systemKeyConfig names the system master key. The replication
	// target manager uses the same record and key for its secrets.
	systemKeyConfig      = "system/secrets-key"
	systemKeyDescription = "sealfs system secrets (record authentication, replication target keys)"
	recordMACDomain      = "sealfs record mac v1"
	upgradingLabel       = "sealfs record auth: upgrading"
)

// recordAuthContext is the encryption context the record-authentication key
// is wrapped under.
var recordAuthContext = kms.Context{"purpose": "sealfs record authentication"}

// recordAuthState is the stored form of the record-authentication key.
type recordAuthState struct {
	Format  int    `json:"format"` // 1
	KeyID   string `json:"key_id"` // master key that wrapped it
	Wrapped []byte `json:"wrapped"`
	// Upgrading, while first-release records are being sealed, is
	// HMAC(key, upgradingLabel): records without a MAC are accepted until it
	// is cleared. Nobody without the key can set it.
	Upgrading []byte `json:"upgrading,omitempty"`
}

// recordMAC is HMAC-SHA256 keyed with the record-authentication key over
//
//	"sealfs record mac v1" || uvarint(len(database key)) || database key ||
//	record bytes before the MAC field
type recordMAC struct {
	pool sync.Pool // of *macState
}

// macState is one HMAC with scratch space, so that computing a MAC does not
// allocate.
type macState struct {
	h   hash.Hash
	len [binary.MaxVarintLen64]byte
	sum [sha256.Size]byte
}

var recordMACDomainBytes = []byte(recordMACDomain)

func newRecordMAC(key []byte) *recordMAC {
	k := append([]byte(nil), key...)
	m := &recordMAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
	return m
}

// compute returns the MAC, in st.sum.
func (st *macState) compute(key, record []byte) []byte {
	st.h.Reset()
	st.h.Write(recordMACDomainBytes)
	st.h.Write(st.len[:binary.PutUvarint(st.len[:], uint64(len(key)))])
	st.h.Write(key)
	st.h.Write(record)
	return st.h.Sum(st.sum[:0])
}

// AppendMAC implements meta.RecordMAC.
func (m *recordMAC) AppendMAC(dst, key, record []byte) []byte {
	st := m.pool.Get().(*macState)
	dst = append(dst, st.compute(key, record)...)
	m.pool.Put(st)
	return dst
}

// VerifyMAC implements meta.RecordMAC.
func (m *recordMAC) VerifyMAC(key, record, mac []byte) bool {
	st := m.pool.Get().(*macState)
	ok := hmac.Equal(st.compute(key, record), mac)
	m.pool.Put(st)
	return ok
}

func upgradingToken(key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(upgradingLabel))
	return h.Sum(nil)
}

// openRecordAuth turns record authentication on for s.meta, creating the key
// on a new store and sealing the records of a store the first release wrote.
func (s *Store) openRecordAuth(ctx context.Context) error {
	var raw []byte
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		raw, err = tx.GetConfig(recordAuthConfig)
		return err
	})
	switch {
	case err == nil:
		var st recordAuthState
		if err := json.Unmarshal(raw, &st); err != nil || st.Format != 1 {
			return fmt.Errorf("%w: the record-authentication key record does not parse", ErrRecordTampered)
		}
		key, err := s.kms.Decrypt(ctx, &kms.DecryptRequest{KeyID: st.KeyID, Ciphertext: st.Wrapped, Context: recordAuthContext})
		if err != nil {
			return fmt.Errorf("cryptostore: unwrapping the record-authentication key: %w", err)
		}
		defer clear(key)
		mac := newRecordMAC(key)
		if st.Upgrading == nil {
			s.meta.SetRecordAuth(mac, meta.AuthRequired)
			return nil
		}
		if !hmac.Equal(st.Upgrading, upgradingToken(key)) {
			return fmt.Errorf("%w: the record-authentication key record's upgrade mark is forged", ErrRecordTampered)
		}
		return s.sealRecords(ctx, mac, &st)
	case !errors.Is(err, meta.ErrNoSuchConfig):
		return err
	}

	census, err := s.meta.CensusRecords(ctx)
	if err != nil {
		return err
	}
	if census.Sealed > 0 || census.NewWraps > 0 {
		return fmt.Errorf("%w (%d of %d records carry a MAC, %d hold data keys wrapped by a later sealfs): restore the metadata from a backup",
			ErrRecordAuthKeyMissing, census.Sealed, census.Records, census.NewWraps)
	}
	keyID, err := s.systemKey(ctx)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("cryptostore: reading random record-authentication key: %w", err)
	}
	wrapped, err := s.kms.Encrypt(ctx, &kms.EncryptRequest{KeyID: keyID, Plaintext: key, Context: recordAuthContext})
	if err != nil {
		return fmt.Errorf("cryptostore: wrapping the record-authentication key: %w", err)
	}
	st := recordAuthState{Format: 1, KeyID: keyID, Wrapped: wrapped}
	mac := newRecordMAC(key)
	if census.Records > 0 {
		// A store the first release wrote: mark the upgrade, seal every
		// record, clear the mark. A crash in between resumes on the next
		// open.
		st.Upgrading = upgradingToken(key)
	}
	// Gateways sharing the metadata may get here at once: the first to
	// store its key wins, the others use that one.
	if stored, err := s.putRecordAuthIfAbsent(ctx, &st); err != nil || !stored {
		if err != nil {
			return err
		}
		return s.openRecordAuth(ctx)
	}
	if census.Records == 0 {
		s.meta.SetRecordAuth(mac, meta.AuthRequired)
		return nil
	}
	s.logger.Info("sealing metadata records written by an earlier sealfs (once)", "records", census.Records)
	return s.sealRecords(ctx, mac, &st)
}

// putRecordAuthIfAbsent stores st unless a record-authentication key is
// already stored, and reports whether it stored it.
func (s *Store) putRecordAuthIfAbsent(ctx context.Context, st *recordAuthState) (stored bool, err error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("cryptostore: encoding the record-authentication key: %w", err)
	}
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		_, err := tx.GetConfig(recordAuthConfig)
		if stored = errors.Is(err, meta.ErrNoSuchConfig); !stored {
			return err
		}
		return tx.PutConfig(recordAuthConfig, raw)
	})
	return stored, err
}

// sealRecords seals the records that have no MAC yet, then requires MACs.
func (s *Store) sealRecords(ctx context.Context, mac *recordMAC, st *recordAuthState) error {
	s.meta.SetRecordAuth(mac, meta.AuthUpgrade)
	n, err := s.meta.SealRecords(ctx)
	if err != nil {
		s.meta.SetRecordAuth(mac, meta.AuthRequired)
		return fmt.Errorf("cryptostore: sealing metadata records: %w", err)
	}
	st.Upgrading = nil
	if err := s.putRecordAuth(ctx, st); err != nil {
		s.meta.SetRecordAuth(mac, meta.AuthRequired)
		return err
	}
	s.meta.SetRecordAuth(mac, meta.AuthRequired)
	s.logger.Info("metadata records sealed; from now on a record without a valid MAC is refused", "sealed", n)
	return nil
}

func (s *Store) putRecordAuth(ctx context.Context, st *recordAuthState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("cryptostore: encoding the record-authentication key: %w", err)
	}
	return s.meta.Update(ctx, func(tx *meta.Txn) error { return tx.PutConfig(recordAuthConfig, raw) })
}

// systemKey returns the id of the system master key, creating it the first
// time (the replication queue seals target secrets under the same key).
func (s *Store) systemKey(ctx context.Context) (string, error) {
	return ensureSystemKey(ctx, s.meta, s.kms, s.logger)
}

// ensureSystemKey returns the id of the system master key, creating it the
// first time.
func ensureSystemKey(ctx context.Context, db *meta.DB, k kms.KMS, logger *slog.Logger) (string, error) {
	var id string
	err := db.View(ctx, func(tx *meta.Txn) error {
		v, err := tx.GetConfig(systemKeyConfig)
		if err == nil {
			id = string(v)
		}
		if errors.Is(err, meta.ErrNoSuchConfig) {
			err = nil
		}
		return err
	})
	if err != nil || id != "" {
		return id, err
	}
	md, err := k.CreateKey(ctx, &kms.CreateKeyRequest{Description: systemKeyDescription})
	if err != nil {
		return "", fmt.Errorf("cryptostore: creating the system key: %w", err)
	}
	// Another gateway sharing the metadata may have stored one meanwhile:
	// the first stored wins, and a key that lost is scheduled for deletion.
	err = db.Update(ctx, func(tx *meta.Txn) error {
		v, err := tx.GetConfig(systemKeyConfig)
		if err == nil {
			id = string(v)
			return nil
		}
		if !errors.Is(err, meta.ErrNoSuchConfig) {
			return err
		}
		id = md.KeyID
		return tx.PutConfig(systemKeyConfig, []byte(md.KeyID))
	})
	if err != nil {
		return "", err
	}
	if id != md.KeyID {
		if _, err := k.ScheduleKeyDeletion(ctx, &kms.ScheduleDeletionRequest{KeyID: md.KeyID, PendingDays: 7}); err != nil {
			logger.Warn("cannot schedule the deletion of an unused system key", "key", md.KeyID, "err", err)
		}
		return id, nil
	}
	logger.Info("created the KMS system key", "key", md.KeyID)
	return md.KeyID, nil
}

// SystemKeyID returns the id of the system master key, which wraps the
// record-authentication key (and replication target secrets); "" if there
// is none. Disabling or deleting it would keep the store from opening.
func (s *Store) SystemKeyID(ctx context.Context) (string, error) {
	var id string
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		v, err := tx.GetConfig(systemKeyConfig)
		if err == nil {
			id = string(v)
		}
		if errors.Is(err, meta.ErrNoSuchConfig) {
			err = nil
		}
		return err
	})
	return id, err
}

// scrubPage is a page of a bucket's object keys, for Scrub: only Key is set
// in its objects, and no record is read, so a record that fails
// authentication shows up as the damage of that one object when Scrub opens
// it, not as the failure of the whole scrub.
func (s *Store) scrubPage(ctx context.Context, bucket string, lo meta.ListOptions) (*meta.ListPage, error) {
	page := &meta.ListPage{}
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		keys, more, err := tx.ObjectKeys(bucket, lo.After, lo.MaxKeys)
		if err != nil {
			return err
		}
		page.Objects = make([]*meta.Object, len(keys))
		for i, k := range keys {
			page.Objects[i] = &meta.Object{Bucket: bucket, Key: k}
		}
		page.IsTruncated = more
		if len(keys) > 0 {
			page.NextAfter = keys[len(keys)-1]
		}
		return nil
	})
	return page, err
}
