package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
)

// TestMain lets the test binary serve as the cold-load child of RunStore:
// run as "-image PATH bench coldload -slot SLOT", it is ColdLoad.
func TestMain(m *testing.M) {
	if a := os.Args[1:]; len(a) == 6 && a[0] == "-image" && a[2] == "bench" && a[3] == "coldload" && a[4] == "-slot" {
		if err := ColdLoad(context.Background(), a[1], a[5], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// decodeOneObject decodes b as exactly one JSON object.
func decodeOneObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode output: %v\n%s", err, b)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Fatalf("output has more than one JSON value (%v):\n%s", err, b)
	}
	return m
}
