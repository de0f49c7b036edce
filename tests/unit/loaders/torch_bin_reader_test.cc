#include "engine/loaders/torch_bin_reader.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Fixtures written by tests/fixtures/gen_torch_bin_fixtures.py; the expected values below
// repeat its formulas.
std::string Fixture(const std::string& name) {
  return moeserve::testing::SourcePath("tests/fixtures/torch_bin/" + name);
}

std::vector<float> Floats(const TensorView& view) {
  std::vector<float> out;
  const int64_t size = view.dtype == DType::kF32 ? 4 : 2;
  for (int64_t i = 0; i < view.num_bytes / size; ++i) {
    if (view.dtype == DType::kF32) {
      float f;
      std::memcpy(&f, view.data + 4 * i, 4);
      out.push_back(f);
    } else {
      uint16_t h;
      std::memcpy(&h, view.data + 2 * i, 2);
      out.push_back(view.dtype == DType::kF16 ? F16ToF32(h) : BF16ToF32(h));
    }
  }
  return out;
}

std::vector<int32_t> Ints(const TensorView& view) {
  std::vector<int32_t> out(view.num_bytes / 4);
  std::memcpy(out.data(), view.data, view.num_bytes);
  return out;
}

const TensorView& Get(const TensorSource& source, const std::string& name) {
  const TensorView* view = source.Find(name);
  EXPECT_NE(view, nullptr) << name;
  static const TensorView kEmpty;
  return view != nullptr ? *view : kEmpty;
}

TEST(TorchBinReaderTest, ReadsEveryDtypeAndLayout) {
  const std::string path = Fixture("basic.bin");
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBin(path);
  ASSERT_TRUE(source.ok()) << source.status();
  const TensorSource& s = **source;

  std::vector<std::string> names;
  for (const TensorView& view : s.tensors()) {
    names.push_back(view.name);
    EXPECT_EQ(view.file, path);
  }
  EXPECT_THAT(names,
              ElementsAre("bf16", "empty", "f16", "f32", "i32", "param", "scalar", "shared.a",
                          "shared.b", "tied.embed", "tied.lm_head", "transposed"));
  EXPECT_EQ(s.Find("missing"), nullptr);

  const TensorView& f32 = Get(s, "f32");
  EXPECT_EQ(f32.dtype, DType::kF32);
  EXPECT_THAT(f32.shape, ElementsAre(2, 3));
  EXPECT_THAT(Floats(f32), ElementsAre(-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f));

  const TensorView& f16 = Get(s, "f16");
  EXPECT_EQ(f16.dtype, DType::kF16);
  EXPECT_THAT(f16.shape, ElementsAre(4));
  EXPECT_THAT(Floats(f16), ElementsAre(1.5f, -2.0f, 0.25f, 65504.0f));

  const TensorView& bf16 = Get(s, "bf16");
  EXPECT_EQ(bf16.dtype, DType::kBF16);
  EXPECT_THAT(bf16.shape, ElementsAre(2, 2));
  EXPECT_THAT(Floats(bf16), ElementsAre(1.0f, -2.5f, 3.0f, 0.125f));

  const TensorView& i32 = Get(s, "i32");
  EXPECT_EQ(i32.dtype, DType::kI32);
  EXPECT_THAT(Ints(i32), ElementsAre(1, -2, 2147483647));

  // arange(6).reshape(2, 3).t(): element [i][j] = 3 * j + i, copied to row-major.
  const TensorView& transposed = Get(s, "transposed");
  EXPECT_THAT(transposed.shape, ElementsAre(3, 2));
  EXPECT_EQ(transposed.num_bytes, 24);
  EXPECT_THAT(Floats(transposed), ElementsAre(0, 3, 1, 4, 2, 5));

  // Views of one storage (arange(10) + 100) at element offsets 2 and 4.
  const TensorView& a = Get(s, "shared.a");
  const TensorView& b = Get(s, "shared.b");
  EXPECT_THAT(Floats(a), ElementsAre(102, 103, 104, 105));
  EXPECT_THAT(b.shape, ElementsAre(2, 3));
  EXPECT_THAT(Floats(b), ElementsAre(104, 105, 106, 107, 108, 109));
  EXPECT_EQ(b.data, a.data + 2 * 4);  // zero-copy views into the same storage

  const TensorView& embed = Get(s, "tied.embed");
  const TensorView& lm_head = Get(s, "tied.lm_head");
  EXPECT_EQ(embed.data, lm_head.data);
  EXPECT_THAT(Floats(lm_head), ElementsAre(7, 8, 9, 10));

  const TensorView& scalar = Get(s, "scalar");
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_THAT(Floats(scalar), ElementsAre(3.25f));

  const TensorView& empty = Get(s, "empty");
  EXPECT_THAT(empty.shape, ElementsAre(0, 4));
  EXPECT_EQ(empty.num_bytes, 0);

  EXPECT_THAT(Floats(Get(s, "param")), ElementsAre(-1.0f, 2.0f));
}

void ExpectError(const std::string& fixture, const std::vector<std::string>& parts) {
  const std::string path = Fixture(fixture);
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBin(path);
  ASSERT_FALSE(source.ok()) << fixture;
  EXPECT_THAT(std::string(source.status().message()), HasSubstr(path));
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(source.status().message()), HasSubstr(part)) << fixture;
  }
}

