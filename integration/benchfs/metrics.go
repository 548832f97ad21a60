package main

import (
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fetchMetrics reads the daemon's metrics (sealfs mount --metrics ADDR),
// by family name.
func fetchMetrics(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics parses a text exposition.
func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// metricValue returns the value of the unlabelled counter or gauge name.
func metricValue(mfs map[string]*dto.MetricFamily, name string) (float64, error) {
	for _, m := range mfs[name].GetMetric() {
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

// fuseOps returns, by operation, sealfs_fuse_operations_total summed over
// results and the sum of sealfs_fuse_operation_duration_seconds.
func fuseOps(mfs map[string]*dto.MetricFamily) map[string]opStat {
	out := map[string]opStat{}
	label := func(m *dto.Metric) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, m := range mfs["sealfs_fuse_operations_total"].GetMetric() {
		if op := label(m); op != "" {
			st := out[op]
			st.n += m.GetCounter().GetValue()
			out[op] = st
		}
	}
	for _, m := range mfs["sealfs_fuse_operation_duration_seconds"].GetMetric() {
		if op := label(m); op != "" {
			st := out[op]
			st.secs += m.GetHistogram().GetSampleSum()
			out[op] = st
		}
	}
	return out
}
