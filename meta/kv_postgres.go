package meta

// The PostgreSQL engine: the key space in one table,
//
//	CREATE TABLE sealfs_kv (k bytea PRIMARY KEY, v bytea NOT NULL)
//
// in the schema the connection's search_path names (add
// "?search_path=NAME" to the URL to keep several stores in one database).
// bytea compares byte-wise, shorter first on a common prefix: the order of
// bytes.Compare, which the primary key's index serves to scans.
//
// Read-write transactions run at SERIALIZABLE isolation: PostgreSQL's
// serializable snapshot isolation takes predicate locks on what a
// transaction read, index ranges scanned included, so it detects more than
// the contract asks, so meta does not use keys.go's write fences here
// (detectsRangeConflicts): concurrent blind writes of one fence row would
// conflict with each other (40001) and serialize every writer of a bucket. A serialization failure (SQLSTATE 40001) or a deadlock (40P01),
// at any statement or at commit, becomes an error wrapping ErrConflict: the
// transaction did not commit, and Update runs it again. After such an
// error the transaction is dead; every later call returns the same error.
// Read-only transactions (View) run at REPEATABLE READ, READ ONLY: one
// snapshot, and they never fail to serialize.
//
// Writes (set, delete) are queued and sent in one batch, in order, before
// the next read or the commit, so a transaction's writes cost one round
// trip; reads see the transaction's own writes because the batch goes
// first. A key written again before the batch is sent takes the place of
// its earlier write (a bulk transaction writes a bucket's fence key once
// per object: PostgreSQL would otherwise walk an ever longer chain of row
// versions).
//
// Durability: a commit that returns is durable as far as the server's
// settings make it (synchronous_commit on, the default, and fsync on):
// sync has nothing left to do, and WithoutSync changes nothing. A commit
// whose outcome is unknown (the connection failed during COMMIT) is
// reported as an error, not as a conflict: meta never runs it again on its
// own. Connections come from a pgx pool, which replaces broken ones: after
// the server restarts, the next transactions reconnect.
//
// The URL is passed to pgx as it is (postgres://user:pass@host:port/db?…,
// libpq's parameters, pool_max_conns); without pool_max_conns the pool
// keeps at most 16 connections.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func init() {
	registerEngine("postgres", openPostgres)
	registerEngine("postgresql", openPostgres)
}

const (
	pgTable        = "sealfs_kv"
	pgMaxConns     = 16
	pgOpenTimeout  = 30 * time.Second
	pgFirstBatch   = 32   // rows the first query of an iterator fetches
	pgMaxBatch     = 1024 // rows a query of an iterator fetches at most
	pgBeginRetries = 3    // begin on a connection found broken, before giving up
)

const (
	pgGet    = `SELECT v FROM ` + pgTable + ` WHERE k = $1`
	pgSet    = `INSERT INTO ` + pgTable + ` (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`
	pgDelete = `DELETE FROM ` + pgTable + ` WHERE k = $1`
)

// pgKV is the PostgreSQL engine.
// detectsRangeConflicts: SERIALIZABLE's predicate locks cover scanned ranges.
func (*pgKV) detectsRangeConflicts() bool { return true }

type pgKV struct {
	pool *pgxpool.Pool
}

func openPostgres(url string, opts Options) (kvEngine, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("meta: postgres url %s: %w", RedactURL(url), err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = pgMaxConns
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgOpenTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("meta: postgres %s: %w", RedactURL(url), err)
	}
	// Two gateways may create the table at once: the loser's CREATE
	// fails on the catalog's unique index; the table is there then.
	for attempt := 0; ; attempt++ {
		_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgTable+` (k bytea PRIMARY KEY, v bytea NOT NULL)`)
		var pe *pgconn.PgError
		if err == nil || attempt == 2 || !errors.As(err, &pe) || (pe.Code != "23505" && pe.Code != "42P07") {
			break
		}
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("meta: postgres %s: creating the table: %w", RedactURL(url), err)
	}
	opts.Logger.Info("meta: metadata in PostgreSQL", "url", RedactURL(url))
	return &pgKV{pool: pool}, nil
}

