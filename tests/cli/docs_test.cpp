// Keeps the manual pages and the shell completions in step with the binary: every command and
// every option that `--help` shows must be documented in man/ and offered by the bash and zsh
// completions in share/completions/. A command or option added without docs fails here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = RECMODEL_SOURCE_DIR;
const fs::path kBashCompletion = kSource / "share/completions/recmodel.bash";
const fs::path kZshCompletion = kSource / "share/completions/_recmodel";

// One option line of a CLI11 help text, e.g. "  -q,--quiet" or "  --format TEXT:{auto,csv}=auto".
struct HelpOption {
  std::vector<std::string> names;   // "-q", "--quiet"
  std::string type;                 // "FILE", "DIR", "TEXT", "N", ... ("" for flags)
  std::vector<std::string> values;  // the enum values shown as {a,b,c}
  std::string long_name() const {
    for (const auto& name : names)
      if (name.rfind("--", 0) == 0) return name;
    return "";
  }
};

// Returns the options of a CLI11 help text: lines indented by two spaces that start with '-'.
std::vector<HelpOption> help_options(const std::string& help) {
  // names ("-q,--quiet"), then an optional type name ("FILE", "N|P%"), then the rest.
  static const std::regex line_re(
      R"(^  ((?:--?[A-Za-z0-9][A-Za-z0-9-]*,)*--?[A-Za-z0-9][A-Za-z0-9-]*))"
      R"((?: +([A-Z][A-Z|%]*)(?=$|[ =:]))?(.*)$)");
  static const std::regex values_re(R"(\{([^}]*)\})");
  std::vector<HelpOption> options;
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch match;
    if (!std::regex_match(line, match, line_re)) continue;
    HelpOption option;
    std::stringstream names(match[1].str());
    for (std::string name; std::getline(names, name, ',');) option.names.push_back(name);
    option.type = match[2].str();
    std::string rest = match[3].str();
    std::smatch values;
    // The set belongs to the option's type ("TEXT:{a,b}"), not to its description.
    if (rest.rfind(":{", 0) == 0 && std::regex_search(rest, values, values_re)) {
      std::stringstream list(values[1].str());
      for (std::string value; std::getline(list, value, ',');) option.values.push_back(value);
    }
    options.push_back(option);
  }
  return options;
}

// Returns the commands listed under "Subcommands:" in `recmodel --help`.
std::vector<std::string> help_commands(const std::string& help) {
  std::vector<std::string> commands;
  std::istringstream in(help);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "Subcommands:") {
      inside = true;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("  ", 0) != 0 || line.size() < 3 || line[2] == ' ') break;
    commands.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return commands;
}

// Returns troff source as a reader sees the words: "\-" spelled "-", font changes ("\fB", "\fR")
// and zero-width "\&" dropped.
std::string plain_troff(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (text[i] == '\\' && next == '-') continue;  // the '-' itself is kept
    if (text[i] == '\\' && next == '&') {
      ++i;
      continue;
    }
    if (text[i] == '\\' && next == 'f' && i + 2 < text.size()) {
      i += 2;
      continue;
    }
    out += text[i];
  }
  return out;
}

// Returns the text of a man page as plain_troff gives it.
std::string man_text(const fs::path& page) { return plain_troff(t::read_text(page)); }

// Returns whether `c` can continue an option or word name.
bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

// Returns whether `text` holds `word` on its own: not as part of a longer option or word
// ("--out" is not mentioned by "--output", "-v" not by "--verbose").
bool mentions(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    bool starts = at == 0 || !word_char(text[at - 1]);
    bool ends = at + word.size() == text.size() || !word_char(text[at + word.size()]);
    if (starts && ends) return true;
  }
  return false;
}

struct Shell {
  int exit_code;
  std::string out;
};

// Runs `command` with /bin/sh and returns its exit status and stdout.
Shell run_shell(const std::string& command) {
  Shell result{-1, ""};
  std::FILE* pipe = popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "cannot run: " << command);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Returns `word` quoted for /bin/sh.
std::string quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Returns whether `program` is on the PATH.
bool have(const std::string& program) {
  return run_shell("command -v " + program + " >/dev/null 2>&1").exit_code == 0;
}

