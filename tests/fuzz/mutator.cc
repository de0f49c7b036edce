#include "tests/fuzz/mutator.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace moeserve::fuzz {
namespace {

// Bytes that sit on boundaries: signs, ASCII ranges, UTF-8 lead and continuation bytes,
// and the delimiters of the text formats we parse.
constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x20,
                                         0x40, 0xc0, 0xe0, 0xf0, 0xf8, '"',  '\\', '{',
                                         '}',  '[',  ']',  ',',  ':',  '%',  '\n', '0'};

// Lengths, counts and offsets that overflow or run past the end when trusted.
constexpr uint64_t kInterestingInts[] = {
    0,
    1,
    2,
    7,
    8,
    16,
    32,
    64,
    127,
    128,
    255,
    256,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x100000000,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
    0xfffffffffffffff0,
    0x0000ffff0000ffff,
};

// Numbers written in text, for JSON and templates: signs, int64 and double limits.
constexpr const char* kInterestingNumbers[] = {"0",
                                               "-0",
                                               "1",
                                               "-1",
                                               "2147483647",
                                               "2147483648",
                                               "-2147483649",
                                               "4294967296",
                                               "9223372036854775807",
                                               "9223372036854775808",
                                               "-9223372036854775808",
                                               "-9223372036854775809",
                                               "18446744073709551616",
                                               "1e308",
                                               "-1e308",
                                               "1e309",
                                               "5e-324",
                                               "1.5",
                                               "1e2",
                                               "0.0",
                                               "100000000",
                                               "99999999999999999999999999999"};

size_t PickPosition(size_t size, Rng& rng) {
  // Headers sit at the front (GGUF, safetensors, pickle protocol) and at the back (the zip
  // central directory), so bias a quarter of the edits toward each end.
  if (size == 0) return 0;
  const size_t window = std::min<size_t>(size, 512);
  switch (rng.Below(4)) {
    case 0:
      return rng.Below(window);
    case 1:
      return size - 1 - rng.Below(window);
    default:
      return rng.Below(size);
  }
}

size_t ChunkLength(size_t limit, Rng& rng) {
  if (limit == 0) return 0;
  // Mostly short chunks, sometimes long ones.
  const size_t cap = rng.OneIn(4) ? limit : std::min<size_t>(limit, 16);
  return 1 + rng.Below(cap);
}

void OverwriteInt(std::string& s, Rng& rng) {
  const int widths[] = {1, 2, 4, 8};
  const size_t width = widths[rng.Below(4)];
  if (s.size() < width) return;
  uint64_t value = kInterestingInts[rng.Below(std::size(kInterestingInts))];
  if (rng.OneIn(4)) value = ~value + 1;  // negated
  const size_t pos = std::min(PickPosition(s.size(), rng), s.size() - width);
  for (size_t i = 0; i < width; ++i) {
    // Little-endian mostly (every binary format here is), big-endian sometimes.
    const size_t shift = rng.OneIn(8) ? (width - 1 - i) * 8 : i * 8;
    s[pos + i] = static_cast<char>((value >> shift) & 0xff);
  }
}

void AddToInt(std::string& s, Rng& rng) {
  const size_t width = rng.OneIn(2) ? 4 : 8;
  if (s.size() < width) return;
  const size_t pos = std::min(PickPosition(s.size(), rng), s.size() - width);
  uint64_t value = 0;
  std::memcpy(&value, s.data() + pos, width);
  const int64_t delta = static_cast<int64_t>(rng.Below(64)) - 32;
  value += static_cast<uint64_t>(delta);
  std::memcpy(s.data() + pos, &value, width);
}

