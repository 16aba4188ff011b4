#include "commands/train.h"

#include <csignal>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "commands/stop_signals.h"
#include "distributed/agreement.h"
#include "distributed/launcher.h"
#include "distributed/process_group.h"
#include "common/error.h"
#include "common/files.h"
#include "metrics/names.h"
#include "model/reference_profile.h"
#include "model/model_open.h"
#include "model/predictor.h"
#include "registry/registry.h"
#include "training/autotune.h"
#include "training/trainer.h"

namespace recmodel {

namespace {

struct TrainOptions {
  std::string model;
  std::string data;
  std::string out;
  std::string work_dir;  // "": <out>.train
  bool force = false;
  bool resume = false;
  bool reset_head = false;
  bool keep_checkpoints = false;
  std::string register_name;
  int nproc_per_node = 1;     // > 1: start that many local workers (a job without torchrun)
  double dist_timeout = 300;  // seconds to reach the store, and for every collective
  double autotune = 0;        // > 0: search hyper-parameters within this many seconds
  int autotune_trials = 0;    // > 0: exactly this many trials
  training::TrainConfig config;
};

// What a rank builds before its first step; on the heap, since the trainer keeps references into it.
struct TrainingSetup {
  TrainingSetup(const TrainOptions& options, const fs::path& work_dir, const std::string& registry_flag,
                const std::function<void(const std::string&)>& warn, distributed::ProcessGroup* group)
      : dataset(data::PreparedDataset::open(options.data)),
        base(registry::resolve_model(options.model, registry_flag)),
        opened(model::open_for_training(base.path, options.model, dataset, options.reset_head, warn)) {
    trainer = std::make_unique<training::Trainer>(options.config, opened.loaded, dataset, work_dir, warn,
                                                  opened.fit.label_map, group);
  }
  data::PreparedDataset dataset;
  registry::ResolvedModel base;
  model::OpenedModel opened;
  std::unique_ptr<training::Trainer> trainer;
};

// The trials table of an autotune search: settings, dev metric, steps and seconds, best marked.
void print_trials(std::FILE* file, const nlohmann::json& autotune) {
  const std::string metric = autotune["metric"].get<std::string>();
  fmt::print(file, "autotune: {} trials in {:.1f} s, by dev {}:\n", autotune["trials"].size(),
             autotune["seconds"].get<double>(), metric);
  fmt::print(file, "  trial  {:>8}  epochs  batch  warmup  decay  dropout  preset  {:>9}  {:>11}  seconds\n", "lr", metric,
             "steps");
  for (const auto& trial : autotune["trials"]) {
    const auto& settings = trial["settings"];
    const std::string value = trial.contains("error")      ? std::string("failed")
                              : trial["metric"].is_null() ? std::string("-")
                                                          : fmt::format("{:.4f}", trial["metric"].get<double>());
    fmt::print(file, "  {:>4}{}  {:>8.2e}  {:>6}  {:>5}  {:>6.2f}  {:>5.2f}  {:>7.2f}  {:>6}  {:>9}  {:>5}/{:<5}  {:>7.1f}\n",
               trial["trial"].get<int>(), trial["trial"] == autotune["best_trial"] ? "*" : " ",
               settings["lr"].get<double>(), settings["epochs"].get<int>(), settings["batch_size"].get<size_t>(),
               settings["warmup_ratio"].get<double>(), settings["weight_decay"].get<double>(),
               settings["dropout"].get<double>(), settings.value("preset", std::string("-")), value,
               trial["steps"].get<int64_t>(), trial["total_steps"].get<int64_t>(), trial["seconds"].get<double>());
  }
}

// Writes the trained model (lineage, reference profile, train log), registers it, reports.
// `used` is the configuration that trained it; `autotune` the search that chose it (or null).
void finish_training(const TrainOptions& options, const Console& console, const data::PreparedDataset& dataset,
                     const registry::ResolvedModel& base, model::OpenedModel& opened,
                     const training::TrainResult& result, const training::TrainConfig& used,
                     const nlohmann::json& autotune) {
  const fs::path out = options.out;
  const fs::path work_dir = options.work_dir.empty() ? fs::path(options.out + ".train") : fs::path(options.work_dir);
  const std::string& registry_flag = console.options().registry;
  model::LoadedModel& loaded = opened.loaded;
  std::error_code ec;
  nlohmann::json lineage = {
      {"recmodel_version", RECMODEL_VERSION},
      {"created_by", "train"},
      {"base_model", base.version ? base.version->uri() : options.model},
      {"dataset", {{"path", options.data}, {"manifest_sha256", dataset.manifest_sha256}}},
      {"params",
       {{"epochs", used.epochs},
        {"batch_size", used.batch_size},
        {"lr", used.lr},
        {"warmup_ratio", used.warmup_ratio},
        {"weight_decay", used.weight_decay},
        {"grad_accum", used.grad_accum},
        {"max_grad_norm", used.max_grad_norm},
        {"eval_every", used.eval_every},
        {"patience", used.patience},
        {"metric", result.metric},
        {"seed", used.seed},
        {"device", result.device},
        {"precision", used.precision}}},
      {"metrics", {{"dev", result.best_metrics}}},
      {"autotune", autotune},
      {"training",
       {{"steps", result.steps},
        {"epochs_completed", result.epochs_completed},
        {"stopped_early", result.stopped_early},
        {"best_step", result.best_step},
        {"seconds", result.seconds},
        {"samples_per_second", result.samples_per_second},
        {"tokens_per_second", result.tokens_per_second}}},
  };
  // The reference `recmodel drift` compares live traffic with: the data the model was chosen on.
  const std::string profiled = dataset.has_split("dev") ? "dev" : "train";
  lineage["profile"] = model::profile_split(loaded.model, opened.tokenizer.unk_id(), dataset, profiled,
                                            used.batch_size, model::parse_device(result.device))
                           .to_json();
  StagingDir staging(out, options.force);
  model::save_model(staging.path(), loaded.model, opened.tokenizer, lineage);
  fs::copy_file(work_dir / "train_log.jsonl", staging.path() / "train_log.jsonl", ec);
  staging.commit();
  if (!options.keep_checkpoints) fs::remove_all(work_dir, ec);

  std::optional<registry::VersionInfo> registered;
  if (!options.register_name.empty()) {
    registry::RegisterRequest extras;
    if (base.version) extras.parent = registry::parse_ref(base.version->uri(), /*allow_bare=*/false);
    extras.description = fmt::format("trained from {} on {}", options.model, options.data);
    registered = registry::register_directory(out, options.register_name, registry_flag, extras, console.threads());
  }

  nlohmann::json document = {
      {"out", options.out},
      {"steps", result.steps},
      {"total_steps", result.total_steps},
      {"epochs_completed", result.epochs_completed},
      {"stopped_early", result.stopped_early},
      {"resumed_from_step", result.resumed ? nlohmann::json(result.resumed_from_step) : nlohmann::json(nullptr)},
      {"device", result.device},
      {"seconds", result.seconds},
      {"samples_per_second", result.samples_per_second},
      {"tokens_per_second", result.tokens_per_second},
      {"final_loss", result.final_loss},
      {"metric", result.metric},
      {"best", result.best_value ? nlohmann::json(*result.best_value) : nlohmann::json(nullptr)},
      {"best_step", result.best_step},
      {"dev", result.best_metrics},
      {"registered", registered ? nlohmann::json(registered->uri()) : nlohmann::json(nullptr)},
  };
  if (!autotune.is_null()) document["autotune"] = autotune;
  console.result(document, [&](std::FILE* file) {
    if (!autotune.is_null()) print_trials(file, autotune);
    fmt::print(file, "trained {} steps{} in {:.1f} s on {} ({:.1f} samples/s, {:.0f} tokens/s); final loss {:.4f}\n",
               result.steps, result.stopped_early ? " (stopped early: no dev improvement)" : "", result.seconds,
               result.device, result.samples_per_second, result.tokens_per_second, result.final_loss);
    if (result.best_value) {
      const auto& dev = result.best_metrics;
      std::string extra;
      for (const char* name : {"accuracy", "f1_macro", "mae", "rmse"}) {
        if (name != result.metric && dev.contains(name) && dev[name].is_number())
          extra += fmt::format(", {} {:.4f}", name, dev[name].get<double>());
      }
      fmt::print(file, "best dev {} {:.4f} at step {}{}\n", result.metric, *result.best_value, result.best_step, extra);
    } else {
      fmt::print(file, "no dev split: the model is the one after the last step\n");
    }
    fmt::print(file, "wrote {} (training log: {}/train_log.jsonl)\n", options.out, options.out);
    if (registered) fmt::print(file, "registered {}\n", registered->uri());
  });
}

// --autotune SECONDS / --autotune-trials N: search the settings on the dev split (successive
// halving), then write the best trial's model as train writes one.
void run_autotune(const TrainOptions& options, const Console& console) {
  if (distributed::read_world().distributed() || options.nproc_per_node > 1)
    fail<UsageError>("--autotune runs its trials in one process; leave out --nproc-per-node and torchrun");
  if (options.resume) fail<UsageError>("--autotune searches afresh; --resume continues a single training run");
  const fs::path out = options.out;
  const fs::path work_dir = options.work_dir.empty() ? fs::path(options.out + ".train") : fs::path(options.work_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !options.force)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", out.string());
  if (fs::exists(work_dir, ec)) {
    if (!options.force)
      fail<UsageError>("{}: holds the checkpoint of an earlier run; pass --force to start over", work_dir.string());
    fs::remove_all(work_dir, ec);
  }
  if (!options.config.metric.empty()) metrics::require_metric_name(options.config.metric, "--metric");
  if (!options.register_name.empty()) registry::validate_model_name(options.register_name);
  const data::PreparedDataset dataset = data::PreparedDataset::open(options.data);
  const registry::ResolvedModel base = registry::resolve_model(options.model, console.options().registry);
  // A model made by init (random weights) is trained from scratch: its size is searched too.
  const nlohmann::json origin = model::read_lineage(base.path);
  const bool from_scratch = origin.value("created_by", std::string()) == "init" && origin.contains("init") &&
                            origin["init"].is_object() && !origin["init"].contains("from");
  torch::manual_seed(options.config.seed);
  const model::OpenedModel probe =
      model::open_for_training(base.path, options.model, dataset, options.reset_head, [&](const std::string& line) {
        console.warn("{}", line);
      });
  training::TrialSettings first{options.config.lr,         options.config.epochs,       options.config.batch_size,
                                options.config.warmup_ratio, options.config.weight_decay, probe.loaded.config.hidden_dropout_prob,
                                ""};
  if (from_scratch && origin["init"].contains("preset") && origin["init"]["preset"].is_string())
    first.preset = origin["init"]["preset"].get<std::string>();
  auto open_trial = [&](const training::TrialSettings& trial) {
    torch::manual_seed(options.config.seed);
    model::OpenedModel opened =
        model::open_for_training(base.path, options.model, dataset, options.reset_head, [](const std::string&) {});
    // From scratch, another size is a new random model with the same tokenizer and labels.
    if (!trial.preset.empty() && trial.preset != first.preset) opened = model::with_preset(std::move(opened), trial.preset);
    return opened;
  };
  training::AutotuneOptions search;
  search.budget_seconds = options.autotune;
  search.trials = options.autotune_trials;
  search.search_preset = from_scratch;
  search.seed = options.config.seed;
  training::Autotuner tuner(options.config, first, search, dataset, work_dir, open_trial,
                            [&](const std::string& line) { console.warn("{}", line); });
  StopSignals signals;
  training::AutotuneResult found = tuner.run([&](const training::TrialOutcome& trial) {
    console.info("autotune: trial {} after rung {}: dev {} {}{} ({} of {} steps, {:.1f} s)", trial.id, trial.rungs,
                 options.config.metric.empty() ? training::default_metric(dataset.task) : options.config.metric,
                 trial.metric ? fmt::format("{:.4f}", *trial.metric) : std::string("-"),
                 trial.error.empty() ? "" : " (failed: " + trial.error + ")", trial.steps, trial.total_steps,
                 trial.seconds);
  });
  const training::TrialOutcome& best = found.trials.at(found.best);
  training::TrainConfig used = options.config;
  used.lr = best.settings.lr;
  used.epochs = best.settings.epochs;
  used.batch_size = best.settings.batch_size;
  used.warmup_ratio = best.settings.warmup_ratio;
  used.weight_decay = best.settings.weight_decay;
  finish_training(options, console, dataset, base, tuner.best_model(), found.best_result, used,
                  found.to_json(found.best_result.metric));
}

// --nproc-per-node N: this process only supervises N workers running the same command.
void launch_workers(const TrainOptions& options, const Console& console) {
  if (options.config.batch_size % static_cast<size_t>(options.nproc_per_node) != 0)
    fail<UsageError>("--batch-size {} is the global batch: it must divide evenly over --nproc-per-node {}",
                     options.config.batch_size, options.nproc_per_node);
  distributed::LaunchOptions launch;
  launch.workers = options.nproc_per_node;
  launch.command = distributed::own_command_without("--nproc-per-node");
  const int code = distributed::launch_local_workers(launch, [&](const std::string& line) { console.warn("{}", line); });
  if (code != 0) throw AlreadyReported(code);
}

void run_train(TrainOptions options, const Console& console) {
  if (options.autotune > 0 || options.autotune_trials > 0) return run_autotune(options, console);
  const distributed::World world = distributed::read_world();
  if (options.nproc_per_node > 1) {
    if (world.distributed())
      fail<UsageError>("--nproc-per-node starts the workers itself; under torchrun or a PyTorchJob (WORLD_SIZE={} is "
                       "set) leave it out",
                       world.world_size);
    return launch_workers(options, console);
  }
  const bool main_rank = world.is_main();
  const fs::path out = options.out;
  const fs::path work_dir = options.work_dir.empty() ? fs::path(options.out + ".train") : fs::path(options.work_dir);
  std::unique_ptr<distributed::ProcessGroup> group;
  if (world.distributed()) {
    if (options.config.batch_size % static_cast<size_t>(world.world_size) != 0)
      fail<UsageError>("--batch-size {} is the global batch: it must divide evenly over the world size {}",
                       options.config.batch_size, world.world_size);
    // One GPU per local rank, as torchrun's workers expect.
    if (options.config.device == "cuda" || (options.config.device == "auto" && torch::cuda::is_available()))
      options.config.device = fmt::format("cuda:{}", world.local_rank);
    group = distributed::ProcessGroup::join(world, model::parse_device(options.config.device),
                                            std::chrono::milliseconds(static_cast<int64_t>(options.dist_timeout * 1000)),
                                            console.options().verbose);
    // torchrun restarted the workers after a failure: continue from the last checkpoint, or start over.
    std::error_code ec;
    if (world.restart_count > 0) options.resume = fs::exists(work_dir / "checkpoint" / "state.json", ec);
  }

  const std::string& registry_flag = console.options().registry;
  auto warn = [&](const std::string& message) {
    if (main_rank) console.warn("{}", message);
  };
  std::unique_ptr<TrainingSetup> setup;
  try {
    std::error_code ec;
    if (main_rank && fs::exists(out, ec) && !options.force)
      fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", out.string());
    if (options.resume && !fs::exists(work_dir / "checkpoint" / "state.json", ec))
      fail<NotFoundError>("{}: no checkpoint to resume from; run without --resume to start training{}",
                          (work_dir / "checkpoint").string(),
                          world.distributed() ? " (on several machines, --work-dir must be on a filesystem they share)" : "");
    if (main_rank && !options.resume && fs::exists(work_dir, ec)) {
      // A restarted job without a checkpoint starts over: the work dir is its own failed attempt's
      // (never --out: that is the user's).
      if (!options.force && world.restart_count == 0)
        fail<UsageError>("{}: holds the checkpoint of an earlier run; continue it with --resume, or pass --force to "
                         "start over",
                         work_dir.string());
      fs::remove_all(work_dir, ec);
    }
    if (!options.config.metric.empty()) metrics::require_metric_name(options.config.metric, "--metric");
    if (!options.register_name.empty()) registry::validate_model_name(options.register_name);
    torch::manual_seed(options.config.seed);  // a new head is drawn from --seed
    setup = std::make_unique<TrainingSetup>(options, work_dir, registry_flag, warn, group.get());
  } catch (const Error& error) {
    if (!group) throw;
    distributed::agree_to_start(*group, nullptr, &error);  // throws on every rank
  }
  if (group) {
    nlohmann::json fingerprint = setup->trainer->fingerprint();
    fingerprint["resume"] = options.resume;
    // Every rank must continue from the same checkpoint: a rank that read an older one (a shared
    // filesystem that lagged behind rank 0's rename) would train on silently different weights.
    if (options.resume) fingerprint["checkpoint_sha256"] = sha256_file(work_dir / "checkpoint" / "state.json");
    distributed::agree_to_start(*group, fingerprint, nullptr);
  }
  const data::PreparedDataset& dataset = setup->dataset;
  const registry::ResolvedModel& base = setup->base;
  model::OpenedModel& opened = setup->opened;
  training::Trainer& trainer = *setup->trainer;

  StopSignals signals;
  ProgressBar progress(console, "train", 0, " steps");
  std::function<void(const training::StepReport&)> on_step;
  if (progress.enabled() && main_rank) {
    on_step = [&](const training::StepReport& report) {
      progress.set_label(fmt::format("train loss {:.4f} lr {:.2e} {:.1f} samples/s", report.loss, report.lr,
                                     report.samples_per_second));
      progress.update(static_cast<uint64_t>(report.step));
    };
  }
  training::TrainResult result = trainer.run(options.resume, on_step);
  progress.finish();
  if (!main_rank) {
    group->barrier();  // rank 0 writes the model; the job succeeds when it has
    return;
  }

  finish_training(options, console, dataset, base, opened, result, options.config, nullptr);
  if (group) group->barrier();
}

}  // namespace

CommandAction register_train(CLI::App& command, const Console& console) {
  auto options = std::make_shared<TrainOptions>();
  auto& config = options->config;
  command.footer(
      "\nWhile training, <out>.train/ holds the latest checkpoint (model, optimizer, schedule, RNG and data\n"
      "position), the best dev model and train_log.jsonl. Ctrl-C or SIGTERM saves a checkpoint and exits 130;\n"
      "the same command with --resume continues exactly where it stopped (bit-identical on CPU).\n"
      "\nUnder torchrun or a Kubeflow PyTorchJob (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set), or with\n"
      "--nproc-per-node N, the ranks share each global batch and sum their gradients; rank 0 alone writes.\n"
      "  torchrun --nproc-per-node 2 --no-python recmodel train --model M --data D --out O");
  const char* io_group = "Model and data";
  command.add_option("--model", options->model, "Model to start from: a directory (recmodel init, a Hugging Face BERT) or models:/NAME@ALIAS")
      ->type_name("REF")
      ->required()
      ->group(io_group);
  command.add_option("--data", options->data, "Prepared dataset (recmodel preprocess) with train and dev splits")
      ->type_name("DIR")
      ->required()
      ->group(io_group);
  command.add_option("--out", options->out, "Directory for the trained model (written when training ends)")
      ->type_name("DIR")
      ->required()
      ->group(io_group);
  command.add_flag("--force", options->force, "Replace --out, and discard an earlier run's checkpoint")
      ->group(io_group);
  command.add_flag("--reset-head", options->reset_head,
                   "Train a new classification head when the model's labels differ from the dataset's")
      ->group(io_group);

  const char* opt_group = "Optimization";
  command.add_option("--epochs", config.epochs, "Passes over the train split")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--batch-size", config.batch_size, "Examples per batch")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--lr", config.lr, "Peak learning rate (AdamW)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--warmup-ratio", config.warmup_ratio, "Share of the steps with a linear warmup; then linear decay to 0")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--weight-decay", config.weight_decay, "Decoupled weight decay (not on biases and LayerNorm)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--grad-accum", config.grad_accum, "Batches accumulated per optimizer step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--max-grad-norm", config.max_grad_norm, "Clip the gradient norm to this; 0 = no clipping")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--seed", config.seed, "Seed of data order, dropout and a new head; same seed, same result")
      ->capture_default_str()
      ->check(whole_number())
      ->type_name("N")
      ->group(opt_group);

  const char* eval_group = "Evaluation and checkpoints";
  command.add_option("--eval-every", config.eval_every,
                     "Optimizer steps between dev evaluations; 0 = at the end of each epoch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(eval_group);
  command.add_option("--metric", config.metric, "Dev metric that picks the best model (default: accuracy, mae for regression)")
      ->check(one_of(metrics::metric_names()))
      ->group(eval_group);
  command.add_option("--patience", config.patience, "Stop after N evaluations without improvement; 0 = never")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->type_name("N")
      ->group(eval_group);
  command.add_option("--checkpoint-every", config.checkpoint_every,
                     "Optimizer steps between checkpoints; 0 = at every dev evaluation")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(eval_group);
  command.add_option("--log-every", config.log_every, "Optimizer steps between train_log.jsonl records")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(eval_group);
  command.add_flag("--resume", options->resume, "Continue the interrupted run from <out>.train/checkpoint")
      ->group(eval_group);
  command.add_option("--stop-after", config.stop_after,
                     "Stop after this many optimizer steps with a checkpoint, as if interrupted; 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(eval_group);
  command.add_option("--work-dir", options->work_dir, "Where checkpoints live while training (default: <out>.train)")
      ->type_name("DIR")
      ->group(eval_group);
  command.add_flag("--keep-checkpoints", options->keep_checkpoints, "Keep the work directory after success")
      ->group(eval_group);

  const char* device_group = "Device";
  command.add_option("--device", config.device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(device_group);
  command.add_option("--precision", config.precision, "fp32, or bf16/fp16 autocast on CUDA (fp16 with loss scaling)")
      ->capture_default_str()
      ->check(one_of({"fp32", "bf16", "fp16"}))
      ->group(device_group);
  const char* dist_group = "Several processes (PyTorch c10d: Gloo on CPU, NCCL on CUDA)";
  command.add_option("--nproc-per-node", options->nproc_per_node,
                     "Start N local worker processes (as torchrun does); --batch-size stays the global batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024).description(""))
      ->type_name("N")
      ->group(dist_group);
  command.add_option("--dist-timeout", options->dist_timeout,
                     "Seconds to reach the rendezvous store (MASTER_ADDR:MASTER_PORT), and for each collective")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0).description(""))
      ->type_name("SECONDS")
      ->group(dist_group);
  const char* autotune_group = "Hyper-parameter search";
  command.add_option("--autotune", options->autotune,
                     "Search lr, epochs, batch size, warmup, weight decay, dropout (and the preset, from scratch) on "
                     "the dev split for this many seconds, as fastText's -autotune-duration; keep the best")
      ->check(CLI::Range(1.0, 1e7).description(""))
      ->type_name("SECONDS")
      ->group(autotune_group);
  command.add_option("--autotune-trials", options->autotune_trials,
                     "Exactly this many trials instead of a time budget (deterministic with --seed on CPU)")
      ->check(CLI::Range(1, 1000).description(""))
      ->type_name("N")
      ->group(autotune_group);
  command.add_option("--register", options->register_name, "Register the trained model as the next version of NAME in the registry")
      ->type_name("NAME")
      ->group(io_group);
  return [options, &console] { run_train(*options, console); };
}

}  // namespace recmodel
