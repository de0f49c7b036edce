#include "engine/tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/unicode.h"

namespace moeserve {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

std::string ByteTokenText(int byte) {
  constexpr char kHex[] = "0123456789ABCDEF";
  return Cat("<0x", std::string_view(&kHex[byte >> 4], 1), std::string_view(&kHex[byte & 15], 1),
             ">");
}

// `text` with every "▁" turned into a space.
std::string MetaspaceToSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (text.substr(pos, kMetaspace.size()) == kMetaspace) {
      out.push_back(' ');
      pos += kMetaspace.size();
    } else {
      out.push_back(text[pos++]);
    }
  }
  return out;
}

// Number of characters (code points; ill-formed bytes count one each) in `text`.
size_t CharCount(std::string_view text) {
  size_t count = 0;
  for (size_t pos = 0; pos < text.size(); ++count) unicode::DecodeUtf8(text, &pos);
  return count;
}

bool NeedsScores(SpmMergeOrder order) {
  return order == SpmMergeOrder::kScore || order == SpmMergeOrder::kSentencePiece;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpmTokenizer>> SpmTokenizer::Create(SpmVocab vocab) {
  if (absl::Status s = CheckVocabSize(vocab.tokens, vocab.token_types, "SentencePiece"); !s.ok()) {
    return s;
  }
  const auto vocab_size = static_cast<int32_t>(vocab.tokens.size());
  if (NeedsScores(vocab.merge_order) && vocab.scores.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError(
        Cat("scores has ", vocab.scores.size(), " entries for ", vocab_size, " tokens"));
  }
  if (vocab.merge_order != SpmMergeOrder::kListed && !vocab.merges.empty()) {
    return absl::InvalidArgumentError("explicit merges given with a derived merge order");
  }
  if (absl::Status s =
          CheckSpecialIds(vocab_size, vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.stop_ids);
      !s.ok()) {
    return s;
  }

  auto tok = std::unique_ptr<SpmTokenizer>(new SpmTokenizer());
  tok->vocab_size_ = vocab_size;
  tok->prefix_ = vocab.prefix;
  tok->split_on_metaspace_ = vocab.split_on_metaspace;
  tok->byte_fallback_ = vocab.byte_fallback;
  tok->decode_byte_fallback_ = vocab.decode_byte_fallback;
  tok->decode_strip_space_ = vocab.decode_strip_space;
  tok->bos_id_ = vocab.bos_id;
  tok->eos_id_ = vocab.eos_id;
  tok->unk_id_ = vocab.unk_id;
  tok->add_bos_ = vocab.add_bos;
  tok->add_eos_ = vocab.add_eos;
  if (absl::Status s = tok->InitTokens(vocab); !s.ok()) return s;
  if (absl::Status s = tok->InitMerges(vocab); !s.ok()) return s;
  tok->added_.Build(vocab.tokens, tok->table_);
  tok->tokens_ = std::move(vocab.tokens);
  tok->stop_ids_ = std::move(vocab.stop_ids);
  if (tok->stop_ids_.empty() && tok->eos_id_ >= 0) tok->stop_ids_.push_back(tok->eos_id_);
  return tok;
}

absl::Status SpmTokenizer::InitTokens(const SpmVocab& vocab) {
  if (absl::Status s = table_.Init(vocab.tokens, vocab.token_types); !s.ok()) return s;

  // As HF's ByteFallback decoder, any ordinary token spelled "<0xAB>" stands for its byte.
  byte_of_token_.assign(vocab.tokens.size(), -1);
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const TokenType type = table_.type(id);
    if (type == TokenType::kNormal || type == TokenType::kByte) {
      byte_of_token_[id] = static_cast<int16_t>(ParseByteToken(vocab.tokens[id]));
    }
  }
  for (int b = 0; b < 256; ++b) {
    byte_to_id_[b] = table_.Find(ByteTokenText(b)).value_or(-1);
  }
  return absl::OkStatus();
}

