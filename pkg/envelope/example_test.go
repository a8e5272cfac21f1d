package envelope_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotation-suite/rotation/pkg/envelope"
)

// A local key-encryption key (in production: envelope.NewKMSProvider), a
// cached Envelope, and a column value bound to its cell.
func Example() {
	ctx := context.Background()
	kek, _ := envelope.ParseLocalKey("dev-1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") // in real use: LocalKeyFromFile / LocalKeyFromEnv
	provider, _ := envelope.NewLocalProvider(kek)
	env, _ := envelope.New(envelope.Config{
		Provider: provider,
		Cache:    &envelope.CacheConfig{MaxAge: 5 * time.Minute, MaxMessages: 1000},
	})

	ref := envelope.FieldRef{Table: "payees", Column: "bank_account", RowID: "42"}
	text, _ := env.EncryptField(ctx, ref, []byte("DE89370400440532013000"))

	acct, _ := env.DecryptField(ctx, ref, text)
	fmt.Println(string(acct))
	fmt.Println(acct) // a Secret prints redacted

	// The same value copied to another row does not decrypt.
	_, err := env.DecryptField(ctx, envelope.FieldRef{Table: "payees", Column: "bank_account", RowID: "43"}, text)
	fmt.Println(errors.Is(err, envelope.ErrContextMismatch))

	h, _ := envelope.DecodeText(text)
	hdr, _ := envelope.ParseHeader(h)
	fmt.Println(hdr.Version, hdr.Provider, hdr.KeyID, hdr.MessageContext["row"])
	// Output:
	// DE89370400440532013000
	// [REDACTED]
	// true
	// 2 local dev-1 42
}

// Encrypting and decrypting many messages into buffers that are reused: no
// output allocation per message once the buffers have grown.
func ExampleEnvelope_AppendEncrypt() {
	ctx := context.Background()
	kek, _ := envelope.ParseLocalKey("dev-1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	provider, _ := envelope.NewLocalProvider(kek)
	env, _ := envelope.New(envelope.Config{Provider: provider, Cache: &envelope.CacheConfig{MaxAge: time.Minute}})
	ec := envelope.Context{"stream": "audit"}

	var blob, plain []byte
	for _, msg := range []string{"first", "second", "third"} {
		var err error
		if blob, err = env.AppendEncrypt(ctx, blob[:0], []byte(msg), ec); err != nil {
			panic(err)
		}
		if plain, err = env.AppendDecrypt(ctx, plain[:0], blob, ec); err != nil {
			panic(err)
		}
		fmt.Println(string(plain))
	}
	// Output:
	// first
	// second
	// third
}