// Replaces a run of ASCII digits (with an optional sign) by an interesting number.
void ReplaceNumber(std::string& s, Rng& rng) {
  if (s.empty()) return;
  const size_t start = PickPosition(s.size(), rng);
  size_t begin = start;
  while (begin < s.size() && !(s[begin] >= '0' && s[begin] <= '9')) ++begin;
  if (begin == s.size()) return;
  size_t end = begin;
  while (end < s.size() && ((s[end] >= '0' && s[end] <= '9') || s[end] == '.')) ++end;
  if (begin > 0 && s[begin - 1] == '-') --begin;
  s.replace(begin, end - begin, kInterestingNumbers[rng.Below(std::size(kInterestingNumbers))]);
}

}  // namespace

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t IterationSeed(uint64_t run_seed, std::string_view target, uint64_t iteration) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the target name
  for (char c : target) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
  Rng rng(run_seed ^ h);
  rng.Next();
  Rng mixed(rng.Next() ^ (iteration * 0xd6e8feb86659fd93ULL));
  return mixed.Next();
}

std::string RandomBytes(size_t size, bool text, Rng& rng) {
  static constexpr char kText[] = "abcxyz019 _-+*/=<>!.,:;'\"()[]{}|%#~\\\n\t";
  std::string out(size, '\0');
  for (char& c : out) {
    if (text && !rng.OneIn(16)) {
      c = kText[rng.Below(sizeof(kText) - 1)];
    } else {
      c = static_cast<char>(rng.Below(256));
    }
  }
  return out;
}

std::string Mutate(std::string s, const MutationContext& context, Rng& rng) {
  const int edits = 1 + static_cast<int>(rng.Below(rng.OneIn(4) ? 8 : 3));
  for (int e = 0; e < edits; ++e) {
    switch (rng.Below(13)) {
      case 0:  // flip one bit
        if (!s.empty()) s[PickPosition(s.size(), rng)] ^= static_cast<char>(1 << rng.Below(8));
        break;
      case 1:  // an interesting byte
        if (!s.empty()) {
          s[PickPosition(s.size(), rng)] =
              static_cast<char>(kInterestingBytes[rng.Below(std::size(kInterestingBytes))]);
        }
        break;
      case 2:  // a random byte
        if (!s.empty()) s[PickPosition(s.size(), rng)] = static_cast<char>(rng.Below(256));
        break;
      case 3:
        OverwriteInt(s, rng);
        break;
      case 4:
        AddToInt(s, rng);
        break;
      case 5:  // truncate
        s.resize(rng.OneIn(2) ? PickPosition(s.size(), rng) : rng.Below(s.size() + 1));
        break;
      case 6:  // delete a chunk
        if (!s.empty()) {
          const size_t pos = PickPosition(s.size(), rng);
          s.erase(pos, ChunkLength(s.size() - pos, rng));
        }
        break;
      case 7:  // duplicate a chunk somewhere else
        if (!s.empty()) {
          const size_t from = rng.Below(s.size());
          const std::string chunk = s.substr(from, ChunkLength(s.size() - from, rng));
          s.insert(PickPosition(s.size(), rng), chunk);
        }
        break;
      case 8:  // insert random bytes
        s.insert(PickPosition(s.size(), rng), RandomBytes(ChunkLength(32, rng), rng.OneIn(2), rng));
        break;
      case 9:  // a dictionary token, inserted or written over
        if (context.dictionary != nullptr && !context.dictionary->empty()) {
          const std::string& token = (*context.dictionary)[rng.Below(context.dictionary->size())];
          const size_t pos = PickPosition(s.size(), rng);
          if (rng.OneIn(2) || pos + token.size() > s.size()) {
            s.insert(pos, token);
          } else {
            s.replace(pos, token.size(), token);
          }
        }
        break;
      case 10:
        ReplaceNumber(s, rng);
        break;
      case 11:  // splice: this input's head, another seed's tail
        if (context.corpus != nullptr && !context.corpus->empty()) {
          const std::string& other = (*context.corpus)[rng.Below(context.corpus->size())];
          const size_t head = rng.Below(s.size() + 1);
          const size_t tail = rng.Below(other.size() + 1);
          s = s.substr(0, head) + other.substr(tail);
        }
        break;
      case 12:  // swap two bytes far apart
        if (s.size() >= 2) {
          std::swap(s[rng.Below(s.size())], s[rng.Below(s.size())]);
        }
        break;
    }
    if (s.size() > context.max_size) s.resize(context.max_size);
  }
  return s;
}

}  // namespace moeserve::fuzz
