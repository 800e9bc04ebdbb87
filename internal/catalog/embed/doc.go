// Package embed is the catalog's embedder: it asks a model for the
// vectors of texts in batches, keeps them in a cache file by content,
// and tells its caller of every request for usage accounting.
//
// # Embedding
//
// Embedder.Embed takes a list of texts (a document's sentences, say, for
// catalog.Breakpoints) and returns a vector for each. Repeated texts are
// asked for once; texts whose vectors are in the cache are not asked for
// at all; the rest go in requests of at most Options.Batch texts and
// Options.BatchTokens estimated tokens. Each batch's vectors are cached
// and synced as soon as they arrive, so that a call that fails part way
// keeps what it paid for and the next call resumes where it stopped.
// Embed does not retry a request (the llm clients retry transient
// failures), but checks every answer: one vector per text, finite, not
// zero, of the model's width.
//
// # The cache
//
// A Cache is one file, appended to and never rewritten, holding vectors
// under sha256(model + "\x00" + text) and each model's width (see
// cache.go for the format). Each record carries a CRC-32C. What the
// cache guarantees:
//
//   - A crash loses at most what was put since the last Sync. Embed syncs
//     after each batch, so a crash loses at most the batch it was caching
//     then: requests paid for but not yet kept. Nothing else is lost.
//   - A record torn by a crash is cut off by OpenCache, which reports the
//     bytes it dropped (Repaired) rather than failing. A record that fails
//     its checksum is cut off with every record after it, because its
//     length can no longer be trusted to say where the next one starts.
//     Every vector Get returns was checked against its checksum on the
//     way; a file that is not a cache at all, or of another version, is
//     refused with ErrDamaged, and the caller deletes it.
//   - Memory stays small: about 48 bytes a vector for its key and place
//     in the file; Get reads the vector itself from the file.
//
// What it cannot do: it knows a model by name only, so a model replaced
// under the same name by another of the same width goes on being served
// the old model's vectors (one of another width is caught, ErrWidth):
// delete the cache when a model changes. Only one process may use a
// cache file at a time.
//
// # Why the cache is outside the image
//
// Semantic chunking embeds every sentence of a document, to find where
// its topic shifts: sentence vectors are many (a thousand-sentence
// document at 768 dimensions is 3 MB of them), needed only while a
// document is chunked, and derived — any of them can be asked for again.
// In the image they would swell its file and history and weigh on its
// transactions for data that needs none of its guarantees, and a batch
// would be lost with the transaction that asked for it. In a file of
// their own they survive failed transactions, so re-adding a document
// costs no requests for the sentences that did not change, and losing the
// file costs only requests. Chunk vectors, far fewer and what search
// uses, are kept in the image by the catalog with their chunks.
package embed
