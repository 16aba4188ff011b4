// Assertions for crafted (hostile) inputs: a refusal is the documented exit code with one
// "recmodel: error:" line, never a signal, an internal error (70) or a crash report.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "common/error.h"
#include "tests/support.h"

#define REQUIRE_REFUSED(result, expected_exit)                                        \
  do {                                                                                \
    const ::recmodel::testing::RunResult& refused_ = (result);                        \
    INFO("stderr: " << refused_.err);                                                 \
    CHECK(refused_.exit_code == (expected_exit));                                     \
    CHECK(::recmodel::testing::error_line_count(refused_.err) == 1);                  \
    CHECK(refused_.err.find("please report") == std::string::npos);                   \
    CHECK(refused_.err.find("terminate called") == std::string::npos);                \
  } while (0)

namespace recmodel::testing {

// Runs `load`, which must refuse its input with a recmodel Error of exit code `expected`
// (bad input by default); returns the message, or "" after a failed check when nothing was thrown.
inline std::string refusal_message(const std::function<void()>& load, ExitCode expected = ExitCode::bad_input) {
  try {
    load();
  } catch (const Error& e) {
    CHECK(e.code() == expected);
    return e.what();
  }
  FAIL_CHECK("no error was thrown");
  return "";
}

}  // namespace recmodel::testing