// Returns what the bash completion offers for the command line `words` (the last one being
// completed), by sourcing it and calling its function as bash's `complete -F` would.
std::set<std::string> bash_complete(const std::vector<std::string>& words) {
  std::string command =
      "bash --norc --noprofile -c 'source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
      "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _recmodel && printf \"%s\\n\" \"${COMPREPLY[@]}\"' _ " +
      quote(kBashCompletion.string());
  for (const auto& word : words) command += " " + quote(word);
  Shell shell = run_shell(command + " 2>&1");
  CHECK_MESSAGE(shell.exit_code == 0, "bash completion failed: " << shell.out);
  std::set<std::string> offered;
  std::istringstream in(shell.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) offered.insert(line);
  return offered;
}

// Returns the words separated by spaces, for messages and comparisons.
std::string joined(const std::set<std::string>& words) {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

// Returns the body of the zsh function `name` ("name() {" up to the closing "}" line).
std::string zsh_function(const std::string& text, const std::string& name) {
  size_t start = text.find("\n" + name + "() {");
  if (start == std::string::npos) return "";
  size_t end = text.find("\n}", start + 1);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Returns whether a zsh _arguments spec for `option` is in `text`: "--name[", "--name=[", or
// inside a brace pair "{-q,--quiet}" (a mention in an exclusion list "(--name)" does not count).
bool zsh_spec(const std::string& text, const std::string& option) {
  for (size_t at = text.find(option); at != std::string::npos; at = text.find(option, at + 1)) {
    if (at > 0 && word_char(text[at - 1])) continue;
    char next = at + option.size() < text.size() ? text[at + option.size()] : '\0';
    if (next == '[' || next == '=' || next == '}' || next == ',') return true;
  }
  return false;
}

// What the binary says about itself.
struct Cli {
  std::vector<std::string> commands;             // registered, "help" included
  std::vector<HelpOption> global;                // the options of `recmodel --help`
  std::vector<std::vector<HelpOption>> options;  // per command, as `recmodel CMD --help` shows them

  Cli() {
    auto help = t::run_recmodel({"--help"});
    REQUIRE(help.exit_code == 0);
    commands = help_commands(help.out);
    REQUIRE_MESSAGE(commands.size() >= 2, "no commands under \"Subcommands:\" in recmodel --help:\n" << help.out);
    global = help_options(help.out);
    REQUIRE(!global.empty());
    for (const auto& command : commands) {
      if (command == "help") {
        options.emplace_back();
        continue;
      }
      auto command_help = t::run_recmodel({command, "--help"});
      REQUIRE_MESSAGE(command_help.exit_code == 0, "recmodel " << command << " --help failed");
      options.push_back(help_options(command_help.out));
      REQUIRE_MESSAGE(options.back().size() >= 2, "no options parsed from recmodel " << command << " --help");
    }
  }

  bool is_global(const std::string& name) const {
    for (const auto& option : global)
      if (std::find(option.names.begin(), option.names.end(), name) != option.names.end()) return true;
    return false;
  }
};

// Returns the binary's commands and options, asked once per test run.
const Cli& cli() {
  static const Cli instance;
  return instance;
}

}  // namespace

TEST_CASE("the help parsers read the CLI11 help layout") {
  auto options = help_options(
      "Options:\n"
      "  -h,--help                   Print this help message and exit\n"
      "  --pair                      Each line is two texts\n"
      "  --format TEXT:{auto,csv,tsv,jsonl}=auto\n"
      "                              Input format; see --other-option\n"
      "  --max-rejected N|P%=0       Unusable rows tolerated\n"
      "  --vocab FILE Excludes: --model\n"
      "Global options: --json, -q/--quiet\n");
  REQUIRE(options.size() == 5);
  CHECK(options[0].names == std::vector<std::string>{"-h", "--help"});
  CHECK(options[0].type.empty());
  CHECK(options[1].long_name() == "--pair");
  CHECK(options[1].type.empty());
  CHECK(options[2].long_name() == "--format");
  CHECK(options[2].values == std::vector<std::string>{"auto", "csv", "tsv", "jsonl"});
  CHECK(options[3].type == "N|P%");
  CHECK(options[4].type == "FILE");
  CHECK(options[4].values.empty());
  CHECK(help_commands("Subcommands:\n  tokenize    Show\n  help   Show\n\nRun ...") ==
        std::vector<std::string>{"tokenize", "help"});
  CHECK(plain_troff(".BR \\-\\-max\\-length \\fIN\\fR, \\fB\\-\\-pair\\fP\\&.") == ".BR --max-length N, --pair.");
  CHECK(mentions(plain_troff("see \\fB\\-\\-max\\-length\\fR."), "--max-length"));
  CHECK_FALSE(mentions("--max-length-x", "--max-length"));
  CHECK_FALSE(mentions("--verbose", "-v"));
  CHECK(zsh_spec("'(-q --quiet)'{-q,--quiet}'[only]'", "--quiet"));
  CHECK_FALSE(zsh_spec("'(--model)--vocab=[x]:f:_files'", "--model"));
}

TEST_CASE("every command has a man page that lists every option its --help shows") {
  const Cli& c = cli();
  const std::string overview = man_text(kSource / "man/recmodel.1");
  for (size_t i = 0; i < c.commands.size(); ++i) {
    const std::string& command = c.commands[i];
    if (command == "help") continue;
    fs::path page = kSource / "man" / ("recmodel-" + command + ".1");
    if (!fs::exists(page)) {
      FAIL_CHECK("command '" << command << "' has no manual page " << page);
      continue;
    }
    std::string text = man_text(page);
    CHECK_MESSAGE(text.find(".SH NAME\nrecmodel-" + command + " - ") != std::string::npos,
                  page << " lacks a NAME line 'recmodel\\-" << command << " \\- ...'");
    for (const char* section : {"SYNOPSIS", "DESCRIPTION", "OPTIONS", "OUTPUT", "EXIT STATUS", "EXAMPLES"})
      CHECK_MESSAGE(text.find(std::string(".SH ") + section) != std::string::npos, page << " lacks " << section);
    for (const auto& option : c.options[i]) {
      for (const auto& name : option.names) {
        if (name.rfind("--", 0) != 0) continue;
        // Global options may be described once, in recmodel(1).
        bool documented = mentions(text, name) || (c.is_global(name) && mentions(overview, name));
        CHECK_MESSAGE(documented, page << " does not document " << name << " (shown by recmodel " << command
                                       << " --help)");
      }
      for (const auto& value : option.values)
        CHECK_MESSAGE(mentions(text, value), page << " does not name " << option.long_name() << " value " << value);
    }
  }
}

TEST_CASE("recmodel.1 names every command and global option and every exit code and variable") {
  const Cli& c = cli();
  const std::string text = man_text(kSource / "man/recmodel.1");
  for (const auto& command : c.commands) {
    bool entry = text.find("\n.B " + command + "\n") != std::string::npos ||
                 text.find("\n.BR " + command + " ") != std::string::npos;
    CHECK_MESSAGE(entry, "man/recmodel.1 has no entry for command '" << command << "'");
    if (command != "help")
      CHECK_MESSAGE(text.find("recmodel-" + command + " (1)") != std::string::npos,
                    "man/recmodel.1 does not refer to recmodel-" << command << "(1)");
  }
  for (const auto& option : c.global)
    for (const auto& name : option.names)
      CHECK_MESSAGE(mentions(text, name), "man/recmodel.1 does not document global option " << name);
  for (const char* code : {"0", "1", "2", "3", "4", "5", "6", "70"})
    CHECK_MESSAGE(text.find(std::string(".B ") + code + "\n") != std::string::npos,
                  "man/recmodel.1 does not explain exit status " << code);
  for (const char* variable : {"RECMODEL_REGISTRY", "RECMODEL_CONFIG", "CI", "AWS_ACCESS_KEY_ID",
                               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL",
                               "AWS_PROFILE"})
    CHECK_MESSAGE(mentions(text, variable), "man/recmodel.1 does not describe " << variable);
}

TEST_CASE("the man pages format without warnings") {
  if (!have("groff")) {
    MESSAGE("groff is not installed (Debian package groff-base); formatting not checked");
    return;
  }
  int pages = 0;
  for (const auto& entry : fs::directory_iterator(kSource / "man")) {
    if (entry.path().extension() != ".1") continue;
    ++pages;
    Shell shell = run_shell("groff -man -ww -z " + quote(entry.path().string()) + " 2>&1");
    CHECK_MESSAGE(shell.exit_code == 0, entry.path() << " fails to format");
    CHECK_MESSAGE(shell.out.empty(), entry.path() << " formats with warnings:\n" << shell.out);
  }
  CHECK(pages >= 2);
}

TEST_CASE("bash completion offers every command and option and enum value") {
  const Cli& c = cli();
  auto commands = bash_complete({"recmodel", ""});
  auto help_topics = bash_complete({"recmodel", "help", ""});
  for (const auto& command : c.commands) {
    CHECK_MESSAGE(commands.count(command) == 1, "bash: 'recmodel <TAB>' does not offer " << command);
    CHECK_MESSAGE(help_topics.count(command) == 1, "bash: 'recmodel help <TAB>' does not offer " << command);
  }

  std::set<std::string> top;
  for (const auto& option : c.global)
    for (const auto& name : option.names) top.insert(name);
  CHECK(joined(bash_complete({"recmodel", "-"})) == joined(top));

  t::TempDir dir;
  t::write_text(dir / "data.csv", "text,label\n");
  fs::create_directory(dir / "models");
  const std::string prefix = (dir.path() / "").string();

  for (size_t i = 0; i < c.commands.size(); ++i) {
    const std::string& command = c.commands[i];
    if (command == "help") continue;
    CAPTURE(command);
    // Global options before the command, and their values, do not hide it.
    CHECK(bash_complete({"recmodel", "--threads", "2", "--json", command.substr(0, 3)}).count(command) == 1);
    CHECK(bash_complete({"recmodel", "--registry", "=", "r.db", command.substr(0, 3)}).count(command) == 1);

    std::set<std::string> offered = bash_complete({"recmodel", command, "--"});
    for (const auto& option : c.options[i]) {
      std::string name = option.long_name();
      if (name.empty()) continue;
      CHECK_MESSAGE(offered.count(name) == 1, "bash: 'recmodel " << command << " --<TAB>' does not offer " << name
                                                                 << "; offered: " << joined(offered));
      if (!option.values.empty()) {
        std::set<std::string> values(option.values.begin(), option.values.end());
        CHECK_MESSAGE(joined(bash_complete({"recmodel", command, name, ""})) == joined(values),
                      "bash: 'recmodel " << command << " " << name << " <TAB>' should offer " << joined(values));
      }
      if (option.type == "FILE") {
        auto files = bash_complete({"recmodel", command, name, prefix});
        CHECK_MESSAGE(files.count(prefix + "data.csv") == 1, "bash: " << command << " " << name << " offers no files");
      }
      if (option.type == "DIR") {
        auto dirs = bash_complete({"recmodel", command, name, prefix});
        CHECK_MESSAGE(dirs.count(prefix + "models") == 1, "bash: " << command << " " << name << " offers no dirs");
        CHECK_MESSAGE(dirs.count(prefix + "data.csv") == 0, "bash: " << command << " " << name << " offers a file");
      }
    }
    // Global options are valid after the command too.
    for (const auto& option : c.global) {
      std::string name = option.long_name();
      if (name == "--version") continue;
      CHECK_MESSAGE(offered.count(name) == 1,
                    "bash: 'recmodel " << command << " --<TAB>' does not offer global " << name);
    }
  }
  // "--task=re" arrives split at '=' (COMP_WORDBREAKS); the value is still completed.
  for (size_t i = 0; i < c.commands.size(); ++i)
    for (const auto& option : c.options[i])
      if (!option.values.empty()) {
        const std::string first = option.values.front(), typed = first.substr(0, 2);
        auto offered = bash_complete({"recmodel", c.commands[i], option.long_name(), "=", typed});
        CHECK_MESSAGE(offered.count(first) == 1, "bash: 'recmodel " << c.commands[i] << " " << option.long_name() << "="
                                                                    << typed << "<TAB>' does not offer " << first);
      }
}

TEST_CASE("zsh completion describes every command and option") {
  const Cli& c = cli();
  const std::string text = t::read_text(kZshCompletion);
  CHECK(text.rfind("#compdef recmodel\n", 0) == 0);
  const std::string main_function = zsh_function(text, "_recmodel");
  const std::string commands = zsh_function(text, "_recmodel_commands");
  for (const auto& option : c.global)
    for (const auto& name : option.names)
      CHECK_MESSAGE(zsh_spec(main_function, name), "_recmodel: no spec for global option " << name);
  for (size_t i = 0; i < c.commands.size(); ++i) {
    const std::string& command = c.commands[i];
    CHECK_MESSAGE(commands.find("'" + command + ":") != std::string::npos,
                  "_recmodel_commands does not list " << command);
    CHECK_MESSAGE(main_function.find("\n        " + command + ")") != std::string::npos,
                  "_recmodel does not dispatch " << command);
    if (command == "help") continue;
    const std::string body = zsh_function(text, "_recmodel_" + command);
    if (body.empty()) {
      FAIL_CHECK("share/completions/_recmodel has no function _recmodel_" << command);
      continue;
    }
    for (const auto& option : c.options[i]) {
      std::string name = option.long_name();
      if (name.empty() || c.is_global(name)) continue;
      CHECK_MESSAGE(zsh_spec(body, name), "_recmodel_" << command << ": no spec for " << name);
      if (!option.values.empty()) {
        std::string list;
        for (const auto& value : option.values) list += (list.empty() ? "" : " ") + value;
        CHECK_MESSAGE(body.find(":(" + list + ")'") != std::string::npos,
                      "_recmodel_" << command << ": " << name << " does not complete (" << list << ")");
      }
      if (option.type == "FILE" || option.type == "DIR") {
        // Pick out this option's spec to check its action.
        size_t at = body.find(name + "=[");
        std::string spec = at == std::string::npos ? "" : body.substr(at, body.find('\n', at) - at);
        CHECK_MESSAGE(spec.find(option.type == "DIR" ? "_files -/" : "_files") != std::string::npos,
                      "_recmodel_" << command << ": " << name << " does not complete " << option.type);
      }
    }
  }
  if (!have("zsh")) {
    MESSAGE("zsh is not installed (Debian package zsh); share/completions/_recmodel is not run");
    return;
  }
  Shell syntax = run_shell("zsh -n " + quote(kZshCompletion.string()) + " 2>&1");
  CHECK_MESSAGE(syntax.exit_code == 0, "zsh -n: " << syntax.out);

  // Run the completion for real: an interactive zsh on a pseudo-terminal (zpty) with the
  // file on $fpath and compadd wrapped to print each candidate; then TAB after `line`. The
  // hooks live in their own file so the terminal's echo of what is typed holds no markers.
  t::TempDir dir;
  t::write_text(dir / "hooks.zsh", R"(compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a hits
  builtin compadd -A hits "$@"
  local r=$? h
  for h in $hits; do print -r -- "<<$h>>"; done
  return $r
}
finish () { print -r -- ENDOFLIST; exit }
comppostfuncs=( finish )
)");
  t::write_text(dir / "complete.zsh", R"(zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "PROMPT="
zpty -w z "fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D; bindkey '^I' complete-word"
zpty -w z "source ${(q)3}"
zpty -n -w z "$2"$'\t'
zpty -r z out '*ENDOFLIST*'
print -r -- "$out" | tr -d '\r' | grep -ao '<<[^>]*>>' | tr -d '<>' | sort -u
zpty -d z
)");
  auto zsh_complete = [&](const std::string& line) {
    Shell shell = run_shell("timeout 30 zsh -f " + quote((dir / "complete.zsh").string()) + " " +
                            quote(kZshCompletion.parent_path().string()) + " " + quote(line) + " " +
                            quote((dir / "hooks.zsh").string()) + " 2>&1");
    CHECK_MESSAGE(shell.exit_code == 0, "zsh completion of '" << line << "' failed: " << shell.out);
    std::set<std::string> offered;
    std::istringstream in(shell.out);
    for (std::string word; std::getline(in, word);) offered.insert(word);
    return offered;
  };
  auto commands_offered = zsh_complete("recmodel ");
  for (const auto& command : c.commands)
    CHECK_MESSAGE(commands_offered.count(command) == 1, "zsh: 'recmodel <TAB>' does not offer " << command);
  for (size_t i = 0; i < c.commands.size(); ++i) {
    if (c.commands[i] == "help") continue;
    auto offered = zsh_complete("recmodel " + c.commands[i] + " --");
    for (const auto& option : c.options[i]) {
      std::string name = option.long_name();
      if (name.empty()) continue;
      CHECK_MESSAGE(offered.count(name) == 1, "zsh: 'recmodel " << c.commands[i] << " --<TAB>' does not offer "
                                                               << name << "; offered: " << joined(offered));
      if (!option.values.empty()) {
        std::set<std::string> values(option.values.begin(), option.values.end());
        CHECK_MESSAGE(joined(zsh_complete("recmodel " + c.commands[i] + " " + name + " ")) == joined(values),
                      "zsh: 'recmodel " << c.commands[i] << " " << name << " <TAB>' should offer " << joined(values));
      }
    }
  }
}
