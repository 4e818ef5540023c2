/* vz_mergejob: one merge request of the scheduler, run by an executor acting as a merger (Zuul's
 * merge and cat jobs). The items (queue order: the items ahead, then the item the request is for)
 * and the extra projects are brought into the executor's repository cache, the speculative state
 * is built with vz_spec on the frozen repo state (or the branch heads as fetched), and the answer
 * is the body of a `merged` message: per item its commit, base, files and conflict message, the
 * repo state a build must start from to reproduce those commits, the heads after the last item,
 * and on request the in-repo configuration of every project and branch involved. The same request
 * gives the same answer (vz_spec's commits are deterministic). docs/protocol.md, docs/executor.md. */
#ifndef VZ_MERGEJOB_H
#define VZ_MERGEJOB_H

#include <jansson.h>

#include "vz_config.h"

/* Total bytes of in-repo configuration one `merged` message carries (the frame is capped at
 * VZ_PROTO_MAX_FRAME and JSON escaping grows text). Past it the answer is ok false. */
#define VZ_MERGEJOB_MAX_CONFIG (512 * 1024)
/* Items and projects of one request. */
#define VZ_MERGEJOB_MAX_ITEMS 1000

/* Runs the merge request req (a decoded `merge` body) with the repository cache at cache_root
 * and the connections' credentials from site (may be NULL). Returns a new `merged` body, never
 * NULL: {merge, ok: true, items, repo_state, heads[, config]} or {merge, ok: false, message}
 * when the request is malformed or a repository, ref or branch cannot be had (the message
 * names the item or project). A conflicting item is a result (merged false), not a failure.
 * libgit2 must be initialised (vz_workspace_global_init). */
json_t *vz_mergejob_run(const json_t *req, const char *cache_root, const vz_config *site);

#endif
