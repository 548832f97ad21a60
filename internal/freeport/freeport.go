// Package freeport picks loopback TCP ports for the servers that tests and
// benchmarks start (etcd, PostgreSQL, SeaweedFS, sealfs daemons).
package freeport

import (
	"fmt"
	"net"
)

// Ports returns n distinct TCP ports on 127.0.0.1 that were free when
// asked: another process could take one before the server binds it.
func Ports(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Port returns one such port.
func Port() (int, error) {
	p, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}
