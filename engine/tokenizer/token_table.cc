#include "engine/tokenizer/token_table.h"

#include <utility>

#include "common/absl_strings.h"

namespace moeserve {

int ParseByteToken(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  int value = 0;
  for (const char c : token.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') {
      value += c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value += c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value += c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

absl::Status CheckVocabSize(const std::vector<std::string>& tokens,
                            const std::vector<int32_t>& token_types, std::string_view kind) {
  if (tokens.empty()) return absl::InvalidArgumentError(Cat("empty ", kind, " vocabulary"));
  if (tokens.size() > (1u << 30)) {
    return absl::InvalidArgumentError(Cat(kind, " vocabulary too large"));
  }
  if (!token_types.empty() && token_types.size() != tokens.size()) {
    return absl::InvalidArgumentError(
        Cat("token_types has ", token_types.size(), " entries for ", tokens.size(), " tokens"));
  }
  return absl::OkStatus();
}

absl::Status CheckSpecialIds(int32_t vocab_size, int32_t bos_id, int32_t eos_id, int32_t unk_id,
                             const std::vector<int32_t>& stop_ids) {
  for (const auto& [id, what] : {std::pair{bos_id, "bos id"}, std::pair{eos_id, "eos id"},
                                 std::pair{unk_id, "unknown-token id"}}) {
    if (id < -1 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          Cat(what, " ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
    }
  }
  for (const int32_t id : stop_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          Cat("stop id ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
    }
  }
  return absl::OkStatus();
}

absl::Status TokenTable::Init(const std::vector<std::string>& tokens,
                              const std::vector<int32_t>& token_types) {
  types_.assign(tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < token_types.size(); ++i) {
    const int32_t type = token_types[i];
    if (type < static_cast<int32_t>(TokenType::kNormal) ||
        type > static_cast<int32_t>(TokenType::kByte)) {
      return absl::InvalidArgumentError(Cat("token ", i, " has unknown token type ", type));
    }
    types_[i] = static_cast<TokenType>(type);
  }
  token_to_id_.reserve(tokens.size());
  for (int32_t id = 0; id < size(); ++id) token_to_id_[tokens[id]] = id;
  return absl::OkStatus();
}

std::optional<int32_t> TokenTable::Find(std::string_view text) const {
  const auto it = token_to_id_.find(Sv(text));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

}  // namespace moeserve
