#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace moeserve {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kPatience = absl::Seconds(20);  // upper bound, never a timing check

HttpResponse Json(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump();
  return response;
}

// A stream of `count` pieces "data: <i>\n\n"; count < 0 streams until the client leaves.
std::shared_ptr<HttpStream> CountingStream(int count, absl::Notification* gone) {
  auto stream = std::make_shared<HttpStream>();
  auto i = std::make_shared<int>(0);
  stream->next = [count, i](std::string* out) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    *out += "data: " + std::to_string((*i)++) + "\n\n";
    return count < 0 || *i < count;
  };
  stream->on_client_gone = [gone] {
    if (!gone->HasBeenNotified()) gone->Notify();
  };
  return stream;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServer::Options options;
    options.port = 0;
    options.num_threads = 16;
    options.max_body_bytes = 64 * 1024;
    server_ = std::make_unique<HttpServer>(options);
    server_->Route("GET", "/hello", [](const HttpRequest&) {
      return Json(200, {{"hello", "world"}});
    });
    server_->Route("POST", "/echo", [](const HttpRequest& request) {
      return Json(201, {{"method", request.method},
                        {"path", request.path},
                        {"body", request.body},
                        {"x_test", std::string(request.Header("X-TEST"))}});
    });
    server_->Route("PUT", "/echo", [](const HttpRequest&) { return Json(200, {}); });
    server_->Route("GET", "/throw",
                   [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    server_->Route("GET", "/stream", [this](const HttpRequest&) {
      HttpResponse response;
      response.content_type = "text/event-stream";
      response.headers = {{"Cache-Control", "no-cache"}};
      response.stream = CountingStream(3, &stream_gone_);
      return response;
    });
    server_->Route("GET", "/endless", [this](const HttpRequest&) {
      HttpResponse response;
      response.content_type = "text/event-stream";
      response.stream = CountingStream(-1, &stream_gone_);
      return response;
    });
    // Holds the request until its client is gone, as a long generation would.
    server_->Route("GET", "/hold", [this](const HttpRequest& request) {
      holding_.Notify();
      while (request.client_connected()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      handler_saw_gone_.Notify();
      return Json(200, {});
    });
    // Returns only once `kConcurrent` requests are inside handlers at the same time.
    server_->Route("GET", "/together", [this](const HttpRequest&) {
      ++inside_;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (inside_.load() < kConcurrent && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return Json(inside_.load() >= kConcurrent ? 200 : 504, {});
    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(20, 0);
    return client;
  }

  static nlohmann::json ErrorOf(const httplib::Result& result) {
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
    const nlohmann::json body = nlohmann::json::parse(result->body);
    EXPECT_TRUE(body["error"].is_object()) << result->body;
    for (const char* key : {"message", "type", "param", "code"}) {
      EXPECT_TRUE(body["error"].contains(key)) << key << " in " << result->body;
    }
    return body["error"];
  }

  static constexpr int kConcurrent = 12;
  std::unique_ptr<HttpServer> server_;
  absl::Notification stream_gone_;
  absl::Notification holding_;
  absl::Notification handler_saw_gone_;
  std::atomic<int> inside_{0};
};

TEST_F(HttpServerTest, ServesRoutes) {
  httplib::Client client = Client();
  httplib::Result result = client.Get("/hello");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(result->body), nlohmann::json({{"hello", "world"}}));

  result = client.Post("/echo?x=1", {{"X-Test", "yes"}}, "payload", "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 201);
  EXPECT_EQ(nlohmann::json::parse(result->body),
            nlohmann::json(
                {{"method", "POST"}, {"path", "/echo"}, {"body", "payload"}, {"x_test", "yes"}}));

  result = client.Head("/hello");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST_F(HttpServerTest, UnknownPathIs404Json) {
  httplib::Result result = Client().Get("/v1/nothing");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  const nlohmann::json error = ErrorOf(result);
  EXPECT_EQ(error["message"], "Invalid URL (GET /v1/nothing)");
  EXPECT_EQ(error["type"], "invalid_request_error");
}

TEST_F(HttpServerTest, WrongMethodIs405JsonWithAllow) {
  httplib::Result result = Client().Delete("/echo");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 405);
  EXPECT_EQ(result->get_header_value("Allow"), "POST, PUT");
  const nlohmann::json error = ErrorOf(result);
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("Method DELETE is not allowed"));
  EXPECT_EQ(error["type"], "invalid_request_error");

  result = Client().Post("/hello", "{}", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 405);
  EXPECT_EQ(result->get_header_value("Allow"), "GET");
}

// Sends raw bytes and returns the server's answer: headers and a Content-Length body.
std::string RawExchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
      response.append(buffer, n);
      const size_t body = response.find("\r\n\r\n");
      const size_t length = response.find("Content-Length: ");
      if (body != std::string::npos && length != std::string::npos &&
          response.size() >= body + 4 + std::stoul(response.substr(length + 16))) {
        break;
      }
    }
  }
  close(fd);
  return response;
}

TEST_F(HttpServerTest, MalformedHttpIs400Json) {
  const std::string response = RawExchange(server_->port(), "NONSENSE\r\n\r\n");
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 400"));
  const size_t body = response.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  const nlohmann::json json = nlohmann::json::parse(response.substr(body + 4));
  EXPECT_EQ(json["error"]["message"], "Malformed HTTP request");
}

