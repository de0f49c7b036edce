#include "engine/loaders/safetensors_reader.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "engine/loaders/json_lite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"

namespace moeserve {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- helpers --------------------------------------------------------------------------------

std::string FixturePath(const std::string& relative) {
  return moeserve::testing::SourcePath("tests/fixtures/safetensors/" + relative);
}

// The hand-built cases write hundreds of small files; /dev/shm keeps that fast when the disk
// is busy. Removed after the tests.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::error_code error;
    fs::path base = fs::is_directory("/dev/shm", error) ? fs::path("/dev/shm")
                                                        : fs::path(moeserve::testing::TempDir());
    base /= "moeserve_safetensors_test_" + std::to_string(::getpid());
    fs::create_directories(base, error);
    if (error) base = moeserve::testing::TempDir();
    return new std::string(base.string());
  }();
  return *dir;
}

class RemoveScratchDir : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code error;
    fs::remove_all(ScratchDir(), error);
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveScratchDir =
    ::testing::AddGlobalTestEnvironment(new RemoveScratchDir);

// A fresh, empty directory under the scratch dir.
std::string FreshDir(const std::string& name) {
  std::string dir = ScratchDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// An 8-byte little-endian header length, the header, then the data buffer.
std::vector<uint8_t> Build(const std::string& header, const std::vector<uint8_t>& buffer,
                           std::optional<uint64_t> header_length = std::nullopt) {
  const uint64_t n = header_length.value_or(header.size());
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(n >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), buffer.begin(), buffer.end());
  return bytes;
}

// Writes `bytes` to a temp file and opens it; *path receives the file's path.
absl::StatusOr<std::unique_ptr<TensorSource>> OpenBytes(const std::vector<uint8_t>& bytes,
                                                        std::string* path,
                                                        const std::string& name = "case") {
  *path = ScratchDir() + "/" + name + ".safetensors";
  if (absl::Status s = moeserve::testing::WriteBytes(*path, bytes); !s.ok()) return s;
  return OpenSafetensors(*path);
}

// Opens a hand-built file expecting failure; returns the error message, which must name
// the file.
std::string OpenError(const std::string& header, const std::vector<uint8_t>& buffer,
                      std::optional<uint64_t> header_length = std::nullopt) {
  std::string path;
  const auto source = OpenBytes(Build(header, buffer, header_length), &path);
  EXPECT_FALSE(source.ok()) << "header: " << header;
  if (source.ok()) return "";
  std::string message(source.status().message());
  EXPECT_THAT(message, HasSubstr(path));
  return message;
}

std::vector<float> Decode(const TensorView& t) {
  const int64_t size = DTypeRowBytes(t.dtype, 1);
  std::vector<float> values;
  for (int64_t i = 0; i < t.num_bytes / size; ++i) {
    const uint8_t* p = t.data + i * size;
    if (t.dtype == DType::kF32) {
      float f;
      std::memcpy(&f, p, 4);
      values.push_back(f);
    } else if (t.dtype == DType::kI32) {
      int32_t v;
      std::memcpy(&v, p, 4);
      values.push_back(static_cast<float>(v));
    } else {
      uint16_t h;
      std::memcpy(&h, p, 2);
      values.push_back(t.dtype == DType::kF16 ? F16ToF32(h) : BF16ToF32(h));
    }
  }
  return values;
}

std::vector<std::string> Names(const TensorSource& source) {
  std::vector<std::string> names;
  for (const TensorView& t : source.tensors()) names.push_back(t.name);
  return names;
}

const std::vector<uint8_t> kEightBytes(8, 0x11);

// ---- fixtures written by the reference safetensors package ----------------------------------

