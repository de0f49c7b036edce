// The merge table of a BPE model and the merge loop both BPE tokenizers run on a word:
// (left id, right id) -> (rank, merged id), applied lowest rank first, then leftmost, as
// Hugging Face's Word::merge_all (and sentencepiece's agenda when ranks are score
// classes). Owned by a tokenizer, filled once in its Create() and read-only afterwards.
#ifndef MOESERVE_ENGINE_TOKENIZER_PAIR_MERGES_H_
#define MOESERVE_ENGINE_TOKENIZER_PAIR_MERGES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace moeserve {

class PairMerges {
 public:
  // Called with (merged id, left id, right id) for every pair queued for merging.
  using OnQueue = std::function<void(int32_t result, int32_t left, int32_t right)>;

  void Reserve(size_t num_merges) { merges_.reserve(num_merges); }
  // Lets (left, right) merge into `result` at `rank`; an existing merge of the pair is
  // kept unless `overwrite`.
  void Add(int32_t left, int32_t right, int32_t rank, int32_t result, bool overwrite);

  // Merges the symbols `ids` (a word's initial pieces, in order) until no pair has a
  // merge, and appends the resulting ids to *out. Stale queue entries are skipped.
  void Apply(absl::Span<const int32_t> ids, std::vector<int32_t>* out,
             const OnQueue& on_queue = nullptr) const;

 private:
  struct Merge {
    int32_t rank;  // lower merges first; equal ranks merge leftmost first
    int32_t result;
  };

  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  absl::flat_hash_map<uint64_t, Merge> merges_;  // PairKey(left, right) -> merge
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_PAIR_MERGES_H_
