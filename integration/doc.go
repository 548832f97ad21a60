// Package integration holds sealfs's end-to-end tests and its benchmark
// programs. The tests build the sealfs binary once (TestMain) and run it as
// a child process — mounted with FUSE, serving S3 over HTTPS, replicating
// between two daemons — driving it with real tools and clients: cp, tar,
// getfattr, go-fuse's posixtest, aws-sdk-go-v2, minio-go, the aws CLI,
// boto3, rclone, s3cmd, mount(8), and the README's own tour. Every mount is
// unmounted and every process stopped in t.Cleanup. Where FUSE or a tool is
// missing a test skips loudly; SEALFS_REQUIRE_FUSE=1 and
// SEALFS_REQUIRE_TOOLS=1 (set by .ci/run) make such a skip a failure.
//
// The benchmark programs (benchfs, s3bench, benchtable) are run by make
// bench-fs, make bench-s3 and make bench; they print figures and ratios,
// never assert timings.
package integration
