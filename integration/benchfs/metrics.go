package main

import (
	"github.com/sealfs/sealfs/internal/scrape"
)

// commitPhases returns, by phase, the count, summed time and buckets of
// the daemon's metadata write transactions
// (sealfs_meta_commit_phase_seconds).
func commitPhases(mfs scrape.Families) map[string]scrape.Stat {
	return mfs.Histograms("sealfs_meta_commit_phase_seconds", "phase")
}

// fuseOps returns, by operation, sealfs_fuse_operations_total summed over
// results and the sum of sealfs_fuse_operation_duration_seconds.
func fuseOps(mfs scrape.Families) map[string]opStat {
	out := map[string]opStat{}
	for op, n := range mfs.Counters("sealfs_fuse_operations_total", "op") {
		st := out[op]
		st.n = n
		out[op] = st
	}
	for op, s := range mfs.Histograms("sealfs_fuse_operation_duration_seconds", "op") {
		st := out[op]
		st.secs = s.Sum
		out[op] = st
	}
	return out
}
