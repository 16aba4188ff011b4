#include "converters/onnx_runtime.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

extern char** environ;

namespace recmodel::converters {

namespace {

// The node side: CommonJS so that NODE_PATH is honoured. "probe" prints the package version;
// "run MODEL INPUT OUTPUT THREADS NAME" runs every batch of INPUT and writes OUTPUT.
constexpr const char* kRunnerScript = R"JS('use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const candidates = [];
  if (process.env.RECMODEL_ONNXRUNTIME_NODE) candidates.push(process.env.RECMODEL_ONNXRUNTIME_NODE);
  candidates.push('onnxruntime-node');
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'onnxruntime-node'));
  for (const candidate of candidates) {
    try {
      const ort = require(candidate);
      const versions = (ort.env && ort.env.versions) || {};
      return { ort, version: versions.node || versions.common || 'unknown' };
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') {
        process.stderr.write(`onnxruntime-node at ${candidate} does not load: ${e.message}\n`);
        process.exit(4);
      }
    }
  }
  process.stderr.write('onnxruntime-node not found\n');
  process.exit(3);
}

async function main() {
  const [mode, model, input, output, threads, outputName] = process.argv.slice(2);
  const { ort, version } = loadOrt();
  if (mode === 'probe') {
    process.stdout.write(JSON.stringify({ version }) + '\n');
    return;
  }
  const request = JSON.parse(fs.readFileSync(input, 'utf8'));
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const results = [];
  for (const batch of request.batches) {
    const feeds = {};
    for (const name of session.inputNames) {
      if (!(name in batch)) throw new Error(`the graph has an input ${name} recmodel does not provide`);
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from(batch[name], (v) => BigInt(v)), batch.dims);
    }
    const out = await session.run(feeds);
    if (!(outputName in out)) throw new Error(`the graph has no output ${outputName}`);
    results.push({ dims: out[outputName].dims, data: Array.from(out[outputName].data) });
  }
  fs.writeFileSync(output, JSON.stringify({ version, results }));
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
)JS";

// A private directory under the system temp dir, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "recmodel-ort-XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      fail<DataError>("{}: cannot create a temporary directory: {}", pattern, std::strerror(errno));
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct ProcessResult {
  int status = -1;  // exit code; -1 when it could not start or was killed
  bool started = false;
  std::string out, err;
};

ProcessResult run_process(const std::vector<std::string>& args, const fs::path& scratch) {
  ProcessResult result;
  fs::path out_path = scratch / "stdout", err_path = scratch / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return result;
  result.started = true;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::error_code ec;
  if (fs::exists(out_path, ec)) result.out = read_file(out_path);
  if (fs::exists(err_path, ec)) result.err = read_file(err_path);
  return result;
}

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  size_t at = text.rfind('\n');
  return at == std::string::npos ? text : text.substr(at + 1);
}

std::vector<int64_t> flat(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

std::vector<TokenBatch> verification_batches(const model::BertConfig& config, int count, int batch_size,
                                             int max_length, uint64_t seed, int64_t cls, int64_t sep) {
  std::mt19937_64 random(seed);
  max_length = static_cast<int>(std::min<int64_t>(max_length, config.max_position_embeddings));
  max_length = std::max(max_length, 2);
  // Token ids above the usual special tokens (0-103 in BERT vocabularies) when the vocabulary allows.
  const int64_t low = config.vocab_size > 1000 ? 1000 : std::min<int64_t>(5, config.vocab_size - 1);
  std::uniform_int_distribution<int64_t> token(low, config.vocab_size - 1);
  std::vector<TokenBatch> batches;
  for (int start = 0; start < count; start += batch_size) {
    const int rows = std::min(batch_size, count - start);
    std::vector<int> lengths(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      // Lengths spread over the whole range: short queries, mid-size titles, long reviews.
      std::uniform_int_distribution<int> length(2, max_length);
      lengths[static_cast<size_t>(r)] = (start + r) % 7 == 0 ? max_length : length(random);
    }
    const int longest = *std::max_element(lengths.begin(), lengths.end());
    TokenBatch batch;
    batch.input_ids = torch::full({rows, longest}, config.pad_token_id, torch::kLong);
    batch.attention_mask = torch::zeros({rows, longest}, torch::kLong);
    batch.token_type_ids = torch::zeros({rows, longest}, torch::kLong);
    auto ids = batch.input_ids.accessor<int64_t, 2>();
    auto mask = batch.attention_mask.accessor<int64_t, 2>();
    auto types = batch.token_type_ids.accessor<int64_t, 2>();
    for (int r = 0; r < rows; ++r) {
      const int n = lengths[static_cast<size_t>(r)];
      const bool pair = config.type_vocab_size > 1 && n >= 5 && (start + r) % 3 == 1;
      const int second = pair ? n / 2 : n;  // the second segment starts here
      for (int j = 0; j < n; ++j) {
        ids[r][j] = j == 0 ? cls : (j == n - 1 || (pair && j == second - 1)) ? sep : token(random);
        mask[r][j] = 1;
        types[r][j] = pair && j >= second ? 1 : 0;
      }
    }
    batches.push_back(batch);
  }
  return batches;
}

std::vector<torch::Tensor> model_logits(model::BertForSequenceClassificationImpl& model,
                                        const std::vector<TokenBatch>& batches) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<torch::Tensor> logits;
  for (const auto& batch : batches)
    logits.push_back(model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask).to(torch::kFloat));
  return logits;
}

