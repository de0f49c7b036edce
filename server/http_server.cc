#include "server/http_server.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "common/logging.h"
#include "httplib.h"
#include "server/errors.h"

namespace moeserve {
namespace {

int DefaultNumThreads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(64, 4 * cores);
}

// Escapes regex metacharacters: httplib matches route patterns as std::regex.
std::string RegexEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::strchr(".^$|()[]{}*+?\\", c) != nullptr) out += '\\';
    out += c;
  }
  return out;
}

// ip and port of a socket address, formatted exactly as httplib formats
// Request::remote_addr / local_addr.
bool IpAndPort(const sockaddr_storage& addr, socklen_t len, std::string* ip, int* port) {
  if (addr.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  } else {
    return false;
  }
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof(host), nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return false;
  }
  *ip = host;
  return true;
}

// Tells whether the client of one request has hung up. httplib 0.11 does not expose a
// request's socket, so the probe finds it once, by its address pair, among this process's
// descriptors; the socket stays open (and so keeps its descriptor) until the request's
// thread is done with it, which is the only thread that uses the probe.
class ConnectionProbe {
 public:
  explicit ConnectionProbe(const httplib::Request& request)
      : local_addr_(request.local_addr),
        local_port_(request.local_port),
        remote_addr_(request.remote_addr),
        remote_port_(request.remote_port) {}

  bool PeerClosed() {
    if (fd_ == kNotSearched) fd_ = FindSocket();
    if (fd_ < 0) return false;  // not found: assume connected rather than abort work
    pollfd entry{fd_, POLLRDHUP, 0};
    if (poll(&entry, 1, /*timeout=*/0) <= 0) return false;
    return (entry.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

 private:
  static constexpr int kNotSearched = -2;

  int FindSocket() const {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int found = -1;
    while (const dirent* entry = readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(entry->d_name, &end, 10);
      if (end == entry->d_name || *end != '\0') continue;
      if (Matches(static_cast<int>(fd))) {
        found = static_cast<int>(fd);
        break;
      }
    }
    closedir(dir);
    return found;
  }

  bool Matches(int fd) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    std::string ip;
    int port = -1;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        !IpAndPort(addr, len, &ip, &port) || port != local_port_ || ip != local_addr_) {
      return false;
    }
    len = sizeof(addr);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        !IpAndPort(addr, len, &ip, &port)) {
      return false;
    }
    return port == remote_port_ && ip == remote_addr_;
  }

  const std::string local_addr_;
  const int local_port_;
  const std::string remote_addr_;
  const int remote_port_;
  int fd_ = kNotSearched;
};

// httplib 0.11 listens with a backlog of 5 (a compile-time constant of the shared
// library), so a burst of connections has its SYNs dropped and retried a second later.
// Linux lets listen() be called again on a listening socket to raise it.
class Server : public httplib::Server {
 public:
  bool RaiseListenBacklog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};
constexpr int kListenBacklog = 1024;

// Counts one request in HttpServer::active_requests() for as long as it lives.
class ActiveRequest {
 public:
  explicit ActiveRequest(std::atomic<int>* count) : count_(count) { count_->fetch_add(1); }
  ~ActiveRequest() { count_->fetch_sub(1); }
  ActiveRequest(const ActiveRequest&) = delete;
  ActiveRequest& operator=(const ActiveRequest&) = delete;

 private:
  std::atomic<int>* const count_;
};

// Drives one HttpStream from httplib's chunked content provider. Lives until httplib
// drops the provider, i.e. until the stream is over one way or another.
struct StreamState {
  std::unique_ptr<ActiveRequest> active;
  std::shared_ptr<HttpStream> stream;
  std::shared_ptr<ConnectionProbe> probe;
  const std::atomic<bool>* stopping = nullptr;
  bool ended = false;  // next() returned false
  bool gone_reported = false;

  void ReportGone() {
    if (ended || gone_reported) return;
    gone_reported = true;
    if (stream->on_client_gone) stream->on_client_gone();
  }

