#include "engine/tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/unicode.h"

namespace moeserve {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

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

absl::Status CheckId(int32_t id, int32_t vocab_size, std::string_view what) {
  if (id < -1 || id >= vocab_size) {
    return absl::InvalidArgumentError(
        Cat(what, " ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpmTokenizer>> SpmTokenizer::Create(SpmVocab vocab) {
  if (vocab.tokens.empty()) return absl::InvalidArgumentError("empty SentencePiece vocabulary");
  if (vocab.tokens.size() > (1u << 30)) {
    return absl::InvalidArgumentError("SentencePiece vocabulary too large");
  }
  const auto vocab_size = static_cast<int32_t>(vocab.tokens.size());
  if (!vocab.token_types.empty() && vocab.token_types.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError(
        Cat("token types has ", vocab.token_types.size(), " entries for ", vocab_size, " tokens"));
  }
  if (NeedsScores(vocab.merge_order) && vocab.scores.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError(
        Cat("scores has ", vocab.scores.size(), " entries for ", vocab_size, " tokens"));
  }
  if (vocab.merge_order != SpmMergeOrder::kListed && !vocab.merges.empty()) {
    return absl::InvalidArgumentError("explicit merges given with a derived merge order");
  }
  for (const auto& [id, what] :
       {std::pair{vocab.bos_id, "bos id"}, std::pair{vocab.eos_id, "eos id"},
        std::pair{vocab.unk_id, "unknown-token id"}}) {
    if (absl::Status s = CheckId(id, vocab_size, what); !s.ok()) return s;
  }
  for (const int32_t id : vocab.stop_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          Cat("stop id ", id, " is outside the vocabulary of ", vocab_size, " tokens"));
    }
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
  tok->InitAddedTokens(vocab.tokens);
  tok->tokens_ = std::move(vocab.tokens);
  tok->stop_ids_ = std::move(vocab.stop_ids);
  if (tok->stop_ids_.empty() && tok->eos_id_ >= 0) tok->stop_ids_.push_back(tok->eos_id_);
  return tok;
}

absl::Status SpmTokenizer::InitTokens(const SpmVocab& vocab) {
  token_types_.assign(vocab.tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < vocab.token_types.size(); ++i) {
    const int32_t type = vocab.token_types[i];
    if (type < static_cast<int32_t>(TokenType::kNormal) ||
        type > static_cast<int32_t>(TokenType::kByte)) {
      return absl::InvalidArgumentError(Cat("token ", i, " has unknown token type ", type));
    }
    token_types_[i] = static_cast<TokenType>(type);
  }
  // Later duplicates win, as in HF's vocabulary map.
  token_to_id_.reserve(vocab.tokens.size());
  for (int32_t id = 0; id < vocab_size_; ++id) token_to_id_[vocab.tokens[id]] = id;

  // As HF's ByteFallback decoder, any ordinary token spelled "<0xAB>" stands for its byte.
  byte_of_token_.assign(vocab.tokens.size(), -1);
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const TokenType type = token_types_[id];
    if (type == TokenType::kNormal || type == TokenType::kByte) {
      byte_of_token_[id] = static_cast<int16_t>(ParseByteToken(vocab.tokens[id]));
    }
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = token_to_id_.find(ByteTokenText(b));
    byte_to_id_[b] = it == token_to_id_.end() ? -1 : it->second;
  }
  return absl::OkStatus();
}

void SpmTokenizer::AddMerge(int32_t left, int32_t right, int32_t rank, int32_t result,
                            bool overwrite) {
  const auto [it, inserted] = merges_.try_emplace(PairKey(left, right), Merge{rank, result});
  if (!inserted && overwrite) it->second = Merge{rank, result};
}

absl::Status SpmTokenizer::InitMerges(const SpmVocab& vocab) {
  if (vocab.merge_order == SpmMergeOrder::kListed) {
    merges_.reserve(vocab.merges.size());
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const auto& [left, right] = vocab.merges[rank];
      const auto left_it = token_to_id_.find(left);
      const auto right_it = token_to_id_.find(right);
      const auto result_it = token_to_id_.find(left + right);
      if (left_it == token_to_id_.end() || right_it == token_to_id_.end() ||
          result_it == token_to_id_.end()) {
        return absl::InvalidArgumentError(Cat("merge ", rank, " ['", left, "', '", right,
                                              "'] refers to a token not in the vocabulary"));
      }
      // Later duplicates win, as in HF's merge map.
      AddMerge(left_it->second, right_it->second, static_cast<int32_t>(rank), result_it->second,
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
    if (token_to_id_[piece] != id) continue;  // a duplicate: the last one counts
    if (vocab.merge_order == SpmMergeOrder::kSentencePiece) {
      const TokenType type = token_types_[id];
      if (type != TokenType::kNormal && type != TokenType::kUserDefined &&
          type != TokenType::kUnused) {
        continue;
      }
    }
    const size_t chars = CharCount(piece);
    size_t cut = 0;
    for (size_t k = 1; k < chars; ++k) {
      unicode::DecodeUtf8(piece, &cut);
      const auto left = token_to_id_.find(piece.substr(0, cut));
      if (left == token_to_id_.end()) continue;
      const auto right = token_to_id_.find(piece.substr(cut));
      if (right == token_to_id_.end()) continue;
      const float score = NeedsScores(vocab.merge_order) ? vocab.scores[id] : 0.0f;
      candidates.push_back({left->second, right->second, id, static_cast<int32_t>(k),
                            static_cast<int32_t>(chars - k), score});
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
      merges_.reserve(candidates.size());
      for (const Candidate& c : candidates) {
        const auto rank = static_cast<int32_t>(
            std::lower_bound(scores.begin(), scores.end(), c.score, std::greater<float>()) -
            scores.begin());
        AddMerge(c.left, c.right, rank, c.result, /*overwrite=*/false);
        resegment_unused_ |= token_types_[c.result] == TokenType::kUnused;
      }
      return absl::OkStatus();
    }
    case SpmMergeOrder::kListed:
      break;
  }
  merges_.reserve(candidates.size());
  for (size_t rank = 0; rank < candidates.size(); ++rank) {
    const Candidate& c = candidates[rank];
    AddMerge(c.left, c.right, static_cast<int32_t>(rank), c.result, /*overwrite=*/true);
  }
  return absl::OkStatus();
}

void SpmTokenizer::InitAddedTokens(const std::vector<std::string>& tokens) {
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

TokenType SpmTokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return TokenType::kUnused;
  return token_types_[id];
}

bool SpmTokenizer::IsSpecial(int32_t id) const {
  const TokenType type = token_type(id);
  return type == TokenType::kControl || type == TokenType::kUnknown;
}

std::optional<int32_t> SpmTokenizer::FindToken(std::string_view token_text) const {
  const auto it = token_to_id_.find(Sv(token_text));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
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

size_t SpmTokenizer::MatchAddedToken(std::string_view text, size_t pos, bool parse_special,
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

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  size_t start = 0;
  if (!added_trie_[0].children.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      int32_t token = -1;
      const size_t length = MatchAddedToken(text, pos, parse_special, &token);
      if (length == 0) {
        ++pos;
        continue;
      }
      if (pos == 0 && prefix_ == SpmPrefix::kWholeText) {
        EncodeWord(kMetaspace, &ids);  // sentencepiece's dummy prefix precedes everything
      }
      EncodeSegment(text.substr(start, pos - start), start, &ids);
      ids.push_back(token);
      pos += length;
      start = pos;
    }
  }
  EncodeSegment(text.substr(start), start, &ids);
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
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto push = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };
  bool last_was_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    const size_t start = pos;
    unicode::DecodeUtf8(word, &pos);
    const std::string_view ch = word.substr(start, pos - start);
    if (const auto it = token_to_id_.find(Sv(ch)); it != token_to_id_.end()) {
      push(it->second);
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
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Lowest rank first, then leftmost; stale entries are skipped on pop (HF's
  // Word::merge_all, and sentencepiece's agenda when ranks are score classes).
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  // sentencepiece: the pair an unused piece was last proposed from, to split it back.
  absl::flat_hash_map<int32_t, std::pair<int32_t, int32_t>> unused_parts;
  const auto push_pair = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, it->second.result});
    if (resegment_unused_ && token_types_[it->second.result] == TokenType::kUnused) {
      unused_parts[it->second.result] = {symbols[left].id, symbols[right].id};
    }
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
  if (unused_parts.empty()) {
    for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
    return;
  }
  // sentencepiece's resegmentation: unused pieces never appear in the output.
  std::vector<int32_t> stack;
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    stack.push_back(symbols[i].id);
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
