//go:build !race

package envelope

import (
	"context"
	"testing"
)

// With a cached data key and room in dst, AppendEncrypt and AppendDecrypt
// allocate only the per-message AES key schedule and GCM state (crypto/aes
// and crypto/cipher offer no way to rekey an existing one). Not run under
// -race, where sync.Pool drops items on purpose.
func TestAppendIntoSpareCapacityAllocatesOnlyTheCipher(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx, pt := context.Background(), appendPlaintext(4096)
	blob, err := e.AppendEncrypt(ctx, make([]byte, 0, 8192), pt, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 0, 8192)
	if a := testing.AllocsPerRun(200, func() {
		if blob, err = e.AppendEncrypt(ctx, blob[:0], pt, benchContext); err != nil {
			t.Fatal(err)
		}
	}); a > 2 {
		t.Errorf("AppendEncrypt: %.1f allocations per call, want ≤ 2 (AES, GCM)", a)
	}
	if a := testing.AllocsPerRun(200, func() {
		if plain, err = e.AppendDecrypt(ctx, plain[:0], blob, benchContext); err != nil {
			t.Fatal(err)
		}
	}); a > 2 {
		t.Errorf("AppendDecrypt: %.1f allocations per call, want ≤ 2 (AES, GCM)", a)
	}
	if a := testing.AllocsPerRun(200, func() {
		if _, err = e.Encrypt(ctx, pt, benchContext); err != nil {
			t.Fatal(err)
		}
	}); a > 3 {
		t.Errorf("Encrypt: %.1f allocations per call, want ≤ 3 (output, AES, GCM)", a)
	}
}

// Format 2 keeps a prepared AES-GCM state per data key: a Column's round
// trip into reused buffers allocates nothing at all.
func TestV2ColumnAppendIntoSpareCapacityAllocatesNothing(t *testing.T) {
	e := localEnvelope2(t, &CacheConfig{MaxAge: 3600e9})
	col, _ := e.Column("payees", "iban", nil)
	ctx, pt := context.Background(), appendPlaintext(4096)
	blob, err := col.AppendEncrypt(ctx, make([]byte, 0, 8192), "row-1", pt)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 0, 8192)
	if a := testing.AllocsPerRun(200, func() {
		if blob, err = col.AppendEncrypt(ctx, blob[:0], "row-1", pt); err != nil {
			t.Fatal(err)
		}
		if plain, err = col.AppendDecrypt(ctx, plain[:0], "row-1", blob); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Column round trip: %.1f allocations, want 0", a)
	}
}

func TestV2AppendWithPreparedContextAllocatesNothing(t *testing.T) {
	e := localEnvelope2(t, &CacheConfig{MaxAge: 3600e9})
	pc, _ := PrepareContext(Context{"table": "payees", "column": "iban"})
	msg := Context{"row": "row-1"}
	ctx, pt := context.Background(), appendPlaintext(4096)
	blob, err := e.AppendEncryptWith(ctx, make([]byte, 0, 8192), pt, pc, msg)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 0, 8192)
	if a := testing.AllocsPerRun(200, func() {
		if blob, err = e.AppendEncryptWith(ctx, blob[:0], pt, pc, msg); err != nil {
			t.Fatal(err)
		}
		if plain, err = e.AppendDecryptWith(ctx, plain[:0], blob, pc, msg); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("round trip with a prepared context: %.1f allocations, want 0", a)
	}
}
