// The HTTP layer: a small interface over cpp-httplib, which only http_server.cc sees.
// Routes map (method, exact path) to a handler that takes a plain HttpRequest and returns
// an HttpResponse: a whole body, or a stream the server pulls pieces from. Handlers run on
// the server's worker threads, one request per thread, and never throw; anything thrown
// anyway becomes a 500 JSON error. The server answers unknown paths (404), known paths
// with another method (405), malformed HTTP (400) and oversized bodies (413) itself, all
// with OpenAI-style JSON error bodies. An optional gate (auth, draining; see
// server/admission.h) may refuse a request to a known path before its route runs.
#ifndef MOESERVE_SERVER_HTTP_SERVER_H_
#define MOESERVE_SERVER_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace moeserve {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... ("HEAD" is served by the GET handler)
  std::string path;    // without the query string
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // True while the client is still connected and the server is not stopping. Costs one
  // poll(); call it only from the handler's own thread, while the handler runs. Handlers
  // that wait long (a whole generation) check it between waits and give up when it fails.
  std::function<bool()> client_connected = [] { return true; };

  // The header's value, or "" when absent. `name` is matched case-insensitively.
  std::string_view Header(std::string_view name) const;
};

// A body produced piece by piece (server-sent events). The server calls `next` on the
// connection's thread until it returns false, sending each piece as soon as it is made.
struct HttpStream {
  // Appends the next piece of the body to *out and returns whether more may follow. When
  // nothing is ready it should wait a little (~100 ms) and return true with *out untouched:
  // the server then checks the client is still there and calls again.
  std::function<bool(std::string* out)> next;
  // Called at most once, on the connection's thread, when the client went away (or the
  // server stopped) before `next` returned false. Typically aborts the work behind it.
  std::function<void()> on_client_gone;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, sent instead of `body`, with chunked transfer encoding.
  std::shared_ptr<HttpStream> stream;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 8000;  // 0 picks a free port; see port()
    // Worker threads; each request holds one for its whole duration (a streamed
    // generation included), so this bounds the requests served at once. 0 = max(64,
    // 4 * cores): waiting threads are cheap and the engine batches far more than 8.
    int num_threads = 0;
    size_t max_body_bytes = size_t{32} << 20;
    // Runs before every routed request (not before the 404 of an unknown path), seeing
    // its method, path and headers but not its body; a response it returns is sent
    // instead of running the route (or the 405). Thread-safe; may be empty.
    std::function<std::optional<HttpResponse>(const HttpRequest&)> gate;
  };

  explicit HttpServer(Options options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves `method` on exactly `path`. REQUIRES: before Start(); each (method, path) once.
  void Route(std::string method, std::string path, HttpHandler handler);

  // Binds and starts serving on a background thread. Fails (Unavailable, naming
  // host:port) when the address cannot be bound, e.g. the port is in use. Ignores SIGPIPE
  // for the whole process: a client that hangs up must not kill the server.
  absl::Status Start();

  // The bound port (the chosen one when Options::port was 0). REQUIRES: Start() succeeded.
  int port() const;

  // Routed requests being answered now: from the handler's start until the last byte of
  // its body (a stream's included) is sent or the connection is gone.
  int active_requests() const;

  // Stops accepting connections, ends streams (their on_client_gone runs), makes
  // client_connected() false for running handlers and waits for every handler to return.
  // Idempotent; safe to call from any thread but a handler's.
  void Stop();

  // Blocks until the server has stopped: OK after Stop(), an error when the listener
  // failed on its own.
  absl::Status Wait();

 private:
  struct Impl;  // holds the httplib::Server
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeserve

#endif  // MOESERVE_SERVER_HTTP_SERVER_H_
