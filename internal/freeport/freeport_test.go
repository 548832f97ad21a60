package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPorts: the ports are distinct, and each can be bound once returned.
func TestPorts(t *testing.T) {
	ports, err := Ports(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: %d is not a new port", ports, p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d returned but not free: %v", p, err)
		}
		l.Close()
	}
}
