package meta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/internal/pgtest"
)

func sharedPostgres(t testing.TB) *pgtest.Server { return enginetest.Postgres(t) }

// postgresOnly returns the shared PostgreSQL server and the URL of a
// fresh store on it, for a test that restarts the server, unless
// SEALFS_TEST_ENGINES leaves postgres out. Tests run one at a time, so the
// restart disturbs no one else.
func postgresOnly(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	if sel := os.Getenv("SEALFS_TEST_ENGINES"); sel != "" && !engineSelected("postgres") {
		t.Skip("SEALFS_TEST_ENGINES leaves postgres out")
	}
	srv := sharedPostgres(t)
	url, err := srv.NewSchema(context.Background())
	if err != nil {
		t.Fatalf("postgres: new schema: %v", err)
	}
	return srv, url
}

// PostgreSQL restarted under load, by a crash (immediate shutdown, then
// recovery from its log) and by a fast shutdown: meta reconnects by itself
// (writes succeed again after each restart) and no acknowledged write is
// lost; writes that failed meanwhile failed with an error.
func TestPostgresRestartUnderLoad(t *testing.T) {
	srv, url := postgresOnly(t)
	db, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	createBucket(t, db, "bkt")
	ctx := context.Background()

	var mu sync.Mutex
	var acked []string
	var ackedSince atomic.Int64
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%06d", w, i)
				err := db.Update(ctx, func(tx *Txn) error {
					if _, err := tx.GetBucket("bkt"); err != nil {
						return err
					}
					return tx.PutObject(&Object{Bucket: "bkt", Key: key, ID: NewObjectID()})
				})
				if err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
				ackedSince.Add(1)
			}
		}()
	}
	waitAcks := func(what string) {
		t.Helper()
		ackedSince.Store(0)
		deadline := time.Now().Add(30 * time.Second)
		for ackedSince.Load() < 50 {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: only %d writes acknowledged in 30 s: meta did not reconnect", what, ackedSince.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks("before the restarts")
	for _, immediate := range []bool{true, false} {
		if err := srv.Restart(immediate); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		waitAcks(fmt.Sprintf("after a restart (immediate %v)", immediate))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed during the restarts", len(acked), failed.Load())

	// Every acknowledged write is there, seen through a new connection.
	db2, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	view(t, db2, func(tx *Txn) error {
		for _, k := range acked {
			if _, err := tx.GetObject("bkt", k); err != nil {
				t.Errorf("acknowledged write lost: %v", err)
			}
		}
		return nil
	})
}

// A commit whose connection died under it is reported as an error (the
// outcome is unknown), not as success and not as a conflict to run again.
func TestPostgresCommitOnDeadConnection(t *testing.T) {
	srv, url := postgresOnly(t)
	db, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := 0
	err = db.Update(context.Background(), func(tx *Txn) error {
		runs++
		if err := tx.CreateBucket(&Bucket{Name: "bkt"}); err != nil {
			return err
		}
		// Send the write, then lose the server before the commit.
		if err := tx.kv.(*pgTxn).flush(); err != nil {
			return err
		}
		return srv.Restart(true)
	})
	if err == nil || errors.Is(err, ErrConflict) || runs != 1 {
		t.Fatalf("Update = %v after %d runs; want an error that is not a conflict, after 1 run", err, runs)
	}
	// The store works again, and the transaction did not commit (the
	// server died before COMMIT reached it).
	update(t, db, func(tx *Txn) error {
		_, err := tx.GetBucket("bkt")
		if !errors.Is(err, ErrNoSuchBucket) {
			t.Errorf("GetBucket = %v, want ErrNoSuchBucket", err)
		}
		return nil
	})
}

// Two handles on one PostgreSQL store (two gateways): each sees the
// other's commits, and read-modify-write transactions from both, racing,
// lose no update (conflicts are retried).
func TestPostgresTwoGateways(t *testing.T) {
	_, url := postgresOnly(t)
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(url, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	checkTwoGateways(t, dbs)
}
