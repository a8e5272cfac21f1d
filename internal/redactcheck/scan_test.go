package redactcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The scanner's rule. A type can hold a secret when a secret is reachable
// from it the way the standard library's printers reach data:
//
//   - reachable: the type is, or reaches, one of the redaction types
//     (pkg/redact Bytes and String, and their aliases rotation.SecretValue,
//     envelope.Secret, apikey.Key) or a standard-library private key
//     (secretForeign), or a field whose name says secret (secretName) and
//     whose type can carry raw secret text or bytes (string, []byte,
//     [N]byte, json.RawMessage, or a slice, array, map or pointer of those);
//   - the way printers reach: fmt prints every field, exported or not,
//     through struct values, arrays, slices and maps (and interfaces,
//     whose dynamic values the scanner cannot see); below the
//     top level it prints a pointer as an address for verbs valid for
//     pointers, but for %s or %q it prints the pointee once more, one level
//     deep, with every String, Format and GoString method switched off (its
//     "%!s(*T=&{…})" form). fmt also calls no method on a value reached
//     through an unexported field, so a redaction type there prints its
//     raw bytes: a struct holding one in an unexported field needs a Format
//     of its own. encoding/json (and so slog's JSON handler) follows
//     exported fields only, through pointers too, and calls their methods.
//     A path counts when either printer follows all of it.
//
// The rule is about what a value can carry, not about how it prints: a type
// that redacts itself is still found, and the table proves it redacts.
// Fields of interface type are not followed, except the private-key
// interfaces in secretForeign; channels and functions are not printed.
// Fields listed in notSecret are skipped, each with its reason. Only
// importable packages are scanned: package main and test files are not. A
// secret in a field whose name and type say neither (a "b []byte") is not
// found: hold secrets in the redaction types, so the source says what they
// are and this scanner sees them.

// secretNameParts are lower-case substrings of a field name that say the
// field holds a secret.
var secretNameParts = []string{
	"password", "passwd", "secret", "private", "pepper", "plaintext",
	"rotationtoken", "sessiontoken", "accesstoken", "bearer", "credential",
	"apikey", "hmackey", "signingkey", "datakey", "masterkey",
}

// notIdentifiers are lower-case suffixes of a field name that name or point
// at a secret rather than hold it (SecretID, SecretARN, PepperFingerprint).
var notIdentifiers = []string{"id", "ids", "arn", "arns", "name", "names", "fingerprint", "ref", "refs", "url", "path"}

// notCiphertext are lower-case prefixes of a field name that say it holds a
// sealed (encrypted) value, which is not a secret (EncryptedDataKey).
var notCiphertext = []string{"encrypted", "sealed", "wrapped"}

// notSecret are fields whose names match the rule but hold no secret, keyed
// "pkg/path.Type.field" relative to the module.
var notSecret = map[string]string{
	"pkg/jwks.SigningKey.PrivateKey":      "the PKCS #8 key sealed with pkg/envelope (text form env1:…); opening it needs the sealing key",
	"pkg/envelope.PreparedContext.encKey": "a cache key made of the canonical (public) encryption context",
}

// secretName reports whether a field name says secret. Besides the parts
// above, a name that is or ends in "key" or "keys" counts when the field
// holds bytes (raw key material); a string named ...Key is usually an id or
// an ARN.
func secretName(name string, bytesType bool) bool {
	n := strings.ToLower(name)
	for _, p := range notIdentifiers {
		if strings.HasSuffix(n, p) {
			return false
		}
	}
	for _, p := range notCiphertext {
		if strings.HasPrefix(n, p) {
			return false
		}
	}
	for _, p := range secretNameParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return bytesType && (strings.HasSuffix(n, "key") || strings.HasSuffix(n, "keys"))
}

// secretForeign are types outside the module that hold private keys or
// secret values (the AWS SDK's types print every field). Other types from
// outside the module are not followed.
var secretForeign = map[string]bool{
	"crypto/rsa.PrivateKey": true, "crypto/ecdsa.PrivateKey": true,
	"crypto/ed25519.PrivateKey": true, "crypto/ecdh.PrivateKey": true,
	"crypto.PrivateKey": true, "crypto.Signer": true, "crypto.Decrypter": true,
	sm + ".GetSecretValueOutput": true, sm + ".PutSecretValueInput": true,
	sm + ".CreateSecretInput": true, sm + ".UpdateSecretInput": true,
	sm + "/types.SecretValueEntry": true,
	kms + ".DecryptOutput":         true, kms + ".GenerateDataKeyOutput": true,
}

const (
	sm  = "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	kms = "github.com/aws/aws-sdk-go-v2/service/kms"
)

const module = "github.com/rotation-suite/rotation"

// redactionTypes are the roots of the rule.
var redactionTypes = map[string]bool{
	module + "/pkg/redact.Bytes":  true,
	module + "/pkg/redact.String": true,
}

type pkgInfo struct {
	path  string
	name  string
	types map[string]*ast.TypeSpec
	// imports of the file each type is declared in: local name → path.
	imports map[string]map[string]string
}

type scanner struct {
	pkgs map[string]*pkgInfo
	memo map[string]string // mode "|" "path.Type" → why it holds a secret ("" if not)
	busy map[string]bool
}

// mode is the printer a path is followed for.
type mode int

const (
	viaFmt        mode = iota // every field, one pointer hop left
	viaFmtPointed             // every field, below a followed pointer
	viaJSON                   // exported fields, through pointers
)

