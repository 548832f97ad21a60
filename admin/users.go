package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// Admin routes for users and access keys (the commands in user.go and
// accesskey.go of cmd/sealfs). Only the admin's credentials reach them: a
// user's access key never authenticates to the admin API.

func (a *API) userRoutes() {
	a.handle("GET users", adminJSON(a.listUsers))
	a.handle("POST users", adminJSON(a.createUser))
	a.handle("GET users/{user}", adminJSON(a.getUser))
	a.handle("DELETE users/{user}", adminJSON(a.deleteUser))
	a.handle("PUT users/{user}/policy", adminJSON(a.setUserPolicy))
	a.handle("PUT users/{user}/status", adminJSON(a.setUserStatus))
	a.handle("POST users/{user}/access-keys", adminJSON(a.createAccessKey))
	a.handle("PUT access-keys/{id}", adminJSON(a.setAccessKeyStatus))
	a.handle("DELETE access-keys/{id}", adminJSON(a.deleteAccessKey))
}

// CreateUserInput is the body of POST users.
type CreateUserInput struct {
	Name string `json:"name"`
	// Policy is the user's policy document (a JSON object); absent: none,
	// which denies everything.
	Policy json.RawMessage `json:"policy,omitempty"`
}

// PolicyInput is the body of PUT users/{user}/policy; a null or absent
// policy removes it.
type PolicyInput struct {
	Policy json.RawMessage `json:"policy"`
}

// UserStatusInput is the body of PUT users/{user}/status.
type UserStatusInput struct {
	Disabled bool `json:"disabled"`
}

// AccessKeyStatusInput is the body of PUT access-keys/{id}.
type AccessKeyStatusInput struct {
	// Status is Active or Inactive.
	Status string `json:"status"`
}

func policyBytes(p json.RawMessage) []byte {
	if len(p) == 0 || string(p) == "null" {
		return nil
	}
	return p
}

func (a *API) listUsers(r *http.Request, _ *none) ([]cryptostore.UserInfo, error) {
	us, err := a.store.ListUsers(r.Context())
	if us == nil {
		us = []cryptostore.UserInfo{}
	}
	return us, userAdminErr(err)
}

func (a *API) createUser(r *http.Request, in *CreateUserInput) (*cryptostore.UserInfo, error) {
	u, err := a.store.CreateUser(r.Context(), in.Name, policyBytes(in.Policy))
	return u, userAdminErr(err)
}

func (a *API) getUser(r *http.Request, _ *none) (*cryptostore.UserInfo, error) {
	u, err := a.store.GetUser(r.Context(), r.PathValue("user"))
	return u, userAdminErr(err)
}

func (a *API) deleteUser(r *http.Request, _ *none) (*none, error) {
	return &none{}, userAdminErr(a.store.DeleteUser(r.Context(), r.PathValue("user")))
}

func (a *API) setUserPolicy(r *http.Request, in *PolicyInput) (*cryptostore.UserInfo, error) {
	name := r.PathValue("user")
	if err := a.store.SetUserPolicy(r.Context(), name, policyBytes(in.Policy)); err != nil {
		return nil, userAdminErr(err)
	}
	u, err := a.store.GetUser(r.Context(), name)
	return u, userAdminErr(err)
}

func (a *API) setUserStatus(r *http.Request, in *UserStatusInput) (*cryptostore.UserInfo, error) {
	name := r.PathValue("user")
	if err := a.store.SetUserDisabled(r.Context(), name, in.Disabled); err != nil {
		return nil, userAdminErr(err)
	}
	u, err := a.store.GetUser(r.Context(), name)
	return u, userAdminErr(err)
}

func (a *API) createAccessKey(r *http.Request, _ *none) (*cryptostore.NewAccessKey, error) {
	k, err := a.store.CreateAccessKey(r.Context(), r.PathValue("user"))
	return k, userAdminErr(err)
}

func (a *API) setAccessKeyStatus(r *http.Request, in *AccessKeyStatusInput) (*cryptostore.AccessKeyInfo, error) {
	var active bool
	switch in.Status {
	case "Active":
		active = true
	case "Inactive":
	default:
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", `status: want "Active" or "Inactive"`)
	}
	k, err := a.store.SetAccessKeyActive(r.Context(), r.PathValue("id"), active)
	return k, userAdminErr(err)
}

func (a *API) deleteAccessKey(r *http.Request, _ *none) (*none, error) {
	return &none{}, userAdminErr(a.store.DeleteAccessKey(r.Context(), r.PathValue("id")))
}

// userAdminErr gives user and access key errors their status.
func userAdminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cryptostore.ErrNoSuchUser):
		return adminErr(http.StatusNotFound, "NoSuchEntity", err.Error())
	case errors.Is(err, cryptostore.ErrNoSuchAccessKey):
		return adminErr(http.StatusNotFound, "NoSuchEntity", err.Error())
	case errors.Is(err, cryptostore.ErrUserExists):
		return adminErr(http.StatusConflict, "EntityAlreadyExists", err.Error())
	case errors.Is(err, cryptostore.ErrTooManyAccessKeys):
		return adminErr(http.StatusConflict, "LimitExceeded", err.Error())
	case errors.Is(err, cryptostore.ErrInvalidUserName):
		return adminErr(http.StatusBadRequest, "InvalidUserName", err.Error())
	case errors.Is(err, iam.ErrInvalidPolicy):
		return adminErr(http.StatusBadRequest, "MalformedPolicyDocument", err.Error())
	}
	return err
}
