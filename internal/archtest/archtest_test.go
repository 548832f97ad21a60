package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sealfs/sealfs/"

// rule: no package matching from imports (non-test) any of these.
type rule struct {
	from   string // a package path relative to the module (exactly that package)
	forbid []string
	why    string
}

var rules = []rule{
	{"replicate", []string{"s3/s3xml", "s3/s3err", "s3", "fs", "admin"}, "replication gets rules in the store's types; S3's XML and errors are the S3 layer's"},
	{"replicate", []string{"meta", "kms"}, "replication reaches its queue, records, leases and sealed secrets through cryptostore's ReplicationQueue"},
	{"fs", []string{"meta", "kms", "replicate"}, "the mount reaches records and keys through cryptostore"},
	{"s3", []string{"meta", "kms", "replicate"}, "the S3 API reaches records and keys through cryptostore; replication is handed to it"},
	{"admin", []string{"meta", "kms"}, "the admin API reaches records and keys through cryptostore"},
	{"console", []string{"meta", "kms", "s3", "fs"}, "the web console reaches records and keys through cryptostore, replication through replicate"},
	{"s3/s3replica", []string{"meta", "kms", "replicate"}, "the replica wire form is the S3 layer's"},
	{"cryptostore", []string{"fs", "s3", "admin", "console", "replicate"}, "the store knows no front door"},
	{"meta", []string{"cryptostore", "kms", "fs", "s3", "admin", "replicate"}, "the metadata engine is the bottom layer"},
}

// debts are imports the design forbids that the code still has (none
// now). Each entry fails the test once it is paid off, so the list cannot
// outlive the debt.
var debts = map[string][]string{}

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := make(map[string][]string)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var own []string
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				own = append(own, rel)
			}
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = own
	}
	return pkgs
}

func imports(pkgs map[string][]string, from, to string) bool {
	for _, imp := range pkgs[from] {
		if imp == to {
			return true
		}
	}
	return false
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range rules {
		if _, ok := pkgs[r.from]; !ok {
			t.Errorf("package %s not found by go list", r.from)
			continue
		}
		for _, f := range r.forbid {
			if imports(pkgs, r.from, f) {
				t.Errorf("%s imports %s: %s", r.from, f, r.why)
			}
		}
	}
	// The front doors' siblings under s3/ (the wire packages) must not
	// reach below the store either.
	for name := range pkgs {
		if !strings.HasPrefix(name, "s3/") {
			continue
		}
		for _, f := range []string{"meta", "kms"} {
			if imports(pkgs, name, f) {
				t.Errorf("%s imports %s: the S3 layer reaches records and keys through cryptostore", name, f)
			}
		}
	}
	for from, tos := range debts {
		for _, to := range tos {
			if !imports(pkgs, from, to) {
				t.Errorf("%s no longer imports %s: remove it from the debts in archtest_test.go and add it to the rules", from, to)
			}
		}
	}
}
