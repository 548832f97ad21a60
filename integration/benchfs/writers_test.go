package main

import (
	"reflect"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios("48x6, 400x0.9")
	if err != nil {
		t.Fatal(err)
	}
	if want := []scenario{{48, 6}, {400, 0.9}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("parseScenarios = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "48", "x6", "48x", "0x6", "48x0", "48x-1", "2000x4"} {
		if _, err := parseScenarios(bad); err == nil {
			t.Errorf("parseScenarios(%q) accepted", bad)
		}
	}
}
