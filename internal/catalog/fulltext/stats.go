package fulltext

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/blevesearch/bleve/v2"
)

// formatVersion changes when what this package writes changes (fields,
// analysis, the stats record); Open reports an index of another version as
// damaged, so that the caller rebuilds it.
const formatVersion = 1

// statsKey is the bleve internal key of the stats record.
const statsKey = "batos.fulltext"

// stats is this package's record in the index, written in the same batch
// as the entries it counts.
type stats struct {
	Version int `json:"version"`
	// Gen counts the batches; Open compares the newest snapshot's with
	// the one scorch loaded, which falls back to an older snapshot when
	// the newest cannot be read.
	Gen   uint64 `json:"generation"`
	Docs  uint64 `json:"docs"`
	Title uint64 `json:"title_tokens"` // tokens in all Titles, after analysis
	Text  uint64 `json:"text_tokens"`  // tokens in all Texts, after analysis
}

func (s *stats) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of numbers always encodes
	}
	return b
}

// add counts an entry in (sign 1) or out (sign -1).
func (s *stats) add(sign int, n lengths) {
	if sign > 0 {
		s.Docs++
		s.Title += uint64(n.title)
		s.Text += uint64(n.text)
		return
	}
	// Guard the counts against underflow: a damaged total must not wrap
	// into a huge average length.
	s.Docs -= min(s.Docs, 1)
	s.Title -= min(s.Title, uint64(n.title))
	s.Text -= min(s.Text, uint64(n.text))
}

// loadStats reads the stats record of bi and checks it against the entry
// count.
func loadStats(bi bleve.Index) (*stats, error) {
	b, err := bi.GetInternal([]byte(statsKey))
	if err != nil {
		return nil, fmt.Errorf("read stats: %w", err)
	}
	st, err := decodeStats(b)
	if err != nil {
		return nil, err
	}
	n, err := bi.DocCount()
	if err != nil {
		return nil, fmt.Errorf("count entries: %w", err)
	}
	if n != st.Docs {
		return nil, fmt.Errorf("%d entries, the stats record counts %d", n, st.Docs)
	}
	return st, nil
}

func decodeStats(b []byte) (*stats, error) {
	if b == nil {
		return nil, errors.New("no stats record (not made by this package, or its creation was cut short)")
	}
	var st stats
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("stats record: %w", err)
	}
	if st.Version != formatVersion {
		return nil, fmt.Errorf("format version %d, want %d", st.Version, formatVersion)
	}
	return &st, nil
}
