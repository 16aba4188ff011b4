#include "training/autotune.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "metrics/names.h"
#include "training/batching.h"

namespace recmodel::training {

namespace {

using Clock = std::chrono::steady_clock;

// Each trial trains a ninth of its steps, then the best third a third, then the best to the end.
constexpr double kRungFractions[] = {1.0 / 9, 1.0 / 3, 1.0};
constexpr int kRungs = 3;
constexpr int kKeep = 3;          // 1 in 3 goes on to the next rung
constexpr int kMaxTrials = 81;    // a budget never starts more
constexpr double kFirstRungShare = 0.4;  // of --autotune: the rest is for the later rungs

template <typename T, size_t N>
const T& pick(const T (&values)[N], SplitMix64& rng) {
  return values[rng.below(N)];
}

}  // namespace

nlohmann::json TrialSettings::to_json() const {
  nlohmann::json doc = {{"lr", lr},
                        {"epochs", epochs},
                        {"batch_size", batch_size},
                        {"warmup_ratio", warmup_ratio},
                        {"weight_decay", weight_decay},
                        {"dropout", dropout}};
  if (!preset.empty()) doc["preset"] = preset;
  return doc;
}

nlohmann::json TrialOutcome::to_json() const {
  nlohmann::json doc = {{"trial", id},     {"settings", settings.to_json()}, {"rungs", rungs},
                        {"steps", steps},  {"total_steps", total_steps},     {"seconds", seconds},
                        {"finished", finished}, {"metric", metric ? nlohmann::json(*metric) : nlohmann::json(nullptr)}};
  if (dev_loss) doc["dev_loss"] = *dev_loss;
  if (!error.empty()) doc["error"] = error;
  return doc;
}

nlohmann::json AutotuneResult::to_json(const std::string& metric) const {
  nlohmann::json trial_list = nlohmann::json::array();
  for (const TrialOutcome& trial : trials) trial_list.push_back(trial.to_json());
  return {{"metric", metric}, {"seconds", seconds}, {"best_trial", trials.at(best).id}, {"trials", trial_list}};
}

TrialSettings draw_trial(const TrialSettings& base, uint64_t seed, int index, bool search_preset) {
  if (index == 0) return base;
  SplitMix64 rng(seed ^ (static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL) ^ 0x6175746F74756E65ULL);
  auto uniform = [&] { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; };
  static const int kEpochs[] = {2, 3, 4, 6, 8};
  static const size_t kBatchSizes[] = {8, 16, 32};
  static const double kWarmups[] = {0.0, 0.06, 0.1, 0.2};
  static const double kWeightDecays[] = {0.0, 0.01, 0.1};
  static const double kDropouts[] = {0.0, 0.1, 0.2};
  static const char* kPresets[] = {"tiny", "mini", "small"};
  TrialSettings trial = base;
  trial.lr = std::exp(std::log(2e-5) + uniform() * (std::log(3e-3) - std::log(2e-5)));
  trial.epochs = pick(kEpochs, rng);
  trial.batch_size = pick(kBatchSizes, rng);
  trial.warmup_ratio = pick(kWarmups, rng);
  trial.weight_decay = pick(kWeightDecays, rng);
  trial.dropout = pick(kDropouts, rng);
  if (search_preset) trial.preset = pick(kPresets, rng);
  return trial;
}

void set_dropout(model::OpenedModel& opened, double p) {
  model::LoadedModel& loaded = opened.loaded;
  loaded.config.hidden_dropout_prob = p;
  loaded.config.attention_probs_dropout_prob = p;
  loaded.config.classifier_dropout = -1;
  loaded.model->config = loaded.config;
  for (const auto& module : loaded.model->modules(/*include_self=*/false)) {
    if (auto* dropout = module->as<torch::nn::Dropout>()) dropout->options.p(p);
    if (auto* attention = module->as<model::BertSelfAttention>()) attention->dropout_p = p;
  }
}

Autotuner::Autotuner(TrainConfig base, TrialSettings base_settings, AutotuneOptions options,
                     const data::PreparedDataset& dataset, fs::path work_dir, OpenTrialModel open,
                     std::function<void(const std::string&)> warn)
    : base_(std::move(base)),
      base_settings_(std::move(base_settings)),
      options_(options),
      dataset_(dataset),
      work_dir_(std::move(work_dir)),
      open_(std::move(open)),
      warn_(std::move(warn)) {
  if (!dataset_.has_split("dev"))
    fail<UsageError>("--autotune compares trials on the dev split; {} has none (preprocess with a dev share)",
                     dataset_.dir.string());
  if (options_.budget_seconds <= 0 && options_.trials <= 0)
    fail<UsageError>("--autotune needs a time budget in seconds, or --autotune-trials N");
  if (base_.metric.empty()) base_.metric = default_metric(dataset_.task);
}

AutotuneResult Autotuner::run(const std::function<void(const TrialOutcome&)>& on_trial) {
  const auto started = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  const bool higher = metrics::higher_is_better(base_.metric);
  const size_t train_size = dataset_.open_split("train").size();
  AutotuneResult result;
  std::optional<size_t> best_finished;  // index in result.trials of the best trial trained to the end
  auto quiet = [](const std::string&) {};

  auto loss_of = [](const nlohmann::json& dev) -> std::optional<double> {
    if (dev.is_object() && dev.contains("loss") && dev["loss"].is_number()) return dev["loss"].get<double>();
    return std::nullopt;
  };
  // Whether trial a ranks above b: a metric ranks above none, then the better metric; on equal
  // metrics (a small dev split, or trials still predicting the majority class after a ninth of
  // their steps) the lower dev loss, as it is still learning; then the earlier trial.
  auto better = [higher](const TrialOutcome* a, const TrialOutcome* b) {
    if (a->metric.has_value() != b->metric.has_value()) return a->metric.has_value();
    if (a->metric && *a->metric != *b->metric) return higher ? *a->metric > *b->metric : *a->metric < *b->metric;
    if (a->dev_loss && b->dev_loss && *a->dev_loss != *b->dev_loss) return *a->dev_loss < *b->dev_loss;
    return a->id < b->id;
  };

  // Trains trial `trial` up to rung `rung` (continuing its checkpoint from the rung before).
  auto advance = [&](TrialOutcome& trial, int rung) {
    TrainConfig config = base_;
    config.lr = trial.settings.lr;
    config.epochs = trial.settings.epochs;
    config.batch_size = trial.settings.batch_size;
    config.warmup_ratio = trial.settings.warmup_ratio;
    config.weight_decay = trial.settings.weight_decay;
    config.patience = 0;
    trial.total_steps = static_cast<int64_t>(trial.settings.epochs) *
                        static_cast<int64_t>((train_size + config.batch_size - 1) / config.batch_size) /
                        std::max(1, config.grad_accum);
    const int64_t stop = static_cast<int64_t>(std::ceil(static_cast<double>(trial.total_steps) * kRungFractions[rung]));
    config.stop_after = stop >= trial.total_steps ? 0 : std::max<int64_t>(stop, 1);
    const auto rung_started = Clock::now();
    model::OpenedModel opened = open_(trial.settings);
    set_dropout(opened, trial.settings.dropout);
    bool finished = false;
    TrainResult trained;
    try {
      Trainer trainer(config, opened.loaded, dataset_, work_dir_ / fmt::format("trial-{:02d}", trial.id), quiet,
                      opened.fit.label_map);
      try {
        trained = trainer.run(/*resume=*/trial.rungs > 0, {});
        finished = true;
        trial.metric = trained.best_value;
        trial.dev_loss = loss_of(trained.best_metrics);
        trial.steps = trained.steps;
      } catch (const Interrupted&) {
        if (Trainer::stop_requested().load())
          throw Interrupted(fmt::format("autotune stopped in trial {}; a search is not resumed: run it again",
                                        trial.id));
        const nlohmann::json dev = trainer.evaluate_dev();
        trial.metric = dev.at(base_.metric).get<double>();
        trial.dev_loss = loss_of(dev);
        trial.steps = config.stop_after;
      }
    } catch (const Interrupted&) {
      throw;
    } catch (const Error& error) {
      // A trial that diverges (too high a learning rate) is out; the search goes on.
      trial.error = error.what();
      trial.metric.reset();
    }
    trial.seconds += std::chrono::duration<double>(Clock::now() - rung_started).count();
    trial.rungs = rung + 1;
    trial.finished = finished;
    if (finished && trial.metric && (!best_finished || better(&trial, &result.trials[*best_finished]))) {
      best_finished = static_cast<size_t>(trial.id - 1);  // trials are numbered in the order they start
      best_model_ = std::make_unique<model::OpenedModel>(std::move(opened));
      result.best_result = trained;
    }
    if (on_trial) on_trial(trial);
  };
  const bool budgeted = options_.budget_seconds > 0;
  auto out_of_time = [&](double share) { return budgeted && elapsed() >= options_.budget_seconds * share; };

  // Rung 0: as many trials as asked, or as the first share of the budget allows (three at least).
  const int asked = options_.trials > 0 ? options_.trials : kMaxTrials;
  const bool halving = options_.trials <= 0 || options_.trials >= kKeep;
  for (int index = 0; index < asked; ++index) {
    if (options_.trials <= 0 && index >= kKeep && out_of_time(kFirstRungShare)) break;
    if (index > 0 && out_of_time(1.0)) break;
    TrialOutcome trial;
    trial.id = index + 1;
    trial.settings = draw_trial(base_settings_, options_.seed, index, options_.search_preset);
    result.trials.push_back(trial);
    advance(result.trials.back(), halving ? 0 : kRungs - 1);
  }
  // Later rungs: the best third of the trials goes on; the best one always trains to the end.
  std::vector<TrialOutcome*> alive;
  for (TrialOutcome& trial : result.trials)
    if (trial.error.empty() && !trial.finished) alive.push_back(&trial);
  for (int rung = 1; rung < kRungs && halving && !alive.empty(); ++rung) {
    std::sort(alive.begin(), alive.end(), better);
    const size_t keep = std::max<size_t>(1, (alive.size() + kKeep - 1) / kKeep);
    alive.resize(std::min(alive.size(), rung == kRungs - 1 ? std::max<size_t>(1, keep) : keep));
    std::vector<TrialOutcome*> next;
    for (size_t i = 0; i < alive.size(); ++i) {
      // Out of time, only the leader goes on (and it goes to the end: the result must be trained).
      if (i > 0 && out_of_time(1.0)) break;
      advance(*alive[i], i == 0 && out_of_time(1.0) ? kRungs - 1 : rung);
      if (alive[i]->error.empty() && !alive[i]->finished) next.push_back(alive[i]);
    }
    alive = next;
  }
  // The leader failed on its way to the end (diverged late): the next best finishes instead.
  while (!best_model_) {
    std::vector<TrialOutcome*> left;
    for (TrialOutcome& trial : result.trials)
      if (trial.error.empty() && !trial.finished) left.push_back(&trial);
    if (left.empty()) break;
    std::sort(left.begin(), left.end(), better);
    advance(*left.front(), kRungs - 1);
  }
  std::error_code ec;
  for (size_t i = 0; i < result.trials.size(); ++i) {
    const fs::path dir = work_dir_ / fmt::format("trial-{:02d}", result.trials[i].id);
    // The chosen trial's training log stays, as train_log.jsonl of the search.
    if (best_finished == i && !fs::exists(work_dir_ / "train_log.jsonl", ec))
      fs::rename(dir / "train_log.jsonl", work_dir_ / "train_log.jsonl", ec);
    fs::remove_all(dir, ec);
  }
  if (!best_model_)
    fail<DataError>("autotune: no trial finished ({} tried; the first failed with: {})", result.trials.size(),
                    result.trials.empty() ? "nothing" : result.trials.front().error);
  result.best = *best_finished;
  result.seconds = elapsed();
  return result;
}

}  // namespace recmodel::training
