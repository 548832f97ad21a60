package kms

import (
	"bytes"
	"crypto/cipher"
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

// The keyring file, DIR/keyring, holds every master key. It is small (a few
// hundred bytes per key) and rewritten whole, atomically, on every change:
// temporary file, fsync, rename, fsync of the directory. Its mode is 0600.
//
//	{"format":1,"mac":"<hex>","keyring":BODY}
//
// BODY is a JSON object:
//
//	check   base64(nonce || tag): AES-256-GCM under the root key of an empty
//	        plaintext with associated data "sealfs kms root check v1"; it tells
//	        a wrong root key apart from a damaged or altered file
//	keys    [{id, description, state, created, deletion_date, versions:
//	        [{version, created, sealed}]}]
//
// sealed is base64(nonce || AES-256-GCM(root key, material)) with associated
// data "sealfs kms master v1" || u8 len(id) || id || u32 version, so sealed
// material cannot be moved to another key or version. The file never holds
// material in clear.
//
// mac is HMAC-SHA256 over "sealfs kms keyring v1" || BODY (the exact bytes in
// the file), keyed with HKDF-SHA256(root key, info "sealfs kms keyring mac
// v1"). It stops an edit of the file (re-enabling a disabled key, say) by
// someone who can write the data disk but does not hold the root key. It does
// not stop a rollback to an older keyring written by sealfs itself.
const (
	keyringName      = "keyring"
	keyringFormat    = 1
	keyringTempGlob  = "keyring.tmp-*"
	lockName         = "keyring.lock"
	checkAD          = "sealfs kms root check v1"
	masterSealDomain = "sealfs kms master v1"
	macDomain        = "sealfs kms keyring v1"
	macKeyInfo       = "sealfs kms keyring mac v1"
)

// errKeyringIntegrity: the keyring's MAC or a sealed version failed to verify
// although the root key matches.
var errKeyringIntegrity = errors.New("kms: keyring failed its integrity check (damaged, or modified outside sealfs)")

type keyringEnvelope struct {
	Format  int             `json:"format"`
	MAC     string          `json:"mac"`
	Keyring json.RawMessage `json:"keyring"`
}

type keyringBody struct {
	Check []byte      `json:"check"`
	Keys  []keyRecord `json:"keys"`
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
}

// masterSealAD is the associated data binding sealed material to its key id
// and version.
func masterSealAD(keyID string, version uint32) []byte {
	ad := make([]byte, 0, len(masterSealDomain)+1+len(keyID)+4)
	ad = append(ad, masterSealDomain...)
	ad = append(ad, byte(len(keyID)))
	ad = append(ad, keyID...)
	return binary.BigEndian.AppendUint32(ad, version)
}

// sealWithRoot seals plaintext under the root key: nonce || ciphertext || tag.
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

func keyringMAC(macKey, body []byte) []byte {
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(macDomain))
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
	fmt.Fprintf(&b, `{"format":%d,"mac":"%s","keyring":`, keyringFormat, hex.EncodeToString(keyringMAC(k.macKey, raw)))
	b.Write(raw)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// decodeKeyring verifies and parses the file contents. Errors wrap
// ErrRootKeyMismatch when the check value does not open under this root key,
// and errKeyringIntegrity when the rest does not verify.
func (k *Local) decodeKeyring(data []byte) (*keyringBody, error) {
	var env keyringEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("kms: keyring %s is not valid: %w", k.path, err)
	}
	if env.Format != keyringFormat {
		return nil, fmt.Errorf("kms: keyring %s has format %d, this sealfs reads format %d", k.path, env.Format, keyringFormat)
	}
	var body keyringBody
	if err := json.Unmarshal(env.Keyring, &body); err != nil {
		return nil, fmt.Errorf("kms: keyring %s is not valid: %w", k.path, err)
	}
	if _, err := openWithRoot(k.root, body.Check, []byte(checkAD)); err != nil {
		return nil, fmt.Errorf("%w: %s was sealed by another root key", ErrRootKeyMismatch, k.path)
	}
	mac, err := hex.DecodeString(env.MAC)
	if err != nil || !hmac.Equal(mac, keyringMAC(k.macKey, env.Keyring)) {
		return nil, fmt.Errorf("%w: %s", errKeyringIntegrity, k.path)
	}
	return &body, nil
}

// loadKeys turns verified records into master keys, unsealing every version.
func (k *Local) loadKeys(body *keyringBody) (map[string]*masterKey, error) {
	keys := make(map[string]*masterKey, len(body.Keys))
	for _, r := range body.Keys {
		if r.ID == "" || len(r.ID) > maxKeyIDLen || keys[r.ID] != nil || len(r.Versions) == 0 {
			return nil, fmt.Errorf("%w: %s: bad record for key %q", errKeyringIntegrity, k.path, r.ID)
		}
		switch r.State {
		case KeyEnabled, KeyDisabled, KeyPendingDeletion:
		default:
			return nil, fmt.Errorf("%w: %s: key %s has unknown state %q", errKeyringIntegrity, k.path, r.ID, r.State)
		}
		m := &masterKey{
			id:           r.ID,
			description:  r.Description,
			state:        r.State,
			created:      r.Created,
			deletionDate: r.DeletionDate,
		}
		for i, vr := range r.Versions {
			if vr.Version != uint32(i+1) {
				return nil, fmt.Errorf("%w: %s: key %s lists version %d at position %d", errKeyringIntegrity, k.path, r.ID, vr.Version, i+1)
			}
			material, err := openWithRoot(k.root, vr.Sealed, masterSealAD(r.ID, vr.Version))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: key %s version %d does not unseal", errKeyringIntegrity, k.path, r.ID, vr.Version)
			}
			v, err := newKeyVersion(material, vr.Sealed, vr.Created)
			if err != nil {
				return nil, err
			}
			m.versions = append(m.versions, v)
		}
		keys[r.ID] = m
	}
	return keys, nil
}

// persistLocked writes the keyring as k.keys with changes applied (a nil
// value deletes that key) and, once it is durable, applies changes to
// k.keys. On error k.keys is unchanged. The caller holds k.mu for writing.
func (k *Local) persistLocked(changes map[string]*masterKey) error {
	body := &keyringBody{Check: k.check, Keys: []keyRecord{}}
	for _, m := range mergedKeys(k.keys, changes) {
		r := keyRecord{
			ID:           m.id,
			Description:  m.description,
			State:        m.state,
			Created:      m.created,
			DeletionDate: m.deletionDate,
		}
		for i, v := range m.versions {
			r.Versions = append(r.Versions, versionRecord{Version: uint32(i + 1), Created: v.created, Sealed: v.sealed})
		}
		body.Keys = append(body.Keys, r)
	}
	data, err := k.encodeKeyring(body)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(k.dir, keyringName, keyringTempGlob, data); err != nil {
		return err
	}
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
