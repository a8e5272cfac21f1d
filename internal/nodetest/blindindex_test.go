package nodetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/rotation-suite/rotation/pkg/blindindex"
)

// writeBlindIndexVectors computes blind indexes with pkg/blindindex under a
// fresh index key for the Node tests to reproduce (go-blindindex.json).
func writeBlindIndexVectors(t *testing.T, dir string) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key, err := blindindex.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	type bcase struct {
		Table  string `json:"table"`
		Column string `json:"column"`
		Bytes  int    `json:"bytes"`
		Value  string `json:"value"` // hex
		Index  string `json:"index"`
	}
	var out struct {
		Key   string  `json:"key"` // base64, as the index-key secret holds it
		Cases []bcase `json:"cases"`
	}
	out.Key = base64.StdEncoding.EncodeToString(raw)
	for _, c := range []bcase{
		{Table: "payees", Column: "iban", Bytes: 16, Value: "DE89370400440532013000"},
		{Table: "payees", Column: "iban", Bytes: 8, Value: "DE89370400440532013000"},
		{Table: "payees", Column: "bic", Bytes: 32, Value: "COBADEFFXXX"},
		{Table: "users", Column: "e-mail", Bytes: 16, Value: ""},
		{Table: "tëst", Column: "ünïcode", Bytes: 12, Value: "grüße"},
	} {
		x, err := blindindex.New(key, blindindex.Config{Table: c.Table, Column: c.Column, Bytes: c.Bytes})
		if err != nil {
			t.Fatal(err)
		}
		c.Index = x.Of([]byte(c.Value))
		c.Value = hex.EncodeToString([]byte(c.Value))
		out.Cases = append(out.Cases, c)
	}
	writeJSON(t, filepath.Join(dir, "go-blindindex.json"), out)
}
