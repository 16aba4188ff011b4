#include "training/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/serialize.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/files.h"
#include "common/json.h"
#include "data/compatibility.h"
#include "metrics/classification.h"
#include "metrics/regression.h"
#include "model/predictor.h"
#include "storage/hashing.h"
#include "training/autocast.h"
#include "training/batching.h"

namespace recmodel::training {

namespace {

constexpr int kCheckpointFormatVersion = 2;  // 2: recmodel's fused AdamW state

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

model::NamedTensors named_parameters(model::BertForSequenceClassification& model) {
  model::NamedTensors tensors;
  for (const auto& item : model->named_parameters()) tensors.emplace_back(item.key(), item.value());
  return tensors;
}

// SHA-256 of the parameters' names, shapes and bytes: two ranks started from other models differ here.
std::string parameters_sha256(model::BertForSequenceClassification& model) {
  storage::Sha256Stream hash;
  for (const auto& item : model->named_parameters()) {
    const torch::Tensor value = item.value().detach().to(torch::kCPU).contiguous();
    hash.update(item.key());
    hash.update(fmt::format("{}", value.sizes()));
    hash.update(std::string_view(static_cast<const char*>(value.data_ptr()), value.numel() * value.element_size()));
  }
  return hash.hex();
}

}  // namespace

void load_parameters(torch::nn::Module& module, const fs::path& file) {
  model::NamedTensors tensors = model::read_safetensors(file);
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    auto it = by_name.find(item.key());
    if (it == by_name.end()) fail<DataError>("{}: checkpoint lacks tensor {}", file.string(), item.key());
    if (it->second.sizes() != item.value().sizes())
      fail<DataError>("{}: tensor {} has another shape than the model's", file.string(), item.key());
    item.value().copy_(it->second);
  }
}

void save_cpu_generator(const fs::path& file) {
  torch::Tensor rng;
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    rng = generator.get_state();
  }
  torch::save(rng, file.string());
}

void load_cpu_generator(const fs::path& file) {
  torch::Tensor rng;
  torch::load(rng, file.string());
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng);
}

void require_same_settings(const nlohmann::json& now, const nlohmann::json& then) {
  std::vector<std::string> changed;
  for (const auto& [key, value] : now.items()) {
    if (!then.contains(key) || then[key] != value)
      changed.push_back(fmt::format("{} was {}, now {}", key, then.contains(key) ? then[key].dump() : "unset", value.dump()));
  }
  if (!changed.empty())
    fail<UsageError>("--resume needs the settings of the interrupted run: {}", fmt::format("{}", fmt::join(changed, "; ")));
}

uint64_t step_seed(uint64_t seed, int64_t step, int rank) {
  SplitMix64 mix(seed ^ (static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ULL) ^
                 (static_cast<uint64_t>(rank + 1) * 0xC2B2AE3D27D4EB4FULL));
  return mix.next();
}

