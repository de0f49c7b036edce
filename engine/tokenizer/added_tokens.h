// The added tokens of a vocabulary (control, user-defined and unknown-type tokens) as a
// byte trie, for splitting them out of text before the model's own segmentation, leftmost
// then longest, as Hugging Face's AddedVocabulary and llama.cpp do. Owned by a tokenizer,
// built once in its Create() and read-only afterwards.
#ifndef MOESERVE_ENGINE_TOKENIZER_ADDED_TOKENS_H_
#define MOESERVE_ENGINE_TOKENIZER_ADDED_TOKENS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/token_table.h"

namespace moeserve {

class AddedTokens {
 public:
  // Inserts the non-empty text of every control, user-defined and unknown-type token; the
  // text maps to table.Find(text), its last id.
  // REQUIRES: `table` was initialized from `tokens`; called once.
  void Build(const std::vector<std::string>& tokens, const TokenTable& table);

  bool empty() const { return nodes_.empty() || nodes_[0].children.empty(); }

  // Length of the longest added token at text[pos] that may be split out, and its id in
  // *token; 0 when none. Only user-defined tokens qualify unless `parse_special`.
  size_t Match(std::string_view text, size_t pos, bool parse_special, int32_t* token) const;

  // Cuts `text` at its added tokens, in order: on_text(segment, offset) for each stretch
  // between them (possibly empty; always once after the last token), on_token(id, offset)
  // for each token.
  template <typename OnText, typename OnToken>
  void Split(std::string_view text, bool parse_special, OnText on_text, OnToken on_token) const {
    size_t start = 0;
    if (!empty()) {
      for (size_t pos = 0; pos < text.size();) {
        int32_t token = -1;
        const size_t length = Match(text, pos, parse_special, &token);
        if (length == 0) {
          ++pos;
          continue;
        }
        on_text(text.substr(start, pos - start), start);
        on_token(token, pos);
        pos += length;
        start = pos;
      }
    }
    on_text(text.substr(start), start);
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node index), sorted
    int32_t token = -1;                                 // token ending here, or -1
    bool user_defined = false;                          // `token` is kUserDefined
  };

  std::vector<Node> nodes_;  // node 0 is the root
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_TOKENIZER_ADDED_TOKENS_H_