TEST(SafetensorsReaderTest, ReadsTinyFixture) {
  const std::string path = FixturePath("tiny.safetensors");
  auto opened = SafetensorsSource::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const SafetensorsSource& source = **opened;
  EXPECT_THAT(Names(source), ElementsAre("embed.bf16", "empty", "ids.i32", "layer.bias_f16",
                                         "layer.weight", "scalar"));

  const TensorView* weight = source.Find("layer.weight");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->dtype, DType::kF32);
  EXPECT_THAT(weight->shape, ElementsAre(2, 3));
  EXPECT_EQ(weight->num_bytes, 24);
  EXPECT_EQ(weight->file, path);
  EXPECT_THAT(Decode(*weight), ElementsAre(-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f));

  const TensorView* bias = source.Find("layer.bias_f16");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::kF16);
  EXPECT_THAT(bias->shape, ElementsAre(4));
  EXPECT_THAT(Decode(*bias), ElementsAre(1.0f, -2.0f, 0.5f, 65504.0f));

  const TensorView* embed = source.Find("embed.bf16");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, DType::kBF16);
  EXPECT_THAT(embed->shape, ElementsAre(2, 2));
  EXPECT_THAT(Decode(*embed), ElementsAre(1.0f, -3.0f, 0.15625f, 256.0f));

  const TensorView* ids = source.Find("ids.i32");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->dtype, DType::kI32);
  int32_t last;
  std::memcpy(&last, ids->data + 8, 4);
  EXPECT_EQ(last, 2147483647);
  EXPECT_EQ(Decode(*ids)[1], -2.0f);

  const TensorView* scalar = source.Find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_THAT(Decode(*scalar), ElementsAre(7.0f));

  const TensorView* empty = source.Find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_THAT(empty->shape, ElementsAre(0, 3));
  EXPECT_EQ(empty->num_bytes, 0);

  EXPECT_EQ(source.Find("missing"), nullptr);
  EXPECT_EQ(source.Find(""), nullptr);
  EXPECT_EQ(source.metadata().at("format"), "pt");
  EXPECT_EQ(source.metadata().at("note"), "h\xc3\xa9llo \xe6\xbc\xa2");
}

void ExpectShardedTensors(const TensorSource& source, const std::string& dir) {
  EXPECT_THAT(Names(source),
              ElementsAre("lm_head", "model.embed", "model.layers.0.w", "model.layers.1.w"));
  const std::string shard1 = (fs::path(dir) / "model-00001-of-00002.safetensors").string();
  const std::string shard2 = (fs::path(dir) / "model-00002-of-00002.safetensors").string();

  const TensorView* w0 = source.Find("model.layers.0.w");
  ASSERT_NE(w0, nullptr);
  EXPECT_EQ(w0->file, shard1);
  EXPECT_EQ(w0->dtype, DType::kF32);
  EXPECT_THAT(w0->shape, ElementsAre(2, 2));
  EXPECT_THAT(Decode(*w0), ElementsAre(0.0f, 1.0f, 2.0f, 3.0f));

  const TensorView* embed = source.Find("model.embed");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->file, shard1);
  EXPECT_EQ(embed->dtype, DType::kBF16);
  EXPECT_THAT(embed->shape, ElementsAre(3, 2));
  EXPECT_THAT(Decode(*embed), ElementsAre(-2.5f, -2.0f, -1.5f, -1.0f, -0.5f, 0.0f));

  const TensorView* w1 = source.Find("model.layers.1.w");
  ASSERT_NE(w1, nullptr);
  EXPECT_EQ(w1->file, shard2);
  EXPECT_EQ(w1->dtype, DType::kF16);
  EXPECT_THAT(Decode(*w1), ElementsAre(10.0f, 11.0f, 12.0f, 13.0f));

  const TensorView* head = source.Find("lm_head");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->file, shard2);
  EXPECT_THAT(head->shape, ElementsAre(2));
  EXPECT_THAT(Decode(*head), ElementsAre(0.25f, -0.75f));
}

