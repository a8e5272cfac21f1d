package main

import (
	"context"
	"errors"
	"io"
)

func cmdLocal(ctx context.Context, args []string, out io.Writer) error {
	return errors.New("local: not yet available")
}

func cmdInvoke(ctx context.Context, args []string, out io.Writer) error {
	return errors.New("invoke: not yet available")
}
