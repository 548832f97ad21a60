package main

import (
	"os"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 3}, {0.9, 5}, {1, 5}} {
		if got := quantile(d, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}

// TestMeasurements runs each measurement briefly: every try is timed, and
// the disk measurements leave nothing behind.
func TestMeasurements(t *testing.T) {
	positive := func(name string, d []time.Duration, want int) {
		t.Helper()
		if len(d) != want {
			t.Errorf("%s: %d times, want %d", name, len(d), want)
		}
		for _, x := range d {
			if x <= 0 {
				t.Errorf("%s: a try took %v", name, x)
			}
		}
	}
	d, err := wakeRoundTrip(10*time.Microsecond, 20)
	if err != nil {
		t.Fatal(err)
	}
	positive("round trip", d, 20)

	dir := t.TempDir()
	for _, k := range []faultKind{anonymous, sparseFile, cachedFile} {
		d, err := pageFaults(dir, k, 2*64*4096)
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		positive(k.String(), d, 2)
	}
	for _, k := range []durableKind{newFile, fallocated, overwrite} {
		d, err := durableWrites(dir, k, 3)
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		positive(k.String(), d, 3)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("left in the work directory: %v (%v)", left, err)
	}
}
