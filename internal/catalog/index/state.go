package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"batos/internal/store"
)

// stateFormat is the version of state.json's layout; another version is
// rebuilt rather than read.
const stateFormat = 1

// Files in the index directory.
const (
	stateFile   = "state.json"
	textDir     = "text"
	vectorsFile = "vectors"
)

// state is what the indexes hold, as of LastTID: enough to apply the
// changes of later transactions without reading the indexes back.
type state struct {
	Format  int       `json:"format"`
	LastTID store.TID `json:"last_tid"`
	// Model is the embedding model whose vectors the vector index holds
	// ("": none); Dims their width.
	Model string `json:"model"`
	Dims  int    `json:"dims"`
	// Docs are the documents indexed, by ID.
	Docs map[string]*docState `json:"docs"`
	// Methods are the selectors indexed, by the object holding them.
	Methods map[store.OID][]string `json:"methods"`
}

type docState struct {
	OID    store.OID         `json:"oid"`
	Serial store.TID         `json:"serial"`
	Title  string            `json:"title"`
	Path   string            `json:"path"`
	Meta   map[string]string `json:"meta,omitempty"`
	Chunks []store.OID       `json:"chunks"`
	// Vectors reports that the chunks are in the vector index.
	Vectors bool `json:"vectors,omitempty"`
	// Broken is why the document could not be indexed (a catalog object
	// edited by hand into a shape the catalog cannot read); it is tried
	// again when the document or one of Listed changes.
	Broken string `json:"broken,omitempty"`
	// Listed are the chunks a broken document lists, none of them
	// indexed (Chunks is empty).
	Listed []store.OID `json:"listed,omitempty"`
}

func newState(model string) *state {
	return &state{Format: stateFormat, Model: model, Docs: map[string]*docState{}, Methods: map[store.OID][]string{}}
}

// errNoState is readState's error when there is no state file.
var errNoState = errors.New(NoIndexYet)

// NoIndexYet is the reason a first build gives (Report.Reason): no news,
// unlike the rebuild of an index that was there.
const NoIndexYet = "no index yet"

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoState
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", stateFile, err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("%s has format %d, this batos writes %d", stateFile, st.Format, stateFormat)
	}
	if st.Docs == nil {
		st.Docs = map[string]*docState{}
	}
	for id, d := range st.Docs {
		if d == nil {
			return nil, fmt.Errorf("%s is damaged: document %q is null", stateFile, id)
		}
	}
	if st.Dims < 0 {
		return nil, fmt.Errorf("%s is damaged: %d dimensions", stateFile, st.Dims)
	}
	if st.Methods == nil {
		st.Methods = map[store.OID][]string{}
	}
	return &st, nil
}

// writeState replaces the state file atomically: a crash leaves the old
// one or the new one.
func writeState(dir string, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), b)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