absl::Status SpmTokenizer::InitMerges(const SpmVocab& vocab) {
  if (vocab.merge_order == SpmMergeOrder::kListed) {
    merges_.Reserve(vocab.merges.size());
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const auto& [left, right] = vocab.merges[rank];
      const std::optional<int32_t> left_id = table_.Find(left);
      const std::optional<int32_t> right_id = table_.Find(right);
      const std::optional<int32_t> result_id = table_.Find(left + right);
      if (!left_id.has_value() || !right_id.has_value() || !result_id.has_value()) {
        return absl::InvalidArgumentError(Cat("merge ", rank, " ['", left, "', '", right,
                                              "'] refers to a token not in the vocabulary"));
      }
      // Later duplicates win, as in HF's merge map.
      merges_.Add(*left_id, *right_id, static_cast<int32_t>(rank), *result_id,
                  /*overwrite=*/true);
    }
    return absl::OkStatus();
  }

  // Every way to cut a piece into two pieces is a merge (transformers' generate_merges;
  // sentencepiece looks pairs up the same way while it encodes).
  struct Candidate {
    int32_t left;
    int32_t right;
    int32_t result;
    int32_t left_chars;
    int32_t right_chars;
    float score;
  };
  std::vector<Candidate> candidates;
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const std::string& piece = vocab.tokens[id];
    if (table_.Find(piece) != id) continue;  // a duplicate: the last one counts
    if (vocab.merge_order == SpmMergeOrder::kSentencePiece) {
      const TokenType type = table_.type(id);
      if (type != TokenType::kNormal && type != TokenType::kUserDefined &&
          type != TokenType::kUnused) {
        continue;
      }
    }
    const size_t chars = CharCount(piece);
    size_t cut = 0;
    for (size_t k = 1; k < chars; ++k) {
      unicode::DecodeUtf8(piece, &cut);
      const std::optional<int32_t> left = table_.Find(std::string_view(piece).substr(0, cut));
      if (!left.has_value()) continue;
      const std::optional<int32_t> right = table_.Find(std::string_view(piece).substr(cut));
      if (!right.has_value()) continue;
      const float score = NeedsScores(vocab.merge_order) ? vocab.scores[id] : 0.0f;
      candidates.push_back(
          {*left, *right, id, static_cast<int32_t>(k), static_cast<int32_t>(chars - k), score});
    }
  }

  switch (vocab.merge_order) {
    case SpmMergeOrder::kPieceId:
      // Already in (result id, left length) order.
      break;
    case SpmMergeOrder::kScore:
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const Candidate& a, const Candidate& b) {
                         if (a.score != b.score) return a.score > b.score;
                         if (a.left_chars != b.left_chars) return a.left_chars > b.left_chars;
                         return a.right_chars > b.right_chars;
                       });
      break;
    case SpmMergeOrder::kSentencePiece: {
      // Equal scores share a rank, so that position decides (leftmost first).
      std::vector<float> scores;
      scores.reserve(candidates.size());
      for (const Candidate& c : candidates) scores.push_back(c.score);
      std::sort(scores.begin(), scores.end(), std::greater<float>());
      scores.erase(std::unique(scores.begin(), scores.end()), scores.end());
      merges_.Reserve(candidates.size());
      for (const Candidate& c : candidates) {
        const auto rank = static_cast<int32_t>(
            std::lower_bound(scores.begin(), scores.end(), c.score, std::greater<float>()) -
            scores.begin());
        merges_.Add(c.left, c.right, rank, c.result, /*overwrite=*/false);
        resegment_unused_ |= table_.type(c.result) == TokenType::kUnused;
      }
      return absl::OkStatus();
    }
    case SpmMergeOrder::kListed:
      break;
  }
  merges_.Reserve(candidates.size());
  for (size_t rank = 0; rank < candidates.size(); ++rank) {
    const Candidate& c = candidates[rank];
    merges_.Add(c.left, c.right, static_cast<int32_t>(rank), c.result, /*overwrite=*/true);
  }
  return absl::OkStatus();
}

bool SpmTokenizer::IsSpecial(int32_t id) const {
  const TokenType type = token_type(id);
  return type == TokenType::kControl || type == TokenType::kUnknown;
}

std::optional<int32_t> SpmTokenizer::FindToken(std::string_view token_text) const {
  return table_.Find(token_text);
}

std::string SpmTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return "";
  if (decode_byte_fallback_ && byte_of_token_[id] >= 0) {
    return std::string(1, static_cast<char>(byte_of_token_[id]));
  }
  return MetaspaceToSpaces(tokens_[id]);
}

