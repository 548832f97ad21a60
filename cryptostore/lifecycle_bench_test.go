package cryptostore

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sealfs/sealfs/internal/localkms"
	"github.com/sealfs/sealfs/kms"
)

// lifecycleEngines are the KMS engines the key lifecycle benchmarks run on:
// the built-in keyring and local-kms through the AWS engine.
var lifecycleEngines = []string{"local", "local-kms"}

func lifecycleEnv(b *testing.B, engine string) *testEnv {
	b.Helper()
	if engine == "local" {
		return newEnv(b, nil)
	}
	srv := localkms.Start(b)
	k, err := kms.OpenAWS(srv.URL(), kms.AWSOptions{Credentials: credentials.NewStaticCredentialsProvider("b", "b", "")})
	if err != nil {
		b.Fatal(err)
	}
	return newEnv(b, func(c *Config) { c.KMS = k })
}

// BenchmarkRewrap: objects re-wrapped per second (1 KiB objects; with the
// built-in KMS each run follows a rotation; local-kms re-wraps every
// object each run).
func BenchmarkRewrap(b *testing.B) {
	const n = 1000
	for _, engine := range lifecycleEngines {
		b.Run(engine, func(b *testing.B) {
			e := lifecycleEnv(b, engine)
			e.bucket(b, "rewrapbench", true)
			for i := range n {
				e.put(b, "rewrapbench", fmt.Sprintf("k%05d", i), bytes.Repeat([]byte{byte(i)}, 1024))
			}
			bk, _ := e.store.GetBucket(ctx, "rewrapbench")
			var objects int64
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				if engine == "local" {
					if _, err := e.store.RotateKey(ctx, bk.MasterKeyID); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				start := time.Now()
				rep, err := e.store.Rewrap(ctx, RewrapOptions{Bucket: "rewrapbench"})
				took += time.Since(start)
				if err != nil || rep.Rewrapped != n {
					b.Fatalf("%+v, %v", rep, err)
				}
				objects += rep.Rewrapped
			}
			b.ReportMetric(float64(objects)/took.Seconds(), "objects/s")
		})
	}
}

// BenchmarkEncryptExisting: plain bytes encrypted in place per second
// (64 objects of 1 MiB per run).
func BenchmarkEncryptExisting(b *testing.B) {
	const n, size = 64, 1 << 20
	for _, engine := range lifecycleEngines {
		b.Run(engine, func(b *testing.B) {
			e := lifecycleEnv(b, engine)
			body := bytes.Repeat([]byte("sealfs-bench-"), size/13+1)[:size]
			b.SetBytes(n * size)
			run := 0
			for b.Loop() {
				b.StopTimer()
				run++
				bucket := fmt.Sprintf("encbench%d", run)
				e.bucket(b, bucket, false)
				for i := range n {
					e.put(b, bucket, fmt.Sprintf("k%03d", i), body)
				}
				if err := e.store.SetBucketEncryption(ctx, bucket, true); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rep, err := e.store.EncryptExisting(ctx, EncryptExistingOptions{Bucket: bucket})
				if err != nil || rep.Encrypted != n {
					b.Fatalf("%+v, %v", rep, err)
				}
			}
		})
	}
}
