// Pins what users and scripts see from the front end: help, version, errors, exit codes.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "tests/support.h"

namespace t = recmodel::testing;

TEST_CASE("--help goes to stdout with exit 0 and lists the commands") {
  auto result = t::run_recmodel({"--help"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out.find("Usage: recmodel") != std::string::npos);
  CHECK(result.out.find("tokenize") != std::string::npos);
  CHECK(result.out.find("--threads") != std::string::npos);

  auto help = t::run_recmodel({"help", "tokenize"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--max-length") != std::string::npos);

  auto command_help = t::run_recmodel({"tokenize", "--help"});
  CHECK(command_help.exit_code == 0);
  CHECK(command_help.out == help.out);
}

TEST_CASE("--version names the version and the BLAS, as text and as JSON") {
  auto text = t::run_recmodel({"--version"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.rfind("recmodel " RECMODEL_VERSION "\n", 0) == 0);
  CHECK(text.out.find("BLAS: ") != std::string::npos);

  auto json = t::run_recmodel({"--version", "--json"});
  CHECK(json.exit_code == 0);
  auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["version"] == RECMODEL_VERSION);
  CHECK(doc["blas"].contains("vendor"));
  // The install script puts OpenBLAS behind libblas.so.3; the reference BLAS would warn.
  if (doc["blas"]["fast"].get<bool>()) CHECK(json.err.empty());
  else CHECK(json.err.find("install libopenblas0-pthread") != std::string::npos);
}

TEST_CASE("the model runtime gets sleeping OpenMP workers and --threads sizes the BLAS pool, unless the user chose") {
  auto doc = nlohmann::json::parse(t::run_recmodel({"--version", "--json", "--threads", "1"}).out);
  CHECK(doc["openmp_wait_policy"] == "PASSIVE");
  CHECK(doc["threads"] == 1);
  if (doc["blas"]["vendor"] == "OpenBLAS") CHECK(doc["blas"]["threads"] == 1);
  auto chosen = nlohmann::json::parse(t::run_recmodel({"--version", "--json"}, "", {"OMP_WAIT_POLICY=ACTIVE"}).out);
  CHECK(chosen["openmp_wait_policy"] == "ACTIVE");
}

TEST_CASE("an unknown command is a usage error with a suggestion") {
  auto result = t::run_recmodel({"tokenise"});
  CHECK(result.exit_code == 2);
  CHECK(result.out.empty());
  CHECK(result.err == "recmodel: error: unknown command 'tokenise' (did you mean 'tokenize'?); "
                      "run 'recmodel help' for the list\n");
  auto none = t::run_recmodel({});
  CHECK(none.exit_code == 2);
  CHECK(none.err == "recmodel: error: no command given; run 'recmodel help' for the list\n");
}

TEST_CASE("bad numbers and unknown flags are usage errors on one line") {
  auto bad_number = t::run_recmodel({"tokenize", "--threads", "abc"});
  CHECK(bad_number.exit_code == 2);
  CHECK(bad_number.err.rfind("recmodel: error: --threads", 0) == 0);
  CHECK(bad_number.err.find("see 'recmodel tokenize --help'") != std::string::npos);
  CHECK(std::count(bad_number.err.begin(), bad_number.err.end(), '\n') == 1);

  auto unknown_flag = t::run_recmodel({"tokenize", "--frobnicate"});
  CHECK(unknown_flag.exit_code == 2);
  CHECK(unknown_flag.err.rfind("recmodel: error: ", 0) == 0);
  CHECK(unknown_flag.err.find("--frobnicate") != std::string::npos);
}

TEST_CASE("global options are accepted before and after the command") {
  t::TempDir dir;
  t::write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhi\n");
  std::string vocab = (dir / "vocab.txt").string();
  auto before = t::run_recmodel({"--threads", "1", "--no-progress", "tokenize", "--vocab", vocab}, "hi\n");
  auto after = t::run_recmodel({"tokenize", "--vocab", vocab, "--threads", "1", "-q"}, "hi\n");
  CHECK(before.exit_code == 0);
  CHECK(after.exit_code == 0);
  CHECK(before.out == "{\"ids\":[2,5,3],\"tokens\":[\"[CLS]\",\"hi\",\"[SEP]\"]}\n");
  CHECK(after.out == before.out);
}

namespace {

// Runs a shell command, returning its stdout and (through `status`) its exit code.
std::string shell(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  int raw = pclose(pipe);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

}  // namespace

TEST_CASE("recmodel does not load libtorch, and hands the model commands to recmodel-torch beside it") {
  int status = 0;
  const std::string binary = RECMODEL_BINARY;
  const std::string libraries = shell("ldd '" + binary + "'", status);
  REQUIRE(status == 0);
  CHECK(libraries.find("libc.so") != std::string::npos);
  CHECK(libraries.find("libtorch") == std::string::npos);
  CHECK(libraries.find("libc10") == std::string::npos);

  // Through the hand-over: the model commands and --version work, with their exit codes.
  auto version = t::run_recmodel({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.find("libtorch: ") != std::string::npos);
  auto usage = t::run_recmodel({"train", "--no-such-option"});
  CHECK(usage.exit_code == 2);
  CHECK(usage.err.rfind("recmodel: error: ", 0) == 0);

  // Alone in a folder, recmodel still runs its own commands and says what is missing for the others.
  t::TempDir dir;
  const std::string lonely = (dir / "recmodel").string();
  t::fs::copy_file(binary, lonely);
  t::fs::permissions(lonely, t::fs::perms::owner_all);
  shell("'" + lonely + "' tokenize --help >/dev/null 2>&1", status);
  CHECK(status == 0);
  const std::string err = shell("'" + lonely + "' train --help 2>&1 >/dev/null", status);
  CHECK(status == 70);
  CHECK(err == "recmodel: error: cannot run " + (dir / "recmodel-torch").string() +
                   ": No such file or directory; the model commands live in recmodel-torch beside recmodel "
                   "(reinstall recmodel)\n");
}
