// Package fnmain is the wiring every rotation function's main shares: it logs
// the start-up line with the build's version, reads
// the common environment (LOG_LEVEL, SNS_TOPIC_ARN), loads the AWS
// configuration (which honours AWS_ENDPOINT_URL for the local stack), builds
// the Secrets Manager client and the SNS notifier, lets the function build its
// strategy, and hands the engine to the Lambda runtime. A configuration error
// is logged once at start-up and returned, classified, by every invocation, so
// the rotation fails clearly instead of the runtime crash-looping.
package fnmain

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/rotation-suite/rotation/internal/buildinfo"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Deps is what a function's strategy builder gets.
type Deps struct {
	AWS     aws.Config
	Secrets *secretsmanager.Client
	Logger  *slog.Logger
	Getenv  func(string) string
}

// Builder builds a function's strategy from its environment. Return a
// *rotation.Error of ClassConfiguration for bad settings.
type Builder func(ctx context.Context, d Deps) (rotation.Strategy, error)

// Logger returns the JSON logger at LOG_LEVEL (debug, info, warn, error).
func Logger(getenv func(string) string) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(getenv("LOG_LEVEL")) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: lvl}))
}

// NewHandler builds the engine for a function. On a configuration error it
// logs it once and returns a handler that fails every invocation with it.
func NewHandler(ctx context.Context, build Builder, getenv func(string) string) lambda.Handler {
	log := Logger(getenv)
	log.Info("rotation function starting", "version", buildinfo.Version(), "function", getenv("AWS_LAMBDA_FUNCTION_NAME"))
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return failing(log, rotation.NewError(rotation.ClassConfiguration, "load AWS configuration", "the AWS SDK configuration could not be loaded", err))
	}
	sm := secretsmanager.NewFromConfig(cfg)
	strategy, err := build(ctx, Deps{AWS: cfg, Secrets: sm, Logger: log, Getenv: getenv})
	if err != nil {
		return failing(log, err)
	}
	var notifier rotation.Notifier
	if topic := getenv("SNS_TOPIC_ARN"); topic != "" {
		notifier = &rotation.SNSNotifier{Client: sns.NewFromConfig(cfg), TopicARN: topic}
	}
	eng, err := rotation.New(rotation.Config{Secrets: sm, Strategy: strategy, Notifier: notifier, Logger: log, Metrics: os.Stdout})
	if err != nil {
		return failing(log, err)
	}
	return eng
}

// Run is main for a rotation function.
func Run(build Builder) {
	lambda.Start(NewHandler(context.Background(), build, os.Getenv))
}

func failing(log *slog.Logger, err error) lambda.Handler {
	log.Error("configuration error: every rotation will fail until it is fixed", "error", err.Error(), "errorClass", string(rotation.ClassOf(err)))
	return failingHandler{err}
}

type failingHandler struct{ err error }

func (f failingHandler) Invoke(context.Context, []byte) ([]byte, error) { return nil, f.err }
