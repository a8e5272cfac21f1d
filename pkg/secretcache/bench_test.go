package secretcache_test

import (
	"context"
	"testing"
)

// BenchmarkGetHit is the request path of every consumer: a loaded, fresh
// value, read lock-free.
func BenchmarkGetHit(b *testing.B) {
	src := newSource()
	arn := src.create(b, "bench/hit", "v1")
	c := newCache(b, src, nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, arn); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, arn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, arn); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
