package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

const localKMSModule = "github.com/nsmithuk/local-kms"

// LocalKMS is a running local-kms server: a second, independent
// implementation of the KMS API (moto is the first), for tests that must
// hold on both.
//
// local-kms cannot be told which address to bind: it listens on every
// interface of the port in PORT. It is started with PORT=0, so the kernel
// picks a free port (no race with other tests for a port chosen in advance),
// the port is read from its start-up log line, and clients connect to
// 127.0.0.1 only. Its keys are throwaway test keys in a temporary data
// directory that Stop removes.
type LocalKMS struct {
	Endpoint string // http://127.0.0.1:PORT
	proc     *Process
	dataDir  string
	logs     *Buffer
}

// LocalKMSBinary builds local-kms at the version pinned in tools/go.mod
// (once per process) and returns its path.
func LocalKMSBinary() (string, error) {
	return buildTool("local-kms", localKMSModule, localKMSModule)
}

var localKMSStarted = regexp.MustCompile(`Local KMS started on [0-9.:\[\]]*:(\d+)`)

// StartLocalKMS starts local-kms and waits until it answers.
func StartLocalKMS() (*LocalKMS, error) {
	bin, err := LocalKMSBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "local-kms-*")
	if err != nil {
		return nil, err
	}
	l := &LocalKMS{dataDir: dir, logs: &Buffer{}}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0", "KMS_REGION="+Region, "KMS_ACCOUNT_ID="+Account, "KMS_DATA_PATH="+dir)
	cmd.Stdout, cmd.Stderr = l.logs, l.logs
	if l.proc, err = StartProcess(cmd); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start local-kms: %w", err)
	}
	err = l.proc.WaitReady(30*time.Second, 50*time.Millisecond, func() error {
		m := localKMSStarted.FindStringSubmatch(l.logs.String())
		if m == nil {
			return errors.New("no start-up line yet")
		}
		l.Endpoint = "http://127.0.0.1:" + m[1]
		return nil
	})
	if err != nil {
		l.Stop()
		return nil, fmt.Errorf("local-kms did not report its port within 30s: %s", lastLine([]byte(l.logs.String())))
	}
	return l, nil
}

// Stop ends the server and removes its data directory.
func (l *LocalKMS) Stop() {
	l.proc.Kill()
	os.RemoveAll(l.dataDir)
}

// Logs returns what the server printed.
func (l *LocalKMS) Logs() string { return strings.TrimSpace(l.logs.String()) }

// AWSConfig returns an SDK configuration aimed at this server.
func (l *LocalKMS) AWSConfig(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	return LocalAWSConfig(ctx, l.Endpoint, opts...)
}

var sharedLocalKMS shared[*LocalKMS]

// SharedLocalKMS returns the package's local-kms server, starting it on
// first use; Main stops it. A failed build skips the test outside CI and
// fails it in CI.
func SharedLocalKMS(t testing.TB) *LocalKMS {
	t.Helper()
	return sharedLocalKMS.get(t, StartLocalKMS, (*LocalKMS).Stop)
}
