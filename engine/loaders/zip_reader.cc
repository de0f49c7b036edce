#include "engine/loaders/zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/status.h"

namespace moeserve {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint16_t kZip64ExtraId = 0x0001;

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Le64(const uint8_t* p) {
  return static_cast<uint64_t>(Le32(p)) | (static_cast<uint64_t>(Le32(p + 4)) << 32);
}

// True when [offset, offset + length) lies inside [0, size), without overflow.
bool InRange(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

absl::Status MapFile(const std::string& path, void** data, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, Cat(path, ": cannot open"));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, Cat(path, ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(Cat(path, ": not a regular file"));
  }
  *size = static_cast<uint64_t>(st.st_size);
  *data = nullptr;
  if (*size > 0) {
    void* mapping = ::mmap(nullptr, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, Cat(path, ": cannot mmap ", *size, " bytes"));
    }
    *data = mapping;
  }
  ::close(fd);  // the mapping keeps the file alive
  return absl::OkStatus();
}

struct Directory {
  uint64_t num_entries = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

class DirectoryParser {
 public:
  DirectoryParser(const std::string& path, const uint8_t* bytes, uint64_t size)
      : path_(path), bytes_(bytes), size_(size) {}

  absl::StatusOr<Directory> FindDirectory() const {
    if (size_ < kEndSize) return Corrupt("too small to be a zip archive");
    // The end record is followed only by its comment (at most 64 KiB): scan backwards.
    const uint64_t lowest = size_ - kEndSize > 0xffff ? size_ - kEndSize - 0xffff : 0;
    for (uint64_t pos = size_ - kEndSize + 1; pos-- > lowest;) {
      const uint8_t* p = bytes_ + pos;
      if (Le32(p) != kEndSig) continue;
      if (pos + kEndSize + Le16(p + 20) != size_) continue;  // comment must reach the end
      return ParseEnd(pos);
    }
    return Corrupt("no end-of-central-directory record (not a zip archive?)");
  }

