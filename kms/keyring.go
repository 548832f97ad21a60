package kms

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The keyring holds every master key. It is small (a few hundred bytes per
// key) and rewritten whole on every change. In the file DIR/keyring (the
// default store) the rewrite is atomic: temporary file, fsync, rename, fsync
// of the directory; its mode is 0600. A shared keyring (MetaKeyring) holds
// the same bytes in a metadata record, with "generation" in BODY (below).
//
//	{"format":2,"mac":"<hex>","keyring":BODY}
//
// BODY is a JSON object:
//
//	check   base64(nonce || tag): AES-256-GCM under the sealing key of an
//	        empty plaintext with associated data "sealfs kms root check v2";
//	        it tells a wrong root key apart from a damaged or altered file
//	generation  only in a shared keyring: the store's generation, 1 for
//	        the first keyring stored, one more on each change; a gateway
//	        refuses a keyring whose generation is not the store's or is
//	        older than one it has read (a rollback while it runs)
//	keys    [{id, description, state, created, deletion_date, versions:
//	        [{version, created, sealed, retired}]}]
//
// retired, set when a version is retired (RetireVersion), is when; such a
// version's sealed is empty: its material is gone, and it unwraps nothing.
// The current (last) version is never retired.
//
// sealed is base64(nonce || AES-256-GCM(sealing key, material)) with
// associated data "sealfs kms master v2" || u8 len(id) || id || u32 version,
// so sealed material cannot be moved to another key or version. The file
// never holds material in clear. Nonces are random; a keyring seals one value
// per key version, far below the 2^32 random-nonce bound of GCM.
//
// mac is HMAC-SHA256 over "sealfs kms keyring v2" || BODY (the exact bytes in
// the file). It stops an edit of the file (re-enabling a disabled key, say)
// by someone who can write the data disk (or the shared metadata) but does
// not hold the root key. It does not stop a rollback to an older keyring
// written by sealfs itself, except that a running gateway refuses a shared
// keyring older than one it has read.
//
// The root key itself is never a cipher key. Both keys are derived from it
// with HKDF-SHA256 (no salt), each under its own label:
//
//	sealing key = HKDF-SHA256(root key, info "sealfs kms keyring seal v2", 32)
//	mac key     = HKDF-SHA256(root key, info "sealfs kms keyring mac v2", 32)
//
// Format 1, written by the first release, used the root key directly as the
// AES-256-GCM sealing key, the labels "... v1" above, and the mac key
// HKDF-SHA256(root key, info "sealfs kms keyring mac v1"). OpenLocal still
// reads it, and migrates it: it verifies the whole file under format 1,
// unseals every version, seals them again under format 2 and replaces the
// file atomically (as any change does) before it returns. A crash before the
// rename leaves the format 1 file, migrated on the next open.
const (
	keyringName     = "keyring"
	keyringFormat   = 2 // written now
	keyringFormatV1 = 1 // first release: read and migrated
	keyringTempGlob = "keyring.tmp-*"
	lockName        = "keyring.lock"
)

// keyringScheme is how one keyring format seals and authenticates.
type keyringScheme struct {
	format       int
	seal         cipher.AEAD // seals master key material and the check value
	macKey       []byte      // authenticates the file
	checkAD      string
	masterDomain string
	macDomain    string
}

// newKeyringScheme derives the keys of the given format from the root key.
func newKeyringScheme(format int, root []byte) (*keyringScheme, error) {
	switch format {
	case keyringFormatV1:
		seal, err := newGCM(root)
		if err != nil {
			return nil, err
		}
		macKey, err := hkdf.Key(sha256.New, root, nil, "sealfs kms keyring mac v1", 32)
		if err != nil {
			return nil, fmt.Errorf("kms: deriving keyring mac key: %w", err)
		}
		return &keyringScheme{format: format, seal: seal, macKey: macKey,
			checkAD: "sealfs kms root check v1", masterDomain: "sealfs kms master v1", macDomain: "sealfs kms keyring v1"}, nil
	case keyringFormat:
		sealKey, err := hkdf.Key(sha256.New, root, nil, "sealfs kms keyring seal v2", 32)
		if err != nil {
			return nil, fmt.Errorf("kms: deriving keyring sealing key: %w", err)
		}
		seal, err := newGCM(sealKey)
		clear(sealKey)
		if err != nil {
			return nil, err
		}
		macKey, err := hkdf.Key(sha256.New, root, nil, "sealfs kms keyring mac v2", 32)
		if err != nil {
			return nil, fmt.Errorf("kms: deriving keyring mac key: %w", err)
		}
		return &keyringScheme{format: format, seal: seal, macKey: macKey,
			checkAD: "sealfs kms root check v2", masterDomain: "sealfs kms master v2", macDomain: "sealfs kms keyring v2"}, nil
	}
	return nil, fmt.Errorf("kms: keyring format %d is unknown: this sealfs reads formats %d and %d", format, keyringFormatV1, keyringFormat)
}

// errKeyringIntegrity: the keyring's MAC or a sealed version failed to verify
// although the root key matches.
var errKeyringIntegrity = errors.New("kms: keyring failed its integrity check (damaged, or modified outside sealfs)")

type keyringEnvelope struct {
	Format  int             `json:"format"`
	MAC     string          `json:"mac"`
	Keyring json.RawMessage `json:"keyring"`
}

type keyringBody struct {
	Check []byte `json:"check"`
	// Generation is set only in a shared keyring (MetaKeyring): the
	// store's generation, under the MAC. The file never holds it.
	Generation uint64      `json:"generation,omitempty"`
	Keys       []keyRecord `json:"keys"`
}

type keyRecord struct {
	ID           string          `json:"id"`
	Description  string          `json:"description,omitempty"`
	State        KeyState        `json:"state"`
	Created      time.Time       `json:"created"`
	DeletionDate time.Time       `json:"deletion_date,omitzero"`
	Versions     []versionRecord `json:"versions"`
}

type versionRecord struct {
	Version uint32    `json:"version"`
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealed"`
	// Retired is when the version was retired (RetireVersion); its
	// material is gone from the keyring (Sealed is empty).
	Retired time.Time `json:"retired,omitzero"`
}

// masterSealAD is the associated data binding sealed material to its key id
// and version.
func (sc *keyringScheme) masterSealAD(keyID string, version uint32) []byte {
	ad := make([]byte, 0, len(sc.masterDomain)+1+len(keyID)+4)
	ad = append(ad, sc.masterDomain...)
	ad = append(ad, byte(len(keyID)))
	ad = append(ad, keyID...)
	return binary.BigEndian.AppendUint32(ad, version)
}

// sealWithRoot seals plaintext under the sealing key derived from the root
// key: nonce || ciphertext || tag.
func sealWithRoot(root cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("kms: reading nonce: %w", err)
	}
	return root.Seal(out, out[:nonceSize], plaintext, ad), nil
}

