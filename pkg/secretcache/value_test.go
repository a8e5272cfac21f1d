package secretcache

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueRedactsItselfAlsoWhenCopied(t *testing.T) {
	v := NewValue("arn:x", "v1", []byte("hunter2"))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", *v, "p", v)
	s := fmt.Sprintf("%v %+v %#v %s %x %q %v %+v %#v", *v, *v, *v, v, v, v, v, v, v) + buf.String() + fmt.Sprint((*Value)(nil))
	if strings.Contains(s, "hunter2") || strings.Contains(s, fmt.Sprintf("%x", "hunter2")) {
		t.Fatal(s)
	}
}