double linear_schedule(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

std::string default_metric(data::Task task) { return task == data::Task::regression ? "mae" : "accuracy"; }

std::atomic<bool>& Trainer::stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

struct Trainer::State {
  int64_t step = 0;        // optimizer steps done
  int epoch = 0;           // epoch in progress
  size_t next_batch = 0;   // first batch of `epoch` not yet trained on
  std::optional<double> best_value;
  int64_t best_step = 0;
  nlohmann::json best_metrics = nullptr;
  int evals_without_improvement = 0;
  bool stopped_early = false;
  double last_loss = 0;
  uint64_t samples = 0;  // seen by this process (for rates)
  uint64_t tokens = 0;
};

Trainer::Trainer(TrainConfig config, model::LoadedModel& loaded, const data::PreparedDataset& dataset,
                 fs::path work_dir, std::function<void(const std::string&)> warn, std::vector<int32_t> label_map,
                 distributed::ProcessGroup* group)
    : config_(std::move(config)),
      loaded_(loaded),
      dataset_(dataset),
      work_dir_(std::move(work_dir)),
      warn_(std::move(warn)),
      label_map_(std::move(label_map)),
      train_(dataset.open_split("train")),
      device_(model::parse_device(config_.device)),
      group_(group) {
  if (train_.size() == 0) fail<DataError>("{}: the train split is empty", dataset_.split_path("train").string());
  if (dataset_.has_split("dev")) dev_.emplace(dataset_.open_split("dev"));
  if (config_.metric.empty()) config_.metric = default_metric(dataset_.task);
  if (config_.precision != "fp32" && !device_.is_cuda())
    fail<UsageError>("--precision {} needs a CUDA device; on CPU recmodel trains in fp32", config_.precision);
  check_metric_applies();
  if (config_.patience > 0 && !dev_)
    fail<UsageError>("--patience needs a dev split to watch; {} has none", dataset_.dir.string());

  loaded_.model->to(device_);
  optimizer_ = std::make_unique<AdamW>(weight_decay_groups(loaded_.model->named_parameters(), config_.weight_decay));
}

void Trainer::map_labels(Batch& batch, const data::DatasetSplit& split, const std::vector<size_t>& indices) const {
  if (label_map_.empty() || dataset_.task == data::Task::regression) return;
  const data::Fit fit{label_map_};
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (size_t r = 0; r < indices.size(); ++r)
    labels[r] = fit.model_label(static_cast<int32_t>(labels[r]), split.path(), indices[r]);
}

void Trainer::check_metric_applies() const {
  // Metrics on two made-up examples say whether the name means anything for this head.
  metrics::MetricValue value;
  if (dataset_.task == data::Task::regression) {
    value = metrics::regression_metrics({1.0, 2.0}, {1.0, 2.0}).get(config_.metric);
  } else {
    const int classes = static_cast<int>(loaded_.config.num_labels());
    std::vector<double> probabilities(2 * static_cast<size_t>(classes), 1.0 / classes);
    metrics::ClassificationOptions options;
    options.class_values = metrics::numeric_label_values(loaded_.config.labels);
    value = metrics::classification_metrics({0, 1}, {0, 1}, classes, probabilities, options).get(config_.metric);
  }
  if (!value.applicable)
    fail<UsageError>("--metric {} does not apply to this {} task{}; choose e.g. {}", config_.metric,
                     dataset_.task == data::Task::regression ? "regression" : "classification",
                     value.reason.empty() ? "" : " (" + value.reason + ")", default_metric(dataset_.task));
}

nlohmann::json Trainer::settings() const {
  return {{"dataset_manifest_sha256", dataset_.manifest_sha256},
          {"epochs", config_.epochs},
          {"batch_size", config_.batch_size},
          {"lr", config_.lr},
          {"warmup_ratio", config_.warmup_ratio},
          {"weight_decay", config_.weight_decay},
          {"grad_accum", config_.grad_accum},
          {"max_grad_norm", config_.max_grad_norm},
          {"eval_every", config_.eval_every},
          {"metric", config_.metric},
          {"seed", config_.seed},
          {"precision", config_.precision}};
}

nlohmann::json Trainer::fingerprint() const {
  nlohmann::json document = settings();
  document["patience"] = config_.patience;
  document["checkpoint_every"] = config_.checkpoint_every;
  document["stop_after"] = config_.stop_after;
  document["labels"] = loaded_.config.labels;
  document["model_parameters_sha256"] = parameters_sha256(loaded_.model);
  document["world_size"] = group_ ? group_->world_size() : 1;
  document["recmodel_version"] = RECMODEL_VERSION;
  return document;
}

std::vector<size_t> Trainer::shard(const std::vector<size_t>& batch) const {
  if (group_ == nullptr) return batch;
  const size_t world = static_cast<size_t>(group_->world_size()), rank = static_cast<size_t>(group_->rank());
  const size_t per_rank = (batch.size() + world - 1) / world;
  const size_t first = std::min(batch.size(), rank * per_rank), last = std::min(batch.size(), first + per_rank);
  return {batch.begin() + static_cast<std::ptrdiff_t>(first), batch.begin() + static_cast<std::ptrdiff_t>(last)};
}

void Trainer::sum_gradients(const std::vector<torch::Tensor>& parameters, const torch::Tensor& has_gradient) {
  std::vector<torch::Tensor> gradients;
  gradients.reserve(parameters.size());
  for (const auto& parameter : parameters) {
    torch::Tensor& grad = const_cast<torch::Tensor&>(parameter).mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(parameter);
    gradients.push_back(grad);
  }
  group_->all_reduce_sum(gradients);
  const double* flags = has_gradient.data_ptr<double>();
  for (size_t i = 0; i < parameters.size(); ++i)
    if (flags[i] == 0) const_cast<torch::Tensor&>(parameters[i]).mutable_grad().reset();
}

nlohmann::json Trainer::evaluate_dev() {
  auto& model = loaded_.model;
  const bool regression = dataset_.task == data::Task::regression;
  const size_t n = dev_->size();
  std::vector<int> truth(regression ? 0 : n), predicted(regression ? 0 : n);
  std::vector<double> truth_values(regression ? n : 0), predicted_values(regression ? n : 0);
  const int64_t classes = loaded_.config.num_labels();
  std::vector<double> probabilities(regression ? 0 : n * static_cast<size_t>(classes));
  double loss_sum = 0;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    const BatchPlan plan = plan_evaluation(*dev_, config_.batch_size * 2);
    for (size_t b = 0; b < plan.size(); ++b) {
      // A job's ranks take turns; the predictions are summed below (every other rank holds zeros there).
      if (group_ && static_cast<int>(b % static_cast<size_t>(group_->world_size())) != group_->rank()) continue;
      const std::vector<size_t>& indices = plan[b];
      Batch batch = make_batch(*dev_, indices, loaded_.config.pad_token_id);
      map_labels(batch, *dev_, indices);
      auto logits = model->forward(batch.input_ids.to(device_), batch.token_type_ids.to(device_),
                                   batch.attention_mask.to(device_))
                        .to(torch::kFloat);
      loss_sum += model->loss(logits, batch.labels.to(device_)).item<double>() * static_cast<double>(indices.size());
      logits = logits.to(torch::kCPU).contiguous();
      if (regression) {
        auto values = logits.squeeze(-1);
        for (size_t r = 0; r < indices.size(); ++r) {
          truth_values[indices[r]] = batch.labels[static_cast<int64_t>(r)].item<double>();
          predicted_values[indices[r]] = values[static_cast<int64_t>(r)].item<double>();
        }
      } else {
        auto probs = torch::softmax(logits, -1).to(torch::kDouble).contiguous();
        auto best = logits.argmax(-1);
        const double* p = probs.data_ptr<double>();
        for (size_t r = 0; r < indices.size(); ++r) {
          const size_t i = indices[r];
          truth[i] = static_cast<int>(batch.labels[static_cast<int64_t>(r)].item<int64_t>());
          predicted[i] = static_cast<int>(best[static_cast<int64_t>(r)].item<int64_t>());
          std::copy(p + r * static_cast<size_t>(classes), p + (r + 1) * static_cast<size_t>(classes),
                    probabilities.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(classes)));
        }
      }
    }
    model->train();
  }
  if (group_) {
    // Whole numbers (class ids) and zeros elsewhere: the sum is exact, the same as one process's arrays.
    std::vector<double> packed;
    packed.reserve(truth.size() * 2 + truth_values.size() * 2 + probabilities.size() + 1);
    packed.insert(packed.end(), truth.begin(), truth.end());
    packed.insert(packed.end(), predicted.begin(), predicted.end());
    packed.insert(packed.end(), truth_values.begin(), truth_values.end());
    packed.insert(packed.end(), predicted_values.begin(), predicted_values.end());
    packed.insert(packed.end(), probabilities.begin(), probabilities.end());
    packed.push_back(loss_sum);
    torch::Tensor sums = torch::from_blob(packed.data(), {static_cast<int64_t>(packed.size())}, torch::kDouble).clone();
    group_->all_reduce_sum({sums});
    const double* p = sums.data_ptr<double>();
    for (auto& v : truth) v = static_cast<int>(std::lround(*p++));
    for (auto& v : predicted) v = static_cast<int>(std::lround(*p++));
    for (auto& v : truth_values) v = *p++;
    for (auto& v : predicted_values) v = *p++;
    for (auto& v : probabilities) v = *p++;
    loss_sum = *p;
  }
  nlohmann::json result;
  if (regression) {
    result = nlohmann::json::parse(metrics::to_json(metrics::regression_metrics(truth_values, predicted_values)).dump());
  } else {
    metrics::ClassificationOptions options;
    options.class_values = metrics::numeric_label_values(loaded_.config.labels);
    auto report = metrics::classification_metrics(truth, predicted, static_cast<int>(classes), probabilities, options);
    result = nlohmann::json::parse(metrics::to_json(report, loaded_.config.labels).dump());
  }
  result["loss"] = loss_sum / static_cast<double>(std::max<size_t>(1, n));
  return result;
}