func (kv *pgKV) writable(context.Context) error { return nil }
func (kv *pgKV) sync() error                    { return nil } // every commit is durable when it returns
func (kv *pgKV) checkSpace() error              { return nil }
func (kv *pgKV) readOnly() bool                 { return false }
func (kv *pgKV) close() error                   { kv.pool.Close(); return nil }

func (kv *pgKV) begin(ctx context.Context, write bool) (kvTxn, error) {
	opts := pgx.TxOptions{IsoLevel: pgx.Serializable}
	if !write {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	var tx pgx.Tx
	var err error
	for range pgBeginRetries {
		// A connection that broke while idle in the pool (the server
		// restarted) fails before anything was sent: safe to try the
		// next one.
		if tx, err = kv.pool.BeginTx(ctx, opts); err == nil || !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, pgError("begin", err)
	}
	return &pgTxn{ctx: ctx, tx: tx, write: write}, nil
}

// pgError wraps an error of PostgreSQL, as a conflict when it is a
// serialization failure or a deadlock.
func pgError(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
		return fmt.Errorf("meta: postgres %s: %w: %w", op, ErrConflict, err)
	}
	return fmt.Errorf("meta: postgres %s: %w", op, err)
}

// pgTxn is a PostgreSQL transaction.
type pgTxn struct {
	ctx   context.Context
	tx    pgx.Tx
	write bool
	// ops are the writes not sent yet, in order; pending indexes them by
	// key.
	ops     []pgOp
	pending map[string]int
	// err is the first error, after which the server has aborted the
	// transaction: every later call returns it.
	err  error
	done bool
}

// retryPolicy: under SERIALIZABLE, writers of one hot key abort each other
// until one commits per round; with a round trip per statement, sixteen of
// them need more tries than Badger's bound, spread over tens of ms.
func (e *pgKV) retryPolicy() (int, time.Duration) { return 64, 50 * time.Millisecond }

func (t *pgTxn) fail(op string, err error) error {
	if t.err == nil {
		t.err = pgError(op, err)
	}
	return t.err
}

// pgOp is a queued write: a set, or a delete when del.
type pgOp struct {
	key, value []byte
	del        bool
}

// queue adds a write, replacing a queued write of the same key.
func (t *pgTxn) queue(op pgOp) {
	if t.pending == nil {
		t.pending = make(map[string]int)
	}
	if i, ok := t.pending[string(op.key)]; ok {
		t.ops[i] = op
		return
	}
	t.pending[string(op.key)] = len(t.ops)
	t.ops = append(t.ops, op)
}

// flush sends the queued writes.
func (t *pgTxn) flush() error {
	if t.err != nil {
		return t.err
	}
	if len(t.ops) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, op := range t.ops {
		if op.del {
			b.Queue(pgDelete, op.key)
		} else {
			b.Queue(pgSet, op.key, op.value)
		}
	}
	t.ops = t.ops[:0]
	clear(t.pending)
	if err := t.tx.SendBatch(t.ctx, &b).Close(); err != nil {
		return t.fail("write", err)
	}
	return nil
}

func (t *pgTxn) get(key []byte) ([]byte, bool, error) {
	if err := t.flush(); err != nil {
		return nil, false, err
	}
	var v []byte
	if err := t.tx.QueryRow(t.ctx, pgGet, key).Scan(&v); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, nil
		}
		return nil, false, t.fail("get", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

func (t *pgTxn) set(key, value []byte) error {
	if t.err != nil {
		return t.err
	}
	if !t.write {
		return fmt.Errorf("meta: postgres set: %w", ErrReadOnlyTxn)
	}
	if value == nil {
		value = []byte{} // nil would be NULL
	}
	t.queue(pgOp{key: key, value: value})
	return nil
}

func (t *pgTxn) delete(key []byte) error {
	if t.err != nil {
		return t.err
	}
	if !t.write {
		return fmt.Errorf("meta: postgres delete: %w", ErrReadOnlyTxn)
	}
	t.queue(pgOp{key: key, del: true})
	return nil
}

func (t *pgTxn) deletePrefix(prefix []byte) error {
	if t.err != nil {
		return t.err
	}
	if !t.write {
		return fmt.Errorf("meta: postgres delete: %w", ErrReadOnlyTxn)
	}
	if err := t.flush(); err != nil {
		return err
	}
	q, args := `DELETE FROM `+pgTable+` WHERE k >= $1`, []any{prefix}
	if end := successor(prefix); end != nil {
		q, args = q+` AND k < $2`, append(args, end)
	}
	if _, err := t.tx.Exec(t.ctx, q, args...); err != nil {
		return t.fail("delete range", err)
	}
	return nil
}

func (t *pgTxn) commit() error {
	if err := t.flush(); err != nil {
		return err
	}
	t.done = true
	if err := t.tx.Commit(t.ctx); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pgError("commit", err) // the server refused it: not committed
		}
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("meta: postgres commit: rolled back: %w", err)
		}
		return fmt.Errorf("meta: postgres commit: the outcome is unknown (the transaction may or may not have committed): %w", err)
	}
	return nil
}

