package field_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/envelope/field"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Organization is the design document's entity: bank account number, IFSC
// code and tax id encrypted column by column, the address in clear.
type Organization struct {
	ID, Name, Address string
	BankAccountNumber field.Encrypted
	BankIfscCode      field.Encrypted
	TaxID             field.Encrypted
}

// OrganizationStore is what an application writes: one envelope.Column per
// encrypted column, prepared once.
type OrganizationStore struct {
	conn                 *pgx.Conn
	account, ifsc, taxID *envelope.Column
}

func NewOrganizationStore(conn *pgx.Conn, env *envelope.Envelope) (*OrganizationStore, error) {
	s := &OrganizationStore{conn: conn}
	var err error
	for _, c := range []struct {
		col  **envelope.Column
		name string
	}{{&s.account, "bank_account_number"}, {&s.ifsc, "bank_ifsc_code"}, {&s.taxID, "tax_id"}} {
		if *c.col, err = env.Column("organizations", c.name, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Insert encrypts the three fields for the row and writes it. A nil
// plaintext is stored as NULL.
func (s *OrganizationStore) Insert(ctx context.Context, id, name, address string, account, ifsc, taxID []byte) error {
	seal := func(col *envelope.Column, pt []byte) (field.Encrypted, error) {
		if pt == nil {
			return field.Null(), nil
		}
		return field.Seal(ctx, col, id, pt)
	}
	a, err := seal(s.account, account)
	if err != nil {
		return err
	}
	i, err := seal(s.ifsc, ifsc)
	if err != nil {
		return err
	}
	t, err := seal(s.taxID, taxID)
	if err != nil {
		return err
	}
	_, err = s.conn.Exec(ctx, `INSERT INTO organizations (id, name, address, bank_account_number, bank_ifsc_code, tax_id) VALUES ($1, $2, $3, $4, $5, $6)`, id, name, address, a, i, t)
	return err
}

// Get reads a row and opens its encrypted fields with the row's id.
func (s *OrganizationStore) Get(ctx context.Context, id string) (*Organization, error) {
	var o Organization
	err := s.conn.QueryRow(ctx, `SELECT id, name, address, bank_account_number, bank_ifsc_code, tax_id FROM organizations WHERE id = $1`, id).
		Scan(&o.ID, &o.Name, &o.Address, &o.BankAccountNumber, &o.BankIfscCode, &o.TaxID)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		v   *field.Encrypted
		col *envelope.Column
	}{{&o.BankAccountNumber, s.account}, {&o.BankIfscCode, s.ifsc}, {&o.TaxID, s.taxID}} {
		if err := f.v.Open(ctx, f.col, o.ID); err != nil {
			return nil, fmt.Errorf("organization %s, %s: %w", o.ID, f.col.Name(), err)
		}
	}
	return &o, nil
}

type countingKMS struct {
	*kms.Client
	generate, decrypt int
}

func (c *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.generate++
	return c.Client.GenerateDataKey(ctx, in, o...)
}

func (c *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypt++
	return c.Client.Decrypt(ctx, in, o...)
}

func setup(t *testing.T) (context.Context, *pgx.Conn, *envelope.Envelope, *countingKMS) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pg := testenv.SharedPostgres(t)
	admin, err := pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("orgs_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	conn, err := pg.AdminConn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE organizations (
		id text PRIMARY KEY, name text NOT NULL, address text NOT NULL,
		bank_account_number text, bank_ifsc_code text, tax_id text, employees int)`); err != nil {
		t.Fatal(err)
	}
	m := testenv.SharedMoto(t)
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kc := &countingKMS{Client: kms.NewFromConfig(cfg)}
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: kc, KeyID: *key.KeyMetadata.Arn})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(envelope.Config{Provider: p, Cache: &envelope.CacheConfig{MaxAge: 5 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, conn, env, kc
}

var orgs = []struct{ id, name, address, account, ifsc, taxID string }{
	{"3f8e2a94-0001", "Acme Exports", "12 MG Road, Bengaluru", "50100123456789", "HDFC0000123", "AAACA1234F"},
	{"3f8e2a94-0002", "Brightline Ltd", "4 Park Street, Kolkata", "00011122233344", "SBIN0000456", ""},
	{"3f8e2a94-0003", "Cobalt Pay", "7 Marine Drive, Mumbai", "91827364554637", "ICIC0000789", "AABCC9876K"},
}

func TestOrganizationEncryptedColumnsRoundTripThroughPostgreSQL(t *testing.T) {
	ctx, conn, env, kc := setup(t)
	store, err := NewOrganizationStore(conn, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		var tax []byte
		if o.taxID != "" {
			tax = []byte(o.taxID)
		}
		if err := store.Insert(ctx, o.id, o.name, o.address, []byte(o.account), []byte(o.ifsc), tax); err != nil {
			t.Fatal(err)
		}
	}
	// One data key per column, not per row.
	if kc.generate != 3 {
		t.Fatalf("%d GenerateDataKey calls for 3 rows × 3 columns, want 3 (one per column)", kc.generate)
	}
	// What the database holds: text forms, NULL where there is no tax id, the
	// address in clear, no plaintext anywhere.
	rows, _ := conn.Query(ctx, `SELECT address, bank_account_number, bank_ifsc_code, tax_id FROM organizations ORDER BY id`)
	stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Address       string
		Account, Ifsc string
		Tax           *string
	}])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range stored {
		if r.Address != orgs[i].address || !strings.HasPrefix(r.Account, envelope.TextPrefix2) || !strings.HasPrefix(r.Ifsc, envelope.TextPrefix2) {
			t.Fatalf("row %d stored as %q %q", i, r.Account, r.Ifsc)
		}
		if (r.Tax == nil) != (orgs[i].taxID == "") {
			t.Fatalf("row %d: tax id NULL=%t", i, r.Tax == nil)
		}
		all := r.Account + r.Ifsc
		if r.Tax != nil {
			all += *r.Tax
		}
		if strings.Contains(all, orgs[i].account) || strings.Contains(all, orgs[i].ifsc) || (orgs[i].taxID != "" && strings.Contains(all, orgs[i].taxID)) {
			t.Fatalf("row %d: plaintext stored", i)
		}
	}
	// Read back through a fresh Envelope (a cold cache): one Decrypt per
	// column's data key.
	p2, _ := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: kc, KeyID: mustKeyARN(t, env)})
	env2, _ := envelope.New(envelope.Config{Provider: p2, Cache: &envelope.CacheConfig{MaxAge: time.Minute}})
	reader, _ := NewOrganizationStore(conn, env2)
	kc.decrypt = 0
	for _, o := range orgs {
		got, err := reader.Get(ctx, o.id)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.BankAccountNumber.Plaintext()) != o.account || string(got.BankIfscCode.Plaintext()) != o.ifsc || string(got.TaxID.Plaintext()) != o.taxID || got.TaxID.IsNull() != (o.taxID == "") {
			t.Fatalf("%s read back wrong", o.id)
		}
	}
	if kc.decrypt != 3 {
		t.Fatalf("reading 3 rows: %d Decrypt calls, want 3 (one per column's data key)", kc.decrypt)
	}
}

func mustKeyARN(t *testing.T, env *envelope.Envelope) string {
	t.Helper()
	// The blob names the key ARN; any stored value tells it.
	col, _ := env.Column("probe", "probe", nil)
	text, err := col.Encrypt(context.Background(), "1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := envelope.DecodeText(text)
	h, _ := envelope.ParseHeader(b)
	return h.KeyID
}

func TestOrganizationValueCopiedToAnotherRowDoesNotOpen(t *testing.T) {
	ctx, conn, env, _ := setup(t)
	store, _ := NewOrganizationStore(conn, env)
	for _, o := range orgs[:2] {
		if err := store.Insert(ctx, o.id, o.name, o.address, []byte(o.account), []byte(o.ifsc), []byte("T")); err != nil {
			t.Fatal(err)
		}
	}
	// An attacker with write access to the table copies row 1's account
	// number into row 2.
	if _, err := conn.Exec(ctx, `UPDATE organizations SET bank_account_number = (SELECT bank_account_number FROM organizations WHERE id = $1) WHERE id = $2`, orgs[0].id, orgs[1].id); err != nil {
		t.Fatal(err)
	}
	_, err := store.Get(ctx, orgs[1].id)
	if !errors.Is(err, envelope.ErrContextMismatch) {
		t.Fatalf("copied value: %v, want a context mismatch", err)
	}
	if _, err := store.Get(ctx, orgs[0].id); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptedRedactsItselfInPrintsLogsJSONAndPgxErrors(t *testing.T) {
	ctx, conn, env, _ := setup(t)
	store, _ := NewOrganizationStore(conn, env)
	o := orgs[0]
	if err := store.Insert(ctx, o.id, o.name, o.address, []byte(o.account), []byte(o.ifsc), []byte(o.taxID)); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, o.id)
	if err != nil {
		t.Fatal(err)
	}
	stored := got.BankAccountNumber.Stored()
	var out bytes.Buffer
	fmt.Fprintf(&out, "%v|%+v|%#v|%s|%q|%x|%X|%d\n", got, got, got, got.TaxID, got.TaxID, got.TaxID, got.BankIfscCode, got.BankAccountNumber)
	fmt.Fprintln(&out, got.TaxID.String(), got.TaxID.GoString())
	j, _ := json.Marshal(got)
	out.Write(j)
	txt, _ := got.TaxID.MarshalText()
	out.Write(txt)
	slog.New(slog.NewTextHandler(&out, nil)).Info("org", "org", got, "tax", got.TaxID)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("org", "org", got, "tax", got.TaxID)
	// pgx refuses the value for an int column and quotes it in its error.
	_, err = conn.Exec(ctx, `UPDATE organizations SET employees = $1 WHERE id = $2`, got.TaxID, o.id)
	if err == nil {
		t.Fatal("an encrypted value went into an int column")
	}
	out.WriteString(err.Error())
	for _, secret := range []string{o.account, o.ifsc, o.taxID, stored[:20], stored[len(stored)-20:]} {
		if strings.Contains(out.String(), secret) {
			t.Fatalf("%q appears in:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "[REDACTED]") {
		t.Fatal("nothing was printed; the test would prove nothing")
	}
	if n := field.Null(); n.String() != "NULL" || fmt.Sprint(n) != "NULL" {
		t.Fatal("NULL prints wrong")
	}
}

func TestScanMapsNullAndTextBothWays(t *testing.T) {
	var v field.Encrypted
	if err := v.Scan(nil); err != nil || !v.IsNull() {
		t.Fatal("nil did not scan as NULL")
	}
	if val, _ := v.Value(); val != nil {
		t.Fatal("NULL valued as non-nil")
	}
	if err := v.Scan([]byte("env2:AA")); err != nil || v.IsNull() || v.Stored() != "env2:AA" {
		t.Fatal("bytes did not scan")
	}
	if err := v.Scan(42); err == nil {
		t.Fatal("an int scanned")
	}
	col, _ := mustEnv(t).Column("t", "c", nil)
	legacy := field.FromStored("not an envelope")
	if err := legacy.Open(context.Background(), col, "1"); !envelope.IsNotEnvelope(err) {
		t.Fatalf("legacy plaintext: %v", err)
	}
}

func mustEnv(t *testing.T) *envelope.Envelope {
	k, _ := envelope.NewLocalKey("k", bytes.Repeat([]byte{1}, 32))
	p, _ := envelope.NewLocalProvider(k)
	e, err := envelope.New(envelope.Config{Provider: p})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