TEST(SafetensorsReaderTest, ReadsShardedDirThroughIndex) {
  const std::string dir = FixturePath("sharded");
  auto source = OpenSafetensorsDir(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  ExpectShardedTensors(**source, dir);
}

// Copies the fixture shards into a fresh dir, with or without the index.
std::string CopyShards(const std::string& name, bool with_index) {
  std::string dir = FreshDir(name);
  for (const char* file : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"}) {
    if (!with_index && std::string(file) == "model.safetensors.index.json") continue;
    fs::copy_file(FixturePath(std::string("sharded/") + file), fs::path(dir) / file);
  }
  return dir;
}

TEST(SafetensorsReaderTest, MergesAllShardsWithoutIndex) {
  const std::string dir = CopyShards("no_index", /*with_index=*/false);
  auto source = OpenSafetensorsDir(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  ExpectShardedTensors(**source, dir);
}

TEST(SafetensorsReaderTest, PrefersModelSafetensorsOverOtherFiles) {
  const std::string dir = FreshDir("single");
  fs::copy_file(FixturePath("tiny.safetensors"), fs::path(dir) / "model.safetensors");
  fs::copy_file(FixturePath("sharded/model-00001-of-00002.safetensors"),
                fs::path(dir) / "other.safetensors");
  auto source = OpenSafetensorsDir(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->tensors().size(), 6u);
  EXPECT_EQ((*source)->Find("model.embed"), nullptr);
}

TEST(SafetensorsReaderTest, DirErrors) {
  // Nothing to read.
  const std::string empty = FreshDir("empty_dir");
  auto none = OpenSafetensorsDir(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr(empty));
  EXPECT_FALSE(OpenSafetensorsDir(empty + "/does_not_exist").ok());

  // A tensor in two shards.
  const std::string twice = FreshDir("twice");
  fs::copy_file(FixturePath("tiny.safetensors"), fs::path(twice) / "a.safetensors");
  fs::copy_file(FixturePath("tiny.safetensors"), fs::path(twice) / "b.safetensors");
  auto dup = OpenSafetensorsDir(twice);
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("a.safetensors"));
  EXPECT_THAT(dup.status().message(), HasSubstr("b.safetensors"));
  EXPECT_THAT(dup.status().message(), HasSubstr("tensor '"));

  const auto index_error = [](const std::string& name, const std::string& index) {
    const std::string dir = CopyShards(name, /*with_index=*/false);
    WriteText(dir + "/model.safetensors.index.json", index);
    auto source = OpenSafetensorsDir(dir);
    EXPECT_FALSE(source.ok()) << index;
    if (source.ok()) return std::string();
    EXPECT_THAT(source.status().message(), HasSubstr("model.safetensors.index.json"));
    return std::string(source.status().message());
  };
  const std::string shard1 = "\"model-00001-of-00002.safetensors\"";
  const std::string shard2 = "\"model-00002-of-00002.safetensors\"";
  // A missing shard file.
  EXPECT_THAT(index_error("missing_file", "{\"weight_map\": {\"lm_head\": \"nope.safetensors\"}}"),
              HasSubstr("nope.safetensors"));
  // A tensor that no shard holds.
  EXPECT_THAT(index_error("missing_tensor", "{\"weight_map\": {\"ghost\": " + shard1 + "}}"),
              HasSubstr("'ghost'"));
  // A tensor put in the wrong shard.
  EXPECT_THAT(index_error("wrong_shard", "{\"weight_map\": {\"lm_head\": " + shard1 +
                                             ", \"model.embed\": " + shard2 + "}}"),
              HasSubstr("'lm_head'"));
  // Shard names must stay inside the directory.
  EXPECT_THAT(index_error("escape", "{\"weight_map\": {\"lm_head\": \"../x.safetensors\"}}"),
              HasSubstr("'lm_head'"));
  EXPECT_THAT(index_error("no_map", "{\"metadata\": {}}"), HasSubstr("weight_map"));
  EXPECT_THAT(index_error("bad_json", "{\"weight_map\": "), HasSubstr("JSON"));
}

// ---- malformed files --------------------------------------------------------------------------

TEST(SafetensorsReaderTest, EveryTruncationFails) {
  const std::vector<uint8_t> full = ReadBytes(FixturePath("tiny.safetensors"));
  ASSERT_GT(full.size(), 100u);
  for (size_t length = 0; length < full.size(); ++length) {
    std::string path;
    const auto source = OpenBytes(
        std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length)),
        &path, "truncated");
    ASSERT_FALSE(source.ok()) << "length " << length;
    EXPECT_THAT(source.status().message(), HasSubstr(path)) << "length " << length;
  }
  // An extra trailing byte is not described by the header either.
  std::vector<uint8_t> longer = full;
  longer.push_back(0);
  std::string path;
  const auto source = OpenBytes(longer, &path, "longer");
  ASSERT_FALSE(source.ok());
  EXPECT_THAT(source.status().message(), HasSubstr("cover 56 bytes of the 57-byte"));
}

