#include "engine/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/unicode.h"

namespace moeserve {
namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68
// bytes (controls, space, 0x7F-0xA0, 0xAD) for U+0100 onwards, in byte order.
std::array<char32_t, 256> MakeByteToCodepoint() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

const std::array<char32_t, 256> kByteToCodepoint = MakeByteToCodepoint();

// Inverse of kByteToCodepoint: the byte a byte-level character stands for, or -1.
int ByteOfCodepoint(char32_t cp) {
  if (cp < 256) {
    return kByteToCodepoint[cp] == cp ? static_cast<int>(cp) : -1;
  }
  if (cp < 256 + 68) {
    for (int b = 0; b < 256; ++b) {
      if (kByteToCodepoint[b] == cp) return b;
    }
  }
  return -1;
}

// `bytes` spelled in the byte-level alphabet.
std::string ToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    unicode::AppendUtf8(kByteToCodepoint[static_cast<uint8_t>(c)], &out);
  }
  return out;
}

// What HF's ByteLevel decoder makes of one token: the bytes its characters stand for, or
// the token's own UTF-8 when any character is outside the byte-level alphabet.
std::string FromByteLevel(std::string_view token) {
  std::string out;
  size_t pos = 0;
  while (pos < token.size()) {
    const int byte = ByteOfCodepoint(unicode::DecodeUtf8(token, &pos));
    if (byte < 0) return std::string(token);
    out.push_back(static_cast<char>(byte));
  }
  return out;
}

// The byte of a "<0xAB>" token, or -1.
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

struct PreRecipe {
  PreTokenizerKind kind;
  bool ignore_merges;
  bool normalize_nfc;
};

// tokenizer.ggml.pre values whose Hugging Face tokenizer.json this class reproduces.
std::optional<PreRecipe> RecipeForPre(std::string_view pre) {
  if (pre == "gpt2" || pre == "gpt-2") return PreRecipe{PreTokenizerKind::kGpt2, false, false};
  if (pre == "smollm" || pre == "starcoder") {
    return PreRecipe{PreTokenizerKind::kDigitsGpt2, false, false};
  }
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return PreRecipe{PreTokenizerKind::kLlama3, /*ignore_merges=*/true, false};
  }
  if (pre == "qwen2") return PreRecipe{PreTokenizerKind::kQwen2, false, /*normalize_nfc=*/true};
  return std::nullopt;
}

bool IsKnownTokenType(int32_t type) {
  return type >= static_cast<int32_t>(TokenType::kNormal) &&
         type <= static_cast<int32_t>(TokenType::kByte);
}

absl::Status CheckId(int32_t id, int32_t vocab_size, std::string_view what) {
  if (id < -1 || id >= vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(what), " ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(BpeVocab vocab) {
  const std::optional<PreRecipe> recipe = RecipeForPre(vocab.pre);
  if (!recipe.has_value()) {
    return absl::UnimplementedError(
        absl::StrCat("unsupported BPE pre-tokenizer '", vocab.pre,
                     "' (supported: gpt2, smollm, starcoder, llama-bpe, qwen2)"));
  }
  if (vocab.tokens.empty()) return absl::InvalidArgumentError("empty BPE vocabulary");
  if (vocab.tokens.size() > (1u << 30)) {
    return absl::InvalidArgumentError("BPE vocabulary too large");
  }
  const auto vocab_size = static_cast<int32_t>(vocab.tokens.size());
  if (!vocab.token_types.empty() && vocab.token_types.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("token_types has ", vocab.token_types.size(),
                                                   " entries for ", vocab_size, " tokens"));
  }
  for (const auto& [id, what] :
       {std::pair{vocab.bos_id, "bos id"}, std::pair{vocab.eos_id, "eos id"},
        std::pair{vocab.unk_id, "unknown-token id"}}) {
    if (absl::Status s = CheckId(id, vocab_size, what); !s.ok()) return s;
  }
  for (const int32_t id : vocab.stop_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop id ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
    }
  }

  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
  tok->pre_kind_ = recipe->kind;
  tok->ignore_merges_ = recipe->ignore_merges;
  tok->normalize_nfc_ = recipe->normalize_nfc;
  tok->bos_id_ = vocab.bos_id;
  tok->eos_id_ = vocab.eos_id;
  tok->add_bos_ = vocab.add_bos;
  tok->vocab_size_ = vocab_size;
  if (absl::Status s = tok->InitTokens(vocab); !s.ok()) return s;
  if (absl::Status s = tok->InitMerges(vocab.merges); !s.ok()) return s;
  tok->InitAddedTokens(vocab.tokens);
  tok->stop_ids_ = std::move(vocab.stop_ids);
  if (tok->stop_ids_.empty() && tok->eos_id_ >= 0) tok->stop_ids_.push_back(tok->eos_id_);
  return tok;
}