func (t *pgTxn) discard() {
	if t.done {
		return
	}
	t.done = true
	// A rollback that fails leaves a broken connection, which the pool
	// drops; nothing was committed either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
	defer cancel()
	_ = t.tx.Rollback(ctx)
}

func (t *pgTxn) iterate(prefix []byte, keysOnly bool) kvIterator {
	q := `SELECT k, v FROM ` + pgTable
	if keysOnly {
		q = `SELECT k, NULL::bytea FROM ` + pgTable
	}
	end := successor(prefix)
	if end == nil {
		q += ` WHERE k >= $1 ORDER BY k LIMIT $2`
	} else {
		q += ` WHERE k >= $1 AND k < $3 ORDER BY k LIMIT $2`
	}
	qx := strings.Replace(q, "k >= $1", "k > $1", 1)
	return &pgIter{t: t, prefix: prefix, end: end, query: q, queryAfter: qx}
}

// pgIter reads the rows under its prefix in batches, each a query that
// starts where the last one stopped (a keyset page), growing from
// pgFirstBatch to pgMaxBatch rows.
type pgIter struct {
	t                 *pgTxn
	prefix, end       []byte
	query, queryAfter string // from $1 inclusive, after $1
	keys, vals        [][]byte
	pos               int
	more              bool // the last batch was full: rows may follow
	batch             int
	e                 error
}

func (i *pgIter) seek(k []byte) {
	if bytes.Compare(k, i.prefix) < 0 {
		k = i.prefix
	}
	i.batch = 0
	i.fetch(i.query, k)
}

func (i *pgIter) fetch(q string, from []byte) {
	i.keys, i.vals, i.pos, i.more = i.keys[:0], i.vals[:0], 0, false
	if i.e != nil {
		return
	}
	if i.e = i.t.flush(); i.e != nil {
		return
	}
	switch {
	case i.batch == 0:
		i.batch = pgFirstBatch
	case i.batch < pgMaxBatch:
		i.batch = min(2*i.batch, pgMaxBatch)
	}
	args := []any{from, i.batch}
	if i.end != nil {
		args = append(args, i.end)
	}
	rows, err := i.t.tx.Query(i.t.ctx, q, args...)
	if err != nil {
		i.e = i.t.fail("scan", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			i.e = i.t.fail("scan", err)
			return
		}
		i.keys, i.vals = append(i.keys, k), append(i.vals, v)
	}
	if err := rows.Err(); err != nil {
		i.e = i.t.fail("scan", err)
		return
	}
	i.more = len(i.keys) == i.batch
}

func (i *pgIter) valid() bool { return i.e == nil && i.pos < len(i.keys) }

func (i *pgIter) next() {
	if !i.valid() {
		return
	}
	i.pos++
	if i.pos == len(i.keys) && i.more {
		last := i.keys[len(i.keys)-1]
		i.fetch(i.queryAfter, last)
	}
}

func (i *pgIter) key() []byte { return i.keys[i.pos] }

func (i *pgIter) value() ([]byte, error) {
	v := i.vals[i.pos]
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (i *pgIter) err() error { return i.e }
func (i *pgIter) close()     {}