OnnxRuntimeNode find_onnxruntime_node() {
  OnnxRuntimeNode found;
  ScratchDir scratch;
  fs::path script = scratch.path() / "ort_runner.cjs";
  write_file_atomic(script, kRunnerScript);
  ProcessResult probe = run_process({"node", script.string(), "probe"}, scratch.path());
  if (!probe.started) {
    found.reason = "node is not on PATH (install Node.js 18+ and onnxruntime-node)";
    return found;
  }
  if (probe.status != 0) {
    found.reason = probe.status == 3
                       ? "node cannot find onnxruntime-node (npm install onnxruntime-node, then set NODE_PATH "
                         "or RECMODEL_ONNXRUNTIME_NODE to its node_modules folder or package)"
                       : "onnxruntime-node does not load: " + last_line(probe.err);
    return found;
  }
  try {
    found.version = nlohmann::json::parse(last_line(probe.out)).value("version", "unknown");
  } catch (const nlohmann::json::exception&) {
    found.version = "unknown";
  }
  found.available = true;
  return found;
}

std::vector<torch::Tensor> run_onnxruntime(const fs::path& onnx_file, const std::vector<TokenBatch>& batches,
                                           int threads, const std::string& output) {
  ScratchDir scratch;
  fs::path script = scratch.path() / "ort_runner.cjs";
  write_file_atomic(script, kRunnerScript);
  nlohmann::json request = {{"batches", nlohmann::json::array()}};
  for (const auto& batch : batches) {
    request["batches"].push_back({{"dims", batch.input_ids.sizes().vec()},
                                  {"input_ids", flat(batch.input_ids)},
                                  {"attention_mask", flat(batch.attention_mask)},
                                  {"token_type_ids", flat(batch.token_type_ids)}});
  }
  fs::path input = scratch.path() / "input.json", result_path = scratch.path() / "output.json";
  write_file_atomic(input, request.dump());
  ProcessResult run = run_process({"node", script.string(), "run", fs::absolute(onnx_file).string(), input.string(),
                                   result_path.string(), std::to_string(std::max(threads, 1)), output},
                                  scratch.path());
  if (!run.started) fail<NotFoundError>("node is not on PATH; cannot run ONNX Runtime on {}", onnx_file.string());
  if (run.status != 0)
    throw Error(ExitCode::internal,
                fmt::format("{}: ONNX Runtime failed: {}", onnx_file.string(), last_line(run.err)));
  nlohmann::json response = nlohmann::json::parse(read_file(result_path));
  std::vector<torch::Tensor> outputs;
  for (const auto& item : response["results"]) {
    std::vector<int64_t> dims = item["dims"].get<std::vector<int64_t>>();
    std::vector<float> data = item["data"].get<std::vector<float>>();
    outputs.push_back(torch::tensor(data, torch::kFloat).reshape(dims));
  }
  if (outputs.size() != batches.size())
    throw Error(ExitCode::internal, fmt::format("{}: ONNX Runtime returned {} results for {} batches",
                                                onnx_file.string(), outputs.size(), batches.size()));
  return outputs;
}

OutputComparison compare_outputs(const std::string& name, const std::vector<torch::Tensor>& reference,
                                 const std::vector<torch::Tensor>& runtime, double atol) {
  OutputComparison c;
  c.name = name;
  c.atol = atol;
  int64_t rows = 0, same = 0;
  for (size_t i = 0; i < reference.size() && i < runtime.size(); ++i) {
    if (reference[i].sizes() != runtime[i].sizes()) {
      c.shapes_match = false;
      continue;
    }
    c.max_abs_diff = std::max(c.max_abs_diff, (reference[i] - runtime[i]).abs().max().item<double>());
    if (reference[i].dim() == 2 && reference[i].size(1) > 1) {
      rows += reference[i].size(0);
      same += reference[i].argmax(1).eq(runtime[i].argmax(1)).sum().item<int64_t>();
    }
  }
  if (reference.size() != runtime.size()) c.shapes_match = false;
  c.top_label_agreement = rows ? static_cast<double>(same) / static_cast<double>(rows) : 1.0;
  return c;
}

}  // namespace recmodel::converters
