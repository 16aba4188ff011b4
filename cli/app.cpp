#include "cli/app.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <new>
#include <string>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "commands/ls.h"
#include "commands/preprocess.h"
#include "commands/pull.h"
#include "commands/push.h"
#include "commands/registry.h"
#include "commands/remote.h"
#include "commands/sync.h"
#include "commands/tokenize.h"
#include "commands/vocab.h"
#include "common/error.h"
#include "common/subprocess.h"

namespace recmodel {

const std::vector<CommandEntry>& command_table() {
  static const std::vector<CommandEntry> table = {
      {"preprocess", "Clean, label, split and tokenize CSV/TSV/JSONL data into a prepared dataset", register_preprocess},
      {"init", "Create a randomly initialised BERT classifier from a preset (tiny, mini, small, base)", nullptr},
      {"pretrain", "Masked-LM pretraining on unlabelled text (titles, queries, reviews): a BERT to fine-tune, no download", nullptr},
      {"train", "Fine-tune a BERT classifier on a prepared dataset (CPU or CUDA), resumable", nullptr},
      {"evaluate", "Metrics of a model on a split, or of a predictions file (scikit-learn's values); CI quality gates", nullptr},
      {"predict", "Labels and probabilities for texts from a file or stdin, streamed as JSONL in input order", nullptr},
      {"quantize", "Quantize a model to int8 and report the size and accuracy change (quality gate)", nullptr},
      {"export", "Export a model to ONNX (fp32 and int8) for ONNX Runtime, transformers.js and Optimum", nullptr},
      {"registry", "Version models: register, list, promote aliases, compare, lineage, history, verify", register_registry},
      {"remote", "Manage named storage remotes: add, list, remove (S3 and file://)", register_remote},
      {"push", "Upload a model version to a remote, content-addressed and verified", register_push},
      {"pull", "Download a model version from a remote, SHA-256 verified, resumable", register_pull},
      {"sync", "Copy a model version between two remotes, streaming", register_sync},
      {"ls", "List the model versions on a remote, or the files of one", register_ls},
      {"serve", "Online inference over HTTP (TEI, HF endpoint, MLflow, KServe v2); follows registry aliases, hot swaps, Prometheus metrics", nullptr},
      {"drift", "Live traffic against the model's training profile: PSI, Jensen-Shannon, chi-square/KS per feature; CI gates", nullptr},
      {"report", "One self-contained HTML page of a model: training curves, confusion matrix, calibration, drift, lineage", nullptr},
      {"pipeline", "The retraining loop from one TOML file: gates, champion/challenger promotion, publishing; cached", nullptr},
      {"tokenize", "Show the WordPiece ids and tokens the model sees for each input line", register_tokenize},
      {"vocab", "Learn a WordPiece vocabulary from a text corpus", register_vocab},
  };
  return table;
}

namespace {

constexpr const char* kProgram = "recmodel";
constexpr const char* kGlobalOptionsFooter =
    "\nGlobal options: --json, -q/--quiet, -v/--verbose, --registry PATH, --threads N (0 = all cores),\n"
    "--no-progress; see 'recmodel --help'.";

// Options of the main app that take a value, so the command finder skips their values.
bool takes_value(const std::string& arg) { return arg == "--registry" || arg == "--threads"; }

// Returns the first positional argument after `after` (or from the start when empty), or "".
std::string typed_command_after(int argc, char** argv, const std::string& after) {
  bool seen = after.empty();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") return "";
    if (takes_value(arg)) {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    if (seen) return arg;
    seen = arg == after;
  }
  return "";
}

// Returns the first positional argument: the command name as typed, or "".
std::string typed_command(int argc, char** argv) { return typed_command_after(argc, argv, ""); }

void add_global_options(CLI::App& app, GlobalOptions& options) {
  const char* group = "Global options (before or after the command)";
  app.add_flag("--json", options.json, "Print the result as one JSON document on stdout")->group(group);
  app.add_flag("-q,--quiet", options.quiet, "Only warnings and errors on stderr")->group(group);
  app.add_flag("-v,--verbose", options.verbose, "More detail on stderr (repeat for more)")->group(group);
  app.add_option("--registry", options.registry,
                 "Registry file (default: $RECMODEL_REGISTRY, else ~/.local/share/recmodel/registry.db)")
      ->type_name("PATH")
      ->group(group);
  app.add_option("--threads", options.threads, "Worker threads; 0 = all cores")
      ->check(CLI::Range(0, 4096).description(""))
      ->type_name("N")
      ->group(group);
  app.add_flag("--no-progress", options.no_progress, "Never draw progress bars (also off when CI is set)")
      ->group(group);
}

void print_version(const Console& console, const ModelRuntime& runtime) {
  nlohmann::json info = runtime.version_info();
  console.result(info, [&](std::FILE* out) {
    fmt::print(out, "{} {}\n", kProgram, info["version"].get<std::string>());
    const auto& blas = info["blas"];
    std::string library = blas["library"].get<std::string>();
    fmt::print(out, "BLAS: {}{}\n", blas["vendor"].get<std::string>(),
               library.empty() ? "" : fmt::format(" ({})", library));
    const std::string wait_policy = info["openmp_wait_policy"].get<std::string>();
    fmt::print(out, "cores: {}, threads: {}{}, OpenMP wait policy: {}\n", info["cores"].get<unsigned>(),
               info["threads"].get<int>(),
               blas["threads"].is_number() ? fmt::format(" (BLAS {})", blas["threads"].get<int>()) : "",
               wait_policy.empty() ? "default" : wait_policy);
    fmt::print(out, "libtorch: {}{}\n", info["libtorch"].get<std::string>(), info["cuda"].get<bool>() ? " (CUDA available)" : " (CPU)");
  });
  if (!info["blas"]["fast"].get<bool>())
    console.warn("libblas.so.3 is the {} BLAS: training will be ~10x slower; install libopenblas0-pthread",
                 info["blas"]["vendor"].get<std::string>());
}

int report(ExitCode code, const std::string& message) {
  fmt::print(stderr, "{}: error: {}\n", kProgram, message);
  return static_cast<int>(code);
}

bool is_model_command(const std::string& name) {
  for (const auto& entry : command_table())
    if (name == entry.name) return entry.register_command == nullptr;
  return false;
}

// True when the arguments need libtorch: a model command, its help, or --version.
bool needs_model_runtime(int argc, char** argv) {
  const std::string typed = typed_command(argc, argv);
  if (typed == "help") return is_model_command(typed_command_after(argc, argv, "help"));
  if (!typed.empty()) return is_model_command(typed);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "-V" || arg == "--version") return true;
  }
  return false;
}

