// Package scrape reads a sealfs daemon's figures for the benchmarks: its
// Prometheus metrics (sealfs mount or serve --metrics ADDR), one parse with
// Prometheus's own text parser, then the few views they need; and the
// memory fields of its /proc status (ProcStatus).
package scrape

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one reading, by name.
type Families map[string]*dto.MetricFamily

// Fetch reads the metrics from addr: a host:port (its /metrics is read) or
// a whole URL.
func Fetch(addr string) (Families, error) {
	url := addr
	if !strings.Contains(addr, "://") {
		url = "http://" + addr + "/metrics"
	}
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return Parse(resp.Body)
}

// Parse parses a text exposition.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Value returns the value of the unlabelled counter or gauge name.
func (f Families) Value(name string) (float64, error) {
	for _, m := range f[name].GetMetric() {
		if len(m.GetLabel()) > 0 {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), nil
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// Counters returns counter name's values by the value of label, summed over
// the other labels. Samples without label are left out.
func (f Families) Counters(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f[name].GetMetric() {
		if v := labelValue(m, label); v != "" {
			out[v] += m.GetCounter().GetValue()
		}
	}
	return out
}

// Stat is a histogram's count of observations, their sum, and its
// buckets: how many observations were at most each bucket's upper bound
// (cumulative, as the exposition gives them). Buckets is nil when there
// are none, or when the samples summed into the Stat had different ones.
type Stat struct {
	N, Sum  float64
	Buckets []Bucket
}

// Bucket is a histogram bucket: N observations were at most Le.
type Bucket struct{ Le, N float64 }

// add adds histogram h to s; first says s holds nothing yet.
func (s *Stat) add(h *dto.Histogram, first bool) {
	s.N += float64(h.GetSampleCount())
	s.Sum += h.GetSampleSum()
	bs := h.GetBucket()
	if first {
		for _, b := range bs {
			s.Buckets = append(s.Buckets, Bucket{Le: b.GetUpperBound(), N: float64(b.GetCumulativeCount())})
		}
		return
	}
	if len(bs) != len(s.Buckets) {
		s.Buckets = nil
		return
	}
	for i, b := range bs {
		if b.GetUpperBound() != s.Buckets[i].Le {
			s.Buckets = nil
			return
		}
		s.Buckets[i].N += float64(b.GetCumulativeCount())
	}
}

// Since returns what s, a later reading of a histogram, gained since
// before. The buckets are dropped if the two readings' differ.
func (s Stat) Since(before Stat) Stat {
	d := Stat{N: s.N - before.N, Sum: s.Sum - before.Sum}
	if len(before.Buckets) == 0 && before.N == 0 {
		d.Buckets = slices.Clone(s.Buckets)
		return d
	}
	if len(s.Buckets) != len(before.Buckets) {
		return d
	}
	d.Buckets = make([]Bucket, len(s.Buckets))
	for i, b := range s.Buckets {
		if b.Le != before.Buckets[i].Le {
			return Stat{N: d.N, Sum: d.Sum}
		}
		d.Buckets[i] = Bucket{Le: b.Le, N: b.N - before.Buckets[i].N}
	}
	return d
}

// SinceEach returns, by label value, what the histograms of after gained
// since before (Stat.Since), leaving out those that gained nothing.
func SinceEach(after, before map[string]Stat) map[string]Stat {
	out := map[string]Stat{}
	for v, s := range after {
		if d := s.Since(before[v]); d.N > 0 {
			out[v] = d
		}
	}
	return out
}

// Quantile returns the upper bound of the first bucket that holds at
// least the fraction q (0 < q <= 1) of the observations: at least that
// share of them took at most the value returned. It is +Inf when only the
// implicit +Inf bucket holds them, and ok is false when there are no
// observations or no buckets.
func (s Stat) Quantile(q float64) (le float64, ok bool) {
	if s.N <= 0 || len(s.Buckets) == 0 {
		return 0, false
	}
	want := q * s.N
	for _, b := range s.Buckets {
		if b.N >= want {
			return b.Le, true
		}
	}
	return math.Inf(1), true
}

// Histograms returns histogram name's count, sum and buckets by the value
// of label, summed over the other labels. Samples without label are left
// out.
func (f Families) Histograms(name, label string) map[string]Stat {
	out := map[string]Stat{}
	for _, m := range f[name].GetMetric() {
		if v := labelValue(m, label); v != "" {
			s, seen := out[v]
			s.add(m.GetHistogram(), !seen)
			out[v] = s
		}
	}
	return out
}

// Histogram returns the count, sum and buckets of the unlabelled
// histogram name.
func (f Families) Histogram(name string) (Stat, error) {
	for _, m := range f[name].GetMetric() {
		if len(m.GetLabel()) == 0 && m.Histogram != nil {
			var s Stat
			s.add(m.GetHistogram(), true)
			return s, nil
		}
	}
	return Stat{}, fmt.Errorf("histogram %s not found", name)
}

// Percentiles shows the bucket bounds that hold half and 99% of the
// observations of a histogram of seconds, as "p50 ≤ 5 µs, p99 ≤ 3.6
// ms"; "" when Quantile cannot tell. A mean can hide rare long waits: a
// median of a few µs beside a mean of a millisecond is one.
func (s Stat) Percentiles() string {
	p50, ok50 := s.Quantile(0.5)
	p99, ok99 := s.Quantile(0.99)
	if !ok50 || !ok99 {
		return ""
	}
	return fmt.Sprintf("p50 ≤ %s, p99 ≤ %s", Seconds(p50), Seconds(p99))
}

// Seconds formats a duration given in seconds, as a bucket bound is
// shown: µs below a millisecond, ms below a second, "+Inf" for beyond
// every bucket.
func Seconds(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case v < 1e-3:
		return fmt.Sprintf("%.0f µs", v*1e6)
	case v < 1:
		return fmt.Sprintf("%.1f ms", v*1e3)
	default:
		return fmt.Sprintf("%.1f s", v)
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// ProcStatus reads a kB field of /proc/PID/status (VmHWM, RssAnon, ...),
// in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
