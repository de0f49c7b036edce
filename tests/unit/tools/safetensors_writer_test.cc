// SafetensorsWriter against the repo's reader (which validates headers as the reference
// implementation does): names, shapes, dtypes and values round-trip, the data starts 8-byte
// aligned, and misuse is an error naming the file and tensor.
#include "tools/convert/safetensors_writer.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "engine/loaders/safetensors_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace moeserve::convert {
namespace {

using ::testing::HasSubstr;

std::vector<float> Ramp(int64_t n, float start) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + 0.37f * static_cast<float>(i) - 1.1f;
  return v;
}

TEST(SafetensorsWriterTest, RoundTripsEveryDtype) {
  const std::string path = testing::TempDir() + "/round_trip.safetensors";
  const std::vector<SafetensorsTensor> tensors = {
      {"b.f32", DType::kF32, {3, 5}},
      {"a.f16", DType::kF16, {7}},
      {"c.bf16", DType::kBF16, {2, 3, 1}},
      {"d.empty", DType::kF32, {0, 4}},
  };
  auto writer = SafetensorsWriter::Create(path, tensors, {{"format", "pt"}});
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<std::vector<float>> values;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ASSERT_EQ((*writer)->next()->name, tensors[i].name);
    values.push_back(Ramp(NumElements(tensors[i].shape), static_cast<float>(i)));
    ASSERT_TRUE((*writer)->Write(values.back().data(), values.back().size()).ok());
  }
  EXPECT_EQ((*writer)->next(), nullptr);
  ASSERT_TRUE((*writer)->Finish().ok());

  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), sizeof(header_size));
  EXPECT_EQ((8 + header_size) % 8, 0u);

  auto source = SafetensorsSource::Open(path);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->metadata().at("format"), "pt");
  ASSERT_EQ((*source)->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView* view = (*source)->Find(tensors[i].name);
    ASSERT_NE(view, nullptr) << tensors[i].name;
    EXPECT_EQ(view->dtype, tensors[i].dtype);
    EXPECT_EQ(view->shape, tensors[i].shape);
    for (size_t j = 0; j < values[i].size(); ++j) {
      float got = 0;
      uint16_t bits = 0;
      switch (view->dtype) {
        case DType::kF32:
          std::memcpy(&got, view->data + 4 * j, 4);
          EXPECT_EQ(got, values[i][j]);
          break;
        case DType::kF16:
          std::memcpy(&bits, view->data + 2 * j, 2);
          EXPECT_EQ(bits, F32ToF16(values[i][j]));
          break;
        default:
          std::memcpy(&bits, view->data + 2 * j, 2);
          EXPECT_EQ(bits, F32ToBF16(values[i][j]));
      }
    }
  }
}

TEST(SafetensorsWriterTest, HeaderListsOffsetsInOrder) {
  EXPECT_EQ(SafetensorsHeaderJson({{"x", DType::kF16, {2, 2}}, {"y", DType::kF32, {1}}}, {}),
            R"({"x":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
            R"("y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})");
}

TEST(SafetensorsWriterTest, Errors) {
  const std::string dir = testing::TempDir();
  auto dup = SafetensorsWriter::Create(dir + "/dup.safetensors",
                                       {{"t", DType::kF32, {1}}, {"t", DType::kF32, {1}}}, {});
  EXPECT_THAT(dup.status().message(), HasSubstr("'t'"));
  auto bad_type =
      SafetensorsWriter::Create(dir + "/q.safetensors", {{"q", DType::kQ4_0, {32}}}, {});
  EXPECT_THAT(bad_type.status().message(), HasSubstr("q4_0"));
  auto no_dir = SafetensorsWriter::Create(dir + "/missing/x.safetensors", {}, {});
  EXPECT_THAT(no_dir.status().message(), HasSubstr("missing/x.safetensors"));

  auto writer = SafetensorsWriter::Create(dir + "/count.safetensors",
                                          {{"w", DType::kF16, {2}}, {"v", DType::kF32, {1}}}, {});
  ASSERT_TRUE(writer.ok());
  const float three[3] = {1, 2, 3};
  EXPECT_THAT((*writer)->Write(three, 3).message(), HasSubstr("'w' needs 2 values, got 3"));
  const float big[2] = {1e6f, 0};
  EXPECT_THAT((*writer)->Write(big, 2).message(), HasSubstr("overflows"));
  auto unfinished =
      SafetensorsWriter::Create(dir + "/unfinished.safetensors", {{"w", DType::kF32, {2}}}, {});
  ASSERT_TRUE(unfinished.ok());
  EXPECT_THAT((*unfinished)->Finish().message(), HasSubstr("not written, the first 'w'"));
}

}  // namespace
}  // namespace moeserve::convert