  absl::Status ParseEntries(const Directory& dir, std::vector<ZipEntry>* entries) const {
    if (!InRange(dir.offset, dir.size, size_)) {
      return Corrupt(Cat("central directory [", dir.offset, ", +", dir.size,
                         ") lies outside the file of ", size_, " bytes"));
    }
    if (dir.num_entries > dir.size / kCentralHeaderSize) {
      return Corrupt(Cat(dir.num_entries, " entries cannot fit in a central directory of ",
                         dir.size, " bytes"));
    }
    entries->reserve(dir.num_entries);
    uint64_t pos = dir.offset;
    const uint64_t end = dir.offset + dir.size;
    for (uint64_t i = 0; i < dir.num_entries; ++i) {
      if (!InRange(pos, kCentralHeaderSize, end) || Le32(bytes_ + pos) != kCentralHeaderSig) {
        return Corrupt(Cat("central directory entry ", i, " at offset ", pos, " is malformed"));
      }
      const uint8_t* p = bytes_ + pos;
      ZipEntry entry;
      entry.flags = Le16(p + 8);
      entry.method = Le16(p + 10);
      entry.compressed_size = Le32(p + 20);
      entry.uncompressed_size = Le32(p + 24);
      const uint16_t name_len = Le16(p + 28);
      const uint16_t extra_len = Le16(p + 30);
      const uint16_t comment_len = Le16(p + 32);
      uint32_t disk = Le16(p + 34);
      entry.local_header_offset = Le32(p + 42);
      const uint64_t variable = uint64_t{name_len} + extra_len + comment_len;
      if (!InRange(pos + kCentralHeaderSize, variable, end)) {
        return Corrupt(Cat("central directory entry ", i, " runs past the directory"));
      }
      entry.name.assign(reinterpret_cast<const char*>(p + kCentralHeaderSize), name_len);
      MOESERVE_RETURN_IF_ERROR(
          ApplyZip64Extra(p + kCentralHeaderSize + name_len, extra_len, &entry, &disk));
      if (disk != 0) return Corrupt(Cat("entry '", entry.name, "' is on another disk"));
      entries->push_back(std::move(entry));
      pos += kCentralHeaderSize + variable;
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<Directory> ParseEnd(uint64_t pos) const {
    const uint8_t* p = bytes_ + pos;
    const uint16_t disk = Le16(p + 4);
    const uint16_t dir_disk = Le16(p + 6);
    const uint16_t disk_entries = Le16(p + 8);
    Directory dir{Le16(p + 10), Le32(p + 12), Le32(p + 16)};
    // A zip64 locator sits right before the end record when the archive needs one.
    if (pos >= kZip64LocatorSize && Le32(bytes_ + pos - kZip64LocatorSize) == kZip64LocatorSig) {
      const uint8_t* loc = bytes_ + pos - kZip64LocatorSize;
      const uint64_t end64 = Le64(loc + 8);
      if (Le32(loc + 4) != 0 || Le32(loc + 16) > 1) return Corrupt("multi-disk archive");
      if (!InRange(end64, kZip64EndSize, pos) || Le32(bytes_ + end64) != kZip64EndSig) {
        return Corrupt(Cat("zip64 end record at offset ", end64, " is malformed"));
      }
      const uint8_t* e = bytes_ + end64;
      if (Le32(e + 16) != 0 || Le32(e + 20) != 0 || Le64(e + 24) != Le64(e + 32)) {
        return Corrupt("multi-disk archive");
      }
      dir = Directory{Le64(e + 32), Le64(e + 40), Le64(e + 48)};
      return dir;
    }
    if (disk != 0 || dir_disk != 0 || disk_entries != dir.num_entries) {
      return Corrupt("multi-disk archive");
    }
    if (dir.num_entries == 0xffff || dir.size == 0xffffffff || dir.offset == 0xffffffff) {
      return Corrupt("zip64 archive without a zip64 end-of-central-directory locator");
    }
    return dir;
  }

  // Replaces the saturated 32-bit fields of `entry` by the zip64 extra's values, which
  // appear in a fixed order and only for the fields that are saturated.
  absl::Status ApplyZip64Extra(const uint8_t* extra, uint16_t length, ZipEntry* entry,
                               uint32_t* disk) const {
    const bool need_usize = entry->uncompressed_size == 0xffffffff;
    const bool need_csize = entry->compressed_size == 0xffffffff;
    const bool need_offset = entry->local_header_offset == 0xffffffff;
    const bool need_disk = *disk == 0xffff;
    bool found = false;
    uint32_t pos = 0;
    while (pos + 4 <= length) {
      const uint16_t id = Le16(extra + pos);
      const uint16_t block = Le16(extra + pos + 2);
      if (pos + 4 + block > length) break;
      if (id == kZip64ExtraId) {
        found = true;
        const uint8_t* f = extra + pos + 4;
        uint32_t left = block;
        auto take64 = [&](uint64_t* field) {
          if (left < 8) return false;
          *field = Le64(f);
          f += 8;
          left -= 8;
          return true;
        };
        if ((need_usize && !take64(&entry->uncompressed_size)) ||
            (need_csize && !take64(&entry->compressed_size)) ||
            (need_offset && !take64(&entry->local_header_offset))) {
          return Corrupt(Cat("entry '", entry->name, "' has a truncated zip64 extra field"));
        }
        if (need_disk) {
          if (left < 4) {
            return Corrupt(Cat("entry '", entry->name, "' has a truncated zip64 extra field"));
          }
          *disk = Le32(f);
        }
      }
      pos += 4 + block;
    }
    if (!found && (need_usize || need_csize || need_offset || need_disk)) {
      return Corrupt(Cat("entry '", entry->name, "' needs a zip64 extra field but has none"));
    }
    return absl::OkStatus();
  }

  absl::Status Corrupt(std::string_view what) const {
    return absl::InvalidArgumentError(Cat(path_, ": bad zip archive: ", what));
  }

  const std::string& path_;
  const uint8_t* bytes_;
  uint64_t size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ZipArchive>> ZipArchive::Open(const std::string& path) {
  std::unique_ptr<ZipArchive> zip(new ZipArchive());
  zip->path_ = path;
  MOESERVE_RETURN_IF_ERROR(MapFile(path, &zip->mapping_, &zip->size_));
  DirectoryParser parser(path, static_cast<const uint8_t*>(zip->mapping_), zip->size_);
  MOESERVE_ASSIGN_OR_RETURN(const Directory dir, parser.FindDirectory());
  MOESERVE_RETURN_IF_ERROR(parser.ParseEntries(dir, &zip->entries_));
  zip->index_.reserve(zip->entries_.size());
  for (size_t i = 0; i < zip->entries_.size(); ++i) {
    if (!zip->index_.emplace(zip->entries_[i].name, i).second) {
      return absl::InvalidArgumentError(
          Cat(path, ": bad zip archive: entry '", zip->entries_[i].name, "' appears twice"));
    }
  }
  return zip;
}

ZipArchive::~ZipArchive() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

const ZipEntry* ZipArchive::Find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<ZipData> ZipArchive::Read(const ZipEntry& entry) const {
  const auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(Cat(path_, ": zip entry '", entry.name, "' ", what));
  };
  if (entry.flags & 0x1) return error("is encrypted");
  if (entry.method != 0) {
    return error(Cat("is compressed (method ", entry.method,
                     "); only stored (uncompressed) entries are supported"));
  }
  if (entry.compressed_size != entry.uncompressed_size) {
    return error(Cat("is stored but its sizes differ (", entry.compressed_size, " vs ",
                     entry.uncompressed_size, ")"));
  }
  const auto* bytes = static_cast<const uint8_t*>(mapping_);
  const uint64_t local = entry.local_header_offset;
  if (!InRange(local, kLocalHeaderSize, size_) || Le32(bytes + local) != kLocalHeaderSig) {
    return error(Cat("has no local header at offset ", local));
  }
  const uint16_t name_len = Le16(bytes + local + 26);
  const uint16_t extra_len = Le16(bytes + local + 28);
  const uint64_t data_offset = local + kLocalHeaderSize + name_len + extra_len;
  if (name_len != entry.name.size() || !InRange(local + kLocalHeaderSize, name_len, size_) ||
      std::memcmp(bytes + local + kLocalHeaderSize, entry.name.data(), name_len) != 0) {
    return error("has a local header with another name");
  }
  if (!InRange(data_offset, entry.uncompressed_size, size_)) {
    return error(Cat("has data [", data_offset, ", +", entry.uncompressed_size,
                     ") outside the file of ", size_, " bytes (truncated?)"));
  }
  return ZipData{bytes + data_offset, entry.uncompressed_size};
}

}  // namespace moeserve
