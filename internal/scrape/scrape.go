// Package scrape reads a sealfs daemon's Prometheus metrics (sealfs mount
// or serve --metrics ADDR) for the benchmarks: one parse with Prometheus's
// own text parser, then the few views they need.
package scrape

import (
	"fmt"
	"io"
	"net/http"
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

// Stat is a histogram's count of observations and their sum.
type Stat struct{ N, Sum float64 }

// Histograms returns histogram name's count and sum by the value of label,
// summed over the other labels. Samples without label are left out.
func (f Families) Histograms(name, label string) map[string]Stat {
	out := map[string]Stat{}
	for _, m := range f[name].GetMetric() {
		if v := labelValue(m, label); v != "" {
			h := m.GetHistogram()
			s := out[v]
			s.N += float64(h.GetSampleCount())
			s.Sum += h.GetSampleSum()
			out[v] = s
		}
	}
	return out
}

// Histogram returns the count and sum of the unlabelled histogram name.
func (f Families) Histogram(name string) (Stat, error) {
	for _, m := range f[name].GetMetric() {
		if len(m.GetLabel()) == 0 && m.Histogram != nil {
			h := m.GetHistogram()
			return Stat{N: float64(h.GetSampleCount()), Sum: h.GetSampleSum()}, nil
		}
	}
	return Stat{}, fmt.Errorf("histogram %s not found", name)
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