TEST(SafetensorsReaderTest, HandBuiltValidFile) {
  // Header padded with spaces (as writers do for alignment), a zero-size tensor sharing an
  // offset, and tensors listed out of offset order.
  const std::string header = R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("z":{"dtype":"F16","shape":[2,0],"data_offsets":[4,4]},)"
                             R"("a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}   )";
  std::string path;
  auto source = OpenBytes(Build(header, kEightBytes), &path);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_THAT(Names(**source), ElementsAre("a", "b", "z"));
  EXPECT_EQ((*source)->Find("b")->data, (*source)->Find("a")->data + 4);

  // Unknown fields in a tensor entry are ignored, as the reference implementation does.
  auto extra = OpenBytes(
      Build(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[1]}})", {0, 0, 0, 0}),
      &path, "extra");
  ASSERT_TRUE(extra.ok()) << extra.status();
}

// Flipping any byte of the fixture either still parses or fails with the file's name; it
// never crashes, and whatever parses has views inside the file.
TEST(SafetensorsReaderTest, SurvivesEveryByteFlip) {
  const std::vector<uint8_t> full = ReadBytes(FixturePath("tiny.safetensors"));
  const uint64_t header_end = 8 + 440;  // fixture header length, checked below
  ASSERT_EQ(full[0] | (full[1] << 8), 440);
  for (size_t i = 0; i < header_end; ++i) {
    for (const uint8_t mask : {0x01, 0xff}) {
      std::vector<uint8_t> bytes = full;
      bytes[i] ^= mask;
      std::string path;
      const auto source = OpenBytes(bytes, &path, "flipped");
      if (!source.ok()) {
        EXPECT_THAT(source.status().message(), HasSubstr(path)) << i;
        continue;
      }
      int64_t total = 0;
      for (const TensorView& t : (*source)->tensors()) total += t.num_bytes;
      EXPECT_LE(total + 8, static_cast<int64_t>(full.size())) << i;
    }
  }
}

TEST(SafetensorsReaderTest, RejectsBadOffsets) {
  // Offsets that disagree with shape x dtype.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kEightBytes),
              HasSubstr("tensor 'a' data_offsets [0, 8] span 8 bytes but its shape and dtype "
                        "need 12"));
  // Past the end of the buffer.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", kEightBytes),
              HasSubstr("run past the end"));
  // Reversed and negative.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", kEightBytes),
              HasSubstr("tensor 'a'"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", kEightBytes),
              HasSubstr("tensor 'a'"));
  // Overlap.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        kEightBytes),
              HasSubstr("overlap"));
  // A gap, and a tail no tensor covers.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kEightBytes),
              HasSubstr("starts at 4"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", kEightBytes),
              HasSubstr("cover 4 bytes of the 8-byte"));
  // Not two integers.
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", kEightBytes),
              HasSubstr("data_offsets"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", kEightBytes),
              HasSubstr("data_offsets"));
}

TEST(SafetensorsReaderTest, RejectsBadShapes) {
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kEightBytes),
              HasSubstr("tensor 'a' shape"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kEightBytes),
              HasSubstr("tensor 'a' shape has an entry that is not a non-negative integer"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", kEightBytes),
              HasSubstr("tensor 'a' shape"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],)"
                        R"("data_offsets":[0,8]}})",
                        kEightBytes),
              HasSubstr("overflows"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[2305843009213693952],)"
                        R"("data_offsets":[0,8]}})",
                        kEightBytes),
              HasSubstr("overflows"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[99999999999999999999],)"
                        R"("data_offsets":[0,8]}})",
                        kEightBytes),
              HasSubstr("not a non-negative integer"));
}

