package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

// TestAdminUserRoutes drives the user and access key routes over HTTPS
// with signed requests; a user's own access key does not open the admin
// API.
func TestAdminUserRoutes(t *testing.T) {
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
	policy := json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}`)
	var u cryptostore.UserInfo
	if err := a.call(ctx, "POST", "users", CreateUserInput{Name: "reader", Policy: policy}, &u); err != nil || u.Name != "reader" || u.Policy != string(policy) {
		t.Fatalf("create: %+v, %v", u, err)
	}
	wantCode(a.call(ctx, "POST", "users", CreateUserInput{Name: "reader"}, nil), "EntityAlreadyExists")
	wantCode(a.call(ctx, "POST", "users", CreateUserInput{Name: "no/slash"}, nil), "InvalidUserName")
	wantCode(a.call(ctx, "POST", "users", CreateUserInput{Name: "w", Policy: json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"x","Resource":"*"}]}`)}, nil), "MalformedPolicyDocument")
	wantCode(a.call(ctx, "GET", "users/nobody", nil, nil), "NoSuchEntity")

	var k cryptostore.NewAccessKey
	if err := a.call(ctx, "POST", "users/reader/access-keys", nil, &k); err != nil || k.SecretKey == "" || k.User != "reader" || k.Status != "Active" {
		t.Fatalf("access key: %+v, %v", k, err)
	}
	if err := a.call(ctx, "GET", "users/reader", nil, &u); err != nil || len(u.AccessKeys) != 1 || u.AccessKeys[0].ID != k.ID {
		t.Fatalf("get: %+v, %v", u, err)
	}
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), k.SecretKey) {
		t.Fatal("GET users/reader shows the secret")
	}
	// The user's key is not the admin's.
	ua := adminTestClient(srv, k.ID, k.SecretKey)
	wantCode(ua.call(ctx, "GET", "users", nil, nil), "InvalidAccessKeyId")

	var ki cryptostore.AccessKeyInfo
	if err := a.call(ctx, "PUT", "access-keys/"+k.ID, AccessKeyStatusInput{Status: "Inactive"}, &ki); err != nil || ki.Status != "Inactive" {
		t.Fatalf("deactivate: %+v, %v", ki, err)
	}
	wantCode(a.call(ctx, "PUT", "access-keys/"+k.ID, AccessKeyStatusInput{Status: "off"}, nil), "InvalidArgument")
	var u2 cryptostore.UserInfo
	if err := a.call(ctx, "PUT", "users/reader/policy", PolicyInput{}, &u2); err != nil || u2.Policy != "" || u2.Name != "reader" {
		t.Fatalf("policy removed: %+v, %v", u2, err)
	}
	if err := a.call(ctx, "PUT", "users/reader/status", UserStatusInput{Disabled: true}, &u); err != nil || !u.Disabled {
		t.Fatalf("disable: %+v, %v", u, err)
	}
	if err := a.call(ctx, "DELETE", "access-keys/"+k.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(a.call(ctx, "DELETE", "access-keys/"+k.ID, nil, nil), "NoSuchEntity")
	if err := a.call(ctx, "DELETE", "users/reader", nil, nil); err != nil {
		t.Fatal(err)
	}
	var us []cryptostore.UserInfo
	if err := a.call(ctx, "GET", "users", nil, &us); err != nil || len(us) != 0 {
		t.Fatalf("list: %+v, %v", us, err)
	}
}
