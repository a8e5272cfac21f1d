package testenv

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

var (
	buildDirOnce sync.Once
	buildDir     string
	buildDirErr  error

	buildMu    sync.Mutex
	buildCache = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// binDir is the process's directory for built binaries, removed by Main.
func binDir() (string, error) {
	buildDirOnce.Do(func() {
		buildDir, buildDirErr = os.MkdirTemp("", "testenv-bin-*")
		if buildDirErr == nil {
			dir := buildDir
			onStop(func() { os.RemoveAll(dir) })
		}
	})
	return buildDir, buildDirErr
}

// cachedBuild runs build once per key per process.
func cachedBuild(key string, build func(out string) error, name string) (string, error) {
	buildMu.Lock()
	r, ok := buildCache[key]
	if !ok {
		r = &buildResult{}
		buildCache[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() {
		dir, err := binDir()
		if err != nil {
			r.err = err
			return
		}
		sub, err := os.MkdirTemp(dir, name+"-*")
		if err != nil {
			r.err = err
			return
		}
		out := filepath.Join(sub, name)
		if err := build(out); err != nil {
			r.err = err
			return
		}
		r.path = out
	})
	return r.path, r.err
}

func goTool() (string, error) {
	// go test puts $GOROOT/bin first on the test binary's PATH.
	p, err := exec.LookPath("go")
	if err != nil {
		return "", &MissingError{What: "the go command", Fix: "install Go 1.26 from https://go.dev/dl/ and put it on PATH"}
	}
	return p, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// goBuildEnv is the environment for building a static binary for goos/goarch:
// the caller's environment without its GOOS, GOARCH, CGO_ENABLED and GOFLAGS.
func goBuildEnv(goos, goarch string) []string {
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "GOOS="), strings.HasPrefix(kv, "GOARCH="),
			strings.HasPrefix(kv, "CGO_ENABLED="), strings.HasPrefix(kv, "GOFLAGS="):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
}

// goBuild is `go build args` run in dir (relative to the module root) with env.
func goBuild(dir string, env []string, args ...string) (*exec.Cmd, error) {
	gobin, err := goTool()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(gobin, append([]string{"build"}, args...)...)
	cmd.Dir = filepath.Join(root, dir)
	cmd.Env = env
	return cmd, nil
}

// BuildLambda builds the Lambda function package pkgPath (relative to the
// module root, like "./functions/dbrotate", or a full import path) into out
// the way Lambda's provided.al2023 runtime needs it — CGO_ENABLED=0, -tags
// lambda.norpc, -trimpath, stripped — for goos/goarch, as the Makefile's
// build targets do.
func BuildLambda(pkgPath, goos, goarch, out string) error {
	cmd, err := goBuild("", goBuildEnv(goos, goarch), "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkgPath)
	if err != nil {
		return err
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: build %s for %s/%s: %v\n%s", pkgPath, goos, goarch, err, bytes.TrimSpace(b))
	}
	return nil
}

// BuildBootstrap builds pkgPath with BuildLambda for the host GOOS/GOARCH, so
// that RIE can run it here. It returns the absolute path of the binary, built
// once per process per package and removed by Main.
func BuildBootstrap(pkgPath string) (string, error) {
	return cachedBuild("bootstrap:"+pkgPath, func(out string) error {
		return BuildLambda(pkgPath, runtime.GOOS, runtime.GOARCH, out)
	}, "bootstrap")
}

// buildTool builds the command module pinned in tools/go.mod (once per
// process) as name and returns its path; a failed build is a MissingError
// whose fix downloads fixModule.
func buildTool(name, module, fixModule string) (string, error) {
	return cachedBuild(name, func(out string) error {
		cmd, err := goBuild("tools", append(goBuildEnv(runtime.GOOS, runtime.GOARCH), "GOWORK=off"), "-trimpath", "-o", out, module)
		if err != nil {
			return err
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return &MissingError{
				What: fmt.Sprintf("%s (go build in tools/ failed: %v: %s)", name, err, lastLine(b)),
				Fix:  "cd tools && go mod download " + fixModule,
			}
		}
		return nil
	}, name)
}

// DeploymentZip is a Lambda deployment package: bootstrap alone, mode 0755,
// in a deflated zip, as `make build` packs it.
func DeploymentZip(bootstrap []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bootstrap); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