TEST(TorchBinReaderTest, MaliciousPicklesAreRefusedNotRun) {
  ExpectError("evil_os_system.bin", {"'os.system'", "not allowed"});
  ExpectError("evil_builtins_eval.bin", {"'builtins.eval'"});
  ExpectError("evil_stack_global.bin", {"'posix.system'"});
  ExpectError("evil_unknown_opcode.bin", {"0xff", "offset 5"});
  ExpectError("evil_inst.bin", {"INST"});
}

TEST(TorchBinReaderTest, BrokenArchivesAreClearErrors) {
  ExpectError("int64.bin", {"unsupported dtype", "'ids'", "torch.LongStorage"});
  ExpectError("expanded.bin", {"'expanded'", "overlapping strides"});
  ExpectError("big_endian.bin", {"big-endian"});
  ExpectError("compressed.bin", {"basic/data/0", "compressed"});
  ExpectError("missing_storage.bin", {"'f32'", "basic/data/0"});
  ExpectError("truncated.bin", {"zip"});
  EXPECT_FALSE(OpenTorchBin(Fixture("does_not_exist.bin")).ok());
}

TEST(TorchBinReaderTest, MergesShards) {
  const std::string dir = Fixture("sharded");
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBinDir(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_EQ((*source)->tensors().size(), 3u);
  const TensorView& a = Get(**source, "a.weight");
  EXPECT_THAT(Floats(a), ElementsAre(1.0f, 2.0f));
  EXPECT_EQ(a.file, dir + "/pytorch_model-00001-of-00002.bin");
  const TensorView& b = Get(**source, "b.weight");
  EXPECT_EQ(b.dtype, DType::kF16);
  EXPECT_THAT(b.shape, ElementsAre(1, 2));
  EXPECT_THAT(Floats(b), ElementsAre(3.0f, 4.0f));
  EXPECT_EQ(b.file, dir + "/pytorch_model-00002-of-00002.bin");
  EXPECT_THAT(Ints(Get(**source, "c.bias")), ElementsAre(5));
}

// A scratch checkpoint directory under the test's temp dir.
std::string NewDir(const std::string& name) {
  const std::string dir = moeserve::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void CopyShards(const std::string& dir) {
  for (const char* shard :
       {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"}) {
    fs::copy_file(Fixture(std::string("sharded/") + shard), dir + "/" + shard);
  }
}

void WriteIndex(const std::string& dir, const std::string& json) {
  std::ofstream(dir + "/pytorch_model.bin.index.json") << json;
}

absl::Status OpenDirError(const std::string& dir) { return OpenTorchBinDir(dir).status(); }
std::string OpenDirMessage(const std::string& dir) {
  return std::string(OpenDirError(dir).message());
}

TEST(TorchBinReaderTest, SingleFileDirectory) {
  const std::string dir = NewDir("single");
  fs::copy_file(Fixture("basic.bin"), dir + "/pytorch_model.bin");
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBinDir(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->tensors().size(), 12u);
  EXPECT_EQ(OpenDirError(NewDir("empty")).code(), absl::StatusCode::kNotFound);
}

TEST(TorchBinReaderTest, ShardErrors) {
  const std::string s1 = "pytorch_model-00001-of-00002.bin";
  const std::string s2 = "pytorch_model-00002-of-00002.bin";

  std::string dir = NewDir("missing_shard");
  fs::copy_file(Fixture("sharded/" + s1), dir + "/" + s1);
  fs::copy_file(Fixture("sharded/pytorch_model.bin.index.json"),
                dir + "/pytorch_model.bin.index.json");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("shard '" + s2 + "' is missing"));

  // The same tensor in two shards.
  dir = NewDir("duplicate");
  fs::copy_file(Fixture("sharded/" + s1), dir + "/" + s1);
  fs::copy_file(Fixture("sharded/" + s1), dir + "/" + s2);
  WriteIndex(dir, R"({"weight_map": {"a.weight": ")" + s1 + R"(", "x": ")" + s2 + R"("}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("'a.weight' is in both"));

  dir = NewDir("index_lists_absent");
  CopyShards(dir);
  WriteIndex(dir, R"({"weight_map": {"a.weight": ")" + s1 + R"(", "b.weight": ")" + s2 +
                      R"(", "c.bias": ")" + s2 + R"(", "d.weight": ")" + s2 + R"("}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("'d.weight' is not in"));

  dir = NewDir("index_misplaces");
  CopyShards(dir);
  WriteIndex(dir, R"({"weight_map": {"a.weight": ")" + s2 + R"(", "b.weight": ")" + s2 +
                      R"(", "c.bias": ")" + s1 + R"("}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("places tensor"));

  dir = NewDir("index_unlisted");
  CopyShards(dir);
  WriteIndex(dir, R"({"weight_map": {"a.weight": ")" + s1 + R"(", "b.weight": ")" + s2 + R"("}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("'c.bias' is not listed"));

  dir = NewDir("index_bad");
  CopyShards(dir);
  WriteIndex(dir, R"({"weight_map": {"a.weight": "../evil.bin"}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("not a plain file name"));
  WriteIndex(dir, R"({"weight_map": {"a.weight": 3}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("not a string"));
  WriteIndex(dir, R"({"metadata": {}})");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("weight_map"));
  WriteIndex(dir, R"({"weight_map": {"a": "x.bin",)");
  EXPECT_THAT(OpenDirMessage(dir), HasSubstr("pytorch_model.bin.index.json"));
}

}  // namespace
}  // namespace moeserve