std::string SpmTokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string out;
  std::string run;  // consecutive byte tokens
  const auto flush_run = [&] {
    if (run.empty()) return;
    if (unicode::ToValidUtf8(run) == run) {
      out += run;
    } else {
      for (size_t i = 0; i < run.size(); ++i) out += kReplacement;  // one per byte token
    }
    run.clear();
  };
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) continue;
    if (skip_special && IsSpecial(id)) continue;
    if (decode_byte_fallback_ && byte_of_token_[id] >= 0) {
      run.push_back(static_cast<char>(byte_of_token_[id]));
      continue;
    }
    flush_run();
    out += MetaspaceToSpaces(tokens_[id]);
  }
  flush_run();
  if (decode_strip_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return unicode::ToValidUtf8(out);
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  added_.Split(
      text, parse_special,
      [&](std::string_view segment, size_t offset) { EncodeSegment(segment, offset, &ids); },
      [&](int32_t token, size_t offset) {
        if (offset == 0 && prefix_ == SpmPrefix::kWholeText) {
          EncodeWord(kMetaspace, &ids);  // sentencepiece's dummy prefix precedes everything
        }
        ids.push_back(token);
      });
  return ids;
}

void SpmTokenizer::EncodeSegment(std::string_view text, size_t offset,
                                 std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  const bool starts_with_space = text[0] == ' ' || text.substr(0, kMetaspace.size()) == kMetaspace;
  bool prepend = false;
  switch (prefix_) {
    case SpmPrefix::kNever:
      break;
    case SpmPrefix::kFirst:
      prepend = offset == 0 && !starts_with_space;
      break;
    case SpmPrefix::kAlways:
      prepend = !starts_with_space;
      break;
    case SpmPrefix::kPrependEach:
      prepend = true;
      break;
    case SpmPrefix::kWholeText:
      prepend = offset == 0;
      break;
  }
  std::string spelled;
  spelled.reserve(text.size() + 8);
  if (prepend) spelled += kMetaspace;
  for (const char c : text) {
    if (c == ' ') {
      spelled += kMetaspace;
    } else {
      spelled.push_back(c);
    }
  }
  if (!split_on_metaspace_) {
    EncodeWord(spelled, ids);
    return;
  }
  // Metaspace(split=true): a word ends before each "▁" (the delimiter joins the next word).
  const std::string_view all = spelled;
  size_t word_start = 0;
  for (size_t pos = 0; pos < all.size(); ++pos) {
    if (all.substr(pos, kMetaspace.size()) == kMetaspace && pos > word_start) {
      EncodeWord(all.substr(word_start, pos - word_start), ids);
      word_start = pos;
    }
  }
  EncodeWord(all.substr(word_start), ids);
}

void SpmTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  std::vector<int32_t> symbols;  // the word's characters as pieces, before merging
  symbols.reserve(word.size());
  const auto push = [&](int32_t id) { symbols.push_back(id); };
  bool last_was_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    const size_t start = pos;
    unicode::DecodeUtf8(word, &pos);
    const std::string_view ch = word.substr(start, pos - start);
    if (const std::optional<int32_t> id = table_.Find(ch); id.has_value()) {
      push(*id);
      last_was_unk = false;
      continue;
    }
    // No piece: its bytes as "<0xAB>" tokens (HF's BPE byte_fallback), else one unk for a
    // run of unknown characters (fuse_unk).
    bool all_bytes = byte_fallback_;
    for (const char c : ch) all_bytes = all_bytes && byte_to_id_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (const char c : ch) push(byte_to_id_[static_cast<uint8_t>(c)]);
      last_was_unk = false;
    } else if (unk_id_ >= 0 && !last_was_unk) {
      push(unk_id_);
      last_was_unk = true;
    }
  }
  if (!resegment_unused_) {
    merges_.Apply(symbols, ids);
    return;
  }
  // sentencepiece: the pair an unused piece was last proposed from, to split it back.
  absl::flat_hash_map<int32_t, std::pair<int32_t, int32_t>> unused_parts;
  std::vector<int32_t> merged;
  merges_.Apply(symbols, &merged, [&](int32_t result, int32_t left, int32_t right) {
    if (table_.type(result) == TokenType::kUnused) unused_parts[result] = {left, right};
  });
  if (unused_parts.empty()) {
    ids->insert(ids->end(), merged.begin(), merged.end());
    return;
  }
  // sentencepiece's resegmentation: unused pieces never appear in the output.
  std::vector<int32_t> stack;
  for (const int32_t merged_id : merged) {
    stack.push_back(merged_id);
    while (!stack.empty()) {
      const int32_t id = stack.back();
      stack.pop_back();
      const auto it = unused_parts.find(id);
      if (it == unused_parts.end()) {
        ids->push_back(id);
      } else {
        stack.push_back(it->second.second);
        stack.push_back(it->second.first);
      }
    }
  }
}

}  // namespace moeserve