func openWithRoot(root cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < nonceSize+tagSize {
		return nil, errors.New("sealed value too short")
	}
	return root.Open(nil, sealed[:nonceSize], sealed[nonceSize:], ad)
}

func (sc *keyringScheme) mac(body []byte) []byte {
	m := hmac.New(sha256.New, sc.macKey)
	m.Write([]byte(sc.macDomain))
	m.Write(body)
	return m.Sum(nil)
}

// encodeKeyring returns the file contents for body.
func (k *Local) encodeKeyring(body *keyringBody) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("kms: encoding keyring: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"format":%d,"mac":"%s","keyring":`, k.scheme.format, hex.EncodeToString(k.scheme.mac(raw)))
	b.Write(raw)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// decodeKeyring verifies and parses a stored keyring (where names it in
// errors), and returns the scheme of the format it was written in. Errors
// wrap ErrRootKeyMismatch when the check value does not open under this root
// key, and errKeyringIntegrity when the rest does not verify. root is needed
// only for a keyring in the first release's format; without it such a
// keyring is an error.
func (k *Local) decodeKeyring(data, root []byte, where string) (*keyringBody, *keyringScheme, error) {
	var env keyringEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, nil, fmt.Errorf("kms: keyring %s is not valid: %w", where, err)
	}
	sc := k.scheme
	if env.Format != sc.format {
		var err error
		if env.Format != keyringFormatV1 || root == nil {
			return nil, nil, fmt.Errorf("kms: keyring %s has format %d, this sealfs reads formats %d and %d", where, env.Format, keyringFormatV1, keyringFormat)
		}
		if sc, err = newKeyringScheme(env.Format, root); err != nil {
			return nil, nil, err
		}
	}
	var body keyringBody
	if err := json.Unmarshal(env.Keyring, &body); err != nil {
		return nil, nil, fmt.Errorf("kms: keyring %s is not valid: %w", where, err)
	}
	if _, err := openWithRoot(sc.seal, body.Check, []byte(sc.checkAD)); err != nil {
		return nil, nil, fmt.Errorf("%w: %s was sealed by another root key", ErrRootKeyMismatch, where)
	}
	mac, err := hex.DecodeString(env.MAC)
	if err != nil || !hmac.Equal(mac, sc.mac(env.Keyring)) {
		return nil, nil, fmt.Errorf("%w: %s", errKeyringIntegrity, where)
	}
	return &body, sc, nil
}

