#include "cli/progress.h"

#include <doctest/doctest.h>

using recmodel::ProgressBar;

TEST_CASE("a progress bar shows percentage, rate and ETA") {
  std::string line = ProgressBar::render("tokenize", 50'000'000, 100'000'000, 10.0, "B", 60);
  CHECK(line.rfind("tokenize [", 0) == 0);
  CHECK(line.find(" 50% ") != std::string::npos);
  CHECK(line.find("5.0 MB/s") != std::string::npos);
  CHECK(line.find("ETA 0:10") != std::string::npos);
  CHECK(line.size() <= 60);
}

TEST_CASE("a progress bar with an unknown total shows count and rate only") {
  CHECK(ProgressBar::render("rows", 1500, 0, 2.0, "", 80) == "rows 1.5k 750/s");
}

TEST_CASE("progress bars stay off when CI is set, even for a terminal") {
  recmodel::GlobalOptions options;
  recmodel::Console console(options);
  setenv("CI", "1", 1);
  CHECK_FALSE(console.progress_enabled());
  options.no_progress = true;
  CHECK_FALSE(console.progress_enabled());
}