void Trainer::append_log(const nlohmann::json& record) {
  if (!writes_files()) return;
  std::ofstream log(work_dir_ / "train_log.jsonl", std::ios::app);
  log << record.dump() << '\n';
  if (!log) fail<DataError>("{}: cannot append to the training log", (work_dir_ / "train_log.jsonl").string());
}

void Trainer::truncate_log(int64_t after_step) {
  // Records past the checkpoint belong to the run that was interrupted; the resumed run writes them again.
  const fs::path path = work_dir_ / "train_log.jsonl";
  std::error_code ec;
  if (!writes_files() || !fs::exists(path, ec)) return;
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      auto record = nlohmann::json::parse(line);
      if (record.value("step", int64_t{0}) > after_step) continue;
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut short by the interruption
    }
    kept += line + '\n';
  }
  write_file_atomic(path, kept);
}

void Trainer::save_checkpoint(const State& state) {
  StagingDir staging(work_dir_ / "checkpoint", /*replace=*/true);
  model::write_safetensors(staging.path() / "model.safetensors", named_parameters(loaded_.model));
  optimizer_->save(staging.path() / "optimizer.pt");
  save_cpu_generator(staging.path() / "rng.pt");
  nlohmann::json doc = {{"format_version", kCheckpointFormatVersion},
                        {"step", state.step},
                        {"epoch", state.epoch},
                        {"next_batch", state.next_batch},
                        {"best_value", state.best_value ? nlohmann::json(*state.best_value) : nlohmann::json(nullptr)},
                        {"best_step", state.best_step},
                        {"best_metrics", state.best_metrics},
                        {"evals_without_improvement", state.evals_without_improvement},
                        {"last_loss", state.last_loss},
                        {"settings", settings()}};
  write_file_atomic(staging.path() / "state.json", doc.dump(2) + "\n");
  staging.commit();
}

