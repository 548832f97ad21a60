package main

import "testing"

func TestWriteEndpoint(t *testing.T) {
	for _, tc := range []struct {
		addr, want string
	}{
		{addr: "127.0.0.1:9443", want: "https://127.0.0.1:9443"},
		{addr: "0.0.0.0:9443", want: "https://127.0.0.1:9443"},
		{addr: "[::]:9443", want: "https://[::1]:9443"},
		{addr: "[::1]:1234", want: "https://[::1]:1234"},
	} {
		d := &daemon{dataDir: t.TempDir(), s3Addr: tc.addr}
		if err := d.writeEndpoint(); err != nil {
			t.Fatal(err)
		}
		got, err := readEndpoint(d.dataDir)
		if err != nil || got != tc.want {
			t.Fatalf("%s: endpoint %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}
