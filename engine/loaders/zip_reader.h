// Reads the central directory of a zip archive (including zip64 records and extras) as
// torch.save writes it, and hands out the bytes of STORED (uncompressed) entries as views
// into a read-only mapping of the file. torch never compresses its entries; a compressed
// or encrypted entry is reported as an error naming it when its data is asked for. CRCs
// are not verified (that would read every byte of a multi-GB checkpoint at open).
#ifndef MOESERVE_ENGINE_LOADERS_ZIP_READER_H_
#define MOESERVE_ENGINE_LOADERS_ZIP_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace moeserve {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored
  uint16_t flags = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

// A view of the bytes of one stored entry; valid for the life of the ZipArchive.
struct ZipData {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

class ZipArchive {
 public:
  // Maps `path` and parses its central directory. Fails, naming the file, on a missing
  // end-of-central-directory record, truncation, multi-disk archives, or entries whose
  // recorded extents lie outside the file.
  static absl::StatusOr<std::unique_ptr<ZipArchive>> Open(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& path() const { return path_; }
  // In central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const ZipEntry* Find(std::string_view name) const;
  // The bytes of `entry` (which must come from entries()). Reads the local header to find
  // where the data starts (its extra field may differ from the central one, e.g. torch's
  // alignment padding). Fails naming the entry when it is compressed or encrypted, or
  // when its data lies outside the file.
  absl::StatusOr<ZipData> Read(const ZipEntry& entry) const;

 private:
  ZipArchive() = default;

  std::string path_;
  void* mapping_ = nullptr;
  uint64_t size_ = 0;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string_view, size_t> index_;  // name -> entries_ index
};

}  // namespace moeserve

#endif  // MOESERVE_ENGINE_LOADERS_ZIP_READER_H_