void Trainer::load_checkpoint(State& state) {
  const fs::path dir = work_dir_ / "checkpoint";
  std::error_code ec;
  if (!fs::exists(dir / "state.json", ec))
    fail<NotFoundError>("{}: no checkpoint to resume from; run without --resume to start training", dir.string());
  nlohmann::json doc = read_json_file(dir / "state.json");
  if (doc.value("format_version", 0) != kCheckpointFormatVersion)
    fail<DataError>("{}: checkpoint format {} is not the one this recmodel writes ({})",
                    (dir / "state.json").string(), doc.value("format_version", 0), kCheckpointFormatVersion);
  require_same_settings(settings(), doc["settings"]);
  load_parameters(*loaded_.model, dir / "model.safetensors");
  optimizer_->load(dir / "optimizer.pt", device_);
  load_cpu_generator(dir / "rng.pt");
  state.step = doc["step"].get<int64_t>();
  state.epoch = doc["epoch"].get<int>();
  state.next_batch = doc["next_batch"].get<size_t>();
  if (!doc["best_value"].is_null()) state.best_value = doc["best_value"].get<double>();
  state.best_step = doc["best_step"].get<int64_t>();
  state.best_metrics = doc["best_metrics"];
  state.evals_without_improvement = doc["evals_without_improvement"].get<int>();
  state.last_loss = doc["last_loss"].get<double>();
}

std::string Trainer::last_good_checkpoint() const {
  std::error_code ec;
  const fs::path dir = work_dir_ / "checkpoint";
  if (!fs::exists(dir / "state.json", ec)) return "no checkpoint was saved before it";
  return fmt::format("the last good checkpoint is kept in {}", dir.string());
}