// libgomp and glibc read these when recmodel-torch starts, so they are set before the exec; a value
// the user set wins.
void prepare_model_runtime_environment() {
  // libgomp's idle workers spin after every parallel region on the cores OpenBLAS's threads need for
  // the next sgemm; sleeping workers made training 3x faster on 2 cores (28 -> 94 samples/s).
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  // Transparent huge pages for the heap (where tune_allocator keeps tensors): fewer page faults.
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  std::string value = tunables ? tunables : "";
  if (value.find("glibc.malloc.hugetlb") == std::string::npos) {
    value += std::string(value.empty() ? "" : ":") + "glibc.malloc.hugetlb=1";
    ::setenv("GLIBC_TUNABLES", value.c_str(), /*overwrite=*/1);
  }
}

// Replaces this process with recmodel-torch (beside this binary) on the same arguments.
int exec_model_runtime(char** argv) {
  const std::filesystem::path runtime = current_executable(argv[0]).parent_path() / "recmodel-torch";
  prepare_model_runtime_environment();
  ::execv(runtime.c_str(), argv);
  return report(ExitCode::internal, fmt::format("cannot run {}: {}; the model commands live in recmodel-torch "
                                                "beside recmodel (reinstall recmodel)",
                                                runtime.string(), std::strerror(errno)));
}

}  // namespace