absl::Status BpeTokenizer::InitTokens(const BpeVocab& vocab) {
  token_types_.resize(vocab.tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < vocab.token_types.size(); ++i) {
    if (!IsKnownTokenType(vocab.token_types[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", i, " has unknown token type ", vocab.token_types[i]));
    }
    token_types_[i] = static_cast<TokenType>(vocab.token_types[i]);
  }

  // Later duplicates win, as in HF's vocabulary map and llama.cpp's token_to_id.
  token_to_id_.reserve(vocab.tokens.size());
  for (int32_t id = 0; id < vocab_size_; ++id) token_to_id_[vocab.tokens[id]] = id;

  token_bytes_.resize(vocab.tokens.size());
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const std::string& text = vocab.tokens[id];
    switch (token_types_[id]) {
      case TokenType::kControl:
      case TokenType::kUserDefined:
        token_bytes_[id] = text;
        break;
      case TokenType::kByte:
        if (const int byte = ParseByteToken(text); byte >= 0) {
          token_bytes_[id] = std::string(1, static_cast<char>(byte));
          break;
        }
        [[fallthrough]];
      default:
        token_bytes_[id] = FromByteLevel(text);
    }
  }

  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::AppendUtf8(kByteToCodepoint[b], &ch);
    const auto it = token_to_id_.find(ch);
    byte_to_id_[b] = it == token_to_id_.end() ? -1 : it->second;
  }
  return absl::OkStatus();
}

absl::Status BpeTokenizer::InitMerges(const std::vector<std::string>& merges) {
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos || space + 1 >= merge.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " '", merge, "' is not two tokens separated by a space"));
    }
    const std::string_view left = std::string_view(merge).substr(0, space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const auto left_it = token_to_id_.find(Sv(left));
    const auto right_it = token_to_id_.find(Sv(right));
    const auto result_it = token_to_id_.find(absl::StrCat(Sv(left), Sv(right)));
    if (left_it == token_to_id_.end() || right_it == token_to_id_.end() ||
        result_it == token_to_id_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " '", merge, "' refers to a token not in the vocabulary"));
    }
    // Later duplicates win, as in HF's merge map.
    merges_[PairKey(left_it->second, right_it->second)] =
        Merge{static_cast<int32_t>(rank), result_it->second};
  }
  return absl::OkStatus();
}

void BpeTokenizer::InitAddedTokens(const std::vector<std::string>& tokens) {
  added_trie_.emplace_back();
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const TokenType type = token_types_[id];
    const std::string& text = tokens[id];
    if (text.empty() || (type != TokenType::kControl && type != TokenType::kUserDefined &&
                         type != TokenType::kUnknown)) {
      continue;
    }
    int32_t node = 0;
    for (const char c : text) {
      const auto byte = static_cast<uint8_t>(c);
      auto& children = added_trie_[node].children;
      const auto it =
          std::lower_bound(children.begin(), children.end(), std::pair{byte, int32_t{-1}});
      if (it != children.end() && it->first == byte) {
        node = it->second;
        continue;
      }
      const auto child = static_cast<int32_t>(added_trie_.size());
      children.insert(it, {byte, child});
      added_trie_.emplace_back();  // invalidates `children`
      node = child;
    }
    added_trie_[node].token = token_to_id_[text];
  }
}

TokenType BpeTokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return TokenType::kUnused;
  return token_types_[id];
}

bool BpeTokenizer::IsSpecial(int32_t id) const { return token_type(id) == TokenType::kControl; }

std::optional<int32_t> BpeTokenizer::FindToken(std::string_view token_text) const {
  const auto it = token_to_id_.find(Sv(token_text));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return token_bytes_[id];
}

std::string BpeTokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (skip_special && IsSpecial(id)) continue;
    bytes += token_bytes_[id];
  }
  return unicode::ToValidUtf8(bytes);
}

size_t BpeTokenizer::MatchAddedToken(std::string_view text, size_t pos, bool parse_special,
                                     int32_t* token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = added_trie_[node].children;
    const auto byte = static_cast<uint8_t>(text[i]);
    const auto it =
        std::lower_bound(children.begin(), children.end(), std::pair{byte, int32_t{-1}});
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    const int32_t id = added_trie_[node].token;
    if (id >= 0 && (parse_special || token_types_[id] == TokenType::kUserDefined)) {
      best = i + 1 - pos;
      *token = id;
    }
  }
  return best;
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  // Added tokens first (leftmost, then longest), as HF's AddedVocabulary splits; the
  // stretches between them are ordinary text.
  size_t start = 0;
  if (!added_trie_[0].children.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      int32_t token = -1;
      const size_t length = MatchAddedToken(text, pos, parse_special, &token);
      if (length == 0) {
        ++pos;
        continue;
      }
      EncodeOrdinary(text.substr(start, pos - start), &ids);
      ids.push_back(token);
      pos += length;
      start = pos;
    }
  }
  EncodeOrdinary(text.substr(start), &ids);
  return ids;
}

void BpeTokenizer::EncodeOrdinary(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  std::string normalized;
  if (normalize_nfc_) {
    normalized = unicode::NormalizeNfc(text);
    text = normalized;
  }
  std::vector<std::string_view> words;
  PreTokenize(pre_kind_, text, &words);
  for (const std::string_view word : words) EncodeWord(word, ids);
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (ignore_merges_) {
    if (const auto it = token_to_id_.find(ToByteLevel(word)); it != token_to_id_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  // The word's bytes as a doubly linked list of symbols, merged in place: HF's
  // Word::merge_all. A byte with no token of its own is dropped, as HF's BPE does when it
  // has no unknown token.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (const char c : word) {
    const int32_t id = byte_to_id_[static_cast<uint8_t>(c)];
    if (id < 0) continue;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Candidate merges: lowest rank first, then leftmost; stale entries are skipped on pop.
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto push_pair = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.result});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.result != top.result) continue;  // stale
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace moeserve
