package admin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
)

// TestAdminStoreRoutes drives the bucket, kms, status and scrub routes over
// HTTPS with signed requests against a real store and KMS.
func TestAdminStoreRoutes(t *testing.T) {
	d, srv, _ := adminTestDaemon(t)
	ctx := context.Background()
	a := adminTestClient(srv, d.creds.AccessKey, d.creds.SecretKey)
	wantCode := func(err error, code string) {
		t.Helper()
		var ce *adminCallError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("want error %s, have %v", code, err)
		}
	}

	if err := a.call(ctx, "POST", "buckets", CreateBucketInput{Name: "photos", Encryption: true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.call(ctx, "POST", "buckets", CreateBucketInput{Name: "docs"}, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(a.call(ctx, "POST", "buckets", CreateBucketInput{Name: "Bad_Name"}, nil), "InvalidBucketName")
	wantCode(a.call(ctx, "POST", "buckets", CreateBucketInput{Name: "docs"}, nil), "BucketAlreadyExists")
	var bs []BucketInfo
	if err := a.call(ctx, "GET", "buckets", nil, &bs); err != nil || len(bs) != 2 || bs[0].Name != "docs" || !bs[1].Encryption {
		t.Fatalf("list: %+v, %v", bs, err)
	}

	// Encryption on for docs too; an object in photos makes its key.
	var enc EncryptionSetting
	if err := a.call(ctx, "PUT", "buckets/docs/encryption", EncryptionSetting{Encryption: true}, &enc); err != nil || !enc.Encryption || enc.Algorithm != "aws:kms" {
		t.Fatalf("set: %+v, %v", enc, err)
	}
	data := bytes.Repeat([]byte("x"), 1000)
	if _, err := d.store.Put(ctx, &cryptostore.PutInput{Bucket: "photos", Key: "a.jpg", Body: bytes.NewReader(data), Size: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := a.call(ctx, "GET", "buckets/photos/encryption", nil, &enc); err != nil || !strings.HasPrefix(enc.KeyARN, "arn:aws:kms:") {
		t.Fatalf("get: %+v, %v", enc, err)
	}

	var keys []KeyInfo
	if err := a.call(ctx, "GET", "kms/keys", nil, &keys); err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, k := range keys {
		used = append(used, k.Buckets...)
	}
	if strings.Join(used, ",") != "photos" {
		t.Fatalf("keys: %+v", keys)
	}
	var km kms.KeyMetadata
	if err := a.call(ctx, "POST", "kms/keys/photos/disable", nil, &km); err != nil || km.State != kms.KeyDisabled {
		t.Fatalf("disable: %+v, %v", km, err)
	}
	if _, err := d.store.Open(ctx, "photos", "a.jpg"); !errors.Is(err, cryptostore.ErrKeyDisabled) {
		t.Fatalf("read under a disabled key: %v", err)
	}
	if err := a.call(ctx, "POST", "kms/keys/photos/enable", nil, &km); err != nil || km.State != kms.KeyEnabled {
		t.Fatalf("enable: %+v, %v", km, err)
	}
	if err := a.call(ctx, "POST", "kms/keys/"+km.KeyID+"/rotate", nil, &km); err != nil || km.CurrentVersion != 2 {
		t.Fatalf("rotate: %+v, %v", km, err)
	}
	wantCode(a.call(ctx, "POST", "kms/keys/docs/rotate", nil, nil), "NoSuchKey")
	wantCode(a.call(ctx, "POST", "kms/keys/nonesuch/disable", nil, nil), "NoSuchKey")

	var st StatusReport
	if err := a.call(ctx, "GET", "status", nil, &st); err != nil || len(st.Buckets) != 2 || st.Buckets[1].EncryptedObjects != 1 || st.Replication == nil {
		t.Fatalf("status: %+v, %v", st, err)
	}

	// Damage one object's blob... it is inline (1000 bytes), so damage a
	// large one instead.
	big := bytes.Repeat([]byte("y"), 300<<10)
	o, err := d.store.Put(ctx, &cryptostore.PutInput{Bucket: "photos", Key: "big", Body: bytes.NewReader(big), Size: int64(len(big))})
	if err != nil {
		t.Fatal(err)
	}
	blob := d.dataDir + "/blobs/" + o.Blobs[0].ID.String()[:2] + "/" + o.Blobs[0].ID.String()
	b, _ := os.ReadFile(blob)
	b[1000] ^= 1
	os.WriteFile(blob, b, 0o600)
	var job ScrubJob
	if err := a.call(ctx, "POST", "scrub", ScrubInput{}, &job); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !job.Done && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if err := a.call(ctx, "GET", "scrub/"+job.ID, nil, &job); err != nil {
			t.Fatal(err)
		}
	}
	if !job.Done || job.Report.Objects != 2 || len(job.Report.Damaged) != 1 || job.Report.Damaged[0].Key != "big" {
		t.Fatalf("scrub: %+v", job)
	}
	wantCode(a.call(ctx, "POST", "scrub", ScrubInput{Sample: 2}, nil), "InvalidArgument")
	wantCode(a.call(ctx, "GET", "scrub/nonesuch", nil, nil), "NoSuchJob")

	wantCode(a.call(ctx, "DELETE", "buckets/photos", nil, nil), "BucketNotEmpty")
	if err := a.call(ctx, "DELETE", "buckets/docs", nil, nil); err != nil {
		t.Fatal(err)
	}
}
