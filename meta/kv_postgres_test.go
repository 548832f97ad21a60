package meta

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sealfs/sealfs/internal/pgtest"
)

// pgServer is the PostgreSQL server of this test binary, started by the
// first test that needs it and stopped by TestMain.
var pgServer struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

func sharedPostgres(t testing.TB) *pgtest.Server {
	t.Helper()
	pgServer.once.Do(func() { pgServer.srv, pgServer.err = pgtest.Start() })
	if errors.Is(pgServer.err, pgtest.ErrNotInstalled) {
		missingEngine(t, "postgres: %v", pgServer.err)
	}
	if pgServer.err != nil {
		t.Fatalf("postgres: %v", pgServer.err)
	}
	return pgServer.srv
}

func init() {
	testEngines = append(testEngines, &testEngine{
		name: "postgres",
		url: func(t testing.TB) string {
			url, err := sharedPostgres(t).NewSchema(context.Background())
			if err != nil {
				t.Fatalf("postgres: new schema: %v", err)
			}
			return url
		},
		stop: func() {
			if pgServer.srv != nil {
				pgServer.srv.Stop()
			}
		},
	})
}
