package bench

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"
)

// The corpus of bench catalog: made-up documents on made-up topics, and a
// made-up embedding model, both deterministic, so that a run measures the
// catalog and not a model, and two runs measure the same thing.
//
// Each of corpusTopics topics has its own vocabulary of invented words. A
// chunk is 100 to 150 words in sentences: about 55% drawn from its topic's
// vocabulary (skewed, as word frequencies are), 5% from other topics and
// the rest common English words (stop words, which the full-text analysis
// drops, and a few content words every chunk shares). A document is one
// Markdown section a chunk, mostly on the document's topic.
//
// The embedding of a text is the mean of the centroids of the topics its
// words belong to, plus Gaussian noise of length about 1.2 drawn from a
// hash of the text, normalised: two chunks of a topic have a cosine near
// 0.4, of two topics near 0, as sentence-embedding models give for related
// and unrelated text (the vector package's tests use the same shape). A
// query is embedded the same way, so vector search finds its topic.

// Sizes of the corpus.
const (
	corpusTopics     = 200
	corpusTopicWords = 60
	corpusDims       = 384
	corpusMinWords   = 100
	corpusMaxWords   = 150
	// corpusNoise is the noise's standard deviation per component:
	// a length of about 1.2 over corpusDims components.
	corpusNoise = 1.2 / 19.595917942265423 // √384
)

// corpusCommon are the words every topic uses: stop words and a few
// content words found in every chunk, whose postings are long.
var corpusCommon = strings.Fields(`the of and a to in is it that for on with as by this from at
be are was or an which its their also when these into than more most some such each other all
can may will one two many part way used system form time work found made known often called first
new only well both after`)

// corpusQueryFrame are the words every query starts with.
var corpusQueryFrame = []string{"what", "does", "the"}

// corpusContent are the common words a query may use that are not stop words.
var corpusContent = strings.Fields(`part way used system form time work found made known often called first new`)

// corpus generates the documents, queries and embeddings of a run.
type corpus struct {
	seed      uint64
	vocab     [][]string     // each topic's words
	topicOf   map[string]int // a topic word's topic
	centroids [][]float32    // each topic's unit centroid
}

// drawer draws a document's or a query's words.
type drawer struct {
	*rand.Rand
	topicWord, commonWord *rand.Zipf
}

// newDrawer draws from the stream (seed, stream). Word ranks follow
// Zipf's law (s = 1.1), rank 0 the most frequent.
func newDrawer(seed, stream uint64) *drawer {
	r := rand.New(rand.NewPCG(seed, stream))
	return &drawer{
		Rand:       r,
		topicWord:  rand.NewZipf(r, 1.1, 1, corpusTopicWords-1),
		commonWord: rand.NewZipf(r, 1.1, 1, uint64(len(corpusCommon)-1)),
	}
}

func (d *drawer) topic(c *corpus, t int) string { return c.vocab[t][d.topicWord.Uint64()] }

func (d *drawer) common() string { return corpusCommon[d.commonWord.Uint64()] }

func newCorpus(seed uint64) *corpus {
	r := rand.New(rand.NewPCG(seed, 0x636f72707573))
	c := &corpus{seed: seed, topicOf: map[string]int{}}
	taken := map[string]bool{}
	for _, w := range corpusCommon {
		taken[w] = true
	}
	c.vocab = make([][]string, corpusTopics)
	for t := range c.vocab {
		for len(c.vocab[t]) < corpusTopicWords {
			w := inventWord(r)
			if taken[w] {
				continue
			}
			taken[w] = true
			c.vocab[t] = append(c.vocab[t], w)
			c.topicOf[w] = t
		}
	}
	c.centroids = make([][]float32, corpusTopics)
	for t := range c.centroids {
		v := make([]float32, corpusDims)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		normalize(v)
		c.centroids[t] = v
	}
	return c
}

