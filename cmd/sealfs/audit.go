package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// The audit log of key use: every data key the store issues
// (kms:GenerateDataKey) or unwraps (kms:Decrypt) for an object, and every
// administrative operation on a master key (kms:CreateKey when a bucket's
// key is made, kms:EnableKey, kms:DisableKey, kms:RotateKey), with who
// asked, when, the master key, the bucket, the object and the outcome, one
// JSON object a line in its own file (DATA/audit/key-use.jsonl by
// default, mode 0600), and counted in sealfs_key_uses_total{action,result}
// when --metrics is on. A refused use (the user's policy lacks the KMS
// action) is recorded as denied.

func auditFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "audit-log", EnvVars: []string{"SEALFS_AUDIT_LOG"}, Category: "Monitoring",
			Usage: "`FILE` the audit log of key use is appended to, one JSON object a line (default: DATA/audit/key-use.jsonl; \"off\": none)"},
	}
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user"` // "admin": the admin's credentials, an admin mount, or the daemon's own work
	Action string    `json:"action"`
	KeyID  string    `json:"key_id"`
	KeyARN string    `json:"key_arn"`
	Bucket string    `json:"bucket,omitempty"` // empty for an administrative operation
	Object string    `json:"object_id,omitempty"`
	Result string    `json:"result"` // allowed, denied, failed
	Error  string    `json:"error,omitempty"`
}

// auditLog appends key uses to a file and counts them.
type auditLog struct {
	logger *slog.Logger
	uses   *prometheus.CounterVec // nil without --metrics

	mu     sync.Mutex
	f      *os.File
	failed bool // a write failed: logged once
}

// openAuditLog opens the audit log --audit-log names in dataDir.
func openAuditLog(c *cli.Context, dataDir string, logger *slog.Logger, m *metrics) (*auditLog, error) {
	a := &auditLog{logger: logger}
	if m != nil {
		a.uses = m.keyUses
	}
	path := c.String("audit-log")
	if path == "off" {
		return a, nil
	}
	if path == "" {
		path = filepath.Join(dataDir, "audit", "key-use.jsonl")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a.f = f
	return a, nil
}

// record is the store's Config.Audit.
func (a *auditLog) record(u cryptostore.KeyUse) {
	r := auditRecord{Time: u.Time, User: u.User, Action: u.Action, KeyID: u.KeyID, KeyARN: u.KeyARN, Bucket: u.Bucket, Object: u.Object, Result: "allowed"}
	if r.User == "" {
		r.User = "admin"
	}
	switch {
	case errors.Is(u.Err, iam.ErrAccessDenied):
		r.Result = "denied"
	case u.Err != nil:
		r.Result, r.Error = "failed", u.Err.Error()
	}
	if a.uses != nil {
		a.uses.WithLabelValues(r.Action, r.Result).Inc()
	}
	if a.f == nil {
		return
	}
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(append(line, '\n')); err != nil && !a.failed {
		a.failed = true
		a.logger.Error("writing the audit log failed; key uses go unrecorded there until restart", "err", err)
	}
}

// Close syncs and closes the file.
func (a *auditLog) Close() error {
	if a == nil || a.f == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return errors.Join(a.f.Sync(), a.f.Close())
}
