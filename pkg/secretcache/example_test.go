package secretcache_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/secretcache"
	"github.com/rotation-suite/rotation/pkg/secretcache/sqsinvalidate"
)

// One cache per process, shared by every consumer. sm is a
// *secretsmanager.Client in a service (here an in-memory stand-in).
func ExampleCache() {
	sm := smfake.New()
	ctx := context.Background()
	out, _ := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("orders/webhook"), SecretString: aws.String("s3cret-v1")})

	cache, err := secretcache.New(secretcache.Config{Client: sm, TTL: 5 * time.Minute})
	if err != nil {
		panic(err)
	}
	v, err := cache.Get(ctx, aws.ToString(out.ARN)) // read once, then from memory
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Text(), strings.Contains(fmt.Sprint(v), "s3cret")) // a Value prints redacted

	// The service's key was refused: a rotation finished since the read.
	sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: out.ARN, SecretString: aws.String("s3cret-v2")})
	time.Sleep(secretcache.DefaultMinRefreshInterval) // Refresh reads at most once per interval
	fresh, err := cache.Refresh(ctx, aws.ToString(out.ARN))
	if err != nil {
		panic(err)
	}
	fmt.Println(fresh.Text(), fresh.VersionID != v.VersionID)
	// Output:
	// s3cret-v1 false
	// s3cret-v2 true
}

// The notification poller runs beside the service for as long as it runs.
func ExampleCache_Invalidate() {
	queue := os.Getenv("ROTATION_QUEUE_URL") // an SQS queue subscribed to the suite's SNS topic
	if queue == "" {
		return
	}
	var sqsClient *sqs.Client // sqs.NewFromConfig(cfg)
	var cache *secretcache.Cache
	p := &sqsinvalidate.Poller{Client: sqsClient, QueueURL: queue, Cache: cache}
	go func() { _ = p.Run(context.Background()) }() // calls cache.Invalidate(secretARN) on rotation.succeeded
}