// Syllables of invented words. A word ends in one of the codas, so that no
// word is an English stop word.
var (
	wordOnsets = strings.Fields("b c d f g k l m n p r s t v z br cr dr gl pl st tr sk")
	wordVowels = strings.Fields("a e i o u ai ou ea")
	wordCodas  = strings.Fields("n r l x m k")
)

// inventWord makes a word of two syllables and a coda: "kaloven".
func inventWord(r *rand.Rand) string {
	var b strings.Builder
	for range 2 {
		b.WriteString(wordOnsets[r.IntN(len(wordOnsets))])
		b.WriteString(wordVowels[r.IntN(len(wordVowels))])
	}
	b.WriteString(wordCodas[r.IntN(len(wordCodas))])
	return b.String()
}

// corpusDoc is document i of the corpus, of n chunks.
type corpusDoc struct {
	path, title string
	data        []byte
}

// doc generates document i with n sections, each a chunk's text.
func (c *corpus) doc(i, n int) corpusDoc {
	r := newDrawer(c.seed, uint64(i))
	topic := (i * 7919) % corpusTopics
	var b strings.Builder
	for s := range n {
		t := topic
		if r.IntN(5) == 0 {
			t = r.IntN(corpusTopics)
		}
		fmt.Fprintf(&b, "## Part %d\n\n", s+1)
		c.paragraph(&b, r, t, corpusMinWords+r.IntN(corpusMaxWords-corpusMinWords+1))
		b.WriteString("\n\n")
	}
	return corpusDoc{
		path:  fmt.Sprintf("corpus/topic%03d/doc%06d.md", topic, i),
		title: fmt.Sprintf("Document %d on topic %d", i, topic),
		data:  []byte(b.String()),
	}
}

// paragraph writes words words on topic t in sentences of 6 to 14 words.
func (c *corpus) paragraph(b *strings.Builder, r *drawer, t, words int) {
	left := 0
	for w := range words {
		var word string
		switch p := r.IntN(100); {
		case p < 55:
			word = r.topic(c, t)
		case p < 60:
			word = r.topic(c, r.IntN(corpusTopics))
		default:
			word = r.common()
		}
		if left == 0 {
			if w > 0 {
				b.WriteString(". ")
			}
			left = 6 + r.IntN(9)
			word = strings.ToUpper(word[:1]) + word[1:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(word)
		left--
	}
	b.WriteByte('.')
}

// query generates query i: a question with two to four words of a topic,
// sometimes one of a second topic, sometimes a common content word.
func (c *corpus) query(i int) string {
	r := newDrawer(c.seed^0x7175657279, uint64(i))
	t := r.IntN(corpusTopics)
	words := slices.Clone(corpusQueryFrame)
	seen := map[string]bool{}
	for n := 2 + r.IntN(3); len(seen) < n; {
		w := r.topic(c, t)
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	if r.IntN(5) == 0 {
		words = append(words, "and", r.topic(c, r.IntN(corpusTopics)))
	}
	if r.IntN(2) == 0 {
		words = append(words, "in", corpusContent[r.IntN(len(corpusContent))])
	}
	return strings.Join(words, " ")
}

// embed is the corpus's embedding model: the mean of the centroids of the
// topics of text's words, plus noise drawn from a hash of text, as a unit
// vector. A text with no topic word is noise alone.
func (c *corpus) embed(text string) []float32 {
	v := make([]float32, corpusDims)
	counts := map[int]int{}
	total := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(text), notLetter) {
		if t, ok := c.topicOf[w]; ok {
			counts[t]++
			total++
		}
	}
	for t, n := range counts {
		f := float32(n) / float32(total)
		for i, x := range c.centroids[t] {
			v[i] += f * x
		}
	}
	h := fnv.New64a()
	h.Write([]byte(text))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x656d626564))
	for i := range v {
		v[i] += float32(r.NormFloat64() * corpusNoise)
	}
	normalize(v)
	return v
}

func notLetter(r rune) bool { return !unicode.IsLetter(r) }

// normalize scales v to unit length.
func normalize(v []float32) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return
	}
	s := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= s
	}
}