void Trainer::save_best(const State&) {
  if (!writes_files()) return;
  StagingDir staging(work_dir_ / "best", /*replace=*/true);
  model::write_safetensors(staging.path() / "model.safetensors", named_parameters(loaded_.model));
  staging.commit();
}

void Trainer::load_best() { load_parameters(*loaded_.model, work_dir_ / "best" / "model.safetensors"); }

TrainResult Trainer::run(bool resume, const std::function<void(const StepReport&)>& on_step) {
  auto& model = loaded_.model;
  State state;
  TrainResult result;
  result.device = device_.str();
  result.metric = config_.metric;
  fs::create_directories(work_dir_);
  if (resume) {
    load_checkpoint(state);
    truncate_log(state.step);
    result.resumed = true;
    result.resumed_from_step = state.step;
  } else {
    torch::manual_seed(config_.seed);
    if (device_.is_cuda()) torch::cuda::manual_seed_all(config_.seed);
  }
  if (device_.is_cuda() && resume) torch::cuda::manual_seed_all(config_.seed + static_cast<uint64_t>(state.step));
  const std::vector<torch::Tensor> parameters = model->parameters();
  // Every rank starts from rank 0's weights (a new head drawn elsewhere, a stray file).
  if (group_) group_->broadcast_from_main(parameters);

  const size_t batches_per_epoch = (train_.size() + config_.batch_size - 1) / config_.batch_size;
  const int64_t steps_per_epoch =
      static_cast<int64_t>((batches_per_epoch + static_cast<size_t>(config_.grad_accum) - 1) /
                           static_cast<size_t>(config_.grad_accum));
  const int64_t total_steps = steps_per_epoch * config_.epochs;
  const int64_t warmup = static_cast<int64_t>(std::ceil(config_.warmup_ratio * static_cast<double>(total_steps)));
  result.total_steps = total_steps;

  const bool autocast = config_.precision != "fp32";
  const torch::ScalarType autocast_dtype = config_.precision == "fp16" ? torch::kHalf : torch::kBFloat16;
  double loss_scale = config_.precision == "fp16" ? 65536.0 : 1.0;
  int64_t good_steps_at_scale = 0;

  const auto start = Clock::now();
  auto interval_start = start;
  uint64_t interval_samples = 0, interval_tokens = 0;
  torch::Tensor interval_loss = torch::zeros({}, torch::TensorOptions().device(device_));
  int64_t interval_steps = 0;
  double last_grad_norm = 0;

  auto evaluate_and_keep_best = [&]() {
    if (!dev_) return;
    nlohmann::json dev = evaluate_dev();
    auto value_of = [&](const nlohmann::json& metrics) -> std::optional<double> {
      if (!metrics.contains(config_.metric) || !metrics[config_.metric].is_number()) return std::nullopt;
      return metrics[config_.metric].get<double>();
    };
    std::optional<double> value = value_of(dev);
    if (!value)
      warn_(fmt::format("dev metric {} is undefined at step {}; the model is not compared on it", config_.metric,
                        state.step));
    const bool higher = metrics::higher_is_better(config_.metric);
    const bool improved =
        value && (!state.best_value || (higher ? *value > *state.best_value : *value < *state.best_value));
    // A tie keeps the later, more trained weights (on a small dev split ties are the rule once the
    // model fits, and the schedule is meant to end, not to stop at its first plateau); it is still
    // no improvement for --patience.
    const bool tied = value && state.best_value && *value == *state.best_value;
    if (improved || tied) {
      state.best_value = value;
      state.best_step = state.step;
      state.best_metrics = dev;
      save_best(state);
    }
    if (improved)
      state.evals_without_improvement = 0;
    else
      ++state.evals_without_improvement;
    append_log({{"step", state.step}, {"epoch", state.epoch + 1}, {"dev", dev}, {"best", improved || tied}});
    if (config_.patience > 0 && state.evals_without_improvement >= config_.patience) state.stopped_early = true;
  };

  model->train();
  for (; state.epoch < config_.epochs && !state.stopped_early; ++state.epoch, state.next_batch = 0) {
    const BatchPlan plan = plan_training_epoch(train_, config_.batch_size, config_.seed, static_cast<uint64_t>(state.epoch));
    while (state.next_batch < plan.size() && !state.stopped_early) {
      // One optimizer step: grad_accum batches (fewer at the end of the epoch).
      const size_t first = state.next_batch;
      const size_t last = std::min(plan.size(), first + static_cast<size_t>(config_.grad_accum));
      size_t step_examples = 0;
      for (size_t b = first; b < last; ++b) step_examples += plan[b].size();
      torch::Tensor step_loss = torch::zeros({}, torch::TensorOptions().device(device_));
      uint64_t step_tokens = 0;
      if (group_) {
        torch::manual_seed(step_seed(config_.seed, state.step, group_->rank()));
        if (device_.is_cuda()) torch::cuda::manual_seed_all(step_seed(config_.seed, state.step, group_->rank()));
      }
      for (size_t b = first; b < last; ++b) {
        const std::vector<size_t> mine = shard(plan[b]);  // the whole batch in one process
        if (mine.empty()) continue;
        Batch batch = make_batch(train_, mine, loaded_.config.pad_token_id);
        map_labels(batch, train_, mine);
        torch::Tensor loss;
        {
          AutocastScope scope(autocast, autocast_dtype);
          auto logits = model->forward(batch.input_ids.to(device_, /*non_blocking=*/true),
                                       batch.token_type_ids.to(device_, true), batch.attention_mask.to(device_, true));
          loss = model->loss(logits, batch.labels.to(device_, true));
        }
        // Weighted by its share of the step's examples, so an accumulated (or sharded, then
        // summed) step equals one large batch.
        const double weight = static_cast<double>(mine.size()) / static_cast<double>(step_examples);
        (loss * (weight * loss_scale)).backward();
        step_loss += loss.detach() * weight;
        step_tokens += static_cast<uint64_t>(batch.tokens);
      }
      bool stop_signalled = stop_requested().load();
      if (group_) {
        // One small sum per step (the loss, who was asked to stop, tokens, which parameters have
        // gradients), then the gradients; so all ranks stop at the same step.
        std::vector<double> small(3 + parameters.size());
        small[0] = step_loss.item<double>();
        small[1] = stop_signalled ? 1 : 0;
        small[2] = static_cast<double>(step_tokens);
        for (size_t i = 0; i < parameters.size(); ++i) small[3 + i] = parameters[i].grad().defined() ? 1 : 0;
        torch::Tensor sums = torch::from_blob(small.data(), {static_cast<int64_t>(small.size())}, torch::kDouble).clone();
        group_->all_reduce_sum({sums});
        step_loss = torch::full({}, sums[0].item<double>(), torch::TensorOptions().device(device_));
        stop_signalled = sums[1].item<double>() > 0;
        step_tokens = static_cast<uint64_t>(std::llround(sums[2].item<double>()));
        sum_gradients(parameters, sums.narrow(0, 3, static_cast<int64_t>(parameters.size())).contiguous());
      }
      interval_tokens += step_tokens;
      state.tokens += step_tokens;
      // Unscaling (fp16) and clipping are folded into the optimizer's pass over the gradients.
      const double grad_norm = gradient_norm(parameters) / loss_scale;
      if (!std::isfinite(grad_norm)) {
        if (config_.precision == "fp16") {
          // fp16 overflow: skip this step at a smaller loss scale, as torch.cuda.amp.GradScaler does.
          optimizer_->zero_grad();
          loss_scale /= 2;
          good_steps_at_scale = 0;
          state.next_batch = last;
          continue;
        }
        fail<DataError>("training diverged: the loss or gradients became NaN/infinite at step {} (epoch {}); {}; "
                        "check the data or train again with a lower --lr (now {}) and --force",
                        state.step + 1, state.epoch + 1, last_good_checkpoint(), config_.lr);
      }
      if (config_.precision == "fp16" && ++good_steps_at_scale >= 2000) {
        loss_scale *= 2;
        good_steps_at_scale = 0;
      }
      const double lr = config_.lr * linear_schedule(state.step, warmup, total_steps);
      double grad_scale = 1.0 / loss_scale;
      if (config_.max_grad_norm > 0) {
        const double clip = config_.max_grad_norm / (grad_norm + 1e-6);  // as torch's clip_grad_norm_
        if (clip < 1) grad_scale *= clip;
      }
      optimizer_->step(lr, grad_scale);
      optimizer_->zero_grad();
      ++state.step;
      state.next_batch = last;
      state.samples += step_examples;
      interval_samples += step_examples;
      ++interval_steps;
      last_grad_norm = grad_norm;
      interval_loss += step_loss;

      const bool log_now = state.step % config_.log_every == 0 || state.step == total_steps;
      if (log_now || on_step) {
        // Reading the loss synchronizes with the device; do it only when it is shown or logged.
        const double loss_value = step_loss.item<double>();
        state.last_loss = loss_value;
        if (!std::isfinite(loss_value))
          fail<DataError>("training diverged: the loss became {} at step {}; {}; check the data or train again with a "
                          "lower --lr (now {}) and --force",
                          loss_value, state.step, last_good_checkpoint(), config_.lr);
        if (on_step)
          on_step({state.step, total_steps, loss_value, lr,
                   static_cast<double>(state.samples) / std::max(1e-9, seconds_since(start))});
      }
      if (log_now) {
        const double seconds = std::max(1e-9, seconds_since(interval_start));
        append_log({{"step", state.step},
                    {"epoch", state.epoch + 1},
                    {"loss", interval_loss.item<double>() / static_cast<double>(std::max<int64_t>(1, interval_steps))},
                    {"lr", lr},
                    {"grad_norm", last_grad_norm},
                    {"samples_per_second", static_cast<double>(interval_samples) / seconds},
                    {"tokens_per_second", static_cast<double>(interval_tokens) / seconds},
                    {"elapsed_seconds", seconds_since(start)}});
        interval_start = Clock::now();
        interval_samples = interval_tokens = 0;
        interval_loss.zero_();
        interval_steps = 0;
      }
      const bool epoch_done = state.next_batch >= plan.size();
      if (config_.eval_every > 0 ? state.step % config_.eval_every == 0 : epoch_done) evaluate_and_keep_best();
      if (epoch_done) {
        // The checkpoint of an epoch's last step points at the next epoch's start.
        ++state.epoch;
        state.next_batch = 0;
      }
      const bool checkpoint_now =
          config_.checkpoint_every > 0 ? state.step % config_.checkpoint_every == 0
                                       : (config_.eval_every > 0 ? state.step % config_.eval_every == 0 : epoch_done);
      const bool stop_now = stop_signalled || (config_.stop_after > 0 && state.step >= config_.stop_after);
      if ((checkpoint_now || stop_now) && !state.stopped_early) {
        if (writes_files()) save_checkpoint(state);
        if (group_) group_->barrier();  // a restart finds the checkpoint complete on every rank
      }
      if (epoch_done) {
        --state.epoch;  // the for loop advances it
        state.next_batch = plan.size();
      }
      if (stop_now && !state.stopped_early && state.step < total_steps) {
        throw Interrupted(fmt::format("training stopped at step {} of {}; checkpoint saved in {}; continue with "
                                      "the same command and --resume",
                                      state.step, total_steps, (work_dir_ / "checkpoint").string()));
      }
    }
  }
  result.steps = state.step;
  result.epochs_completed = std::min(config_.epochs, state.epoch);
  result.stopped_early = state.stopped_early;
  result.seconds = seconds_since(start);
  result.samples_per_second = static_cast<double>(state.samples) / std::max(1e-9, result.seconds);
  result.tokens_per_second = static_cast<double>(state.tokens) / std::max(1e-9, result.seconds);
  result.final_loss = state.last_loss;
  result.best_value = state.best_value;
  result.best_step = state.best_step;
  result.best_metrics = state.best_metrics;
  if (state.best_value && writes_files()) load_best();
  model->eval();
  model->to(torch::kCPU);
  return result;
}

}  // namespace recmodel::training
