#include "engine/loaders/zip_reader.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

using ::testing::HasSubstr;

struct Entry {
  Entry(std::string name_in, std::string data_in, uint16_t method_in = 0, uint16_t flags_in = 0,
        std::string local_extra_in = "")
      : name(std::move(name_in)),
        data(std::move(data_in)),
        method(method_in),
        flags(flags_in),
        local_extra(std::move(local_extra_in)) {}
  std::string name;
  std::string data;
  uint16_t method;
  uint16_t flags;
  std::string local_extra;  // e.g. alignment padding that the central record lacks
};

void Put16(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, v & 0xffff);
  Put16(out, v >> 16);
}
void Put64(std::string* out, uint64_t v) {
  Put32(out, static_cast<uint32_t>(v));
  Put32(out, static_cast<uint32_t>(v >> 32));
}

// Writes a zip of stored entries. With `zip64`, every central record saturates its sizes,
// offset and disk and carries them in a zip64 extra, and the end record is zip64.
std::string BuildZip(const std::vector<Entry>& entries, bool zip64,
                     const std::string& comment = "") {
  std::string out;
  std::vector<uint64_t> offsets;
  for (const Entry& e : entries) {
    offsets.push_back(out.size());
    Put32(&out, 0x04034b50);
    Put16(&out, 20);
    Put16(&out, e.flags);
    Put16(&out, e.method);
    Put32(&out, 0);  // time, date
    Put32(&out, 0);  // crc (not checked)
    Put32(&out, static_cast<uint32_t>(e.data.size()));
    Put32(&out, static_cast<uint32_t>(e.data.size()));
    Put16(&out, static_cast<uint32_t>(e.name.size()));
    Put16(&out, static_cast<uint32_t>(e.local_extra.size()));
    out += e.name + e.local_extra + e.data;
  }
  const uint64_t dir_offset = out.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const uint32_t sat = zip64 ? 0xffffffff : 0;
    std::string extra;
    if (zip64) {
      Put16(&extra, 0x0001);
      Put16(&extra, 28);
      Put64(&extra, e.data.size());
      Put64(&extra, e.data.size());
      Put64(&extra, offsets[i]);
      Put32(&extra, 0);  // disk
    }
    Put32(&out, 0x02014b50);
    Put16(&out, 45);
    Put16(&out, zip64 ? 45 : 20);
    Put16(&out, e.flags);
    Put16(&out, e.method);
    Put32(&out, 0);
    Put32(&out, 0);
    Put32(&out, zip64 ? sat : static_cast<uint32_t>(e.data.size()));
    Put32(&out, zip64 ? sat : static_cast<uint32_t>(e.data.size()));
    Put16(&out, static_cast<uint32_t>(e.name.size()));
    Put16(&out, static_cast<uint32_t>(extra.size()));
    Put16(&out, 0);                   // comment
    Put16(&out, zip64 ? 0xffff : 0);  // disk
    Put16(&out, 0);
    Put32(&out, 0);
    Put32(&out, zip64 ? sat : static_cast<uint32_t>(offsets[i]));
    out += e.name + extra;
  }
  const uint64_t dir_size = out.size() - dir_offset;
  if (zip64) {
    const uint64_t end64 = out.size();
    Put32(&out, 0x06064b50);
    Put64(&out, 44);
    Put16(&out, 45);
    Put16(&out, 45);
    Put32(&out, 0);
    Put32(&out, 0);
    Put64(&out, entries.size());
    Put64(&out, entries.size());
    Put64(&out, dir_size);
    Put64(&out, dir_offset);
    Put32(&out, 0x07064b50);
    Put32(&out, 0);
    Put64(&out, end64);
    Put32(&out, 1);
  }
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, zip64 ? 0xffff : static_cast<uint32_t>(entries.size()));
  Put16(&out, zip64 ? 0xffff : static_cast<uint32_t>(entries.size()));
  Put32(&out, zip64 ? 0xffffffff : static_cast<uint32_t>(dir_size));
  Put32(&out, zip64 ? 0xffffffff : static_cast<uint32_t>(dir_offset));
  Put16(&out, static_cast<uint32_t>(comment.size()));
  out += comment;
  return out;
}

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = moeserve::testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << path;
  return path;
}

std::string ReadEntry(const ZipArchive& zip, const std::string& name) {
  const ZipEntry* entry = zip.Find(name);
  if (entry == nullptr) return "<absent>";
  absl::StatusOr<ZipData> data = zip.Read(*entry);
  if (!data.ok()) return "<error: " + std::string(data.status().message()) + ">";
  return std::string(reinterpret_cast<const char*>(data->data), data->size);
}

std::vector<Entry> SampleEntries() {
  return {{"archive/data.pkl", "pickle bytes"},
          {"archive/data/0", std::string("\x00\x01\x02\x03", 4)},
          {"archive/empty", ""},
          {"archive/data/1", "aligned", 0, 0, std::string(37, '\0')}};
}

