package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
)

func TestAdminAPI(t *testing.T) {
	d, srv, plain := adminTestDaemon(t)
	ctx := context.Background()
	a := adminTestClient(srv, d.creds.AccessKey, d.creds.SecretKey)

	var ts []replicate.Target
	if err := a.call(ctx, "GET", "replication/targets", nil, &ts); err != nil || len(ts) != 0 {
		t.Fatalf("list: %v, %v", ts, err)
	}
	var tg replicate.Target
	in := &replicate.TargetInput{Region: "eu-west-1", Endpoint: "https://eu.example:9443", AccessKey: "AK", SecretKey: "SK"}
	if err := a.call(ctx, "POST", "replication/targets", in, &tg); err != nil || tg.Region != "eu-west-1" {
		t.Fatalf("add: %+v, %v", tg, err)
	}
	if err := d.store.CreateBucket(ctx, "photos", ""); err != nil {
		t.Fatal(err)
	}
	var cfg replicate.Configuration
	if err := a.call(ctx, "PUT", "replication/buckets/photos", &replicate.EnableInput{To: "eu-west-1/backup", Deletes: true}, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Bucket != "backup" || !cfg.Rules[0].Deletes {
		t.Fatalf("enable: %+v", cfg)
	}
	var st ReplicationStatus
	if err := a.call(ctx, "GET", "replication/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Region != "us-east-1" || len(st.Targets) != 1 || len(st.Buckets) != 1 || st.Buckets[0].Bucket != "photos" {
		t.Fatalf("status: %+v", st)
	}

	tests := []struct {
		name   string
		client *adminClient
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{name: "unknown region", client: a, method: "PUT", path: "replication/buckets/photos", body: &replicate.EnableInput{To: "mars-1/x1"}, status: 400, code: "InvalidArgument"},
		{name: "no such bucket", client: a, method: "GET", path: "replication/buckets/nothing", status: 404, code: "NoSuchBucket"},
		{name: "target in use", client: a, method: "DELETE", path: "replication/targets/eu-west-1", status: 409, code: "TargetInUse"},
		{name: "no such target", client: a, method: "DELETE", path: "replication/targets/ap-south-1", status: 404, code: "NoSuchTarget"},
		{name: "no such job", client: a, method: "GET", path: "replication/resync/resync-99", status: 404, code: "NoSuchJob"},
		{name: "unknown field", client: a, method: "POST", path: "replication/targets", body: map[string]string{"regoin": "x"}, status: 400, code: "MalformedJSON"},
		{name: "no such route", client: a, method: "GET", path: "kms/nothing", status: 404, code: "NoSuchRoute"},
		{name: "wrong secret", client: adminTestClient(srv, d.creds.AccessKey, "guess"), method: "GET", path: "replication/targets", status: 403, code: "SignatureDoesNotMatch"},
		{name: "unknown access key", client: adminTestClient(srv, "NOBODY", "x"), method: "GET", path: "replication/targets", status: 403, code: "InvalidAccessKeyId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.client.call(ctx, tc.method, tc.path, tc.body, nil)
			var ce *adminCallError
			if !errors.As(err, &ce) || ce.Status != tc.status || ce.Code != tc.code {
				t.Fatalf("want %d %s, have %v (%+v)", tc.status, tc.code, err, ce)
			}
		})
	}

	// Anonymous requests, and any over plain HTTP, are refused.
	resp, err := srv.Client().Get(srv.URL + Prefix + "replication/targets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous: %s", resp.Status)
	}
	pa := adminTestClient(plain, d.creds.AccessKey, d.creds.SecretKey)
	pa.http = http.DefaultClient
	err = pa.call(ctx, "GET", "replication/targets", nil, nil)
	var ce *adminCallError
	if !errors.As(err, &ce) || ce.Code != "InsecureTransport" {
		t.Fatalf("plain HTTP: %v", err)
	}

	// Resync with progress.
	if _, err := d.store.Put(ctx, &cryptostore.PutInput{Bucket: "photos", Key: "a", Body: strings.NewReader("a"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	var pr replicate.ResyncProgress
	if err := a.call(ctx, "POST", "replication/buckets/photos/resync", nil, &pr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !pr.Done && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if err := a.call(ctx, "GET", "replication/resync/"+pr.ID, nil, &pr); err != nil {
			t.Fatal(err)
		}
	}
	if !pr.Done || pr.Total != 1 || pr.Scanned != 1 {
		t.Fatalf("resync: %+v", pr)
	}
}