int run_cli(int argc, char** argv, const ModelRuntime* model_runtime) {
  if (!model_runtime && needs_model_runtime(argc, argv)) return exec_model_runtime(argv);
  GlobalOptions options;
  Console console(options);
  try {
    CLI::App app("recmodel — train, evaluate, ship and version BERT text classifiers", kProgram);
    app.fallthrough();  // global options are valid after the subcommand too
    app.footer("\nRun 'recmodel COMMAND --help' for the options of one command.");
    app.option_defaults()->always_capture_default();
    bool show_version = false;
    app.add_flag("-V,--version", show_version, "Print the version, the BLAS in use and the core count");
    add_global_options(app, options);

    std::vector<std::string> names;
    std::vector<std::pair<CLI::App*, CommandAction>> actions;
    for (const auto& entry : command_table()) {
      CLI::App* command = app.add_subcommand(entry.name, entry.summary);
      names.emplace_back(entry.name);
      RegisterCommand register_command = entry.register_command;
      if (!register_command && model_runtime)
        for (const auto& [name, model_command] : model_runtime->commands)
          if (name == entry.name) register_command = model_command;
      // In `recmodel` a model command stays a bare name for the command list: running it execs above.
      actions.emplace_back(command, register_command ? register_command(*command, console) : CommandAction());
      command->footer(command->get_footer() + kGlobalOptionsFooter);
    }
    // `help` is handled before parsing: CLI11 would read `help tokenize` as two commands.
    app.add_subcommand("help", "Show the list of commands, or the help of one command");

    std::string typed = typed_command(argc, argv);
    if (!typed.empty() && typed != "help" && std::find(names.begin(), names.end(), typed) == names.end()) {
      names.emplace_back("help");
      std::string hint = closest_match(typed, names);
      return report(ExitCode::usage,
                    fmt::format("unknown command '{}'{}; run 'recmodel help' for the list", typed,
                                hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }

    if (typed == "help") {
      std::string topic = typed_command_after(argc, argv, "help");
      if (topic.empty()) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
      }
      for (auto& [command, action] : actions) {
        if (command->get_name() == topic) {
          std::fputs(command->help(kProgram).c_str(), stdout);
          return 0;
        }
      }
      std::string hint = closest_match(topic, names);
      return report(ExitCode::usage, fmt::format("no command '{}'{}", topic,
                                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }

    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      // Help of the selected subcommand, else of the whole program, always on stdout.
      std::fputs(app.help().c_str(), stdout);
      return 0;
    } catch (const CLI::CallForAllHelp&) {
      std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
      return 0;
    } catch (const CLI::ParseError& e) {
      std::string where;
      for (auto& [command, action] : actions) {
        if (command->parsed()) where = fmt::format("; see 'recmodel {} --help'", command->get_name());
      }
      if (where.empty()) where = "; see 'recmodel --help'";
      std::string message = e.what();
      for (char& c : message) {
        if (c == '\n') c = ' ';
      }
      return report(ExitCode::usage, message + where);
    }

    if (model_runtime) model_runtime->use_threads(console.threads());
    if (show_version && model_runtime) {
      print_version(console, *model_runtime);
      return 0;
    }
    for (auto& [command, action] : actions) {
      if (command->parsed()) {
        if (!action) return exec_model_runtime(argv);  // not reached: needs_model_runtime sent it there
        action();
        return 0;
      }
    }
    return report(ExitCode::usage, "no command given; run 'recmodel help' for the list");
  } catch (const AlreadyReported& e) {
    return static_cast<int>(e.code());
  } catch (const Error& e) {
    return report(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return report(ExitCode::internal, "out of memory");
  } catch (const std::exception& e) {
    return report(ExitCode::internal, fmt::format("internal error: {} (please report this)", e.what()));
  }
}

}  // namespace recmodel
