// Package archtest holds the test that keeps sealfs's layering
// (archtest_test.go): the front doors (fs, s3, admin) reach metadata, blobs
// and keys only through cryptostore; cryptostore knows no front door; meta
// is the bottom layer. It reads the import lists with `go list -json` (no
// go/packages), so it sees what the compiler sees, test files excepted:
// tests may set up a meta.DB or a KMS to build the store they drive.
// Imports the design forbids but the code still has are listed as debts,
// each of which fails the test once it is paid off.
package archtest
