package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/internal/testenv"
)

func kmsEnvelope2(t testing.TB, c *countingKMS, keyID string, allowed []string, cache *CacheConfig) *Envelope {
	t.Helper()
	p, err := NewKMSProvider(context.Background(), KMSConfig{Client: c, KeyID: keyID, AllowedKeyIDs: allowed})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Provider: p, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func localEnvelope2(t testing.TB, cache *CacheConfig, keys ...*LocalKey) *Envelope {
	t.Helper()
	if len(keys) == 0 {
		keys = []*LocalKey{fixedLocalKey(t, "dev-1", 0x11)}
	}
	p, err := NewLocalProvider(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Provider: p, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustPrepare(t testing.TB, ec Context) *PreparedContext {
	t.Helper()
	pc, err := PrepareContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func TestV2IsTheDefaultWriteFormatAndRoundTrips(t *testing.T) {
	ctx := context.Background()
	for _, cache := range []*CacheConfig{nil, {MaxAge: time.Hour}} {
		e := localEnvelope2(t, cache)
		for _, n := range []int{0, 1, 15, 16, 17, 4096, 1 << 20} {
			pt := bytes.Repeat([]byte{0xA5}, n)
			blob, err := e.Encrypt(ctx, pt, Context{"k": "v"})
			if err != nil {
				t.Fatal(err)
			}
			if blob[0] != Version2 || len(blob) != blobSize2(len("\x00\x01\x00\x01kv")+2, 2, len("dev-1"), 60, n) {
				t.Fatalf("n=%d: version %d, %d bytes", n, blob[0], len(blob))
			}
			got, err := e.Decrypt(ctx, blob, Context{"k": "v"})
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("n=%d: %v", n, err)
			}
			if h, err := ParseHeader(blob); err != nil || h.Version != 2 || h.Context["k"] != "v" || len(h.MessageContext) != 0 || h.BodyLen != n+TagSize {
				t.Fatalf("header %+v %v", h, err)
			}
		}
	}
}

func TestV2FormatOneBlobsStayReadable(t *testing.T) {
	ctx := context.Background()
	v1 := localEnvelope(t, nil)
	v2 := localEnvelope2(t, &CacheConfig{MaxAge: time.Hour})
	ref := FieldRef{Table: "t", Column: "c", RowID: "9"}
	old, err := v1.EncryptField(ctx, ref, []byte("legacy"))
	if err != nil || old[:5] != TextPrefix {
		t.Fatal(old, err)
	}
	got, err := v2.DecryptField(ctx, ref, old)
	if err != nil || string(got) != "legacy" {
		t.Fatal(err)
	}
	if _, err := v2.DecryptField(ctx, FieldRef{Table: "t", Column: "c", RowID: "10"}, old); err == nil {
		t.Fatal("a format-1 value moved to another row decrypted")
	}
}

func TestV2NoncesAreACounterPerDataKeyAndNeverRepeat(t *testing.T) {
	e := localEnvelope2(t, &CacheConfig{MaxAge: time.Hour})
	pc := mustPrepare(t, Context{"table": "t"})
	const workers, each = 8, 250
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				blob, err := e.AppendEncryptWith(context.Background(), nil, []byte("x"), pc, Context{"row": fmt.Sprint(w, "-", i)})
				if err != nil {
					t.Error(err)
					return
				}
				var l layout2
				if err := parse2Into(blob, &l); err != nil {
					t.Error(err)
					return
				}
				k := string(l.edk) + "|" + string(l.nonce)
				mu.Lock()
				if seen[k] {
					t.Errorf("nonce %x repeated under one data key", l.nonce)
				}
				seen[k] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := e.CacheStats()
	if st.EncryptMisses != 1 || len(seen) != workers*each {
		t.Fatalf("stats %+v, %d distinct nonces", st, len(seen))
	}
	// The nonces are exactly 0 … n-1: the counter, no gaps, no repeats.
	for i := range workers * each {
		var n [NonceSize]byte
		nonceV2(&n, int64(i))
		found := false
		for k := range seen {
			if k[len(k)-NonceSize:] == string(n[:]) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("sequence number %d not used", i)
		}
	}
}

func TestV2CacheLimitsAreCapped(t *testing.T) {
	lp, _ := NewLocalProvider(fixedLocalKey(t, "k", 1))
	for _, cc := range []CacheConfig{
		{MaxAge: 100 * 365 * 24 * time.Hour},
		{MaxAge: MaxCacheAge + time.Nanosecond},
		{MaxAge: time.Hour, MaxMessages: MaxMessagesPerDataKey + 1},
		{MaxAge: time.Hour, MaxBytes: MaxBytesPerDataKey + 1},
	} {
		_, err := New(Config{Provider: lp, Cache: &cc})
		wantKind(t, err, ErrMalformed, fmt.Sprintf("cache config %+v", cc))
	}
	e, err := New(Config{Provider: lp, Cache: &CacheConfig{MaxAge: MaxCacheAge}})
	if err != nil {
		t.Fatal(err)
	}
	if e.cache.cfg.MaxMessages != MaxMessagesPerDataKey || e.cache.cfg.MaxBytes != MaxBytesPerDataKey {
		t.Fatalf("defaults %+v", e.cache.cfg)
	}
}

func TestV2MessageLimitStartsANewDataKey(t *testing.T) {
	e, cp, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour, MaxMessages: 3})
	e.version = Version2
	ctx := context.Background()
	var edks [][]byte
	for range 7 {
		blob, err := e.Encrypt(ctx, []byte("m"), Context{"a": "b"})
		if err != nil {
			t.Fatal(err)
		}
		var l layout2
		if err := parse2Into(blob, &l); err != nil {
			t.Fatal(err)
		}
		edks = append(edks, l.edk)
		if seq := binary.BigEndian.Uint64(l.nonce[4:]); seq != uint64(len(edks)-1)%3 {
			t.Fatalf("message %d has sequence number %d", len(edks)-1, seq)
		}
	}
	if cp.generate.Load() != 3 || !bytes.Equal(edks[0], edks[2]) || bytes.Equal(edks[2], edks[3]) {
		t.Fatalf("%d data keys for 7 messages at 3 per key", cp.generate.Load())
	}
}

func TestV2ValueMovedToAnotherRowOrColumnFails(t *testing.T) {
	e := localEnvelope2(t, &CacheConfig{MaxAge: time.Hour})
	ctx := context.Background()
	col, _ := e.Column("organizations", "tax_id", nil)
	text, err := col.Encrypt(ctx, "row-1", []byte("AAAPL1234C"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := col.Decrypt(ctx, "row-2", text); err == nil {
		t.Fatal("moved to another row and decrypted")
	} else {
		wantKind(t, err, ErrContextMismatch, "another row")
	}
	other, _ := e.Column("organizations", "bank_ifsc_code", nil)
	_, err = other.Decrypt(ctx, "row-1", text)
	wantKind(t, err, ErrContextMismatch, "another column")
	// Rewriting the message context inside the blob does not help: it is
	// authenticated with the body.
	blob, _ := DecodeText(text)
	forged := bytes.Replace(blob, []byte("row-1"), []byte("row-2"), 1)
	_, err = col.e.AppendDecryptWith(ctx, nil, forged, col.pc, Context{"row": "row-2"})
	wantKind(t, err, ErrAuthentication, "message context rewritten in the blob")
	got, err := col.Decrypt(ctx, "row-1", text)
	if err != nil || string(got) != "AAAPL1234C" {
		t.Fatal(err)
	}
}

func TestV2ContextKeyInBothPartsIsRefused(t *testing.T) {
	e := localEnvelope2(t, nil)
	pc := mustPrepare(t, Context{"table": "t", "row": "1"})
	_, err := e.AppendEncryptWith(context.Background(), nil, []byte("x"), pc, Context{"row": "2"})
	wantKind(t, err, ErrMalformed, "row in both contexts")
}

// tamperMatrix2 changes every byte of v2 blobs (two flips each), truncates
// them to every length and extends them, and requires that none opens.
func tamperMatrix2(t *testing.T, e *Envelope, pc *PreparedContext, msg Context, pts [][]byte) {
	ctx := context.Background()
	total, opened := 0, 0
	for _, pt := range pts {
		blob, err := e.AppendEncryptWith(ctx, nil, pt, pc, msg)
		if err != nil {
			t.Fatal(err)
		}
		try := func(what string, b []byte) {
			total++
			got, err := e.AppendDecryptWith(ctx, nil, b, pc, msg)
			if err == nil {
				opened++
				t.Errorf("%s: opened (to %d bytes)", what, len(got))
				return
			}
			if asError(err) == nil || got != nil {
				t.Errorf("%s: %T %v", what, err, err)
			}
		}
		for off := range blob {
			for _, x := range []byte{0x01, 0x80} {
				b := bytes.Clone(blob)
				b[off] ^= x
				try(fmt.Sprintf("flip %#x at %d of %d", x, off, len(blob)), b)
			}
		}
		for n := range len(blob) {
			try(fmt.Sprintf("truncated to %d", n), bytes.Clone(blob[:n]))
		}
		for _, extra := range []int{1, 16, 4096} {
			try(fmt.Sprintf("%d bytes appended", extra), append(bytes.Clone(blob), make([]byte, extra)...))
		}
		if got, err := e.AppendDecryptWith(ctx, nil, blob, pc, msg); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("the untouched blob after the matrix: %v", err)
		}
	}
	t.Logf("%d tamper cases over %d blobs: %d opened", total, len(pts), opened)
}

func TestV2TamperMatrixLocalProviderNoChangedBlobOpens(t *testing.T) {
	for _, cache := range []*CacheConfig{nil, {MaxAge: time.Hour}} {
		t.Run("cache="+strconv.FormatBool(cache != nil), func(t *testing.T) {
			e := localEnvelope2(t, cache)
			tamperMatrix2(t, e, mustPrepare(t, Context{"table": "payees", "column": "iban"}), Context{"row": "7"}, [][]byte{[]byte("DE89370400440532013000"), nil})
		})
	}
}

func TestV2TamperMatrixMotoKMSNoChangedBlobOpens(t *testing.T) {
	c := motoKMS(t)
	e := kmsEnvelope2(t, c, newKey(t, c, ""), nil, &CacheConfig{MaxAge: time.Hour})
	tamperMatrix2(t, e, mustPrepare(t, Context{"table": "payees", "column": "iban"}), Context{"row": "7"}, [][]byte{[]byte("DE89370400440532013000")})
}

// kmsCallsForAColumn encrypts rows values into one column and reads them
// back through a second Envelope (a cold cache), counting at the client.
func kmsCallsForAColumn(t *testing.T, c *countingKMS, arn string, rows int) {
	ctx := context.Background()
	writer := kmsEnvelope2(t, c, arn, nil, &CacheConfig{MaxAge: time.Hour})
	col, err := writer.Column("organizations", "bank_account_number", nil)
	if err != nil {
		t.Fatal(err)
	}
	g0, d0 := c.generate.Load(), c.decrypt.Load()
	texts := make([]string, rows)
	edks := map[string]bool{}
	for i := range rows {
		if texts[i], err = col.Encrypt(ctx, strconv.Itoa(i), []byte("ACCT-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		b, _ := DecodeText(texts[i])
		h, _ := ParseHeader(b)
		edks[string(h.EncryptedDataKey)] = true
	}
	if g := c.generate.Load() - g0; g != 1 || len(edks) != 1 {
		t.Fatalf("%d rows: %d GenerateDataKey calls, %d distinct data keys; want 1", rows, g, len(edks))
	}
	reader := kmsEnvelope2(t, c, arn, nil, &CacheConfig{MaxAge: time.Hour})
	rcol, _ := reader.Column("organizations", "bank_account_number", nil)
	for i := range rows {
		got, err := rcol.Decrypt(ctx, strconv.Itoa(i), texts[i])
		if err != nil || string(got) != "ACCT-"+strconv.Itoa(i) {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if d := c.decrypt.Load() - d0; d != int64(len(edks)) {
		t.Fatalf("reading %d rows: %d Decrypt calls, want %d (one per distinct data key)", rows, d, len(edks))
	}
	t.Logf("%d rows: %d GenerateDataKey, %d Decrypt", rows, c.generate.Load()-g0, c.decrypt.Load()-d0)
}

func TestV2TenThousandRowsInOneColumnCostOneGenerateDataKeyAndOneDecryptMoto(t *testing.T) {
	c := motoKMS(t)
	kmsCallsForAColumn(t, c, newKey(t, c, ""), 10000)
}

func TestLocalProviderRefusesToWrapMoreDataKeysThanItsLimit(t *testing.T) {
	lp, _ := NewLocalProvider(fixedLocalKey(t, "k", 3))
	lp.limit = 3
	e, _ := New(Config{Provider: lp})
	for i := range 3 {
		if _, err := e.Encrypt(context.Background(), []byte("x"), nil); err != nil {
			t.Fatalf("wrap %d: %v", i, err)
		}
	}
	_, err := e.Encrypt(context.Background(), []byte("x"), nil)
	wantKind(t, err, ErrProvider, "the fourth wrap")
	if MaxLocalWraps > 1<<32 {
		t.Fatal("the limit exceeds 2^32 random-nonce uses of the KEK")
	}
}

// localKMS returns a counting client against the shared local-kms server,
// the second KMS implementation.
func localKMS(t testing.TB) *countingKMS {
	t.Helper()
	l := testenv.SharedLocalKMS(t)
	cfg, err := l.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &countingKMS{Client: kms.NewFromConfig(cfg)}
}

func TestV2TamperMatrixLocalKMSNoChangedBlobOpens(t *testing.T) {
	c := localKMS(t)
	e := kmsEnvelope2(t, c, newKey(t, c, ""), nil, &CacheConfig{MaxAge: time.Hour})
	tamperMatrix2(t, e, mustPrepare(t, Context{"table": "payees", "column": "iban"}), Context{"row": "7"}, [][]byte{[]byte("DE89370400440532013000")})
}

func TestV2TenThousandRowsInOneColumnCostOneGenerateDataKeyAndOneDecryptLocalKMS(t *testing.T) {
	c := localKMS(t)
	kmsCallsForAColumn(t, c, newKey(t, c, ""), 10000)
}

// The key section of a format-2 blob moves to another key with one
// ReEncrypt per data key; the body stays byte for byte; the result opens
// under the new key alone; a tampered key section is never re-wrapped.
func reWrapColumn(t *testing.T, c *countingKMS) {
	ctx := context.Background()
	a, b := newKey(t, c, ""), newKey(t, c, "")
	e := kmsEnvelope2(t, c, a, []string{b}, &CacheConfig{MaxAge: time.Hour})
	col, _ := e.Column("organizations", "tax_id", nil)
	var blobs [][]byte
	for i := range 50 {
		blob, err := col.AppendEncrypt(ctx, nil, strconv.Itoa(i), []byte("TAX-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, blob)
	}
	r0 := c.reencrypt.Load()
	rw := e.NewReWrapper(b)
	onlyB := kmsEnvelope2(t, c, b, nil, nil)
	bcol, _ := onlyB.Column("organizations", "tax_id", nil)
	for i, blob := range blobs {
		moved, err := rw.ReWrap(ctx, blob, col.KeyContext())
		if err != nil {
			t.Fatal(err)
		}
		var lo, ln layout2
		parse2Into(blob, &lo)
		parse2Into(moved, &ln)
		if !bytes.Equal(lo.body, ln.body) || !bytes.Equal(lo.aad, ln.aad) || string(ln.keyID) != b {
			t.Fatalf("row %d: body or authenticated header changed, or not under the new key", i)
		}
		got, err := bcol.AppendDecrypt(ctx, nil, strconv.Itoa(i), moved)
		if err != nil || string(got) != "TAX-"+strconv.Itoa(i) {
			t.Fatalf("row %d under the new key: %v", i, err)
		}
	}
	if n := c.reencrypt.Load() - r0; n != 1 || rw.ProviderReWraps() != 1 {
		t.Fatalf("50 rows under one data key: %d ReEncrypt calls, want 1", n)
	}
	// A blob whose key section was altered is refused, not laundered.
	bad := bytes.Clone(blobs[0])
	bad[len(bad)-len(lo(blobs[0]).body)-1] ^= 1 // last byte of the key tag
	if _, err := e.NewReWrapper(b).ReWrap(ctx, bad, col.KeyContext()); err == nil {
		t.Fatal("a blob with a modified key tag was re-wrapped")
	}
}

func lo(blob []byte) layout2 {
	var l layout2
	parse2Into(blob, &l)
	return l
}

func TestV2ReWrapOneReEncryptPerDataKeyMoto(t *testing.T)     { reWrapColumn(t, motoKMS(t)) }
func TestV2ReWrapOneReEncryptPerDataKeyLocalKMS(t *testing.T) { reWrapColumn(t, localKMS(t)) }

func TestNotAnEnvelopeIsOnlyAValueWithoutTheEnvelopePrefix(t *testing.T) {
	e := localEnvelope2(t, nil)
	col, _ := e.Column("t", "c", nil)
	v1, _ := localEnvelope(t, nil).Encrypt(context.Background(), []byte("x"), nil)
	ctx := context.Background()
	for _, c := range []struct {
		v   string
		not bool
	}{
		{"", true}, {"DE89370400440532013000", true}, {"environment: prod", true}, {"env:", true}, {"ENV1:abc", true}, {"env1", true},
		{"env1:hello world", false}, {"env1:", false}, {"env2:AAAA", false}, {"env9:abc", false}, {"env12:x", false},
		{TextPrefix2 + EncodeText(v1)[len(TextPrefix):], false}, // a version-1 blob under the version-2 prefix
	} {
		_, err := col.Decrypt(ctx, "1", c.v)
		if err == nil {
			t.Fatalf("%q opened", c.v)
		}
		if IsNotEnvelope(err) != c.not || HasEnvelopePrefix(c.v) == c.not {
			t.Fatalf("%q: not-an-envelope=%t (%v), want %t", c.v, IsNotEnvelope(err), err, c.not)
		}
		if c.not && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: not-an-envelope should still match ErrMalformed", c.v)
		}
	}
}

// With the real clock, MaxAge is enforced by a timer per entry rather than a
// clock read per use: the key is replaced once MaxAge has passed. (The wait
// is bounded and polls; nothing is asserted about speed.)
func TestCacheMaxAgeOnTheRealClockRetiresTheDataKey(t *testing.T) {
	lp, _ := NewLocalProvider(fixedLocalKey(t, "dev", 7))
	cp := &countingProvider{Provider: lp}
	e, err := New(Config{Provider: cp, Cache: &CacheConfig{MaxAge: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); cp.generate.Load() < 2; {
		if _, err := e.Encrypt(ctx, []byte("x"), Context{"a": "b"}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the data key outlived MaxAge by 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if st := e.CacheStats(); st.Evictions == 0 {
		t.Fatalf("the expired entry was not evicted: %+v", st)
	}
}

func TestColumnSendsTableColumnAndCallerStablePairsToTheProviderAndKeepsTheRowOut(t *testing.T) {
	lp, _ := NewLocalProvider(fixedLocalKey(t, "dev", 7))
	rec := &recordingProvider{Provider: lp}
	e, _ := New(Config{Provider: rec, Cache: &CacheConfig{MaxAge: time.Hour}})
	col, err := e.Column("organizations", "tax_id", Context{"tenant": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	text, err := col.Encrypt(context.Background(), "row-9", []byte("AAACA1234F"))
	if err != nil {
		t.Fatal(err)
	}
	want := Context{"table": "organizations", "column": "tax_id", "tenant": "acme"}
	if len(rec.contexts) != 1 || !maps.Equal(rec.contexts[0], want) {
		t.Fatalf("provider saw %v, want %v", rec.contexts, want)
	}
	b, _ := DecodeText(text)
	h, _ := ParseHeader(b)
	if !maps.Equal(h.Context, want) || !maps.Equal(h.MessageContext, Context{"row": "row-9"}) {
		t.Fatalf("header contexts %v / %v", h.Context, h.MessageContext)
	}
	other, _ := e.Column("organizations", "tax_id", Context{"tenant": "globex"})
	_, err = other.Decrypt(context.Background(), "row-9", text)
	wantKind(t, err, ErrContextMismatch, "another tenant")
	for _, reserved := range []string{"row", "table", "column"} {
		_, err := e.Column("t", "c", Context{reserved: "x"})
		wantKind(t, err, ErrMalformed, "reserved stable key "+reserved)
	}
}

func TestPrepareContextKeepsItsOwnCopy(t *testing.T) {
	ec := Context{"table": "t"}
	pc := mustPrepare(t, ec)
	e := localEnvelope2(t, nil)
	blob, err := e.AppendEncryptWith(context.Background(), nil, []byte("x"), pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ec["table"] = "changed"
	if _, err := e.AppendDecryptWith(context.Background(), nil, blob, pc, nil); err != nil {
		t.Fatalf("changing the caller's map changed the prepared context: %v", err)
	}
	if pc.Context()["table"] != "t" || fmt.Sprint(pc) != "envelope.PreparedContext{keys:table}" {
		t.Fatalf("%v", pc)
	}
}

type recordingProvider struct {
	Provider
	contexts []Context
}

func (r *recordingProvider) GenerateDataKey(ctx context.Context, ec Context) (*DataKey, error) {
	r.contexts = append(r.contexts, maps.Clone(ec))
	return r.Provider.GenerateDataKey(ctx, ec)
}

// The same matrix through a Column, whose remembered cache entries take the
// lock-free path: a changed blob must not ride on the remembered key.
func TestV2TamperMatrixThroughAColumnsRememberedEntries(t *testing.T) {
	e := localEnvelope2(t, &CacheConfig{MaxAge: time.Hour})
	col, _ := e.Column("payees", "iban", nil)
	ctx := context.Background()
	pt := []byte("DE89370400440532013000")
	blob, err := col.AppendEncrypt(ctx, nil, "7", pt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := col.AppendDecrypt(ctx, nil, "7", blob); err != nil { // remember the entry
		t.Fatal(err)
	}
	cases := 0
	for off := range blob {
		for _, x := range []byte{0x01, 0x80} {
			b := bytes.Clone(blob)
			b[off] ^= x
			cases++
			if got, err := col.AppendDecrypt(ctx, nil, "7", b); err == nil {
				t.Fatalf("flip %#x at %d opened to %d bytes", x, off, len(got))
			}
			if got, err := col.AppendDecrypt(ctx, nil, "7", blob); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("the original after flip at %d: %v", off, err)
			}
		}
	}
	t.Logf("%d flips, 0 opened", cases)
}
