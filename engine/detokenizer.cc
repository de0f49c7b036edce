#include "engine/detokenizer.h"

#include <algorithm>
#include <string_view>
#include <utility>

namespace moeserve {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// Expected length of a UTF-8 sequence from its lead byte; 0 for an invalid lead.
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether `byte` may follow the bytes seen so far at position `index` of a sequence
// starting with `lead` (excludes overlongs, surrogates and code points above U+10FFFF).
bool ValidContinuation(unsigned char lead, int index, unsigned char byte) {
  if ((byte & 0xC0) != 0x80) return false;
  if (index != 1) return true;
  switch (lead) {
    case 0xE0: return byte >= 0xA0;
    case 0xED: return byte <= 0x9F;
    case 0xF0: return byte >= 0x90;
    case 0xF4: return byte <= 0x8F;
    default: return true;
  }
}

}  // namespace

size_t TakeCompleteUtf8(const std::string& bytes, std::string* valid) {
  size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char lead = static_cast<unsigned char>(bytes[i]);
    const int length = SequenceLength(lead);
    if (length == 0) {
      *valid += kReplacement;
      ++i;
      continue;
    }
    int have = 1;
    while (have < length && i + have < bytes.size() &&
           ValidContinuation(lead, have, static_cast<unsigned char>(bytes[i + have]))) {
      ++have;
    }
    if (have == length) {
      valid->append(bytes, i, length);
      i += length;
    } else if (i + have == bytes.size()) {
      break;  // a valid prefix that more bytes may complete
    } else {
      *valid += kReplacement;  // broken sequence: replace the bytes seen so far
      i += have;
    }
  }
  return i;
}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer* tokenizer,
                                               std::vector<std::string> stop)
    : tokenizer_(tokenizer), stop_(std::move(stop)) {
  for (const std::string& s : stop_) max_stop_len_ = std::max(max_stop_len_, s.size());
}

std::string IncrementalDetokenizer::Release(const std::string& text, bool final) {
  if (stop_.empty()) return text;
  held_ += text;
  // held_ never holds a whole stop string between calls, so any occurrence ends in `text`.
  size_t earliest = std::string::npos;
  for (const std::string& s : stop_) earliest = std::min(earliest, held_.find(s));
  if (earliest != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, earliest);
    held_.clear();
    pending_.clear();
    return out;
  }
  if (final) {
    std::string out = std::move(held_);
    held_.clear();
    return out;
  }
  // Keep the longest suffix that is a proper prefix of some stop string. A valid UTF-8
  // stop string cannot begin inside a character, so the cut never splits one.
  size_t keep_from = held_.size();
  const size_t first = held_.size() >= max_stop_len_ ? held_.size() - max_stop_len_ + 1 : 0;
  for (size_t p = first; p < held_.size() && keep_from == held_.size(); ++p) {
    const std::string_view suffix = std::string_view(held_).substr(p);
    for (const std::string& s : stop_) {
      if (s.size() > suffix.size() && std::string_view(s).substr(0, suffix.size()) == suffix) {
        keep_from = p;
        break;
      }
    }
  }
  std::string out = held_.substr(0, keep_from);
  held_.erase(0, keep_from);
  return out;
}

std::string IncrementalDetokenizer::Push(int32_t token) {
  if (stopped_ || tokenizer_->IsSpecial(token)) return "";
  std::string bytes = tokenizer_->TokenBytes(token);
  if (at_start_ && !bytes.empty()) {
    at_start_ = false;
    if (bytes[0] == ' ' && tokenizer_->StripsLeadingSpace()) bytes.erase(0, 1);
  }
  pending_ += bytes;
  std::string out;
  const size_t taken = TakeCompleteUtf8(pending_, &out);
  pending_.erase(0, taken);
  return Release(out, /*final=*/false);
}

std::string IncrementalDetokenizer::Flush() {
  if (stopped_) return "";
  std::string out;
  const size_t taken = TakeCompleteUtf8(pending_, &out);
  if (taken < pending_.size()) out += kReplacement;
  pending_.clear();
  return Release(out, /*final=*/true);
}

}  // namespace moeserve
