#include "serving/server.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "registry/reference.h"
#include "serving/access_log.h"
#include "serving/alias_watcher.h"
#include "serving/metrics.h"
#include "serving/model_set.h"
#include "serving/prediction_log.h"
#include "serving/routes.h"

namespace recmodel::serving {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Signals arrive on whichever thread the kernel picks; the handler only writes the signal's
// number to a pipe that the main thread waits on.
int signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int signal) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signal);
  if (::write(signal_pipe[1], &byte, 1) < 0) {
  }
  errno = saved;
}

class SignalPipe {
 public:
  SignalPipe() {
    if (::pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
      throw Error(ExitCode::internal, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal, &action, &previous_[signal]);
    std::signal(SIGPIPE, SIG_IGN);
  }
  ~SignalPipe() {
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal, &previous_[signal], nullptr);
    ::close(signal_pipe[0]);
    ::close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
  }
  // Returns the next signal, or 0 when none came within `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    pollfd fd{signal_pipe[0], POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return 0;
    unsigned char byte = 0;
    return ::read(signal_pipe[0], &byte, 1) == 1 ? byte : 0;
  }

 private:
  struct sigaction previous_[NSIG] {};
};

std::string header_value(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& values) {
  std::vector<ModelSpec> specs;
  std::set<std::string> names;
  for (const std::string& value : values) {
    ModelSpec spec;
    spec.ref = value;
    const size_t eq = value.find('=');
    std::error_code ec;
    // NAME=REF, unless the whole value is a registry reference or an existing folder ("a=b/").
    if (eq != std::string::npos && !registry::is_registry_uri(value) && !fs::is_directory(value, ec)) {
      spec.name = value.substr(0, eq);
      spec.ref = value.substr(eq + 1);
      try {
        registry::validate_model_name(spec.name);
      } catch (const UsageError& e) {
        fail<UsageError>("--model {}: {}", value, e.what());
      }
      if (spec.ref.empty()) fail<UsageError>("--model {}: no reference after '='", value);
    }
    if (registry::is_registry_uri(spec.ref)) {
      const registry::ModelRef ref = registry::parse_ref(spec.ref, false);
      if (!ref.names_version())
        fail<UsageError>("--model {}: name a version (models:/{}/3), an alias (models:/{}@production) or "
                         "models:/{}/latest",
                         spec.ref, ref.name, ref.name, ref.name);
      spec.registry = true;
      spec.follows = ref.kind == registry::ModelRef::Kind::alias || ref.kind == registry::ModelRef::Kind::latest;
      if (spec.name.empty()) spec.name = ref.name;
    } else if (spec.name.empty()) {
      fs::path path(spec.ref);
      while (!path.empty() && path.filename().empty()) path = path.parent_path();
      spec.name = path.filename().string();
      try {
        registry::validate_model_name(spec.name);
      } catch (const UsageError&) {
        fail<UsageError>("--model {}: the folder's name cannot name the model in routes; give one with --model "
                         "NAME={}",
                         spec.ref, spec.ref);
      }
    }
    if (!names.insert(spec.name).second)
      fail<UsageError>("--model {}: a model named {} is served already; name each one with --model NAME=REF", value,
                       spec.name);
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) fail<UsageError>("serve needs at least one --model");
  return specs;
}

