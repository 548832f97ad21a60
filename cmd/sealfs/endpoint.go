package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// endpointFile is where the daemon writes the URL of its HTTPS listener,
// so that admin commands find it from --data alone.
func endpointFile(dataDir string) string { return filepath.Join(dataDir, "endpoint") }

// writeEndpoint records the bound HTTPS address in DATA/endpoint. A
// wildcard address is written as the loopback address of its family, which
// the generated certificate is valid for.
func (d *daemon) writeEndpoint() error {
	if d.s3Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(d.s3Addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	url := "https://" + net.JoinHostPort(host, port) + "\n"
	if err := writeFileAtomic(endpointFile(d.dataDir), []byte(url), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", endpointFile(d.dataDir), err)
	}
	return nil
}

// readEndpoint reads DATA/endpoint.
func readEndpoint(dataDir string) (string, error) {
	data, err := os.ReadFile(endpointFile(dataDir))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
