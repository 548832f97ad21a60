package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// On a local file system both workloads run clean: the exercisers'
// models of what the file system must hold are right.
func TestRunLocal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want, st, err := Run(Config{Path: p, Seed: 1, Ops: 3000, MaxLen: 256 << 10, MaxOp: 16 << 10, Logf: t.Logf})
	t.Log(st.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != string(want) {
		t.Fatalf("the file holds %d bytes (%v), want the %d returned", len(got), err, len(want))
	}
	if st.Ops != 3000 || st.Written == 0 || st.Read == 0 {
		t.Fatalf("the run did not do what was asked: %s", st.String())
	}
}

func TestStressLocal(t *testing.T) {
	dir := t.TempDir()
	exp, st, err := Stress(StressConfig{Dir: dir, Seed: 2, Workers: 3, Ops: 400, MaxFile: 32 << 10, Logf: t.Logf})
	t.Log(st.String())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := exp.Verify(); err != nil || n < 20 {
		t.Fatalf("verify: %d paths, %v", n, err)
	}
	// A change behind the workload's back is found.
	for p, e := range exp.known {
		if e.kind == kFile && len(e.data) > 0 {
			if err := os.WriteFile(filepath.Join(dir, p), make([]byte, len(e.data)), 0o644); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if _, err := exp.Verify(); !errors.Is(err, ErrWrongRead) {
		t.Fatalf("verify of a file zeroed behind the workload's back: %v; want a wrong read", err)
	}
}

// A file whose bytes change behind the exerciser's back (here: zeroed, as
// a lost write reads on a full disk) is a wrong read, reported with the
// seed and the last operations.
func TestRunFindsZeros(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	_, st, err := Run(Config{Path: p, Seed: 3, Duration: 10 * time.Second, MaxLen: 64 << 10, MaxOp: 8 << 10,
		afterOp: func(op int) {
			if op == 200 {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, make([]byte, fi.Size()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}})
	if !errors.Is(err, ErrWrongRead) || st.WrongReads != 1 {
		t.Fatalf("zeroing the file: %v, %d wrong reads; want one", err, st.WrongReads)
	}
	t.Log(err)
}