TEST(ZipReaderTest, ReadsStoredEntries) {
  const std::string path = WriteTemp("plain.zip", BuildZip(SampleEntries(), false, "a comment"));
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  ASSERT_EQ((*zip)->entries().size(), 4u);
  EXPECT_EQ((*zip)->entries()[0].name, "archive/data.pkl");
  EXPECT_EQ(ReadEntry(**zip, "archive/data.pkl"), "pickle bytes");
  EXPECT_EQ(ReadEntry(**zip, "archive/data/0"), std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(ReadEntry(**zip, "archive/empty"), "");
  EXPECT_EQ(ReadEntry(**zip, "archive/data/1"), "aligned");  // past the local-only extra
  EXPECT_EQ((*zip)->Find("archive/nope"), nullptr);
}

TEST(ZipReaderTest, ReadsZip64Records) {
  const std::string path = WriteTemp("zip64.zip", BuildZip(SampleEntries(), true));
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  ASSERT_EQ((*zip)->entries().size(), 4u);
  EXPECT_EQ((*zip)->entries()[1].uncompressed_size, 4u);
  EXPECT_EQ(ReadEntry(**zip, "archive/data.pkl"), "pickle bytes");
  EXPECT_EQ(ReadEntry(**zip, "archive/data/1"), "aligned");
}

TEST(ZipReaderTest, Zip64FieldsWithoutExtraAreAnError) {
  std::string bytes = BuildZip({{"a", "x"}}, true);
  // Rename the zip64 extra's id so the saturated fields have nothing to resolve them.
  const size_t extra = bytes.find(std::string("\x01\x00\x1c\x00", 4));
  ASSERT_NE(extra, std::string::npos);
  bytes[extra] = 0x7f;
  const std::string path = WriteTemp("zip64_noextra.zip", bytes);
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_FALSE(zip.ok());
  EXPECT_THAT(std::string(zip.status().message()), HasSubstr("zip64 extra"));
  EXPECT_THAT(std::string(zip.status().message()), HasSubstr(path));
}

TEST(ZipReaderTest, CompressedEntryIsAnErrorNamingIt) {
  const std::string path =
      WriteTemp("deflated.zip", BuildZip({{"ok", "fine"}, {"archive/data/7", "zz", 8}}, false));
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(ReadEntry(**zip, "ok"), "fine");
  absl::StatusOr<ZipData> data = (*zip)->Read(*(*zip)->Find("archive/data/7"));
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("archive/data/7"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("compressed"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path));
}

TEST(ZipReaderTest, EncryptedEntryIsAnError) {
  const std::string path = WriteTemp("encrypted.zip", BuildZip({{"secret", "x", 0, 1}}, false));
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  absl::StatusOr<ZipData> data = (*zip)->Read((*zip)->entries()[0]);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("encrypted"));
}

TEST(ZipReaderTest, DuplicateNamesAreAnError) {
  const std::string path = WriteTemp("dup.zip", BuildZip({{"a", "1"}, {"a", "2"}}, false));
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_FALSE(zip.ok());
  EXPECT_THAT(std::string(zip.status().message()), HasSubstr("twice"));
}

TEST(ZipReaderTest, NotAZipIsAnError) {
  for (const std::string& bytes : {std::string(), std::string("hello"), std::string(300, 'x')}) {
    const std::string path = WriteTemp("notzip.bin", bytes);
    absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
    ASSERT_FALSE(zip.ok());
    EXPECT_THAT(std::string(zip.status().message()), HasSubstr(path));
  }
  EXPECT_FALSE(ZipArchive::Open(moeserve::testing::TempDir() + "/does_not_exist.zip").ok());
}

TEST(ZipReaderTest, EveryTruncationFailsCleanly) {
  for (const bool zip64 : {false, true}) {
    const std::string full = BuildZip(SampleEntries(), zip64, "c");
    // Every cut inside the directory and end records, every few bytes before them.
    for (size_t n = 0; n < full.size(); n += n + 120 < full.size() ? 16 : 1) {
      const std::string path = WriteTemp("cut.zip", full.substr(0, n));
      absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
      if (!zip.ok()) continue;
      for (const ZipEntry& entry : (*zip)->entries()) (void)(*zip)->Read(entry);
    }
  }
}

TEST(ZipReaderTest, CorruptBytesNeverCrash) {
  const std::string full = BuildZip(SampleEntries(), true);
  uint32_t state = 12345;
  for (int iter = 0; iter < 150; ++iter) {
    std::string bytes = full;
    for (int k = 0; k < 3; ++k) {
      state = state * 1664525u + 1013904223u;
      bytes[(state >> 8) % bytes.size()] = static_cast<char>(state >> 24);
    }
    const std::string path = WriteTemp("fuzz.zip", bytes);
    absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
    if (!zip.ok()) continue;
    for (const ZipEntry& entry : (*zip)->entries()) {
      absl::StatusOr<ZipData> data = (*zip)->Read(entry);
      if (data.ok() && data->size > 0) {
        volatile uint8_t sink = data->data[data->size - 1];  // must be inside the mapping
        (void)sink;
      }
    }
  }
}

TEST(ZipReaderTest, ReadsATorchSaveArchive) {
  const std::string path = moeserve::testing::SourcePath("tests/fixtures/torch_bin/basic.bin");
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(ReadEntry(**zip, "basic/byteorder"), "little");
  EXPECT_NE((*zip)->Find("basic/data.pkl"), nullptr);
  // torch pads local headers so storages start on 64-byte boundaries.
  absl::StatusOr<ZipData> storage = (*zip)->Read(*(*zip)->Find("basic/data/0"));
  ASSERT_TRUE(storage.ok()) << storage.status();
  EXPECT_EQ(storage->size, 24u);
}

}  // namespace
}  // namespace moeserve
