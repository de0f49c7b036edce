// GPT-2's byte-level alphabet for tests that hand-build byte-level BPE vocabularies.
#ifndef MOESERVE_TESTS_TESTING_BYTE_LEVEL_H_
#define MOESERVE_TESTS_TESTING_BYTE_LEVEL_H_

#include <string>

#include "common/utf8.h"

namespace moeserve::testing {

// The UTF-8 spelling of byte `b` in GPT-2's bytes_to_unicode(): printable Latin-1 bytes
// stand for themselves, the other 68 map to U+0100 onwards in byte order.
inline std::string ByteLevelChar(int b) {
  int next = 256;
  for (int i = 0; i < 256; ++i) {
    const bool printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
    const int cp = printable ? i : next++;
    if (i == b) {
      std::string out;
      AppendUtf8(static_cast<char32_t>(cp), &out);
      return out;
    }
  }
  return "";
}

}  // namespace moeserve::testing

#endif  // MOESERVE_TESTS_TESTING_BYTE_LEVEL_H_
