#include "engine/detokenizer.h"

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

std::string IncrementalDetokenizer::Push(int32_t token) {
  if (tokenizer_->IsSpecial(token)) return "";
  pending_ += tokenizer_->TokenBytes(token);
  std::string out;
  const size_t taken = TakeCompleteUtf8(pending_, &out);
  pending_.erase(0, taken);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  const size_t taken = TakeCompleteUtf8(pending_, &out);
  if (taken < pending_.size()) out += kReplacement;
  pending_.clear();
  return out;
}

}  // namespace moeserve