// loadKeys turns verified records into master keys, unsealing every version
// with sc, the scheme the keyring was written in. A version prev already
// holds unsealed (same key, number, sealed bytes and date) is shared, not
// unsealed again. Versions are resealed under k.scheme if that is another
// one, so the next write stores them in the current format.
func (k *Local) loadKeys(body *keyringBody, sc *keyringScheme, prev map[string]*masterKey, where string) (map[string]*masterKey, error) {
	keys := make(map[string]*masterKey, len(body.Keys))
	for _, r := range body.Keys {
		if r.ID == "" || len(r.ID) > maxKeyIDLen || keys[r.ID] != nil || len(r.Versions) == 0 {
			return nil, fmt.Errorf("%w: %s: bad record for key %q", errKeyringIntegrity, where, r.ID)
		}
		switch r.State {
		case KeyEnabled, KeyDisabled, KeyPendingDeletion:
		default:
			return nil, fmt.Errorf("%w: %s: key %s has unknown state %q", errKeyringIntegrity, where, r.ID, r.State)
		}
		m := &masterKey{
			id:           r.ID,
			description:  r.Description,
			state:        r.State,
			created:      r.Created,
			deletionDate: r.DeletionDate,
		}
		var had []*keyVersion
		if p := prev[r.ID]; p != nil {
			had = p.versions
		}
		for i := range r.Versions {
			vr := &r.Versions[i]
			if vr.Version != uint32(i+1) {
				return nil, fmt.Errorf("%w: %s: key %s lists version %d at position %d", errKeyringIntegrity, where, r.ID, vr.Version, i+1)
			}
			if i < len(had) && sc == k.scheme && sameVersion(had[i], vr) {
				m.versions = append(m.versions, had[i])
				continue
			}
			if !vr.Retired.IsZero() {
				if len(vr.Sealed) != 0 || i == len(r.Versions)-1 {
					return nil, fmt.Errorf("%w: %s: key %s version %d is retired but keeps material or is current", errKeyringIntegrity, where, r.ID, vr.Version)
				}
				m.versions = append(m.versions, &keyVersion{created: vr.Created, retired: vr.Retired})
				continue
			}
			material, err := openWithRoot(sc.seal, vr.Sealed, sc.masterSealAD(r.ID, vr.Version))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: key %s version %d does not unseal", errKeyringIntegrity, where, r.ID, vr.Version)
			}
			sealed := vr.Sealed
			if sc != k.scheme {
				if sealed, err = sealWithRoot(k.scheme.seal, material, k.scheme.masterSealAD(r.ID, vr.Version)); err != nil {
					return nil, err
				}
			}
			v, err := newKeyVersion(material, sealed, vr.Created)
			if err != nil {
				return nil, err
			}
			m.versions = append(m.versions, v)
		}
		keys[r.ID] = m
	}
	return keys, nil
}

// persistLocked stores the keyring as k.keys with changes applied (a nil
// value deletes that key), replacing generation k.gen, and, once it is
// durable, applies changes to k.keys. On error k.keys is unchanged; the
// error wraps ErrKeyringChanged when another gateway stored a keyring
// first. The caller holds k.mu for writing.
func (k *Local) persistLocked(ctx context.Context, changes map[string]*masterKey) error {
	start := k.mono()
	body := &keyringBody{Check: k.check, Keys: []keyRecord{}}
	if k.shared {
		body.Generation = k.gen + 1
	}
	for _, m := range mergedKeys(k.keys, changes) {
		r := keyRecord{
			ID:           m.id,
			Description:  m.description,
			State:        m.state,
			Created:      m.created,
			DeletionDate: m.deletionDate,
		}
		for i, v := range m.versions {
			r.Versions = append(r.Versions, versionRecord{Version: uint32(i + 1), Created: v.created, Sealed: v.sealed, Retired: v.retired})
		}
		body.Keys = append(body.Keys, r)
	}
	data, err := k.encodeKeyring(body)
	if err != nil {
		return err
	}
	if err := k.store.Store(ctx, data, k.gen); err != nil {
		return err
	}
	k.gen++
	k.markFresh(start)
	for id, m := range changes {
		if m == nil {
			delete(k.keys, id)
		} else {
			k.keys[id] = m
		}
	}
	return nil
}

// mergedKeys returns keys with changes applied, ordered by creation time
// then id.
func mergedKeys(keys, changes map[string]*masterKey) []*masterKey {
	out := make([]*masterKey, 0, len(keys)+len(changes))
	for id, m := range keys {
		if _, ok := changes[id]; !ok {
			out = append(out, m)
		}
	}
	for _, m := range changes {
		if m != nil {
			out = append(out, m)
		}
	}
	sortKeys(out)
	return out
}

// writeFileAtomic replaces dir/name with data: a temporary file in dir
// (mode 0600) is written and synced, renamed over name, and the directory is
// synced.
func writeFileAtomic(dir, name, tempPattern string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("kms: writing %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("kms: syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("kms: closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("kms: syncing directory %s: %w", dir, err)
	}
	return nil
}

// removeStaleTemps deletes temporary keyring files left by a crash.
func removeStaleTemps(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, keyringTempGlob))
	if err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	for _, name := range names {
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("kms: removing stale %s: %w", name, err)
		}
	}
	return nil
}