TEST(SafetensorsReaderTest, RejectsUnsupportedDtypes) {
  for (const std::string dtype : {"F64", "I64", "U8", "BOOL", "F8_E4M3", "I16", "f32", ""}) {
    const std::string message = OpenError(
        R"({"w":{"dtype":")" + dtype + R"(","shape":[1],"data_offsets":[0,8]}})", kEightBytes);
    EXPECT_THAT(message, HasSubstr("tensor 'w' has dtype " + dtype + ","));
  }
  EXPECT_THAT(OpenError(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,8]}})", kEightBytes),
              HasSubstr("dtype is not a string"));
}

TEST(SafetensorsReaderTest, RejectsBadHeaderLengths) {
  EXPECT_THAT(OpenError("{}", {}, 200'000'000), HasSubstr("exceeds the limit"));
  EXPECT_THAT(OpenError("{}", {}, std::numeric_limits<uint64_t>::max()),
              HasSubstr("exceeds the limit"));
  EXPECT_THAT(OpenError("{}", {}, 1000), HasSubstr("runs past the end"));
  // An empty file and a lone length.
  std::string path;
  EXPECT_FALSE(OpenBytes({}, &path).ok());
  EXPECT_FALSE(OpenBytes(Build("", {}), &path).ok());
}

TEST(SafetensorsReaderTest, RejectsBadHeaderJson) {
  EXPECT_THAT(OpenError("[]", {}), HasSubstr("header is a array, expected an object"));
  EXPECT_THAT(OpenError("\"x\"", {}), HasSubstr("expected an object"));
  EXPECT_THAT(OpenError("12", {}), HasSubstr("expected an object"));
  EXPECT_THAT(OpenError("{", {}), HasSubstr("header: invalid JSON"));
  EXPECT_THAT(OpenError("{} x", {}), HasSubstr("trailing"));
  EXPECT_THAT(OpenError(std::string("{}\0", 3), {}), HasSubstr("trailing"));
  EXPECT_THAT(OpenError("{\"a\":1,}", {}), HasSubstr("invalid JSON"));
  EXPECT_THAT(OpenError("{'a':1}", {}), HasSubstr("invalid JSON"));
  // Deep nesting fails cleanly instead of exhausting the stack.
  EXPECT_THAT(OpenError("{\"a\":" + std::string(100000, '['), {}), HasSubstr("nesting deeper"));
  // Duplicate tensor names.
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_THAT(OpenError("{\"a\":" + entry + ",\"a\":" + entry + "}", kEightBytes),
              HasSubstr("duplicate key \"a\""));
  // Tensor entries of the wrong form.
  EXPECT_THAT(OpenError(R"({"a":[1]})", {}), HasSubstr("tensor 'a' is a array"));
  EXPECT_THAT(OpenError(R"({"a":{"dtype":"F32","shape":[1]}})", {}),
              HasSubstr("tensor 'a' lacks data_offsets"));
  // __metadata__ must map strings to strings.
  EXPECT_THAT(OpenError(R"({"__metadata__":{"k":1}})", {}), HasSubstr("__metadata__ 'k'"));
  EXPECT_THAT(OpenError(R"({"__metadata__":[]})", {}), HasSubstr("__metadata__"));
}

// ---- the JSON parser ----------------------------------------------------------------------

