// Continuous batching (docs/architecture.md "Continuous batching"): up to `max_rows` requests decode
// together, and when a row's request finishes, the next request's prompt is prefilled into that row of
// the KV cache, so a batch of traces of mixed lengths stays full instead of idling until its longest
// trace ends.
//
// Every row keeps its own slot count: a decode step writes row r's new key at the row's next slot and
// attends to exactly the slots its own request wrote (ForwardArgs::row_slots, key_valid), at rotary
// positions counted from the request's first token. Prompts that enter together are left-padded to a
// common length as in generate_batch. So a request's tokens equal generate_batch of that request alone:
// greedy picks the same argmax, and sampling draws stream_uniform(seed, stream, step) with the step
// counted per request. Once no request is waiting, finished rows leave the cache as in generate_batch.
//
// Hooks: only sets whose ops act on each row alone by position scope (HookSet::row_independent: steering
// adds and projections) can follow rows that change request; with any other set (records, replacements,
// per-row masks) generate_continuous runs generate_batch on consecutive groups of max_rows requests, and so it
// does everywhere with THINKSTEER_CONTINUOUS=0 in the environment (the tokens are the same either way).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/generate.h"

namespace ts {

// Stages hand generate_continuous rounds of this many batches' worth of prompts: the tail of a round (its
// last traces finishing with rows parked) costs about 1/BATCHES_PER_ROUND of a round's time, and progress
// lines and the stop check (dist/batch_loop.h) come once per round.
inline constexpr int64_t BATCHES_PER_ROUND = 4;

struct ContinuousOptions {
  int64_t max_rows = 8;  // rows of the batch (generate.batch_size)
  // Called once per finished request, with its index in `requests` (e.g. to count progress).
  std::function<void(size_t request, const GenerateResult& result)> on_done;
  // Asked before requests enter rows (not before the first): false admits no more, the rows decode to their
  // end, and the result holds only the requests that entered (a prefix of `requests`, every one finished). A
  // stage passes "no stop requested" so a stop (dist/stop.h) waits for at most one batch of traces.
  std::function<bool()> admit;
};

// Results in the order of `requests` (all of them unless `admit` said no). Requests enter in their order
// (callers put long prompts first).
std::vector<GenerateResult> generate_continuous(const Transformer& model, const std::vector<GenerateRequest>& requests,
                                                const GenerateOptions& options, HookSet* hooks, const ContinuousOptions& batching);

}  // namespace ts