  // httplib's provider contract: false drops the connection.
  bool Pull(httplib::DataSink& sink) {
    if (stopping->load() || probe->PeerClosed()) {
      ReportGone();
      return false;
    }
    std::string piece;
    bool more = false;
    // Streams run outside httplib's exception handler (after the headers went out), where
    // an escaping exception would terminate the process.
    try {
      more = stream->next(&piece);
    } catch (const std::exception& e) {
      MOESERVE_LOG_ERROR("HTTP stream failed: {}", e.what());
      ReportGone();
      return false;
    } catch (...) {
      MOESERVE_LOG_ERROR("HTTP stream failed with an unknown exception");
      ReportGone();
      return false;
    }
    if (!piece.empty() && !sink.write(piece.data(), piece.size())) {
      ReportGone();
      return false;
    }
    if (!more) {
      ended = true;
      sink.done();
    }
    return true;
  }
};

std::string ErrorMessageFor(const httplib::Request& request, int status, size_t max_body) {
  switch (status) {
    case 400:
      return "Malformed HTTP request";
    case 404:
      return absl::StrCat("Invalid URL (", request.method, " ", request.path, ")");
    case 413:
      return absl::StrCat("Request body too large; the limit is ", max_body, " bytes");
    case 414:
      return "Request URI too long";
    default:
      return absl::StrCat("HTTP error ", status);
  }
}