TEST_F(HttpServerTest, OversizedBodyIs413Json) {
  httplib::Result result = Client().Post("/echo", std::string(128 * 1024, 'x'), "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 413);
  EXPECT_THAT(ErrorOf(result)["message"].get<std::string>(), HasSubstr("too large"));
}

TEST_F(HttpServerTest, ThrowingHandlerIs500Json) {
  httplib::Result result = Client().Get("/throw");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 500);
  const nlohmann::json error = ErrorOf(result);
  EXPECT_EQ(error["type"], "server_error");
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("boom"));
  // And the server goes on serving.
  EXPECT_EQ(Client().Get("/hello")->status, 200);
}

TEST_F(HttpServerTest, StreamsPiecesInOrder) {
  httplib::Client client = Client();
  std::vector<std::string> pieces;
  httplib::Result result = client.Get("/stream", [&](const char* data, size_t size) {
    pieces.emplace_back(data, size);
    return true;
  });
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_EQ(result->get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(result->get_header_value("Transfer-Encoding"), "chunked");
  std::string all;
  for (const std::string& piece : pieces) all += piece;
  EXPECT_EQ(all, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  EXPECT_FALSE(stream_gone_.HasBeenNotified()) << "a finished stream is not a disconnect";
}

TEST_F(HttpServerTest, StreamLearnsTheClientLeft) {
  httplib::Client client = Client();
  int received = 0;
  httplib::Result result = client.Get("/endless", [&](const char*, size_t) {
    return ++received < 3;  // hang up after the third piece
  });
  EXPECT_FALSE(result);
  EXPECT_TRUE(stream_gone_.WaitForNotificationWithTimeout(kPatience));
}

TEST_F(HttpServerTest, HandlerLearnsTheClientLeft) {
  std::thread client_thread([this] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(0, 200 * 1000);  // gives up (and closes) after 200 ms
    EXPECT_FALSE(client.Get("/hold"));
  });
  EXPECT_TRUE(holding_.WaitForNotificationWithTimeout(kPatience));
  EXPECT_TRUE(handler_saw_gone_.WaitForNotificationWithTimeout(kPatience));
  client_thread.join();
}

TEST_F(HttpServerTest, ServesRequestsConcurrently) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kConcurrent; ++i) {
    clients.emplace_back([this, &ok] {
      httplib::Result result = Client().Get("/together");
      if (result && result->status == 200) ++ok;
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(ok.load(), kConcurrent);
}

TEST_F(HttpServerTest, BindErrorNamesHostAndPort) {
  HttpServer::Options options;
  options.port = server_->port();
  HttpServer second(options);
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("127.0.0.1:" + std::to_string(server_->port())));
}

TEST_F(HttpServerTest, StopEndsStreamsAndHandlers) {
  std::thread stream_client([this] {
    httplib::Client client = Client();
    client.Get("/endless", [](const char*, size_t) { return true; });
  });
  std::thread hold_client([this] { Client().Get("/hold"); });
  ASSERT_TRUE(holding_.WaitForNotificationWithTimeout(kPatience));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the stream start
  server_->Stop();
  EXPECT_TRUE(server_->Wait().ok());
  EXPECT_TRUE(stream_gone_.HasBeenNotified());
  EXPECT_TRUE(handler_saw_gone_.HasBeenNotified());
  stream_client.join();
  hold_client.join();
  server_->Stop();  // idempotent
}

TEST_F(HttpServerTest, CountsActiveRequestsUntilTheirBodyIsSent) {
  EXPECT_EQ(server_->active_requests(), 0);
  std::thread client_thread([this] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(0, 300 * 1000);
    EXPECT_FALSE(client.Get("/hold"));
  });
  ASSERT_TRUE(holding_.WaitForNotificationWithTimeout(kPatience));
  EXPECT_EQ(server_->active_requests(), 1);
  ASSERT_TRUE(handler_saw_gone_.WaitForNotificationWithTimeout(kPatience));
  client_thread.join();

  // A stream counts while it flows, after its handler returned.
  absl::Notification received;
  std::atomic<int> active_while_streaming{-1};
  std::thread stream_client([&] {
    httplib::Client client = Client();
    client.Get("/endless", [&](const char*, size_t) {
      if (!received.HasBeenNotified()) {
        active_while_streaming = server_->active_requests();
        received.Notify();
      }
      return false;  // hang up
    });
  });
  ASSERT_TRUE(received.WaitForNotificationWithTimeout(kPatience));
  stream_client.join();
  EXPECT_EQ(active_while_streaming.load(), 1);
  ASSERT_TRUE(stream_gone_.WaitForNotificationWithTimeout(kPatience));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server_->active_requests() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->active_requests(), 0);
}

TEST(HttpServerGateTest, RefusalReplacesTheRouteAndComesBefore405) {
  HttpServer::Options options;
  options.port = 0;
  options.num_threads = 4;
  std::atomic<int> handled{0};
  options.gate = [](const HttpRequest& request) -> std::optional<HttpResponse> {
    if (request.Header("X-Deny").empty()) return std::nullopt;
    HttpResponse refusal;
    refusal.status = 401;
    refusal.body = R"({"error": {"message": "no"}})";
    return refusal;
  };
  HttpServer server(options);
  server.Route("GET", "/hello", [&handled](const HttpRequest&) {
    ++handled;
    return Json(200, {{"hello", "world"}});
  });
  ASSERT_TRUE(server.Start().ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(20, 0);

  httplib::Result result = client.Get("/hello");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  result = client.Get("/hello", {{"X-Deny", "1"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  EXPECT_EQ(nlohmann::json::parse(result->body)["error"]["message"], "no");
  result = client.Post("/hello", {{"X-Deny", "1"}}, "{}", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  // Unknown paths are answered before the gate.
  result = client.Get("/nothing", {{"X-Deny", "1"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(handled.load(), 1);
  EXPECT_EQ(server.active_requests(), 0);
}

}  // namespace
}  // namespace moeserve
