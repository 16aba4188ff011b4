#include "commands/serve.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "commands/pull.h"
#include "common/error.h"
#include "model/predictor.h"
#include "serving/server.h"

namespace recmodel {
namespace {

struct ServeOptions {
  std::vector<std::string> models;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string from;
  double poll = 5;
  int max_batch_tokens = 16384;
  int max_batch_requests = 64;
  double max_queue_delay_ms = 2;
  int max_concurrent_requests = 512;
  int64_t payload_limit = 2000000;
  int max_length = 0;
  double drain_timeout = 30;
  std::string log_predictions;
  double log_sample = 1;
  std::string device = "auto";
  int http_threads = 0;
  int tokenizer_threads = 0;
  double request_timeout = 30;
  double idle_timeout = 60;
};

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0 + 0.5));
}

void run_serve(const ServeOptions& options, const Console& console) {
  const std::vector<serving::ModelSpec> specs = serving::parse_model_specs(options.models);
  if (!(options.log_sample > 0 && options.log_sample <= 1))
    fail<UsageError>("--log-sample {}: give the share of predictions to log, in (0, 1]", options.log_sample);
  if (options.log_sample != 1 && options.log_predictions.empty())
    fail<UsageError>("--log-sample needs --log-predictions FILE");
  if (options.max_length > 0 && static_cast<int64_t>(options.max_length) > options.max_batch_tokens)
    fail<UsageError>("--max-length {} is more than --max-batch-tokens {}: an input that long could never run",
                     options.max_length, options.max_batch_tokens);

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const torch::Device device = model::parse_device(options.device);

  serving::ServerConfig config;
  config.http.host = options.host;
  config.http.port = static_cast<uint16_t>(options.port);
  config.http.io_threads = options.http_threads > 0 ? options.http_threads : (cores <= 4 ? 1 : 2);
  config.http.body_limit = static_cast<size_t>(options.payload_limit);
  config.http.request_timeout = seconds_to_ms(options.request_timeout);
  config.http.idle_timeout = seconds_to_ms(options.idle_timeout);
  config.http.write_timeout = seconds_to_ms(options.request_timeout);
  config.http.server_header = std::string("recmodel/") + RECMODEL_VERSION;

  config.batching.max_batch_tokens = static_cast<size_t>(options.max_batch_tokens);
  config.batching.max_batch_requests = static_cast<size_t>(options.max_batch_requests);
  config.batching.max_queue_delay = std::chrono::microseconds(static_cast<int64_t>(options.max_queue_delay_ms * 1000));
  config.batching.threads = console.threads();

  config.loader.predictor.device = device;
  config.loader.predictor.batch_size = config.batching.max_batch_requests;  // the batcher's batch is one pass
  config.loader.predictor.max_length = static_cast<size_t>(options.max_length);
  // An fp32 model runs unpadded: a batch is one pass whatever its lengths. For an int8 one,
  // which pads, on a CPU a forward pass costs a few dozen tokens' worth beyond its padded
  // tokens, so a mixed batch is cut by length (64 measured best with bench/serve_throughput.sh
  // at 64 connections). On a GPU a pass costs far more than its tokens: a batch stays one pass.
  config.loader.predictor.pass_cost_tokens = device.is_cpu() ? 64 : 0;
  config.loader.max_batch_tokens = config.batching.max_batch_tokens;
  config.loader.registry = console.options().registry;
  config.loader.cache = serving::default_serve_cache();
  config.loader.hash_threads = std::max(1, std::min(console.threads(), 4));

  config.service.max_concurrent_requests = static_cast<size_t>(options.max_concurrent_requests);
  config.service.payload_limit = static_cast<size_t>(options.payload_limit);
  config.service.worker_threads =
      options.tokenizer_threads > 0 ? options.tokenizer_threads : std::max(1u, cores / 2);
  config.service.device = device.is_cuda() ? "cuda" : "cpu";
  config.service.threads = console.threads();

  config.poll = seconds_to_ms(options.poll);
  config.drain_timeout = seconds_to_ms(options.drain_timeout);
  config.log_predictions = options.log_predictions;
  config.log_sample = options.log_sample;

  serving::ServerHooks hooks;
  hooks.warn = [&console](const std::string& warning) { console.warn("{}", warning); };
  hooks.info = [&console](const std::string& line) { console.info("{}", line); };
  if (!options.from.empty()) {
    const std::string from = options.from;
    hooks.fetch = [from, &console](const registry::VersionInfo& info, const std::filesystem::path& dir) {
      PullOptions pull;
      pull.ref = info.uri();
      pull.from = from;
      pull.out = dir.string();
      console.info("serve: pulling {} from {} into {}", info.uri(), from, dir.string());
      return pull_version(pull, console).out;
    };
  }
  serving::run_server(specs, config, hooks);
}

}  // namespace

