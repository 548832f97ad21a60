package meta

// The PostgreSQL engine's change feed: LISTEN/NOTIFY.
//
// A row trigger on the key-value table (created by the first watch, in the
// table's schema) calls pg_notify for every row inserted, updated or
// deleted. NOTIFY is transactional: the notifications of a transaction are
// delivered when it commits, never when it rolls back, and a transaction
// that writes a key twice notifies it once. The channel is the table's
// schema's own ("sealfs_" and 16 hex digits of the MD5 of the schema's
// name: channel names are at most 63 bytes), so stores in several schemas
// of one database do not hear each other. The payload is "s" (set) or "d"
// (deleted) followed by the key in hex: at most 2 + 2×(64+1+1024) bytes,
// well under NOTIFY's 8000-byte limit.
//
// The listener holds one connection of its own (not from the pool). When
// it breaks (the server restarted) the listener reconnects, LISTENs again
// and then sends a reset: notifications sent while it was away are lost.
// A quiet connection is pinged every 15 seconds, so a dead one is found.
//
// Cost: a notifying transaction takes PostgreSQL's notification queue lock
// at commit, which serialises the commits of writing transactions database
// wide for that moment; the queue (8 GB by default) holds notifications
// until every listener has read them.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const pgNotifySetup = `
CREATE OR REPLACE FUNCTION sealfs_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('sealfs_' || left(md5(TG_TABLE_SCHEMA), 16), 'd' || encode(OLD.k, 'hex'));
	ELSE
		PERFORM pg_notify('sealfs_' || left(md5(TG_TABLE_SCHEMA), 16), 's' || encode(NEW.k, 'hex'));
	END IF;
	RETURN NULL;
END $$`

const pgNotifyChannel = `SELECT 'sealfs_' || left(md5(n.nspname), 16) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = '` + pgTable + `'::regclass`

// pgEnsureNotify creates the trigger once, and returns the channel.
func (kv *pgKV) pgEnsureNotify(ctx context.Context) (string, error) {
	tx, err := kv.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	// Gateways starting together: one creates, the others wait and see it.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sealfs_kv_notify'))`); err != nil {
		return "", err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '`+pgTable+`'::regclass AND tgname = 'sealfs_kv_notify')`).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := tx.Exec(ctx, pgNotifySetup); err != nil {
			return "", err
		}
		if _, err := tx.Exec(ctx, `CREATE TRIGGER sealfs_kv_notify AFTER INSERT OR UPDATE OR DELETE ON `+pgTable+` FOR EACH ROW EXECUTE FUNCTION sealfs_kv_notify()`); err != nil {
			return "", err
		}
	}
	var channel string
	if err := tx.QueryRow(ctx, pgNotifyChannel).Scan(&channel); err != nil {
		return "", err
	}
	return channel, tx.Commit(ctx)
}

func (kv *pgKV) watch(ctx context.Context, prefixes [][]byte) (<-chan kvWatchEvent, error) {
	channel, err := kv.pgEnsureNotify(ctx)
	if err != nil {
		return nil, fmt.Errorf("meta: postgres: setting up the change feed: %w", err)
	}
	conn, err := kv.pgListen(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("meta: postgres: LISTEN: %w", err)
	}
	out := make(chan kvWatchEvent, 256)
	go kv.listenLoop(ctx, conn, channel, prefixes, out)
	return out, nil
}

// pgListen opens a connection of its own and LISTENs on channel.
func (kv *pgKV) pgListen(ctx context.Context, channel string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, pgOpenTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, kv.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// pgQuiet is how long the listener waits for a notification before it
// checks that its connection is alive.
const pgQuiet = 15 * time.Second

func (kv *pgKV) listenLoop(ctx context.Context, conn *pgx.Conn, channel string, prefixes [][]byte, out chan<- kvWatchEvent) {
	defer close(out)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	send := func(ev kvWatchEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, pgQuiet)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if ev, ok := pgNotification(n, prefixes); ok && !send(ev) {
				return
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			// Quiet: check that the connection is alive.
			pctx, c := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			c()
			if err == nil {
				continue
			}
		}
		// The connection is gone: reconnect, then report the gap.
		conn.Close(context.Background())
		conn = nil
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if conn, err = kv.pgListen(ctx, channel); err == nil {
				break
			}
		}
		if !send(kvWatchEvent{reset: true}) {
			return
		}
	}
}

// pgNotification turns a payload into an event; ok is false for one that
// is not sealfs's or not under prefixes.
func pgNotification(n *pgconn.Notification, prefixes [][]byte) (kvWatchEvent, bool) {
	p := n.Payload
	if len(p) < 1 || (p[0] != 's' && p[0] != 'd') {
		return kvWatchEvent{}, false
	}
	k, err := hex.DecodeString(p[1:])
	if err != nil || !hasAnyPrefix(k, prefixes) {
		return kvWatchEvent{}, false
	}
	return kvWatchEvent{key: k, deleted: p[0] == 'd'}, true
}
