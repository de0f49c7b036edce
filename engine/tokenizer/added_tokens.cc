#include "engine/tokenizer/added_tokens.h"

#include <algorithm>
#include <optional>

namespace moeserve {

void AddedTokens::Build(const std::vector<std::string>& tokens, const TokenTable& table) {
  nodes_.emplace_back();
  for (int32_t id = 0; id < table.size(); ++id) {
    const TokenType type = table.type(id);
    const std::string& text = tokens[id];
    if (text.empty() || (type != TokenType::kControl && type != TokenType::kUserDefined &&
                         type != TokenType::kUnknown)) {
      continue;
    }
    int32_t node = 0;
    for (const char c : text) {
      const auto byte = static_cast<uint8_t>(c);
      auto& children = nodes_[node].children;
      const auto it =
          std::lower_bound(children.begin(), children.end(), std::pair{byte, int32_t{-1}});
      if (it != children.end() && it->first == byte) {
        node = it->second;
        continue;
      }
      const auto child = static_cast<int32_t>(nodes_.size());
      children.insert(it, {byte, child});
      nodes_.emplace_back();  // invalidates `children`
      node = child;
    }
    const std::optional<int32_t> last = table.Find(text);
    nodes_[node].token = *last;  // `text` is token `id`'s, so it is in the table
    nodes_[node].user_defined = table.type(*last) == TokenType::kUserDefined;
  }
}

size_t AddedTokens::Match(std::string_view text, size_t pos, bool parse_special,
                          int32_t* token) const {
  if (empty()) return 0;
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes_[node].children;
    const auto byte = static_cast<uint8_t>(text[i]);
    const auto it =
        std::lower_bound(children.begin(), children.end(), std::pair{byte, int32_t{-1}});
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    if (nodes_[node].token >= 0 && (parse_special || nodes_[node].user_defined)) {
      best = i + 1 - pos;
      *token = nodes_[node].token;
    }
  }
  return best;
}

}  // namespace moeserve
