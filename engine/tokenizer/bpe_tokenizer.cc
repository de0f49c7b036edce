#include "engine/tokenizer/bpe_tokenizer.h"

#include <array>
#include <optional>
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

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(BpeVocab vocab) {
  const std::optional<PreRecipe> recipe = RecipeForPre(vocab.pre);
  if (!recipe.has_value()) {
    return absl::UnimplementedError(
        absl::StrCat("unsupported BPE pre-tokenizer '", vocab.pre,
                     "' (supported: gpt2, smollm, starcoder, llama-bpe, qwen2)"));
  }
  if (absl::Status s = CheckVocabSize(vocab.tokens, vocab.token_types, "BPE"); !s.ok()) return s;
  const auto vocab_size = static_cast<int32_t>(vocab.tokens.size());
  if (absl::Status s =
          CheckSpecialIds(vocab_size, vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.stop_ids);
      !s.ok()) {
    return s;
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
  tok->added_.Build(vocab.tokens, tok->table_);
  tok->stop_ids_ = std::move(vocab.stop_ids);
  if (tok->stop_ids_.empty() && tok->eos_id_ >= 0) tok->stop_ids_.push_back(tok->eos_id_);
  return tok;
}

absl::Status BpeTokenizer::InitTokens(const BpeVocab& vocab) {
  if (absl::Status s = table_.Init(vocab.tokens, vocab.token_types); !s.ok()) return s;

  token_bytes_.resize(vocab.tokens.size());
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const std::string& text = vocab.tokens[id];
    switch (table_.type(id)) {
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
    byte_to_id_[b] = table_.Find(ch).value_or(-1);
  }
  return absl::OkStatus();
}

absl::Status BpeTokenizer::InitMerges(const std::vector<std::string>& merges) {
  merges_.Reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos || space + 1 >= merge.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " '", merge, "' is not two tokens separated by a space"));
    }
    const std::string_view left = std::string_view(merge).substr(0, space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const std::optional<int32_t> left_id = table_.Find(left);
    const std::optional<int32_t> right_id = table_.Find(right);
    const std::optional<int32_t> result_id = table_.Find(Cat(left, right));
    if (!left_id.has_value() || !right_id.has_value() || !result_id.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " '", merge, "' refers to a token not in the vocabulary"));
    }
    // Later duplicates win, as in HF's merge map.
    merges_.Add(*left_id, *right_id, static_cast<int32_t>(rank), *result_id,
                /*overwrite=*/true);
  }
  return absl::OkStatus();
}

bool BpeTokenizer::IsSpecial(int32_t id) const { return token_type(id) == TokenType::kControl; }

std::optional<int32_t> BpeTokenizer::FindToken(std::string_view token_text) const {
  return table_.Find(token_text);
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

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  // Added tokens first (leftmost, then longest), as HF's AddedVocabulary splits; the
  // stretches between them are ordinary text.
  added_.Split(
      text, parse_special,
      [&](std::string_view segment, size_t /*offset*/) { EncodeOrdinary(segment, &ids); },
      [&](int32_t token, size_t /*offset*/) { ids.push_back(token); });
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
    if (const std::optional<int32_t> id = table_.Find(ToByteLevel(word)); id.has_value()) {
      ids->push_back(*id);
      return;
    }
  }
  // The word's bytes, merged: HF's Word::merge_all. A byte with no token of its own is
  // dropped, as HF's BPE does when it has no unknown token.
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  for (const char c : word) {
    const int32_t id = byte_to_id_[static_cast<uint8_t>(c)];
    if (id >= 0) symbols.push_back(id);
  }
  merges_.Apply(symbols, ids);
}

}  // namespace moeserve
