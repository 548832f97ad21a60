package main

import (
	"strings"
	"testing"
)

// TestFindMetric reads the unlabelled sample of the name asked for, not a
// longer name it prefixes or a labelled series, and reports a missing one.
func TestFindMetric(t *testing.T) {
	text := strings.Join([]string{
		"# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
		"# TYPE process_cpu_seconds_total counter",
		"process_cpu_seconds_total_extra 99",
		`process_cpu_seconds_total{mode="x"} 98`,
		"process_cpu_seconds_total 12.5",
		"process_resident_memory_bytes 2.1340160e+08",
	}, "\n")
	for name, want := range map[string]float64{
		"process_cpu_seconds_total":     12.5,
		"process_resident_memory_bytes": 2.134016e+08,
	} {
		got, err := findMetric(strings.NewReader(text), name)
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := findMetric(strings.NewReader(text), "go_goroutines"); err == nil {
		t.Error("a missing metric was found")
	}
}
