package nodetest

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

// docCase is one secret document and whether the Go reader accepts it; the
// Node readers must decide the same (test/documents.test.ts).
type docCase struct {
	Kind string `json:"kind"` // apikey-caller, apikey-verifier, jwt-keyring, jwk-set, db-secret
	Name string `json:"name"`
	Text string `json:"text"`
	OK   bool   `json:"ok"`
}

type jsonMap = map[string]any

func clone(t *testing.T, v any) jsonMap {
	t.Helper()
	b, _ := json.Marshal(v)
	var m jsonMap
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sub(m jsonMap, path ...any) jsonMap {
	var cur any = m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(jsonMap)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(jsonMap)
}

// documentCorpus builds valid documents of every kind and variants that
// break one rule each, and asks the Go readers about every one.
func documentCorpus(t *testing.T) []docCase {
	t.Helper()
	var v apikeyVectors
	readJSON(t, apikeyKAT, &v)
	var jv []jwkVector
	readJSON(t, jwkKAT, &jv)
	var cases []docCase
	add := func(kind, name string, doc any) {
		var text string
		if s, ok := doc.(string); ok {
			text = s
		} else {
			b, _ := json.Marshal(doc)
			text = string(b)
		}
		var err error
		switch kind {
		case "apikey-caller":
			_, err = apikey.ParseCaller([]byte(text))
		case "apikey-verifier":
			_, err = apikey.ParseVerifier([]byte(text))
		case "jwt-keyring":
			_, err = jwks.ParseDocument([]byte(text))
		case "jwk-set":
			_, err = jwks.ParseSet([]byte(text))
		case "db-secret":
			_, err = pgstrategy.ParseSecret("the value", []byte(text))
		}
		cases = append(cases, docCase{Kind: kind, Name: name, Text: text, OK: err == nil})
	}
	variants := func(kind string, base jsonMap, muts map[string]func(jsonMap)) {
		add(kind, "valid", base)
		for name, f := range muts {
			m := clone(t, base)
			f(m)
			add(kind, name, m)
		}
	}

	k0 := v.Keys[0]
	caller := jsonMap{"schemaVersion": 1, "kind": "apikey", "keyId": k0.KeyID, "key": k0.Key, "createdAt": "2026-03-01T09:00:00Z", "expiresAt": "2026-05-30T09:00:00Z"}
	variants("apikey-caller", caller, map[string]func(jsonMap){
		"no key yet":             func(m jsonMap) { delete(m, "keyId"); delete(m, "key"); delete(m, "createdAt"); delete(m, "expiresAt") },
		"unknown field":          func(m jsonMap) { m["note"] = "x" },
		"field in another case":  func(m jsonMap) { m["KeyId"] = m["keyId"]; delete(m, "keyId") },
		"schemaVersion 2":        func(m jsonMap) { m["schemaVersion"] = 2 },
		"no schemaVersion":       func(m jsonMap) { delete(m, "schemaVersion") },
		"kind webhook":           func(m jsonMap) { m["kind"] = "webhook" },
		"kind other":             func(m jsonMap) { m["kind"] = "token" },
		"keyId mismatch":         func(m jsonMap) { m["keyId"] = v.Keys[1].KeyID },
		"bad checksum":           func(m jsonMap) { m["key"] = k0.Key[:len(k0.Key)-1] + "0" },
		"expiry before creation": func(m jsonMap) { m["expiresAt"] = "2026-01-01T00:00:00Z" },
		"no expiry":              func(m jsonMap) { delete(m, "expiresAt") },
		"time not RFC 3339":      func(m jsonMap) { m["createdAt"] = "2026-03-01" },
		"key is a number":        func(m jsonMap) { m["key"] = 5 },
		"null key fields":        func(m jsonMap) { m["key"], m["keyId"], m["createdAt"], m["expiresAt"] = nil, nil, nil, nil },
	})
	add("apikey-caller", "not an object", `[1]`)
	add("apikey-caller", "trailing data", `{"schemaVersion":1,"kind":"apikey"} {}`)

	var verifier jsonMap
	_ = json.Unmarshal([]byte(v.Verifier), &verifier)
	variants("apikey-verifier", verifier, map[string]func(jsonMap){
		"unknown field":            func(m jsonMap) { m["extra"] = true },
		"record field other case":  func(m jsonMap) { r := sub(m, "keys", 0); r["KEYID"] = r["keyId"]; delete(r, "keyId") },
		"no keys member":           func(m jsonMap) { delete(m, "keys") },
		"null keys":                func(m jsonMap) { m["keys"] = nil },
		"duplicate keyId":          func(m jsonMap) { m["keys"] = append(m["keys"].([]any), m["keys"].([]any)[0]) },
		"short keyId":              func(m jsonMap) { sub(m, "keys", 0)["keyId"] = "abc" },
		"keyId not base62":         func(m jsonMap) { sub(m, "keys", 0)["keyId"] = "abc_defghijk" },
		"bad owner":                func(m jsonMap) { sub(m, "keys", 0)["owner"] = "o/../x" },
		"bad prefix":               func(m jsonMap) { sub(m, "keys", 0)["prefix"] = "SK" },
		"status paused":            func(m jsonMap) { sub(m, "keys", 0)["status"] = "paused" },
		"alg md5":                  func(m jsonMap) { sub(m, "keys", 0)["alg"] = "md5" },
		"hash padded":              func(m jsonMap) { r := sub(m, "keys", 0); r["hash"] = r["hash"].(string) + "=" },
		"hash short":               func(m jsonMap) { sub(m, "keys", 0)["hash"] = "AAAA" },
		"hash standard alphabet":   func(m jsonMap) { sub(m, "keys", 0)["hash"] = "++++++++++++++++++++++++++++++++++++++++++/" },
		"record holds a key":       func(m jsonMap) { sub(m, "keys", 0)["secret"] = k0.Key },
		"no notAfter":              func(m jsonMap) { delete(sub(m, "keys", 0), "notAfter") },
		"no notBefore":             func(m jsonMap) { delete(sub(m, "keys", 0), "notBefore") },
		"notBefore with offset":    func(m jsonMap) { sub(m, "keys", 0)["notBefore"] = "2026-03-01T10:00:00+01:00" },
		"notBefore with fraction":  func(m jsonMap) { sub(m, "keys", 0)["notBefore"] = "2026-03-01T09:00:00.123456789Z" },
		"notBefore lowercase t":    func(m jsonMap) { sub(m, "keys", 0)["notBefore"] = "2026-03-01t09:00:00Z" },
		"schemaVersion as string":  func(m jsonMap) { m["schemaVersion"] = "1" },
		"record not an object":     func(m jsonMap) { m["keys"] = []any{"x"} },
		"pepperFingerprint number": func(m jsonMap) { m["pepperFingerprint"] = 1 },
	})
	var wverifier jsonMap
	_ = json.Unmarshal([]byte(v.WebhookVerifier), &wverifier)
	variants("apikey-verifier", wverifier, map[string]func(jsonMap){
		"webhook record with a hash":    func(m jsonMap) { sub(m, "keys", 1)["hash"] = "x" },
		"webhook record with alg":       func(m jsonMap) { sub(m, "keys", 1)["alg"] = "sha256" },
		"live webhook record no secret": func(m jsonMap) { delete(sub(m, "keys", 1), "secret") },
		"secret of another record":      func(m jsonMap) { sub(m, "keys", 1)["secret"] = sub(m, "keys", 2)["secret"] },
		"secret with a bad checksum":    func(m jsonMap) { r := sub(m, "keys", 1); s := r["secret"].(string); r["secret"] = s[:len(s)-1] + "0" },
		"revoked webhook record no secret": func(m jsonMap) {
			r := sub(m, "keys", 1)
			r["status"] = "revoked"
			delete(r, "secret")
		},
	})

	// A keyring built from the JWK vectors (ES256 active, another ES256 next would need a second key: use EdDSA and RS256 as next and retired).
	byAlg := map[string]jwkVector{}
	for _, x := range jv {
		byAlg[x.Alg] = x
	}
	sk := func(x jwkVector) jsonMap {
		return jsonMap{"kid": x.Thumbprint, "alg": x.Alg, "privateKey": "env2:AAAA", "publicJwk": x.JWK, "createdAt": "2026-03-01T09:00:00Z", "publishedAt": "2026-03-01T09:00:00Z"}
	}
	es, ed, rs := byAlg["ES256"], byAlg["EdDSA"], byAlg["RS256"]
	keyring := jsonMap{
		"schemaVersion": 1, "algorithm": "ES256", "active": sk(es), "next": sk(ed),
		"retired": []any{jsonMap{"kid": rs.Thumbprint, "alg": "RS256", "publicJwk": rs.JWK, "retiredAt": "2026-03-31T09:00:00Z", "removeAfter": "2026-03-31T10:17:00Z"}},
		"jwks":    jsonMap{"keys": []any{es.JWK, ed.JWK, rs.JWK}},
	}
	variants("jwt-keyring", keyring, map[string]func(jsonMap){
		"unknown field":             func(m jsonMap) { m["algorithim"] = "ES256" },
		"field in another case":     func(m jsonMap) { m["SchemaVersion"] = m["schemaVersion"]; delete(m, "schemaVersion") },
		"schemaVersion 2":           func(m jsonMap) { m["schemaVersion"] = 2 },
		"schemaVersion -1":          func(m jsonMap) { m["schemaVersion"] = -1 },
		"no schemaVersion":          func(m jsonMap) { delete(m, "schemaVersion") },
		"algorithm HS256":           func(m jsonMap) { m["algorithm"] = "HS256" },
		"no next":                   func(m jsonMap) { delete(m, "next") },
		"no jwks":                   func(m jsonMap) { delete(m, "jwks") },
		"jwks lacks the next key":   func(m jsonMap) { sub(m, "jwks")["keys"] = []any{es.JWK, rs.JWK} },
		"jwks has an extra key":     func(m jsonMap) { delete(m, "retired") },
		"active kid mismatch":       func(m jsonMap) { sub(m, "active")["kid"] = ed.Thumbprint },
		"active alg mismatch":       func(m jsonMap) { sub(m, "active")["alg"] = "RS256" },
		"no private key":            func(m jsonMap) { sub(m, "active")["privateKey"] = "" },
		"active is next":            func(m jsonMap) { m["next"] = sk(es) },
		"unknown field in a key":    func(m jsonMap) { sub(m, "next")["private"] = "x" },
		"unknown field in jwks":     func(m jsonMap) { sub(m, "jwks")["etag"] = "x" },
		"private member in the set": func(m jsonMap) { sub(m, "jwks", "keys", 0)["d"] = "AAAA" },
		"use enc": func(m jsonMap) {
			sub(m, "jwks", "keys", 0)["use"] = "enc"
			sub(m, "active", "publicJwk")["use"] = "enc"
		},
		"emergency rekey recorded": func(m jsonMap) {
			m["emergencyRekey"] = jsonMap{"nonce": "incident-42", "handledAt": "2026-03-20T14:02:00Z", "dropped": []any{jsonMap{"kid": "x"}}}
		},
		"emergency rekey unknown field": func(m jsonMap) { m["emergencyRekey"] = jsonMap{"nonce": "n", "by": "x"} },
		"retired time not RFC 3339":     func(m jsonMap) { sub(m, "retired", 0)["retiredAt"] = "yesterday" },
	})
	for name, text := range map[string]string{"empty": "", "blank": " \n", "{}": "{}", "algorithm only": `{"algorithm":"EdDSA"}`, "retired without keys": `{"retired":[]}`, "jwks without keys": `{"jwks":{"keys":[]}}`, "array": `[]`, "trailing data": `{} {}`} {
		add("jwt-keyring", name, text)
	}

	set := jsonMap{"keys": []any{es.JWK, ed.JWK, rs.JWK}}
	variants("jwk-set", set, map[string]func(jsonMap){
		"empty keys":       func(m jsonMap) { m["keys"] = []any{} },
		"no keys member":   func(m jsonMap) { delete(m, "keys") },
		"duplicate kid":    func(m jsonMap) { m["keys"] = []any{es.JWK, es.JWK} },
		"foreign kid":      func(m jsonMap) { sub(m, "keys", 0)["kid"] = "another" },
		"no kid":           func(m jsonMap) { delete(sub(m, "keys", 1), "kid") },
		"private member k": func(m jsonMap) { sub(m, "keys", 2)["k"] = "AAAA" },
		"alg ES384":        func(m jsonMap) { sub(m, "keys", 0)["alg"] = "ES384" },
		"no alg":           func(m jsonMap) { delete(sub(m, "keys", 0), "alg") },
		"EC key as EdDSA":  func(m jsonMap) { sub(m, "keys", 0)["alg"] = "EdDSA" },
		"use enc":          func(m jsonMap) { sub(m, "keys", 1)["use"] = "enc" },
		"unknown member":   func(m jsonMap) { m["etag"] = "x" },
	})

	db := jsonMap{"engine": "postgres", "host": "db.example.com", "port": 5432, "username": "app_user", "password": "pw-1", "dbname": "app"}
	variants("db-secret", db, map[string]func(jsonMap){
		"port as string":          func(m jsonMap) { m["port"] = "6432" },
		"port 0":                  func(m jsonMap) { m["port"] = 0 },
		"port 70000":              func(m jsonMap) { m["port"] = 70000 },
		"port true":               func(m jsonMap) { m["port"] = true },
		"port null":               func(m jsonMap) { m["port"] = nil },
		"no host":                 func(m jsonMap) { delete(m, "host") },
		"host with a space":       func(m jsonMap) { m["host"] = "a b" },
		"no password":             func(m jsonMap) { delete(m, "password") },
		"password a number":       func(m jsonMap) { m["password"] = 5 },
		"engine mysql":            func(m jsonMap) { m["engine"] = "mysql" },
		"engine aurora":           func(m jsonMap) { m["engine"] = "aurora-postgresql" },
		"no engine":               func(m jsonMap) { delete(m, "engine") },
		"unknown fields kept":     func(m jsonMap) { m["proxy"] = "x"; m["Username"] = 7 },
		"hostile username":        func(m jsonMap) { m["username"] = "x'; DROP ROLE y; --" },
		"pg_ username":            func(m jsonMap) { m["username"] = "pg_monitor" },
		"reserved username":       func(m jsonMap) { m["username"] = "PUBLIC" },
		"long username":           func(m jsonMap) { m["username"] = "a234567890123456789012345678901234567890123456789012345678901234" },
		"sslmode VERIFY-CA":       func(m jsonMap) { m["sslmode"] = "VERIFY-CA" },
		"sslmode prefer":          func(m jsonMap) { m["sslmode"] = "prefer" },
		"sslmode disable":         func(m jsonMap) { m["sslmode"] = "disable" },
		"userpair":                func(m jsonMap) { m["userpair"] = []any{"app_user", "app_user_b"} },
		"userpair of one":         func(m jsonMap) { m["userpair"] = []any{"app_user"} },
		"userpair without user":   func(m jsonMap) { m["userpair"] = []any{"a_1", "a_2"} },
		"userpair twice the same": func(m jsonMap) { m["userpair"] = []any{"app_user", "app_user"} },
		"dbname too long":         func(m jsonMap) { m["dbname"] = "a234567890123456789012345678901234567890123456789012345678901234" },
		"masterarn a number":      func(m jsonMap) { m["masterarn"] = 1 },
		"sslrootcertpem array":    func(m jsonMap) { m["sslrootcertpem"] = []any{} },
		"padded username":         func(m jsonMap) { m["username"] = "  app_user " },
	})
	add("db-secret", "array", `[]`)
	add("db-secret", "trailing data", `{"host":"h","username":"u","password":"p"} x`)
	return cases
}

// writeDocumentCorpus writes the corpus for the Node tests and checks it
// has both answers for every kind (so it can catch a disagreement).
func writeDocumentCorpus(t *testing.T, dir string) {
	t.Helper()
	cases := documentCorpus(t)
	seen := map[string][2]int{}
	for _, c := range cases {
		n := seen[c.Kind]
		if c.OK {
			n[0]++
		} else {
			n[1]++
		}
		seen[c.Kind] = n
	}
	for kind, n := range seen {
		if n[0] == 0 || n[1] == 0 {
			t.Fatalf("%s: %d accepted, %d refused: the corpus needs both", kind, n[0], n[1])
		}
	}
	writeJSON(t, filepath.Join(dir, "go-documents.json"), cases)
}
