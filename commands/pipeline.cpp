#include "commands/pipeline.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "commands/preprocess.h"
#include "commands/train.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "pipeline/config.h"
#include "pipeline/runner.h"

namespace recmodel {

namespace {

struct PipelineOptions {
  std::string file;
  std::vector<std::string> sets;
  std::string force;
  bool dry_run = false;
  std::string config;  // remotes
};

// The long options of a command as its own registration declares them.
pipeline::OptionTable option_table(RegisterCommand register_command, const Console& console) {
  CLI::App scratch;
  register_command(scratch, console);
  pipeline::OptionTable table;
  for (const CLI::Option* option : scratch.get_options())
    for (const std::string& name : option->get_lnames()) table[name] = option->get_expected_max() == 0;
  return table;
}

// Parses `args` as `command` would (types, ranges, enums), without running it, so a bad value in
// the file stops the run before any stage starts.
void check_command_line(RegisterCommand register_command, const Console& console, std::vector<std::string> args,
                        const std::string& where) {
  CLI::App scratch;
  register_command(scratch, console);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector back to front
  try {
    scratch.parse(args);
  } catch (const CLI::ParseError& e) {
    fail<DataError>("{}: {}", where, e.what());
  }
}

pipeline::Config load(const PipelineOptions& options, const Console& console) {
  pipeline::KnownOptions known{option_table(register_preprocess, console), option_table(register_train, console)};
  pipeline::Config config = pipeline::load_config(options.file, options.sets, known);
  // Every option with a placeholder for what the pipeline fills in, as each command will see it.
  std::vector<std::string> preprocess = {"--out", "/nonexistent/out", "--vocab", "/nonexistent/vocab.txt"};
  pipeline::append_options(preprocess, config.preprocess);
  check_command_line(register_preprocess, console, preprocess, fmt::format("{}: [data]", options.file));
  std::vector<std::string> train = {"--model", "m", "--data", "d", "--out", "o"};
  pipeline::append_options(train, config.train);
  check_command_line(register_train, console, train, fmt::format("{}: [train]", options.file));
  return config;
}

pipeline::RunOptions run_options(const PipelineOptions& options, const Console& console) {
  pipeline::RunOptions run;
  // The stages run `recmodel` (beside this recmodel-torch), which hands model commands back here.
  run.recmodel = current_executable("recmodel").parent_path() / "recmodel";
  const GlobalOptions& global = console.options();
  run.global_args = {"-q"};
  if (!global.registry.empty()) run.global_args.insert(run.global_args.end(), {"--registry", global.registry});
  if (global.threads > 0) run.global_args.insert(run.global_args.end(), {"--threads", std::to_string(global.threads)});
  if (global.verbose > 0) run.global_args.push_back("-v");
  run.registry_flag = global.registry;
  run.config_flag = options.config;
  run.force_from = options.force;
  run.dry_run = options.dry_run;
  return run;
}

void print_stage(std::FILE* out, const pipeline::StageReport& stage) {
  const std::string status = stage.status == pipeline::StageStatus::pending ? "would run" : pipeline::status_name(stage.status);
  const std::string seconds = stage.status == pipeline::StageStatus::ran || stage.status == pipeline::StageStatus::failed
                                  ? fmt::format("{:6.1f} s", stage.seconds)
                                  : std::string(8, ' ');
  fmt::print(out, "{:<11} {:<9} {}  {}\n", stage.name, status, seconds, stage.reason);
}

void run_pipeline_command(const PipelineOptions& options, const Console& console, bool status_only) {
  const pipeline::Config config = load(options, console);
  pipeline::RunOptions run = run_options(options, console);
  if (!status_only && !run.dry_run && !console.json()) {
    run.on_stage_end = [&](const pipeline::StageReport& stage) {
      print_stage(stdout, stage);
      std::fflush(stdout);
    };
    run.on_stage_start = [&](const pipeline::StageReport& stage) { console.debug("stage {}: starting", stage.name); };
  }
  const pipeline::RunResult result = status_only ? pipeline::pipeline_status(config, run) : pipeline::run_pipeline(config, run);
  if (console.json()) {
    console.result(result.record, [](std::FILE*) {});
  } else {
    if (status_only || run.dry_run)
      for (const pipeline::StageReport& stage : result.stages) print_stage(stdout, stage);
    if (!result.record_dir.empty()) fmt::print(stdout, "run record: {}\n", (result.record_dir / "run.json").string());
    std::fflush(stdout);
  }
  if (result.exit_code != 0) throw Error(static_cast<ExitCode>(result.exit_code), result.message);
}

void add_common(CLI::App& sub, PipelineOptions& options) {
  sub.add_option("FILE", options.file, "The pipeline file (TOML; see share/pipeline.toml)")->required()->type_name("FILE.toml");
  sub.add_option("--set", options.sets, "Override a key of the file: SECTION.KEY=VALUE (repeatable), e.g. train.lr=1e-4")
      ->type_name("KEY=VALUE");
}

}  // namespace

CommandAction register_pipeline(CLI::App& command, const Console& console) {
  command.require_subcommand(1);
  command.fallthrough();
  command.footer(
      "\nStages: preprocess, train, evaluate (gates), quantize, export, register, promote (champion/challenger),\n"
      "publish. Each is cached by the hash of what it reads; an unchanged stage is not run again. Exit codes: a\n"
      "failed stage's own; 1 when a gate fails or the challenger does not beat the champion; 6 when another run\n"
      "holds the workspace. Every run writes <workspace>/runs/<id>/run.json and summary.md.");
  auto config = std::make_shared<std::string>();
  command.add_option("--config", *config, "The remotes' config file, for publish (default: $RECMODEL_CONFIG or the XDG one)")
      ->type_name("FILE");
  auto run_options = std::make_shared<PipelineOptions>();
  CLI::App* run = command.add_subcommand("run", "Run the stages that are not up to date, and record the run");
  run->fallthrough();
  add_common(*run, *run_options);
  run->add_option("--force", run_options->force, "Run STAGE and every stage after it, cached or not")
      ->type_name("STAGE")
      ->check(one_of(pipeline::stage_names()));
  run->add_flag("--dry-run", run_options->dry_run, "Say what would run and why; run nothing");

  auto status_options = std::make_shared<PipelineOptions>();
  CLI::App* status = command.add_subcommand("status", "Say what `run` would do, stage by stage, and why");
  status->fallthrough();
  add_common(*status, *status_options);

  return [=, &console] {
    run_options->config = status_options->config = *config;
    if (run->parsed()) run_pipeline_command(*run_options, console, /*status_only=*/false);
    else if (status->parsed()) run_pipeline_command(*status_options, console, /*status_only=*/true);
  };
}

}  // namespace recmodel