TEST(JsonLiteTest, ParsesValues) {
  auto v =
      json_lite::Parse(R"( {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","n":[-9223372036854775808,)"
                       R"(9223372036854775807,0,-0],"t":true,"f":false,"z":null,"e":{}} )");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Find("s")->as_string(), "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  const json_lite::Array& n = v->Find("n")->as_array();
  ASSERT_EQ(n.size(), 4u);
  EXPECT_EQ(n[0].as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(n[1].as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(n[3].as_int(), 0);
  EXPECT_TRUE(v->Find("t")->is_bool());
  EXPECT_TRUE(v->Find("z")->is_null());
  EXPECT_TRUE(v->Find("e")->as_object().empty());
  EXPECT_EQ(v->Find("missing"), nullptr);
  // Raw UTF-8 passes through.
  auto raw = json_lite::Parse("\"\xe6\xbc\xa2\xf0\x9f\x98\x80\"");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->as_string(), "\xe6\xbc\xa2\xf0\x9f\x98\x80");
}

// Integers beyond int64 read as doubles, as in Python's json: tokenizer_config.json files
// carry model_max_length = int(1e30).
TEST(JsonLiteTest, IntegersBeyondInt64AreDoubles) {
  auto v = json_lite::Parse(
      "[9223372036854775808, -9223372036854775809, "
      "1000000000000000019884624838656]");
  ASSERT_TRUE(v.ok()) << v.status();
  const json_lite::Array& a = v->as_array();
  EXPECT_TRUE(a[0].is_double());
  EXPECT_EQ(a[0].as_double(), 9223372036854775808.0);
  EXPECT_EQ(a[1].as_double(), -9223372036854775809.0);
  EXPECT_EQ(a[2].as_double(), 1e30);
}

TEST(JsonLiteTest, ParsesNumbers) {
  auto v = json_lite::Parse("[1e-06, 10000.0, -2.5E+3, 0.1, 1E2, 7, -0.0]");
  ASSERT_TRUE(v.ok()) << v.status();
  const json_lite::Array& a = v->as_array();
  EXPECT_EQ(a[0].as_double(), 1e-06);
  EXPECT_EQ(a[1].as_double(), 10000.0);
  EXPECT_EQ(a[2].as_double(), -2500.0);
  EXPECT_EQ(a[3].as_double(), 0.1);
  EXPECT_EQ(a[4].as_double(), 100.0);
  ASSERT_TRUE(a[5].is_int());
  EXPECT_EQ(a[5].as_number(), 7.0);
  EXPECT_TRUE(a[6].is_double());
  EXPECT_EQ(json_lite::TypeName(a[0]), "number");
  EXPECT_EQ(json_lite::TypeName(a[5]), "integer");
}

TEST(JsonLiteTest, RejectsInvalidInput) {
  for (const std::string text : {"",
                                 " ",
                                 "{",
                                 "}",
                                 "[1,]",
                                 "[1 2]",
                                 "{\"a\" 1}",
                                 "{1:2}",
                                 "tru",
                                 "nul",
                                 "01",
                                 "-",
                                 "+1",
                                 "1.",
                                 ".5",
                                 "1e",
                                 "1e+",
                                 "01.5",
                                 "0x10",
                                 "1e999",
                                 "-1e999",
                                 "\"abc",
                                 "\"\\x\"",
                                 "\"\\u12\"",
                                 "\"\\u12g4\"",
                                 "\"\\ud800\"",
                                 "\"\\ud800\\u0041\"",
                                 "\"\\udc00\"",
                                 "\"a\nb\"",
                                 "\"\xff\"",
                                 "\"\xc0\xaf\"",
                                 "\"\xed\xa0\x80\"",
                                 "\"\xf4\x90\x80\x80\"",
                                 "\"\xe6\xbc\"",
                                 "{\"a\":1,\"a\":2}",
                                 "[] []"}) {
    EXPECT_FALSE(json_lite::Parse(text).ok()) << text;
  }
}

TEST(JsonLiteTest, DepthLimit) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(json_lite::Parse(nested(64)).ok());
  EXPECT_FALSE(json_lite::Parse(nested(65)).ok());
  EXPECT_TRUE(json_lite::Parse(nested(3), /*max_depth=*/3).ok());
  EXPECT_FALSE(json_lite::Parse(nested(4), /*max_depth=*/3).ok());
}

}  // namespace
}  // namespace moeserve
