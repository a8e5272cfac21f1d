package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/rotation-suite/rotation"

// consumers are the packages an application imports to read rotated secrets.
var consumers = []string{
	"pkg/extcall",
	"pkg/envelope",
	"pkg/envelope/field",
	"pkg/envelope/colmigrate",
	"pkg/blindindex",
	"pkg/jwks",
	"pkg/apikey",
	"pkg/secretcache",
	"pkg/secretcache/sqsinvalidate",
	"pkg/pgsecret",
	"pkg/pgpool",
}

// forbidden are import-path prefixes no consumer package may link: the engine,
// anything above pkg/, and the Lambda runtime.
var forbidden = []string{
	module + "/pkg/rotation",
	module + "/functions/",
	module + "/internal/",
	module + "/cmd/",
	"github.com/aws/aws-lambda-go",
	"github.com/aws/aws-sdk-go-v2/service/sns",
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

func TestConsumerLibrariesLinkNeitherTheRotationEngineNorTheLambdaRuntime(t *testing.T) {
	for _, p := range consumers {
		for _, d := range deps(t, p) {
			for _, f := range forbidden {
				if d == strings.TrimSuffix(f, "/") || strings.HasPrefix(d, f) {
					t.Errorf("%s links %s", p, d)
				}
			}
		}
	}
}

func TestTheCallHookPackageIsALeafOfTheStandardLibrary(t *testing.T) {
	for _, d := range deps(t, "pkg/extcall") {
		if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && d != module+"/pkg/extcall" {
			t.Errorf("pkg/extcall links %s", d)
		}
	}
}
