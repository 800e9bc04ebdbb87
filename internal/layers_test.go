// Package internal_test checks the architecture's one rule: dependencies
// point down only (DESIGN.md, "Architecture").
package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers lists the architecture from top to bottom. A package may import
// packages of lower layers, and a subpackage may import its parent
// (store/bolt imports store), never the other way.
var layers = []string{
	"cmd/batos",
	"internal/bench",
	"internal/uvm",
	"internal/zmqbridge", "internal/httpapi", "internal/webui",
	"internal/protocol", // the commands as plain data, under every transport
	"internal/command",
	"internal/heartbeat",
	"internal/cycle",
	"internal/catalog/library",
	"internal/catalog/index",
	"internal/catalog/fulltext", "internal/catalog/vector", "internal/catalog/embed",
	"internal/catalog",
	"internal/mind",
	"internal/llm",
	"internal/vm",
	"internal/image",
	"internal/store/storecopy", // copies between engines, above each of them
	"internal/store",
	"internal/gguf",
	"internal/metrics", // Prometheus collectors, beneath everything they measure
}

// rank gives a package's layer index; peers on one line of DESIGN.md's
// diagram share a rank.
func rank(pkg string) (int, bool) {
	peers := map[string]int{"internal/httpapi": 3, "internal/webui": 3}
	for _, p := range []string{"internal/catalog/vector", "internal/catalog/embed"} {
		peers[p] = slices.Index(layers, "internal/catalog/fulltext")
	}
	for i, l := range layers {
		if pkg == l || strings.HasPrefix(pkg, l+"/") {
			if r, ok := peers[l]; ok {
				return r, true
			}
			return i, true
		}
	}
	return 0, false
}

// soleImporters names the one package allowed to import each outside
// dependency that must stay confined.
var soleImporters = map[string]string{
	"github.com/neurosnap/sentences":         "internal/catalog",
	"github.com/neurosnap/sentences/english": "internal/catalog",
	"github.com/pebbe/zmq4":                  "internal/zmqbridge",
	"github.com/prometheus/...":              "internal/metrics",
	"github.com/blevesearch/...":             "internal/catalog/fulltext",
	"github.com/coder/hnsw":                  "internal/catalog/vector",
	"go.etcd.io/bbolt":                       "internal/store/bolt",
	"go.starlark.net/starlark":               "internal/vm",
	"go.starlark.net/syntax":                 "internal/vm",
}

// soleImporter returns the package allowed to import imp, if it is
// confined: a key ending in "/..." covers every package under it.
func soleImporter(imp string) (string, bool) {
	if owner, ok := soleImporters[imp]; ok {
		return owner, true
	}
	for dep, owner := range soleImporters {
		if prefix, ok := strings.CutSuffix(dep, "..."); ok && strings.HasPrefix(imp, prefix) {
			return owner, true
		}
	}
	return "", false
}

func TestDependenciesPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "batos/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], "batos/")
		from, ok := rank(pkg)
		if !ok {
			if strings.HasPrefix(pkg, "internal/") {
				t.Errorf("package %s is not in the architecture", pkg)
			}
			continue
		}
		for _, imp := range fields[1:] {
			// Each outside dependency lives in one package.
			if owner, ok := soleImporter(imp); ok && pkg != owner {
				t.Errorf("%s imports %s: only %s may", pkg, imp, owner)
			}
			dep, ok := strings.CutPrefix(imp, "batos/")
			if !ok {
				continue
			}
			to, _ := rank(dep)
			subOfDep := strings.HasPrefix(pkg, dep+"/")
			if to < from || (to == from && !subOfDep) {
				t.Errorf("%s imports %s: dependencies must point down", pkg, dep)
			}
		}
	}
}

// TestShippedCodeImportsNoTestPackage checks that no non-test file of
// batos imports a test-helper package (storetest, llmtest, ...), so the
// binary links neither them nor the testing packages they use. A helper
// package may import another.
func TestShippedCodeImportsNoTestPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "batos/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if isTestHelper(fields[0]) {
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "batos/") && isTestHelper(imp) {
				t.Errorf("%s imports %s: shipped code may not import a test package", fields[0], imp)
			}
		}
	}
}

// isTestHelper reports whether pkg's last path element ends in "test".
func isTestHelper(pkg string) bool {
	return strings.HasSuffix(pkg[strings.LastIndex(pkg, "/")+1:], "test")
}

// TestBinaryLinksNoTesting checks that the batos binary links neither
// testing nor net/http/httptest.
func TestBinaryLinksNoTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "batos/cmd/batos").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || dep == "net/http/httptest" {
			t.Errorf("batos links %s", dep)
		}
	}
}
