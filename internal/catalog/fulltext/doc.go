// Package fulltext is the knowledge catalog's full-text index: entries (a
// document's chunks, an object's methods) with a title, a body and keyword
// fields, found by the words of a query and ranked by BM25. It is the one
// package that uses bleve (github.com/blevesearch/bleve/v2 and its scorch
// index), and nothing of bleve shows in its API.
//
// The index is a cache derived from the image, kept in a directory beside
// it. Open tells a missing index (ErrMissing) from a damaged one
// (ErrDamaged), so that the caller rebuilds it with Create, and from one
// that another Index holds (ErrInUse), which must not be rebuilt.
//
// # Analysis
//
// Title, Text and queries are split into words and analysed for English
// with bleve's English filters: the possessive 's is dropped, words are
// lower-cased, stop words ("the", "and", ...) dropped and the rest
// Porter-stemmed, so that "running" finds "runs". The word splitter is
// this package's (see scan), not bleve's Unicode one, which is slow: a
// word is a run of letters and digits, and unlike Unicode's word breaking
// a period, colon or underscore between letters splits it ("fmt.Println",
// "describe_yourself" are two words each), which suits code. Fields are
// keywords, matched byte for byte. Text that is not valid UTF-8 is
// repaired (each bad byte becomes U+FFFD) before it is indexed or
// searched.
//
// # Queries
//
// Query.Text is words, not a query language: quotes, colons, "AND",
// parentheses and the like are not operators, and any string is safe. Its
// words are analysed as the entries' were and OR-ed; only the first 32
// distinct terms of its first 16 KiB count. A query with no terms left
// (empty, only stop words, only punctuation) has no hits. Query.Filter is
// a conjunction of exact matches; a pair no entry has gives no hits.
//
// # Scoring
//
// An entry's score is the sum, over the query's terms, of Okapi BM25 in
// Title, weighted 2, and in Text:
//
//	idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))
//	idf = ln(1 + (N − df + 0.5) / (df + 0.5))
//
// with k1 = 1.2 and b = 0.75 (Lucene's defaults), tf the term's count in
// the field, len the field's length in terms after analysis, avglen its
// average over the index, N the number of entries and df those whose
// field holds the term. The average lengths come from token totals this
// package keeps, in the same batch as the entries they count.
//
// bleve stores the postings, but this package ranks them, because bleve's
// own "bm25" scoring model (2.6.3) is not BM25: it estimates the average
// field length as the number of distinct terms in the field's
// dictionaries divided by the number of documents (so lengths are off by
// tens of times, and change as segments merge), uses √tf for tf, counts
// idf twice through its query normalisation, and multiplies by Lucene's
// classic coordination factor. It also scores every posting of every
// term. Ranking here is exact top-K by MaxScore: once K entries are in
// hand, the terms whose best possible contribution cannot lift another
// entry above the K-th are only checked for entries the other terms find,
// so a common word in a query costs little.
//
// Scores compare within one search only.
//
// # Fragments
//
// With Query.Snippet, each hit carries a Fragment of its Text: a substring
// of at most FragmentBytes holding the most distinct query terms, the
// matches about centred, cut at word boundaries, with the byte spans
// (Marks) of the words that matched. It is computed from the stored Text
// of the returned hits only, by analysing it again (no term positions are
// indexed); the analysis of each word is remembered. A caller that ranks
// more hits than it shows searches without Snippet and asks Fragments
// for those it shows.
//
// # Guarantees
//
// An Index is safe for concurrent use: searches run beside Put and
// Delete, which are serialised. A search reads one snapshot of the index
// and sees each batch wholly or not at all.
//
// Put and Delete return once their batch is applied (searches see it);
// scorch persists it in the background, writing the batch's segment file
// and fsyncing it, then committing and fsyncing the snapshot that refers
// to it. Flush returns once every batch applied before it is durable, or
// with the error that keeps one from being so; Close flushes. A crash
// before a batch is persisted loses it, never part of it; a test kills a
// process mid-stream and finds every batch a Flush acknowledged. A writer
// that gets 8 batches ahead of the persister waits for it. Segments merge in the
// background, a merge replacing segments only once its result is durable.
// A crash can still leave an index Open finds damaged (a file system that
// loses a new file's directory entry, say); the caller rebuilds it.
//
// Open checks what it can before it trusts an index: the directory, that
// bleve loaded the newest snapshot (scorch quietly falls back to an older
// one when the newest is unreadable, which for a cache would be silent
// loss: this package's record counts batches, and the newest snapshot's
// count must be the one loaded), this package's record (format version,
// totals agreeing with the entry count), and the CRC-32 of every segment
// file the snapshot refers to, which scorch never checks. It does so
// before scorch's background work (merging, which reads every segment)
// starts.
//
// bleve panics on some damage (scorch on an unloadable snapshot file,
// bbolt on a bad page) and faults reading a file cut short through its
// memory map. Open, Search, Put and Delete turn both into ErrDamaged
// (faults by debug.SetPanicOnFault), but only on the calling goroutine: a
// fault in scorch's own goroutines (merging files damaged after Open)
// still ends the process. A panic in Open can leave the snapshot file open
// and locked for the life of the process; Create replaces such an index
// all the same.
package fulltext