// moduleRoot finds the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// scan parses every non-test file of every package under pkg/, functions/
// and internal/.
func scan(t *testing.T) *scanner {
	t.Helper()
	root := moduleRoot(t)
	s := &scanner{pkgs: map[string]*pkgInfo{}, memo: map[string]string{}, busy: map[string]bool{}}
	fset := token.NewFileSet()
	for _, top := range []string{"pkg", "functions", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			if f.Name.Name == "main" {
				return nil
			}
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			ip := module + "/" + filepath.ToSlash(rel)
			pi := s.pkgs[ip]
			if pi == nil {
				pi = &pkgInfo{path: ip, name: f.Name.Name, types: map[string]*ast.TypeSpec{}, imports: map[string]map[string]string{}}
				s.pkgs[ip] = pi
			}
			imps := map[string]string{}
			for _, im := range f.Imports {
				path, _ := strconv.Unquote(im.Path.Value)
				name := path[strings.LastIndex(path, "/")+1:]
				if im.Name != nil {
					name = im.Name.Name
				}
				imps[name] = path
			}
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, sp := range gd.Specs {
					ts := sp.(*ast.TypeSpec)
					pi.types[ts.Name.Name] = ts
					pi.imports[ts.Name.Name] = imps
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// holds returns why the named type can hold a secret for printer m, or "".
func (s *scanner) holds(pkgPath, name string, m mode) string {
	key := pkgPath + "." + name
	if redactionTypes[key] || secretForeign[key] {
		return "is " + strings.TrimPrefix(key, module+"/")
	}
	mk := strconv.Itoa(int(m)) + "|" + key
	if r, ok := s.memo[mk]; ok {
		return r
	}
	pi := s.pkgs[pkgPath]
	if pi == nil || pi.types[name] == nil || s.busy[mk] {
		return ""
	}
	s.busy[mk] = true
	defer delete(s.busy, mk)
	r := s.expr(pi, name, pi.types[name].Type, m)
	s.memo[mk] = r
	return r
}

// expr returns why a type expression in the declaration of type owner can
// hold a secret for printer m, or "".
func (s *scanner) expr(pi *pkgInfo, owner string, e ast.Expr, m mode) string {
	imps := pi.imports[owner]
	switch e := e.(type) {
	case *ast.Ident:
		return s.holds(pi.path, e.Name, m)
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok || imps[x.Name] == "" {
			return ""
		}
		path := imps[x.Name]
		if r := s.holds(path, e.Sel.Name, m); r != "" {
			return "via " + x.Name + "." + e.Sel.Name + " (" + r + ")"
		}
	case *ast.StarExpr:
		switch m {
		case viaFmt:
			return s.expr(pi, owner, e.X, viaFmtPointed)
		case viaFmtPointed:
			return "" // printed as an address
		}
		return s.expr(pi, owner, e.X, m)
	case *ast.ParenExpr:
		return s.expr(pi, owner, e.X, m)
	case *ast.ArrayType:
		return s.expr(pi, owner, e.Elt, m)
	case *ast.MapType:
		if r := s.expr(pi, owner, e.Key, m); r != "" {
			return r
		}
		return s.expr(pi, owner, e.Value, m)
	case *ast.IndexExpr: // a generic instance: the type and its argument
		if r := s.expr(pi, owner, e.X, m); r != "" {
			return r
		}
		return s.expr(pi, owner, e.Index, m)
	case *ast.StructType:
		for _, f := range e.Fields.List {
			if m == viaJSON && len(f.Names) > 0 && !ast.IsExported(f.Names[0].Name) {
				continue
			}
			if len(f.Names) == 1 {
				if _, skip := notSecret[strings.TrimPrefix(pi.path, module+"/")+"."+owner+"."+f.Names[0].Name]; skip {
					continue
				}
			}
			if r := s.expr(pi, owner, f.Type, m); r != "" {
				return "field " + fieldName(f) + " " + r
			}
			if raw, isBytes := rawSecretCarrier(imps, f.Type, m); raw {
				for _, n := range f.Names {
					if secretName(n.Name, isBytes) {
						return "field " + n.Name + " is named for a secret"
					}
				}
			}
		}
	}
	return ""
}

func fieldName(f *ast.Field) string {
	if len(f.Names) > 0 {
		return f.Names[0].Name
	}
	return "(embedded)"
}

// rawSecretCarrier reports whether a type expression can carry raw secret
// text or bytes that printer m reaches, and whether it is bytes
// (json.RawMessage counts as text).
func rawSecretCarrier(imps map[string]string, e ast.Expr, m mode) (raw, isBytes bool) {
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "string":
			return true, false
		case "byte":
			return true, true
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && imps[x.Name] == "encoding/json" && e.Sel.Name == "RawMessage" {
			return true, false
		}
	case *ast.StarExpr:
		if m == viaFmtPointed {
			return false, false
		}
		return rawSecretCarrier(imps, e.X, m)
	case *ast.ArrayType:
		return rawSecretCarrier(imps, e.Elt, m)
	case *ast.MapType:
		return rawSecretCarrier(imps, e.Value, m)
	}
	return false, false
}

// found lists every exported type that can hold a secret, with its reason,
// keyed "pkg/path.Type" relative to the module.
func (s *scanner) found() map[string]string {
	out := map[string]string{}
	paths := make([]string, 0, len(s.pkgs))
	for p := range s.pkgs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for name := range s.pkgs[p].types {
			if !ast.IsExported(name) {
				continue
			}
			if r := s.holds(p, name, viaFmt); r != "" {
				out[strings.TrimPrefix(p, module+"/")+"."+name] = "fmt: " + r
			} else if r := s.holds(p, name, viaJSON); r != "" {
				out[strings.TrimPrefix(p, module+"/")+"."+name] = "json: " + r
			}
		}
	}
	return out
}
