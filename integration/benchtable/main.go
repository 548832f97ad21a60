// Command benchtable prints make bench's one table: the Go benchmarks'
// figures (from `go test -bench` output) and the rows the mount and S3
// benchmark programs append to a summary file (tab-separated: suite,
// measurement, sealfs, reference name, reference, ratio, target, verdict).
//
// cryptostore's 64 MiB benchmarks are also shown as a ratio to
// BenchmarkRawAESGCM64MiB from the same run: the cipher alone over the same
// bytes.
//
// Below the table it names the kernel and its fuse module's parameters
// (internal/kernelinfo): make bench runs it on the machine it measured.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sealfs/sealfs/internal/kernelinfo"
)

type row struct {
	suite, name, sealfs, refName, ref, ratio, target, verdict string
}

func main() {
	goOut := flag.String("go", "", "output of go test -bench")
	summary := flag.String("summary", "", "summary rows of the benchmark programs")
	flag.Parse()
	var rows []row
	if *goOut != "" {
		r, err := goRows(*goOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		rows = append(rows, r...)
	}
	if *summary != "" {
		r, err := summaryRows(*summary)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		rows = append(rows, r...)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tMEASUREMENT\tSEALFS\tREFERENCE\tRATIO\tTARGET\tVERDICT")
	for _, r := range rows {
		ref := r.ref
		if r.refName != "" {
			ref = r.refName + " " + r.ref
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.suite, r.name, r.sealfs, ref, r.ratio, r.target, r.verdict)
	}
	tw.Flush()
	// make bench runs this on the machine it measured, right after.
	fmt.Println(kernelinfo.Line())
}

// goRows reads benchmark lines; "pkg:" lines name the package of those
// that follow.
func goRows(file string) ([]row, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type bench struct {
		pkg, name string
		nsop, mbs float64
	}
	var bs []bench
	var pkg string
	raw := 0.0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = path.Base(strings.TrimSpace(p))
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		b := bench{pkg: pkg, name: strings.TrimPrefix(fields[0], "Benchmark")}
		if i := strings.LastIndex(b.name, "-"); i > 0 {
			b.name = b.name[:i] // the GOMAXPROCS suffix
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				b.nsop = v
			case "MB/s":
				b.mbs = v
			}
		}
		if b.name == "RawAESGCM64MiB" {
			raw = b.mbs
		}
		bs = append(bs, b)
	}
	rows := make([]row, 0, len(bs))
	for _, b := range bs {
		r := row{suite: "go/" + b.pkg, name: b.name}
		switch {
		case b.mbs > 0:
			r.sealfs = fmt.Sprintf("%.0f MB/s", b.mbs)
		default:
			r.sealfs = fmtNs(b.nsop)
		}
		if b.pkg == "cryptostore" && strings.Contains(b.name, "64MiB") && b.mbs > 0 && raw > 0 && b.name != "RawAESGCM64MiB" {
			r.refName, r.ref = "raw AES-GCM", fmt.Sprintf("%.0f MB/s", raw)
			r.ratio = fmt.Sprintf("%.2fx", b.mbs/raw)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms/op", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs/op", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns/op", ns)
}

func summaryRows(file string) ([]row, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 8 {
			continue
		}
		rows = append(rows, row{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]})
	}
	return rows, nil
}
