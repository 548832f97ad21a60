package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrInvalidPolicy is wrapped by every error Parse returns.
var ErrInvalidPolicy = errors.New("invalid policy")

// MaxPolicySize bounds a policy document, in bytes.
const MaxPolicySize = 64 << 10

// maxStatements bounds the statements of one policy.
const maxStatements = 1000

// Effect is what a matching statement decides.
type Effect uint8

const (
	// Allow allows a request the statement matches (unless another denies).
	Allow Effect = iota + 1
	// Deny denies a request the statement matches, whatever else allows it.
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return fmt.Sprintf("Effect(%d)", e)
}

// Decision is the outcome of evaluating a request.
type Decision uint8

const (
	// ImplicitDeny: no statement allows the request.
	ImplicitDeny Decision = iota
	// Allowed: a statement allows it and none denies it.
	Allowed
	// ExplicitDeny: a statement denies it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case ImplicitDeny:
		return "implicit deny"
	case Allowed:
		return "allow"
	case ExplicitDeny:
		return "explicit deny"
	}
	return fmt.Sprintf("Decision(%d)", d)
}

// Policy is a parsed policy document. It is immutable and safe for
// concurrent use.
type Policy struct {
	Version    string
	statements []statement
}

// Statements returns how many statements the policy has.
func (p *Policy) Statements() int { return len(p.statements) }

type statement struct {
	sid       string
	effect    Effect
	actions   []pattern // Action, or NotAction when notAction
	notAction bool
	resources []pattern // Resource, or NotResource when notResource
	notRes    bool
	conds     []condition
}

// Request is what a request asks, as the policy sees it.
type Request struct {
	// Action is the service-qualified action: s3:GetObject, kms:Decrypt.
	Action string
	// Resource is the ARN the action is on: arn:aws:s3:::bucket,
	// arn:aws:s3:::bucket/key, or a KMS key's ARN.
	Resource string
	// SecureTransport is aws:SecureTransport: the request came over TLS.
	SecureTransport bool
	// SourceIP is aws:SourceIp; the zero Addr means the request has none
	// (the mount).
	SourceIP netip.Addr
	// Prefix is s3:prefix, present when HasPrefix (listings).
	Prefix    string
	HasPrefix bool
}

// S3BucketARN is the ARN of a bucket.
func S3BucketARN(bucket string) string { return "arn:aws:s3:::" + bucket }

