// Package fnmain is the wiring every rotation function's main shares: it logs
// the start-up line with the build's version, reads the common environment
// (LOG_LEVEL, SNS_TOPIC_ARN, AWS_LAMBDA_FUNCTION_NAME), loads the AWS
// configuration (which honours AWS_ENDPOINT_URL for the local stack), builds
// the Secrets Manager client and the SNS notifier, lets the function build its
// strategy, and hands the engine to the Lambda runtime.
//
// A configuration error (the AWS configuration does not load, the strategy
// does not build) is logged once at start-up, and every invocation then fails
// with it, classified, and reports it as a failed step is reported
// (rotation.FailedHandler): the log line, the metric line and, when the SNS
// notifier could be built, the rotation.failed notification. The rotation
// fails visibly instead of the runtime crash-looping.
//
// It owns no rotation logic (pkg/rotation) and no function's settings (each
// function's strategy package).
package fnmain

import (
	"context"
	"io"
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
func Logger(getenv func(string) string) *slog.Logger { return logger(getenv, os.Stdout) }

func logger(getenv func(string) string, out io.Writer) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(getenv("LOG_LEVEL")) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: lvl}))
}

// NewHandler builds the engine for a function. On a configuration error it
// logs it once and returns a handler that fails and reports every
// invocation with it.
func NewHandler(ctx context.Context, build Builder, getenv func(string) string) lambda.Handler {
	return newHandler(ctx, build, getenv, sinks{})
}

// sinks are where the handler writes; zero fields are the Lambda ones.
type sinks struct {
	// out receives the log and the EMF lines; nil: stdout.
	out io.Writer
	// notifier, if set, replaces the SNS notifier SNS_TOPIC_ARN configures.
	notifier func(cfg aws.Config, topic string) rotation.Notifier
}

func newHandler(ctx context.Context, build Builder, getenv func(string) string, s sinks) lambda.Handler {
	if s.out == nil {
		s.out = os.Stdout
	}
	if s.notifier == nil {
		s.notifier = func(cfg aws.Config, topic string) rotation.Notifier {
			return &rotation.SNSNotifier{Client: sns.NewFromConfig(cfg), TopicARN: topic}
		}
	}
	log := logger(getenv, s.out)
	fn := getenv("AWS_LAMBDA_FUNCTION_NAME")
	log.Info("rotation function starting", "version", buildinfo.Version(), "function", fn)
	// The reporter a configuration error is reported through: the metric
	// and the log need nothing, the notification needs the AWS config.
	rep := rotation.Reporter{FunctionName: fn, Logger: log, Metrics: s.out}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return failing(rep, rotation.NewError(rotation.ClassConfiguration, "load AWS configuration", "the AWS SDK configuration could not be loaded", err))
	}
	if topic := getenv("SNS_TOPIC_ARN"); topic != "" {
		rep.Notifier = s.notifier(cfg, topic)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	strategy, err := build(ctx, Deps{AWS: cfg, Secrets: sm, Logger: log, Getenv: getenv})
	if err != nil {
		return failing(rep, err)
	}
	eng, err := rotation.New(rotation.Config{Secrets: sm, Strategy: strategy, Notifier: rep.Notifier, Logger: log, Metrics: s.out, FunctionName: fn})
	if err != nil {
		return failing(rep, err)
	}
	return eng
}

// Run is main for a rotation function.
func Run(build Builder) {
	lambda.Start(NewHandler(context.Background(), build, os.Getenv))
}

// failing logs the configuration error once and returns the handler that
// reports it on every invocation.
func failing(rep rotation.Reporter, err error) lambda.Handler {
	h := rotation.NewFailedHandler(rep, err)
	rep.Logger.Error("configuration error: every rotation will fail until it is fixed", "error", h.Err().Error(), "errorClass", string(rotation.ClassOf(h.Err())))
	return h
}