void WriteResponse(const HttpResponse& response, httplib::Response& out) {
  out.status = response.status;
  for (const auto& [name, value] : response.headers) out.set_header(name, value);
  out.set_content(response.body, response.content_type);
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  const auto it = headers.find(absl::AsciiStrToLower(absl::string_view(name.data(), name.size())));
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

struct HttpServer::Impl {
  explicit Impl(Options options_in) : options(std::move(options_in)) {}

  void Dispatch(const httplib::Request& req, httplib::Response& res);

  const Options options;
  Server server;
  // path -> method -> handler; written before Start() only, read by workers after.
  std::map<std::string, std::map<std::string, HttpHandler>> routes;
  int bound_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<int> active_requests{0};
  std::thread listener;
  absl::Notification listener_done;
  std::atomic<bool> listener_failed{false};
  std::once_flag stop_once;
};

void HttpServer::Impl::Dispatch(const httplib::Request& req, httplib::Response& res) {
  auto active = std::make_unique<ActiveRequest>(&active_requests);
  HttpRequest request;
  request.method = req.method;
  request.path = req.path;
  for (const auto& [name, value] : req.headers) {
    request.headers.emplace(absl::AsciiStrToLower(name), value);
  }
  if (options.gate) {
    if (std::optional<HttpResponse> refusal = options.gate(request); refusal.has_value()) {
      WriteResponse(*refusal, res);
      return;
    }
  }

  const std::map<std::string, HttpHandler>& methods = routes.at(req.path);
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  const auto handler = methods.find(method);
  if (handler == methods.end()) {
    std::vector<std::string> allowed;
    for (const auto& [name, unused] : methods) allowed.push_back(name);
    const std::string allow = absl::StrJoin(allowed, ", ");
    HttpResponse error =
        ErrorResponse(405, absl::StrCat("Method ", req.method, " is not allowed for ", req.path,
                                        "; allowed: ", allow));
    error.headers.emplace_back("Allow", allow);
    WriteResponse(error, res);
    return;
  }

  request.body = req.body;
  auto probe = std::make_shared<ConnectionProbe>(req);
  request.client_connected = [this, probe] { return !stopping.load() && !probe->PeerClosed(); };

  HttpResponse response = handler->second(request);
  if (response.stream == nullptr) {
    WriteResponse(response, res);
    return;
  }
  res.status = response.status;
  for (const auto& [name, value] : response.headers) res.set_header(name, value);
  auto state = std::make_shared<StreamState>();
  state->active = std::move(active);
  state->stream = std::move(response.stream);
  state->probe = std::move(probe);
  state->stopping = &stopping;
  res.set_chunked_content_provider(
      response.content_type,
      [state](size_t /*offset*/, httplib::DataSink& sink) { return state->Pull(sink); },
      // Also on "success": httplib ends a stream cut short by stop() as if it had finished.
      [state](bool /*success*/) { state->ReportGone(); });
}

HttpServer::HttpServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(std::string method, std::string path, HttpHandler handler) {
  CHECK_MSG(!impl_->server.is_running(), "HttpServer::Route after Start");
  auto& methods = impl_->routes[path];
  CHECK_MSG(!methods.contains(method), "route registered twice: " + method + " " + path);
  methods.emplace(std::move(method), std::move(handler));
}

int HttpServer::port() const { return impl_->bound_port; }

int HttpServer::active_requests() const { return impl_->active_requests.load(); }

absl::Status HttpServer::Start() {
  std::signal(SIGPIPE, SIG_IGN);
  Impl& impl = *impl_;
  Server& server = impl.server;

  const int num_threads =
      impl.options.num_threads > 0 ? impl.options.num_threads : DefaultNumThreads();
  server.new_task_queue = [num_threads] { return new httplib::ThreadPool(num_threads); };
  server.set_payload_max_length(impl.options.max_body_bytes);

  // Every method of a known path reaches Dispatch, which answers 405 for the wrong ones;
  // unknown paths fall through to httplib's 404, which the error handler dresses as JSON.
  const httplib::Server::Handler dispatch =
      [&impl](const httplib::Request& req, httplib::Response& res) { impl.Dispatch(req, res); };
  for (const auto& [path, unused] : impl.routes) {
    const std::string pattern = RegexEscape(path);
    server.Get(pattern, dispatch);
    server.Post(pattern, dispatch);
    server.Put(pattern, dispatch);
    server.Patch(pattern, dispatch);
    server.Delete(pattern, dispatch);
    server.Options(pattern, dispatch);
  }

  const size_t max_body = impl.options.max_body_bytes;
  const httplib::Server::HandlerWithResponse error_handler = [max_body](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a route's
    WriteResponse(ErrorResponse(res.status, ErrorMessageFor(req, res.status, max_body)), res);
    return httplib::Server::HandlerResponse::Handled;
  };
  server.set_error_handler(error_handler);
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr thrown) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        MOESERVE_LOG_ERROR("handler for {} {} threw: {}", req.method, req.path, what);
        WriteResponse(ErrorResponse(500, absl::StrCat("Internal server error: ", what)), res);
      });
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    MOESERVE_LOG_INFO("{}:{} \"{} {}\" {}", req.remote_addr, req.remote_port, req.method, req.path,
                      res.status);
  });

  // httplib's default socket options add SO_REUSEPORT, which would let a second server
  // bind the same port and silently take half the connections.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  errno = 0;
  int port = impl.options.port;
  bool bound = false;
  if (port == 0) {
    port = server.bind_to_any_port(impl.options.host);
    bound = port > 0;
  } else {
    bound = server.bind_to_port(impl.options.host, port);
  }
  if (!bound) {
    const int error = errno;
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s:%d: %s", impl.options.host, impl.options.port,
                        error != 0 ? std::strerror(error) : "bind failed"));
  }
  impl.bound_port = port;
  if (!server.RaiseListenBacklog(kListenBacklog)) {
    MOESERVE_LOG_WARN("cannot raise the listen backlog: {}", std::strerror(errno));
  }

  impl.listener = std::thread([&impl] {
    impl.server.listen_after_bind();
    if (!impl.stopping.load()) {
      impl.listener_failed.store(true);
      MOESERVE_LOG_ERROR("HTTP listener on {}:{} stopped unexpectedly", impl.options.host,
                         impl.bound_port);
    }
    impl.listener_done.Notify();
  });
  // Stop() only reaches a listener that is already running.
  while (!server.is_running() && !impl.listener_done.HasBeenNotified()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  MOESERVE_LOG_INFO("listening on http://{}:{} ({} worker threads)", impl.options.host, port,
                    num_threads);
  return absl::OkStatus();
}

void HttpServer::Stop() {
  Impl& impl = *impl_;
  std::call_once(impl.stop_once, [&impl] {
    impl.stopping.store(true);
    impl.server.stop();
    if (impl.listener.joinable()) impl.listener.join();
  });
}

absl::Status HttpServer::Wait() {
  impl_->listener_done.WaitForNotification();
  if (impl_->listener_failed.load()) {
    return absl::InternalError(absl::StrFormat("HTTP listener on %s:%d stopped unexpectedly",
                                               impl_->options.host, impl_->bound_port));
  }
  return absl::OkStatus();
}

}  // namespace moeserve
