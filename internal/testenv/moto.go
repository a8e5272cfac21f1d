package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region and Account are what the local stack uses (moto's default account).
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// Moto is a running moto server.
type Moto struct {
	Endpoint string // http://127.0.0.1:PORT
	proc     *Process
	logPath  string
}

const motoFix = "pip install 'moto[server]'  (moto 5.x with its server extras, into the python3 on PATH)"

// StartMoto starts a moto server on a free loopback port and waits until it
// answers. Stop it with Stop (Main does it for servers from SharedMoto).
func StartMoto() (*Moto, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, &MissingError{What: "python3 (for moto)", Fix: "apt-get install -y python3 && " + motoFix}
	}
	if out, err := exec.Command(py, "-c", "import moto.server").CombinedOutput(); err != nil {
		return nil, &MissingError{What: "moto server (" + string(bytes.TrimSpace(lastLine(out))) + ")", Fix: motoFix}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(py, "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	proc, err := StartProcess(cmd)
	logf.Close()
	if err != nil {
		os.Remove(logf.Name())
		return nil, fmt.Errorf("start moto: %w", err)
	}
	m := &Moto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), proc: proc, logPath: logf.Name()}
	err = proc.WaitReady(60*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		log, _ := os.ReadFile(m.logPath)
		m.Stop()
		return nil, fmt.Errorf("moto did not answer on %s within 60s: %s", m.Endpoint, lastLine(log))
	}
	// moto cannot run Lambda functions without Docker: make its invokes no-ops,
	// so RotateSecret with a registered function only creates the placeholder.
	if err := m.post("/moto-api/config", `{"lambda":{"use_docker":false}}`); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func (m *Moto) post(path, body string) error {
	resp, err := http.Post(m.Endpoint+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return fmt.Errorf("moto %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("moto %s: HTTP %d", path, resp.StatusCode)
	}
	return nil
}

// Reset wipes all of moto's state (and restores the no-Docker Lambda setting).
func (m *Moto) Reset() error {
	if err := m.post("/moto-api/reset", ""); err != nil {
		return err
	}
	return m.post("/moto-api/config", `{"lambda":{"use_docker":false}}`)
}

// Stop ends the server and removes its log.
func (m *Moto) Stop() {
	m.proc.Kill()
	os.Remove(m.logPath)
}

// Env returns the environment variables that point an SDK (or a function
// under the runtime emulator) at this server with static test credentials.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// AWSConfig returns an SDK configuration aimed at this server.
func (m *Moto) AWSConfig(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	return LocalAWSConfig(ctx, m.Endpoint, opts...)
}

var sharedMoto shared[*Moto]

// SharedMoto returns the package's moto server, starting it on first use;
// Main stops it. A missing moto skips the test outside CI and fails it in CI.
func SharedMoto(t testing.TB) *Moto {
	t.Helper()
	return sharedMoto.get(t, StartMoto, (*Moto).Stop)
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if filepath.Base(dir) != "tools" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// LocalAWSConfig returns an SDK configuration for a local server at endpoint:
// the test region, static test credentials, and opts applied last.
func LocalAWSConfig(ctx context.Context, endpoint string, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	base := []func(*config.LoadOptions) error{
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(endpoint),
	}
	return config.LoadDefaultConfig(ctx, append(base, opts...)...)
}