CommandAction register_serve(CLI::App& command, const Console& console) {
  auto options = std::make_shared<ServeOptions>();
  command.footer(
      "\nRoutes: POST /predict (Text Embeddings Inference), POST / (Hugging Face Inference Endpoints),\n"
      "POST /invocations (MLflow, SageMaker), KServe v2 (/v2/models/NAME/infer, /v2/health/ready, ...),\n"
      "POST /models/NAME/predict, GET /health, /info and /metrics (Prometheus). Errors are\n"
      "{\"error\": ..., \"error_type\": ...}. With models:/NAME@ALIAS (or /latest) the server follows the\n"
      "alias: a new version is pulled (--from), verified, warmed and swapped in while the old one serves;\n"
      "SIGHUP checks at once, SIGTERM drains. When ready it prints 'listening on http://HOST:PORT'.\n"
      "See 'man recmodel-serve'.");
  const char* model_group = "Model";
  command.add_option("--model", options->models,
                     "Model folder or models:/NAME/VERSION | @ALIAS | /latest, as REF or NAME=REF (repeatable; "
                     "the first answers /predict)")
      ->type_name("REF")
      ->required()
      ->group(model_group);
  command.add_option("--from", options->from, "Remote to pull a registered version from when it is not on disk")
      ->type_name("REMOTE")
      ->group(model_group);
  command.add_option("--poll", options->poll, "Seconds between registry checks of followed aliases; 0 = SIGHUP only")
      ->check(CLI::Range(0.0, 86400.0).description(""))
      ->capture_default_str()
      ->type_name("SECONDS")
      ->group(model_group);
  command.add_option("--device", options->device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(model_group);
  command.add_option("--max-length", options->max_length, "Truncate inputs to N tokens; 0 = the model's limit")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);

  const char* http_group = "HTTP";
  command.add_option("--host", options->host, "Address to listen on (0.0.0.0 or :: for every interface)")
      ->capture_default_str()
      ->group(http_group);
  command.add_option("--port", options->port, "Port to listen on; 0 = a free port")
      ->check(CLI::Range(0, 65535).description(""))
      ->capture_default_str()
      ->group(http_group);
  command.add_option("--max-concurrent-requests", options->max_concurrent_requests,
                     "Inference requests admitted at once; more are answered 429")
      ->check(CLI::Range(1, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(http_group);
  command.add_option("--payload-limit", options->payload_limit, "Largest request body in bytes; more is 413")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32).description(""))
      ->capture_default_str()
      ->type_name("BYTES")
      ->group(http_group);
  command.add_option("--request-timeout", options->request_timeout,
                     "Seconds a client has to send one request (headers and body) and to read the answer")
      ->check(CLI::Range(0.05, 3600.0).description(""))
      ->capture_default_str()
      ->type_name("SECONDS")
      ->group(http_group);
  command.add_option("--idle-timeout", options->idle_timeout, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.05, 3600.0).description(""))
      ->capture_default_str()
      ->type_name("SECONDS")
      ->group(http_group);
  command.add_option("--drain-timeout", options->drain_timeout,
                     "Seconds requests in flight get to finish after SIGTERM/SIGINT")
      ->check(CLI::Range(0.0, 3600.0).description(""))
      ->capture_default_str()
      ->type_name("SECONDS")
      ->group(http_group);
  command.add_option("--http-threads", options->http_threads, "I/O threads; 0 = 1 on up to 4 cores, else 2")
      ->check(CLI::Range(0, 64).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(http_group);

  const char* batching_group = "Batching";
  command.add_option("--max-batch-tokens", options->max_batch_tokens,
                     "Padded tokens per forward pass (inputs x the longest)")
      ->check(CLI::Range(4, 1 << 24).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(batching_group);
  command.add_option("--max-batch-requests", options->max_batch_requests, "Inputs per forward pass")
      ->check(CLI::Range(1, 1 << 16).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(batching_group);
  command.add_option("--max-queue-delay-ms", options->max_queue_delay_ms,
                     "Most a batch waits for requests still being tokenized (an idle server never waits)")
      ->check(CLI::Range(0.0, 10000.0).description(""))
      ->capture_default_str()
      ->type_name("MS")
      ->group(batching_group);
  command.add_option("--tokenizer-threads", options->tokenizer_threads,
                     "Threads that parse and tokenize requests; 0 = half the cores")
      ->check(CLI::Range(0, 256).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(batching_group);

  const char* log_group = "Logs";
  command.add_option("--log-predictions", options->log_predictions,
                     "Append one JSONL line per scored input (time, model, version, tokens, label, score) for "
                     "'recmodel drift'")
      ->type_name("FILE")
      ->group(log_group);
  command.add_option("--log-sample", options->log_sample, "Share of predictions logged, in (0, 1]")
      ->capture_default_str()
      ->type_name("P")
      ->group(log_group);
  return [options, &console] { run_serve(*options, console); };
}

}  // namespace recmodel
