package pgpool_test

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/pkg/pgpool"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// A service's database pool on the secret dbrotate rotates. It needs AWS
// credentials and a database, so it only runs with DB_SECRET_ARN set;
// TestZeroDowntime in functions/dbrotate/pgstrategy runs this wiring under 100
// rotations.
func ExampleNew() {
	secretARN := os.Getenv("DB_SECRET_ARN")
	if secretARN == "" {
		return
	}
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		panic(err)
	}
	cache, err := secretcache.New(secretcache.Config{Client: secretsmanager.NewFromConfig(awsCfg)})
	if err != nil {
		panic(err)
	}
	base, _ := pgxpool.ParseConfig("pool_max_conns=10")
	pool, err := pgpool.New(ctx, pgpool.Config{Cache: cache, SecretID: secretARN, Base: base})
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		panic(err) // a 28P01 refusal was already healed or it is reported here
	}
}