// S3ObjectARN is the ARN of an object.
func S3ObjectARN(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

// Evaluate decides r: ExplicitDeny if any statement that matches r denies
// it, else Allowed if one allows it, else ImplicitDeny.
func (p *Policy) Evaluate(r *Request) Decision {
	if p == nil {
		return ImplicitDeny
	}
	d := ImplicitDeny
	for i := range p.statements {
		s := &p.statements[i]
		if s.effect == Allow && d == Allowed {
			continue // cannot change the outcome; only a Deny can
		}
		if !s.matches(r) {
			continue
		}
		if s.effect == Deny {
			return ExplicitDeny
		}
		d = Allowed
	}
	return d
}

// Allows reports whether p allows r.
func (p *Policy) Allows(r *Request) bool { return p.Evaluate(r) == Allowed }

func (s *statement) matches(r *Request) bool {
	if anyMatch(s.actions, r.Action, true) == s.notAction {
		return false
	}
	if anyMatch(s.resources, r.Resource, false) == s.notRes {
		return false
	}
	for i := range s.conds {
		if !s.conds[i].holds(r) {
			return false
		}
	}
	return true
}

func anyMatch(ps []pattern, s string, fold bool) bool {
	for _, p := range ps {
		if p.match(s, fold) {
			return true
		}
	}
	return false
}

// pattern is an action or resource with IAM's wildcards.
type pattern struct {
	s       string
	literal bool // no wildcard: plain comparison
}

func newPattern(s string) pattern {
	return pattern{s: s, literal: !strings.ContainsAny(s, "*?")}
}

func (p pattern) match(s string, fold bool) bool {
	if p.literal {
		if fold {
			return strings.EqualFold(p.s, s)
		}
		return p.s == s
	}
	return globMatch(p.s, s, fold)
}

// globMatch matches s against pat, where * matches any run of bytes and ?
// any one character (a UTF-8 sequence counts as one). It backtracks only
// to the last *, so it runs in O(len(pat)·len(s)) at worst.
func globMatch(pat, s string, fold bool) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(pat) {
			switch c := pat[pi]; {
			case c == '*':
				star, mark = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si += charLen(s[si:])
				continue
			case c == s[si] || fold && lower(c) == lower(s[si]):
				pi++
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// charLen is the length of the UTF-8 sequence s starts with (1 for an
// invalid one).
func charLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Parse parses a policy document. Every error wraps ErrInvalidPolicy and
// says what is wrong where.
func Parse(doc []byte) (*Policy, error) {
	p, err := parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	return p, nil
}

func parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxPolicySize {
		return nil, fmt.Errorf("the document is %d bytes, more than %d", len(doc), MaxPolicySize)
	}
	var top map[string]json.RawMessage
	if err := strictUnmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	p := &Policy{}
	for name, v := range top {
		switch name {
		case "Version":
			if err := json.Unmarshal(v, &p.Version); err != nil {
				return nil, errors.New("element Version: want a string")
			}
			if p.Version != "2012-10-17" && p.Version != "2008-10-17" {
				return nil, fmt.Errorf("version %q: want 2012-10-17", p.Version)
			}
		case "Id", "Statement":
		default:
			return nil, fmt.Errorf("unknown element %q", name)
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, errors.New("no Statement")
	}
	var list []json.RawMessage
	if bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("[")) {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("element Statement: %w", err)
		}
	} else {
		list = []json.RawMessage{raw}
	}
	if len(list) == 0 {
		return nil, errors.New("element Statement: empty")
	}
	if len(list) > maxStatements {
		return nil, fmt.Errorf("element Statement: %d statements, more than %d", len(list), maxStatements)
	}
	for i, r := range list {
		s, err := parseStatement(r)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i+1, err)
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

// strictUnmarshal unmarshals data, which must hold one JSON value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func parseStatement(raw json.RawMessage) (statement, error) {
	var s statement
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return s, errors.New("want a JSON object")
	}
	var haveAction, haveResource bool
	for name, v := range m {
		var err error
		switch name {
		case "Sid":
			if json.Unmarshal(v, &s.sid) != nil {
				err = errors.New("want a string")
			}
		case "Effect":
			var e string
			if json.Unmarshal(v, &e) != nil {
				return s, errors.New("Effect: want a string")
			}
			switch e {
			case "Allow":
				s.effect = Allow
			case "Deny":
				s.effect = Deny
			default:
				return s, fmt.Errorf("Effect %q: want Allow or Deny", e)
			}
		case "Action", "NotAction":
			if haveAction {
				return s, errors.New("both Action and NotAction")
			}
			haveAction, s.notAction = true, name == "NotAction"
			s.actions, err = parsePatterns(v, validAction)
		case "Resource", "NotResource":
			if haveResource {
				return s, errors.New("both Resource and NotResource")
			}
			haveResource, s.notRes = true, name == "NotResource"
			s.resources, err = parsePatterns(v, validResource)
		case "Condition":
			s.conds, err = parseConditions(v)
		case "Principal", "NotPrincipal":
			return s, fmt.Errorf("%s: an identity policy names no principal (it applies to its user)", name)
		default:
			return s, fmt.Errorf("unknown element %q", name)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
	}
	switch {
	case s.effect == 0:
		return s, errors.New("no Effect")
	case !haveAction:
		return s, errors.New("no Action or NotAction")
	case !haveResource:
		return s, errors.New("no Resource or NotResource")
	}
	return s, nil
}

// stringList decodes a string or a non-empty list of strings.
func stringList(v json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, errors.New("want a string or a list of strings")
	}
	if len(list) == 0 {
		return nil, errors.New("empty list")
	}
	return list, nil
}

func parsePatterns(v json.RawMessage, valid func(string) error) ([]pattern, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	ps := make([]pattern, 0, len(list))
	for _, s := range list {
		if err := valid(s); err != nil {
			return nil, err
		}
		ps = append(ps, newPattern(s))
	}
	return ps, nil
}

// validAction accepts * and service:name (name may hold wildcards).
func validAction(a string) error {
	if a == "*" {
		return nil
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return fmt.Errorf("action %q: want service:action, such as s3:GetObject", a)
	}
	for i := 0; i < len(svc); i++ {
		c := svc[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("action %q: the service %q is not a service name", a, svc)
		}
	}
	return nil
}

// validResource accepts * and ARNs: arn:partition:service:region:account:resource.
func validResource(r string) error {
	if r == "*" {
		return nil
	}
	if !strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 5 {
		return fmt.Errorf("resource %q: want * or an ARN (arn:aws:s3:::bucket/key, arn:aws:kms:REGION:ACCOUNT:key/ID)", r)
	}
	return nil
}

// Condition keys, lower case (IAM compares them without regard to case).
const (
	keySecureTransport = "aws:securetransport"
	keySourceIP        = "aws:sourceip"
	keyPrefix          = "s3:prefix"
)

type condOp uint8

const (
	opStringEquals condOp = iota + 1
	opStringNotEquals
	opStringLike
	opStringNotLike
	opBool
	opIPAddress
	opNotIPAddress
)

