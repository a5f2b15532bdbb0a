// Package hub fetches BLIP-2 and InstructBLIP checkpoints from the Hugging
// Face Hub over its plain HTTP API, into the standard Hugging Face cache
// layout, and holds the catalogue of the checkpoints blip2chat knows.
//
// The cache is the one huggingface_hub (and huggingface-cli / hf) uses:
//
//	$HF_HUB_CACHE/models--ORG--NAME/
//	  refs/<revision>                 the commit a branch or tag pointed to (40 hex digits, no newline)
//	  blobs/<sha256 or git sha1>      file contents, named by their hash
//	  blobs/<hash>.incomplete         a download in progress (resumed with Range)
//	  snapshots/<commit>/<path>       relative symlinks to ../../blobs/<hash> (copies where symlinks fail)
//	  trees/<commit>.json             the commit's file list (huggingface_hub >= 1.22 format)
//	$HF_HUB_CACHE/.locks/models--ORG--NAME/<hash>.lock
//
// so files another tool fetched are reused without a byte sent, and the
// files fetched here are found by other tools.
//
// A pull has two steps. Client.Plan resolves the revision to a commit, lists
// the commit's files (tree API, paginated), chooses the ones conversion
// needs (Needed) and finds what the cache already holds; it writes nothing
// but refs/ and trees/. Client.Fetch checks the free space, then downloads
// what is missing, several files at once, each resumable, verified against
// its sha256 (LFS) or git blob id before it is renamed into blobs/ and
// linked into the snapshot. With HF_HUB_OFFLINE set, Plan reads the cache
// only and names the first missing file.
//
// The token (HF_TOKEN or the token file) is sent only to the Hub's own host,
// never to the CDN a download redirects to, and never appears in errors or
// log lines.
package hub
