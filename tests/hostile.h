// Assertions for crafted (hostile) inputs: a refusal is the documented exit code with one
// "recmodel: error:" line, never a signal, an internal error (70) or a crash report.
#pragma once

#include <doctest/doctest.h>

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