void run_server(const std::vector<ModelSpec>& specs, const ServerConfig& config, const ServerHooks& hooks) {
  SignalPipe signals;
  ServeMetrics metrics(config.batching.max_batch_requests, config.batching.max_batch_tokens);
  AccessLog access;
  auto log = [&access](const std::string& line) { access.message(line); };

  model::DynamicBatcher batcher(config.batching, [&metrics](const model::BatchStats& stats) {
    const std::string& name = stats.version->identity().name;
    metrics.batch(name, stats.inputs, stats.padded_tokens, stats.seconds);
  });
  VersionLoader loader(config.loader, batcher, hooks.fetch, hooks.warn);

  // Every model is loaded, verified and warmed before the port opens: a server that listens can answer.
  ModelSet models;
  for (const ModelSpec& spec : specs) {
    model::VersionPtr version;
    if (spec.registry) {
      const registry::VersionInfo info = loader.resolve(registry::parse_ref(spec.ref, false));
      version = loader.load_registered(spec.name, spec.ref, info);
    } else {
      version = loader.load_folder(spec.name, spec.ref, spec.ref);
    }
    if (hooks.info)
      hooks.info(fmt::format("serve: {} serves {} ({}, {} labels, inputs up to {} tokens)", spec.name,
                             version->version_label(), version->identity().uri,
                             version->regression() ? 1 : version->labels().size(), version->max_length()));
    metrics.model_loaded(spec.name, version_name(*version), spec.ref);
    models.add(std::move(version), spec.follows);
  }

  // The port is bound before the prediction log is opened, so a server that cannot listen
  // leaves no log file behind; the handler sees the service only once it exists (before start()).
  std::unique_ptr<PredictionLog> predictions;
  std::unique_ptr<InferenceService> service_slot;
  HttpServer server(config.http, [&service_slot](HttpRequest request, Responder responder) {
    service_slot->handle(std::move(request), std::move(responder));
  });
  if (!config.log_predictions.empty())
    predictions = std::make_unique<PredictionLog>(config.log_predictions, config.log_sample, 0x5eed,
                                                  [&metrics] { metrics.prediction_log_dropped(); });
  service_slot = std::make_unique<InferenceService>(models, batcher, metrics, predictions.get(), config.service);
  InferenceService& service = *service_slot;
  server.on_exchange([&](const ExchangeRecord& exchange) {
    const double seconds = static_cast<double>(exchange.duration.count()) / 1e6;
    metrics.request(match_route(exchange.method, exchange.path).pattern, exchange.method, exchange.status, seconds);
    AccessRecord record;
    record.remote = exchange.remote;
    record.method = exchange.method;
    record.path = exchange.path;
    record.status = exchange.status;
    record.version = header_value(exchange.response_headers, "x-model-version");
    const std::string tokens = header_value(exchange.response_headers, "x-compute-tokens");
    record.tokens = tokens.empty() ? 0 : std::stoul(tokens);
    record.duration = exchange.duration;
    access.record(std::move(record));
  });
  server.on_own_response([&service](HttpResponse& response) { service.name_version(response); });
  server.start();
  service.set_ready(true);
  // The one line on stdout: scripts and tests wait for it.
  std::fprintf(stdout, "listening on http://%s:%u\n", url_host(config.http.host).c_str(),
               static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  AliasWatcher watcher(models, loader, metrics, log, config.poll);
  for (;;) {
    const int signal = signals.wait(std::chrono::milliseconds(1000));
    if (signal == SIGHUP) {
      log("serve: SIGHUP: checking the registry now");
      watcher.check_now();
    } else if (signal == SIGINT || signal == SIGTERM) {
      break;
    }
  }

  // Drain: not ready, no new connections, busy ones finish; a second signal ends it at once.
  service.set_ready(false);
  server.drain();
  log(fmt::format("serve: draining: {} request{} in flight (up to {} s)", service.in_flight(),
                  service.in_flight() == 1 ? "" : "s", config.drain_timeout.count() / 1000.0));
  const auto deadline = Clock::now() + config.drain_timeout;
  std::optional<int> forced;  // the exit code when threads are left behind
  while (service.in_flight() > 0 || server.active_connections() > 0) {
    if (Clock::now() >= deadline) {
      log(fmt::format("serve: drain timeout: {} request{} still in flight are cut off", service.in_flight(),
                      service.in_flight() == 1 ? "" : "s"));
      forced = 0;
      break;
    }
    const int signal = signals.wait(std::chrono::milliseconds(20));
    if (signal == SIGINT || signal == SIGTERM) {
      log("serve: second signal: exiting without waiting");
      forced = 130;
      break;
    }
  }
  watcher.stop();
  if (forced) {
    // Threads still busy (a forward pass, a pull) cannot be joined in time: flush and leave.
    if (predictions) predictions->flush();
    access.flush();
    std::fflush(stderr);
    std::_Exit(*forced);
  }
  server.stop();
  batcher.stop();
  if (predictions) predictions->flush();
  log("serve: stopped");
  access.flush();
}

}  // namespace recmodel::serving
