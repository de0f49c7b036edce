// A scripted fake engine for the route tests: a one-token-per-byte tokenizer, a trivial
// chat template, and an engine that records submitted requests and pushes a scripted list
// of outputs into each handle.
#ifndef MOESERVE_TESTS_UNIT_SERVER_FAKE_ENGINE_H_
#define MOESERVE_TESTS_UNIT_SERVER_FAKE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/engine.h"
#include "engine/request.h"
#include "engine/request_handle.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace moeserve {

inline constexpr int32_t kBos = 1;
inline constexpr int32_t kMaxModelLen = 64;

// One token per byte (id = byte + 10); "<s>" is BOS when special tokens are parsed.
class FakeTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text, bool parse_special) const override {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size(); ++i) {
      if (parse_special && text.substr(i, 3) == "<s>") {
        ids.push_back(kBos);
        i += 2;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i]) + 10);
      }
    }
    return ids;
  }
  std::string TokenBytes(int32_t id) const override { return std::string(1, char(id - 10)); }
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special) const override {
    std::string text;
    for (const int32_t id : ids) {
      if (id == kBos) {
        if (!skip_special) text += "<s>";
      } else if (!IsSpecial(id)) {
        text += TokenBytes(id);
      }
    }
    return text;
  }
  int32_t vocab_size() const override { return 266; }
  bool IsSpecial(int32_t id) const override { return id < 10; }
  std::optional<int32_t> FindToken(std::string_view) const override { return std::nullopt; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return 2; }
  bool add_bos_token() const override { return true; }
  const std::vector<int32_t>& stop_ids() const override { return stop_ids_; }

 private:
  std::vector<int32_t> stop_ids_ = {2};
};

// "<role>content" per message, then "<assistant>"; a message "RAISE" fails like
// raise_exception() in a Jinja template.
class FakeChatTemplate : public ChatTemplate {
 public:
  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) const override {
    std::string out = prefix;
    for (const ChatMessage& message : messages) {
      if (message.content == "RAISE") {
        return absl::InvalidArgumentError("Conversation roles must alternate");
      }
      out += "<" + message.role + ">" + message.content;
    }
    if (add_generation_prompt) out += "<assistant>";
    return out;
  }
  absl::StatusOr<std::string> RenderVariables(const jinja::Value&) const override {
    return absl::UnimplementedError("not used by the chat route");
  }
  std::string prefix;
};

// Records submitted requests and pushes a scripted list of outputs into each handle.
class FakeEngine : public Engine {
 public:
  FakeEngine() {
    info_.max_model_len = kMaxModelLen;
    info_.vocab_size = 266;
  }

  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(Request request) override {
    if (!submit_error.ok()) return submit_error;
    auto handle = std::make_shared<RequestHandle>(request.id, request.sampling.n);
    for (const RequestOutput& output : script) handle->Push(output);
    if (on_submit) on_submit(handle);
    submitted.push_back(std::move(request));
    handles.push_back(handle);
    return handle;
  }
  const Tokenizer& tokenizer() const override { return tokenizer_; }
  const ChatTemplate& chat_template() const override { return chat_template_; }
  const ModelInfo& model_info() const override { return info_; }
  EngineStats stats() const override { return {}; }
  void Shutdown() override {}

  FakeChatTemplate& mutable_template() { return chat_template_; }

  absl::Status submit_error;
  std::vector<RequestOutput> script;
  std::function<void(std::shared_ptr<RequestHandle>)> on_submit;
  std::vector<Request> submitted;
  std::vector<std::shared_ptr<RequestHandle>> handles;

 private:
  FakeTokenizer tokenizer_;
  FakeChatTemplate chat_template_;
  ModelInfo info_;
};

inline RequestOutput Output(std::string text, int32_t completion_tokens,
                            FinishReason reason = FinishReason::kNone) {
  RequestOutput output;
  output.text_delta = std::move(text);
  output.token_ids.assign(1, 42);
  output.completion_tokens = completion_tokens;
  output.finish_reason = reason;
  return output;
}

// `output` as an output of choice `index`.
inline RequestOutput OfChoice(int32_t index, RequestOutput output) {
  output.index = index;
  return output;
}

}  // namespace moeserve

#endif  // MOESERVE_TESTS_UNIT_SERVER_FAKE_ENGINE_H_
