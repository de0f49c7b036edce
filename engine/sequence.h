// One choice of a request as the engine thread tracks it (a request with n choices is n
// sequences sharing one RequestHandle): its tokens so far, how many of them have KV
// in the cache, its block table, and the per-request state outputs need (handle,
// detokenizer, generator). The Scheduler moves sequences between waiting and running;
// the engine loop samples and emits. Engine thread only.
#ifndef MOESERVE_ENGINE_SEQUENCE_H_
#define MOESERVE_ENGINE_SEQUENCE_H_

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/detokenizer.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "engine/sampler.h"

namespace moeserve {

struct Sequence {
  Sequence(Request r, std::shared_ptr<RequestHandle> h, const Tokenizer* tokenizer, uint64_t seed,
           int32_t choice_index = 0)
      : request(std::move(r)),
        handle(std::move(h)),
        index(choice_index),
        tokens(request.prompt_token_ids),
        prompt_len(static_cast<int32_t>(tokens.size())),
        detokenizer(tokenizer, request.sampling.stop),
        rng(seed),
        penalties(request.sampling, request.prompt_token_ids) {}

  Request request;
  std::shared_ptr<RequestHandle> handle;  // shared by the request's n sequences
  int32_t index = 0;                      // the choice, [0, request.sampling.n)
  std::vector<int32_t> tokens;            // prompt, then generated tokens
  int32_t prompt_len = 0;
  int32_t num_computed = 0;     // tokens whose KV is in the cache
  std::vector<int32_t> blocks;  // block table, owned through the KvCacheManager
  // Prefix-cache hashes of its first block_hashes.size() blocks (full, and computed or
  // being computed this step).
  std::vector<uint64_t> block_hashes;
  int32_t num_preemptions = 0;
  bool finished = false;  // its final output was sent
  IncrementalDetokenizer detokenizer;
  std::mt19937_64 rng;
  PenaltyHistory penalties;  // the generated tokens are added as they are sampled

  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_generated() const { return num_tokens() - prompt_len; }
  int32_t num_uncomputed() const { return num_tokens() - num_computed; }
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_SEQUENCE_H_
