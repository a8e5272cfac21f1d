package pgstrategy

import (
	"crypto/x509"
	"embed"
	"fmt"
	"io/fs"
)

// The function carries the public root certificates that Amazon RDS, Aurora
// and RDS Proxy servers chain to, so that sslmode=verify-full works against
// them with no CA in the secret and no file in the deployment package (the
// Lambda base images lack the RDS roots). certs/README.md names the source
// and every certificate's SHA-256 fingerprint.
//
//go:embed certs/rds-root-cas.pem certs/amazon-trust-services-root-cas.pem
var packagedCerts embed.FS

// PackagedBundles are the files of the packaged trust bundle, by path inside
// the package: the RDS regional roots (rds-ca-rsa2048-g1, rds-ca-rsa4096-g1,
// rds-ca-ecc384-g1 in every region the bundle covers) and the Amazon Trust
// Services roots that RDS Proxy's certificates chain to.
var PackagedBundles = []string{"certs/rds-root-cas.pem", "certs/amazon-trust-services-root-cas.pem"}

// packagedFS is where the bundle files are read from: the embedded copy.
// Only this package's tests replace it (export_test.go), to place a test CA
// in the same bundle file the function uses.
var packagedFS fs.FS = packagedCerts

// PackagedRootsPEM returns the packaged trust bundle as PEM.
func PackagedRootsPEM() ([]byte, error) {
	var all []byte
	for _, p := range PackagedBundles {
		b, err := fs.ReadFile(packagedFS, p)
		if err != nil {
			return nil, fmt.Errorf("packaged CA bundle %s: %w", p, err)
		}
		all = append(all, b...)
	}
	return all, nil
}

// addPackagedRoots adds the packaged bundle to pool. The embedded bundle is
// checked by the tests (every certificate parses, is a CA, is unexpired), so
// a failure here is a build defect: it is reported and the pool keeps the
// other roots.
func addPackagedRoots(pool *x509.CertPool) error {
	pem, err := PackagedRootsPEM()
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("the packaged CA bundle holds no PEM certificate")
	}
	return nil
}