var condOps = map[string]condOp{
	"StringEquals":    opStringEquals,
	"StringNotEquals": opStringNotEquals,
	"StringLike":      opStringLike,
	"StringNotLike":   opStringNotLike,
	"Bool":            opBool,
	"IpAddress":       opIPAddress,
	"NotIpAddress":    opNotIPAddress,
}

// condition is one operator on one key with its alternative values.
type condition struct {
	op       condOp
	ifExists bool
	key      string
	strs     []string
	globs    []pattern
	bools    []bool
	nets     []netip.Prefix
}

func parseConditions(v json.RawMessage) ([]condition, error) {
	var block map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &block); err != nil {
		return nil, errors.New("want {\"Operator\": {\"key\": value or [values]}}")
	}
	var out []condition
	ops := make([]string, 0, len(block))
	for name := range block {
		ops = append(ops, name)
	}
	slices.Sort(ops) // a stable order: errors and evaluation repeat
	for _, name := range ops {
		base, ifExists := strings.CutSuffix(name, "IfExists")
		op, ok := condOps[base]
		if !ok {
			return nil, fmt.Errorf("operator %q: sealfs evaluates StringEquals, StringNotEquals, StringLike, StringNotLike, Bool, IpAddress, NotIpAddress (and their IfExists forms)", name)
		}
		keys := make([]string, 0, len(block[name]))
		for k := range block[name] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, key := range keys {
			c, err := parseCondition(op, ifExists, key, block[name][key])
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", name, key, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseCondition(op condOp, ifExists bool, key string, v json.RawMessage) (condition, error) {
	c := condition{op: op, ifExists: ifExists, key: strings.ToLower(key)}
	vals, err := conditionValues(v)
	if err != nil {
		return c, err
	}
	switch c.key {
	case keySecureTransport:
		if op != opBool {
			return c, errors.New("aws:SecureTransport takes the Bool operator")
		}
	case keySourceIP:
		if op != opIPAddress && op != opNotIPAddress {
			return c, errors.New("aws:SourceIp takes IpAddress or NotIpAddress")
		}
	case keyPrefix:
		if op == opBool || op == opIPAddress || op == opNotIPAddress {
			return c, errors.New("s3:prefix takes a String operator")
		}
	default:
		return c, errors.New("unknown condition key: sealfs evaluates aws:SecureTransport, aws:SourceIp and s3:prefix")
	}
	for _, s := range vals {
		switch op {
		case opBool:
			switch strings.ToLower(s) {
			case "true":
				c.bools = append(c.bools, true)
			case "false":
				c.bools = append(c.bools, false)
			default:
				return c, fmt.Errorf("%q: want true or false", s)
			}
		case opIPAddress, opNotIPAddress:
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return c, fmt.Errorf("%q: want an address or a CIDR block", s)
				}
				pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			if pfx.Addr().Is4In6() {
				pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
			}
			c.nets = append(c.nets, pfx.Masked())
		case opStringLike, opStringNotLike:
			c.globs = append(c.globs, newPattern(s))
		default:
			c.strs = append(c.strs, s)
		}
	}
	return c, nil
}

// conditionValues decodes a value or a non-empty list of values: strings,
// booleans or numbers, each as its text.
func conditionValues(v json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if bytes.HasPrefix(bytes.TrimLeft(v, " \t\r\n"), []byte("[")) {
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, errors.New("empty list")
		}
	} else {
		list = []json.RawMessage{v}
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		var x any
		if err := json.Unmarshal(r, &x); err != nil {
			return nil, err
		}
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case bool, float64:
			out = append(out, strings.TrimSpace(string(r)))
		default:
			return nil, errors.New("want strings, booleans or numbers")
		}
	}
	return out, nil
}

func (c *condition) holds(r *Request) bool {
	negated := c.op == opStringNotEquals || c.op == opStringNotLike || c.op == opNotIPAddress
	var present bool
	switch c.key {
	case keySecureTransport:
		present = true
	case keySourceIP:
		present = r.SourceIP.IsValid()
	case keyPrefix:
		present = r.HasPrefix
	}
	if !present {
		return negated || c.ifExists
	}
	switch c.op {
	case opBool:
		return slices.Contains(c.bools, r.SecureTransport)
	case opIPAddress, opNotIPAddress:
		a := r.SourceIP.Unmap()
		in := false
		for _, n := range c.nets {
			if n.Contains(a) {
				in = true
				break
			}
		}
		return in != negated
	case opStringEquals, opStringNotEquals:
		return slices.Contains(c.strs, r.Prefix) != negated
	case opStringLike, opStringNotLike:
		return anyMatch(c.globs, r.Prefix, false) != negated
	}
	return false
}
