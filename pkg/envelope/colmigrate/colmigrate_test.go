package colmigrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/envelope/colmigrate"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newDB(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	pg := testenv.SharedPostgres(t)
	admin, err := pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("mig_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	conn, err := pg.AdminConn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE payees (id text PRIMARY KEY, iban text)`); err != nil {
		t.Fatal(err)
	}
	return ctx, conn
}

func localEnv(t *testing.T) *envelope.Envelope {
	k, _ := envelope.NewLocalKey("dev", bytes.Repeat([]byte{7}, 32))
	p, _ := envelope.NewLocalProvider(k)
	e, err := envelope.New(envelope.Config{Provider: p, Cache: &envelope.CacheConfig{MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func values(t *testing.T, ctx context.Context, conn *pgx.Conn) map[string]*string {
	rows, _ := conn.Query(ctx, `SELECT id, iban FROM payees`)
	out := map[string]*string{}
	for rows.Next() {
		var id string
		var v *string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out[id] = v
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// interfering is the database seen by a run while the application writes:
// before the n-th UPDATE the run makes, the application rewrites that row.
type interfering struct {
	colmigrate.DB
	app     func(ctx context.Context) error
	n, seen int
	failAt  int // fail the failAt-th batch query (0: never)
	queries int
}

func (d *interfering) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if strings.HasPrefix(sql, "UPDATE") {
		d.seen++
		if d.seen == d.n && d.app != nil {
			if err := d.app(ctx); err != nil {
				return pgconn.CommandTag{}, err
			}
		}
	}
	return d.DB.Exec(ctx, sql, args...)
}

func (d *interfering) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	d.queries++
	if d.failAt > 0 && d.queries == d.failAt {
		return nil, errors.New("connection lost")
	}
	return d.DB.Query(ctx, sql, args...)
}

func TestBackfillEncryptsPlaintextReportsDamageAndNeverTouchesIt(t *testing.T) {
	ctx, conn := newDB(t)
	env := localEnv(t)
	col, _ := env.Column("payees", "iban", nil)
	good, _ := col.Encrypt(ctx, "r02", []byte("GB33BUKB20201555555555"))
	damaged, _ := col.Encrypt(ctx, "r04", []byte("FR1420041010050500013M02606"))
	damaged = damaged[:len(damaged)-3] + "AAA"
	moved, _ := col.Encrypt(ctx, "r01", []byte("moved from r01"))
	plain := map[string]string{
		"r01": "DE89370400440532013000", "r03": "NL91ABNA0417164300", "r06": "environment: not an envelope",
		"r08": "IT60X0542811101000000123456", "r09": "ES9121000418450200051332", "r10": "CH9300762011623852957",
	}
	seed := map[string]*string{"r02": &good, "r04": &damaged, "r05": aws.String("env1:looks like an envelope"), "r07": nil, "r11": &moved}
	for id, v := range plain {
		seed[id] = aws.String(v)
	}
	for id, v := range seed {
		if _, err := conn.Exec(ctx, `INSERT INTO payees VALUES ($1, $2)`, id, v); err != nil {
			t.Fatal(err)
		}
	}
	// The application rewrites r09 between the run's read and its write.
	appValue, _ := col.Encrypt(ctx, "r09", []byte("written by the application"))
	db := &interfering{DB: conn, n: 5, app: func(ctx context.Context) error {
		_, err := conn.Exec(ctx, `UPDATE payees SET iban = $1 WHERE id = 'r09'`, appValue)
		return err
	}}
	var progress []colmigrate.Progress
	var out strings.Builder
	printer := colmigrate.PrintProgress(&out, "backfill payees.iban")
	rep, err := colmigrate.Backfill(ctx, db, colmigrate.Target{Table: "payees", IDColumn: "id", ValueColumn: "iban", Column: col},
		colmigrate.Options{BatchSize: 4, Progress: func(p colmigrate.Progress) { progress = append(progress, p); printer(p) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 10 || rep.Changed != 5 || rep.Raced != 1 || rep.Skipped != 1 || rep.Damaged != 3 || !rep.Done || len(progress) != 3 {
		t.Fatalf("report %+v after %d progress calls", rep.Progress, len(progress))
	}
	var damagedIDs []string
	for _, d := range rep.DamagedRows {
		damagedIDs = append(damagedIDs, d.RowID)
		if strings.Contains(d.Err.Error(), "looks like") || strings.Contains(d.Err.Error(), damaged[10:30]) {
			t.Fatalf("the report repeats the stored value: %v", d.Err)
		}
	}
	if strings.Join(damagedIDs, ",") != "r04,r05,r11" {
		t.Fatalf("damaged rows %v", damagedIDs)
	}
	got := values(t, ctx, conn)
	// Damaged and suspicious values are byte for byte what they were.
	if *got["r04"] != damaged || *got["r05"] != "env1:looks like an envelope" || *got["r11"] != moved || got["r07"] != nil || *got["r02"] != good {
		t.Fatal("a damaged, ambiguous, misplaced, NULL or already encrypted value was changed")
	}
	if *got["r09"] != appValue {
		t.Fatal("the application's concurrent write was overwritten")
	}
	for id, want := range plain {
		if id == "r09" {
			continue
		}
		pt, err := col.Decrypt(ctx, id, *got[id])
		if err != nil || string(pt) != want {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if !strings.Contains(out.String(), `finished; scanned 10, changed 5, skipped 1, raced 1, damaged 3; resume after id "r11"`) {
		t.Fatalf("progress output:\n%s", out.String())
	}
	// A second run changes nothing but r09 now opens; the damaged stay reported.
	rep2, err := colmigrate.Backfill(ctx, conn, colmigrate.Target{Table: "payees", IDColumn: "id", ValueColumn: "iban", Column: col}, colmigrate.Options{BatchSize: 4})
	if err != nil || rep2.Changed != 0 || rep2.Skipped != 7 || rep2.Damaged != 3 {
		t.Fatalf("second run %+v %v", rep2.Progress, err)
	}
}

func TestBackfillResumesFromTheLastReportedID(t *testing.T) {
	ctx, conn := newDB(t)
	env := localEnv(t)
	col, _ := env.Column("payees", "iban", nil)
	for i := range 9 {
		conn.Exec(ctx, `INSERT INTO payees VALUES ($1, $2)`, fmt.Sprintf("r%02d", i), fmt.Sprintf("IBAN-%d", i))
	}
	target := colmigrate.Target{Table: "payees", IDColumn: "id", ValueColumn: "iban", Column: col}
	db := &interfering{DB: conn, failAt: 2}
	rep, err := colmigrate.Backfill(ctx, db, target, colmigrate.Options{BatchSize: 3})
	if err == nil || rep.LastID != "r02" || rep.Changed != 3 {
		t.Fatalf("interrupted run: %+v %v", rep.Progress, err)
	}
	rep, err = colmigrate.Backfill(ctx, conn, target, colmigrate.Options{BatchSize: 3, After: rep.LastID})
	if err != nil || rep.Changed != 6 || rep.Scanned != 6 {
		t.Fatalf("resumed run: %+v %v", rep.Progress, err)
	}
	for id, v := range values(t, ctx, conn) {
		if pt, err := col.Decrypt(ctx, id, *v); err != nil || string(pt) != "IBAN-"+id[2:3] && string(pt) != "IBAN-"+strings.TrimLeft(id[1:], "0") {
			t.Fatalf("%s: %q %v", id, pt, err)
		}
	}
}

type countingKMS struct {
	*kms.Client
	reencrypt, decrypt atomic.Int64
}

func (c *countingKMS) ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, o ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	c.reencrypt.Add(1)
	return c.Client.ReEncrypt(ctx, in, o...)
}

func (c *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypt.Add(1)
	return c.Client.Decrypt(ctx, in, o...)
}

func reWrapColumn(t *testing.T, cfg aws.Config) {
	ctx, conn := newDB(t)
	c := &countingKMS{Client: kms.NewFromConfig(cfg)}
	mk := func() string {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		return *out.KeyMetadata.Arn
	}
	oldKey, newKey := mk(), mk()
	p, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: c, KeyID: oldKey, AllowedKeyIDs: []string{newKey}})
	if err != nil {
		t.Fatal(err)
	}
	// Two writers (two processes, two data keys) filled the column.
	var cols []*envelope.Column
	for range 2 {
		e, _ := envelope.New(envelope.Config{Provider: p, Cache: &envelope.CacheConfig{MaxAge: time.Hour}})
		col, _ := e.Column("payees", "iban", nil)
		cols = append(cols, col)
	}
	const rows = 200
	bodies := map[string]string{}
	for i := range rows {
		id := fmt.Sprintf("r%04d", i)
		text, err := cols[i%2].Encrypt(ctx, id, []byte("IBAN-"+id))
		if err != nil {
			t.Fatal(err)
		}
		bodies[id] = body(t, text)
		conn.Exec(ctx, `INSERT INTO payees VALUES ($1, $2)`, id, text)
	}
	target := colmigrate.Target{Table: "payees", IDColumn: "id", ValueColumn: "iban", Column: cols[0]}
	var out strings.Builder
	// Interrupted after the first batch, then resumed.
	db := &interfering{DB: conn, failAt: 2}
	rep, rw, err := colmigrate.ReWrap(ctx, db, target, newKey, colmigrate.Options{BatchSize: 64, Progress: colmigrate.PrintProgress(&out, "re-wrap payees.iban")})
	if err == nil || rep.Changed != 64 {
		t.Fatalf("interrupted: %+v %v", rep.Progress, err)
	}
	first := rw.ProviderReWraps()
	rep, rw, err = colmigrate.ReWrap(ctx, conn, target, newKey, colmigrate.Options{BatchSize: 64, After: rep.LastID, Progress: colmigrate.PrintProgress(&out, "re-wrap payees.iban")})
	if err != nil || rep.Changed != rows-64 || rep.Damaged != 0 {
		t.Fatalf("resumed: %+v %v", rep.Progress, err)
	}
	if total := c.reencrypt.Load(); total != first+rw.ProviderReWraps() || total > 4 || first != 2 {
		t.Fatalf("%d ReEncrypt calls for %d rows under 2 data keys (first run %d), want one per data key per run", total, rows, first)
	}
	// Everything opens with an Envelope that allows only the new key, and
	// every body is unchanged.
	onlyNew, _ := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: c, KeyID: newKey})
	e2, _ := envelope.New(envelope.Config{Provider: onlyNew, Cache: &envelope.CacheConfig{MaxAge: time.Hour}})
	col2, _ := e2.Column("payees", "iban", nil)
	for id, v := range values(t, ctx, conn) {
		if body(t, *v) != bodies[id] {
			t.Fatalf("%s: body changed", id)
		}
		pt, err := col2.Decrypt(ctx, id, *v)
		if err != nil || string(pt) != "IBAN-"+id {
			t.Fatalf("%s under the new key: %v", id, err)
		}
	}
	// A third run finds nothing to do and calls KMS not at all.
	before := c.reencrypt.Load() + c.decrypt.Load()
	rep, _, err = colmigrate.ReWrap(ctx, conn, target, newKey, colmigrate.Options{})
	if err != nil || rep.Skipped != rows || c.reencrypt.Load()+c.decrypt.Load() != before {
		t.Fatalf("third run %+v %v", rep.Progress, err)
	}
	t.Logf("%d rows, 2 data keys: %d ReEncrypt, %d Decrypt; cache %+v\n%s", rows, c.reencrypt.Load(), c.decrypt.Load(), cols[0].Envelope().CacheStats(), out.String())
}

// body returns the ciphertext and tag of a stored value.
func body(t *testing.T, text string) string {
	b, err := envelope.DecodeText(text)
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[len(b)-h.BodyLen:])
}

func TestReWrapColumnOneReEncryptPerDataKeyMoto(t *testing.T) {
	cfg, err := testenv.SharedMoto(t).AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reWrapColumn(t, cfg)
}

func TestReWrapColumnOneReEncryptPerDataKeyLocalKMS(t *testing.T) {
	cfg, err := testenv.SharedLocalKMS(t).AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reWrapColumn(t, cfg)
}

// A format-1 value is bound to the column's whole stable context — the
// caller's further stable pairs included — and its row: the re-wrap must
// present exactly that context, or every such value would be reported as
// damaged.
func TestReWrapFormat1ValuesOfAColumnWithFurtherStablePairs(t *testing.T) {
	ctx, conn := newDB(t)
	oldKey, _ := envelope.NewLocalKey("old", bytes.Repeat([]byte{7}, 32))
	newKey, _ := envelope.NewLocalKey("new", bytes.Repeat([]byte{8}, 32))
	p, _ := envelope.NewLocalProvider(oldKey, newKey)
	e, err := envelope.New(envelope.Config{Provider: p, WriteVersion: envelope.Version1})
	if err != nil {
		t.Fatal(err)
	}
	col, err := e.Column("payees", "iban", envelope.Context{"tenant": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		text, err := col.Encrypt(ctx, id, []byte("IBAN-"+id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO payees VALUES ($1, $2)`, id, text); err != nil {
			t.Fatal(err)
		}
	}
	rep, _, err := colmigrate.ReWrap(ctx, conn, colmigrate.Target{Table: "payees", IDColumn: "id", ValueColumn: "iban", Column: col}, "new", colmigrate.Options{})
	if err != nil || rep.Changed != 3 || rep.Damaged != 0 {
		t.Fatalf("%+v %v %v", rep.Progress, rep.DamagedRows, err)
	}
	onlyNew, _ := envelope.NewLocalProvider(newKey)
	e2, _ := envelope.New(envelope.Config{Provider: onlyNew})
	col2, _ := e2.Column("payees", "iban", envelope.Context{"tenant": "acme"})
	for id, v := range values(t, ctx, conn) {
		got, err := col2.Decrypt(ctx, id, *v)
		if err != nil || string(got) != "IBAN-"+id {
			t.Fatalf("row %s under the new key: %v", id, err)
		}
	}
}
