// Package vector is the knowledge catalog's approximate nearest-neighbour
// index: chunk embeddings under the chunks' keys (object IDs), searched by
// cosine similarity. It is a hierarchical navigable small world graph
// (HNSW; Malkov and Yashunin, 2016) kept in memory, saved to and loaded
// from one file beside the image.
//
// # Why not coder/hnsw's graph
//
// The package was to wrap github.com/coder/hnsw, and it is the one package
// that imports it, but v0.6.1 (the version go.mod pins, and its latest
// tag) cannot be used for its graph:
//
//   - Its search finds the wrong neighbours: its heap's Max and PopLast
//     return the last array element, not the farthest, so the beam drops
//     good candidates; the result set holds k, not EfSearch, entries; and
//     it stops at the first step that does not improve the best result
//     (upstream PRs #20 and #22, merged after v0.6.1 and not released).
//     Insertion uses the same search, so the graph is poor too. Measured
//     on the vectors described below (100,000 of 384 dimensions): recall@10
//     0.06 with its defaults (M 16, EfSearch 20) and 0.14 when asking for
//     100 and keeping the best 10; 0.15 and 0.25 with M 32, EfSearch 100.
//     On an easier set of 20,000 neither M 64 nor EfSearch 400 reached 0.85.
//   - Adding a key that is there panics ("node not added", issue #15);
//     Delete can leave links to a removed node, which a later Search or
//     Add follows into a nil pointer, and so does an Add after the last
//     node was deleted (issues #13 and #10). All three reproduced here.
//
// So the graph here is this package's own, written from the paper, and
// coder/hnsw gives it only its distance function, CosineDistance, which
// uses SIMD instructions (github.com/viterin/vek) and is about 4.5 times as
// fast as a Go loop at 384 dimensions. A search spends most of its time
// there.
//
// # The graph and its parameters
//
// Vectors are normalised on the way in, so cosine similarity is their dot
// product. Each node links to at most M = 16 others on each level above 0
// and 2·M = 32 on level 0; levels are drawn with mL = 1/ln M, so each level
// holds about 1/16 of the nodes of the one below (the paper's choice;
// coder/hnsw's default of 0.25 is close). A new node's links are chosen
// from a beam of efConstruction = 100 by the paper's heuristic, which
// keeps links that leave a cluster instead of only the nearest; on
// clustered embeddings that is what keeps recall up. A query's beam on
// level 0 is max(efSearch, k) with efSearch = 128.
//
// Measured with TestBig (go test -run Big -v -timeout 60m
// ./internal/catalog/vector -vector.big) at 100,000 vectors of 384 dimensions drawn as 200 topic
// centroids plus noise (two chunks of a topic have cosine about 0.4, a
// vector's ten nearest about 0.49), k = 10; "vague" queries are twice as
// noisy, nearer to no chunk than chunks are to each other, as a short
// question is to the passages that answer it:
//
//	efSearch             32     64     96    128    192
//	recall@10         0.917  0.982  0.994  0.999  0.999
//	vague queries     0.749  0.904  0.972  0.980  0.996
//
// 128 keeps even vague queries over the catalog's 0.95; a search then
// takes 0.4 to 0.55 ms (median; measured while other work shared the
// machine's two cores), a twentieth of the catalog's 10 ms, against 6 to
// 10 ms for Exact. The catalog asks for k = 40, which the beam covers. On
// vectors uniform on the sphere recall@10 is only 0.14: there a query's
// ten nearest (cosine about 0.2) are barely nearer than the rest
// (0 ± 0.05), and no graph can navigate by them; the hits found then
// score 0.17 on average against the true ten's 0.20. Embeddings of text
// are clustered.
//
// Search scans every vector instead when there are at most 1,000 (a scan
// is as fast) or k is at least an eighth of them, and when the graph gives
// fewer than min(k, Len) hits (a node whose links in were all pruned can
// be unreachable), so it always returns min(k, Len) hits.
//
// # Deletion
//
// Delete, and Add of a key that is there, only mark the old node dead: it
// stays in the graph as a stepping stone that searches pass through but
// never return, so deleting never weakens the graph's connections. Once
// dead nodes outnumber the live ones (and are at least 256), the graph is
// rebuilt from the live ones, by inserting them again. That costs an
// insertion per live node, paid for by at least as many deletions, but
// the Add or Delete that triggers it holds the index for its duration:
// 40 to 50 seconds for 100,000 live vectors of 384 dimensions.
//
// # Files
//
// Save writes the graph itself (its links as well as the vectors), with a
// format version and a CRC-32C checksum, atomically: a temporary file,
// synced and renamed. At 100,000 vectors of 384 dimensions the file is
// 163 MB; Save took 0.23 s and Load 0.11 s (from the page cache), against
// 42 s to rebuild the graph from the vectors by insertion (coder/hnsw's
// Import of its own export took 1.2 to 1.8 s), which is why the links are
// saved. Load tells a missing file (os.ErrNotExist) from one that is
// damaged (ErrDamaged: truncated, another format or version, a bad
// checksum, or a graph whose links or counts do not add up); either way
// the caller rebuilds. Load never allocates more than a small multiple of
// the file's size, whatever its header claims.
//
// # Guarantees
//
// Search, Exact, Len, Dims and Save may run at once from any number of
// goroutines; Add and Delete wait for them, and they for Add and Delete (a
// Save for its whole write). Hits come best first, equal scores by key; a
// score is the cosine similarity of the query and the stored vector, to
// about 1e-6. Search is approximate: every hit it returns is live and
// scored right, but one of the true k nearest may be missing and the next
// nearest in its place. The same sequence of Adds and Deletes builds the
// same graph and gives the same answers. The index holds about 4·dims +
// 230 bytes a vector (177 MB of heap at 100,000 × 384), and inserts about
// 2,400 vectors a second there.
package vector
