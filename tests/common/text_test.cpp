#include <doctest/doctest.h>

#include <string>

#include "common/text.h"

using recmodel::has_control_character;
using recmodel::printable;
using recmodel::quoted_for_message;

TEST_CASE("printable escapes what a terminal acts on and keeps ordinary UTF-8") {
  CHECK(printable("Kühlschrank 55\" TV") == "Kühlschrank 55\" TV");
  CHECK(printable("a\x1b[2Jb\n") == "a\\x1b[2Jb\\x0a");
  CHECK(printable(std::string("nul\0cut", 7)) == "nul\\x00cut");
  CHECK(printable("csi\xc2\x9b" "31m") == "csi\\u009b31m");
  CHECK(printable("rtl\xe2\x80\xaeor sep\xe2\x80\xa8") == "rtl\\u202eor sep\\u2028");
  CHECK(printable("bad\xff\xc3") == "bad\\xff\\xc3");            // not UTF-8: bytes shown, never raw
  CHECK(printable("overlong\xc0\xaf") == "overlong\\xc0\\xaf");  // an overlong '/' is not a character
  CHECK(quoted_for_message("a\x7f") == "'a\\x7f'");
}

TEST_CASE("printable cuts long text at a character boundary") {
  const std::string text = std::string(119, 'x') + "ü" + std::string(500, 'y');
  const std::string shown = printable(text);
  CHECK(shown.size() < 130);
  CHECK(shown.rfind(std::string(119, 'x') + "ü", 0) == 0);
  CHECK(shown.substr(shown.size() - 3) == "…");
  CHECK(printable(std::string(200, 'z'), 10) == std::string(10, 'z') + "…");
}

TEST_CASE("has_control_character finds controls, C1, separators and bidi overrides only") {
  CHECK_FALSE(has_control_character("ordinary/path-ü.txt"));
  CHECK_FALSE(has_control_character("bad\xff"));  // invalid UTF-8 is not a control; printable shows it escaped
  CHECK(has_control_character("tab\t"));
  CHECK(has_control_character("esc\x1b"));
  CHECK(has_control_character("del\x7f"));
  CHECK(has_control_character("c1\xc2\x85"));
  CHECK(has_control_character("ls\xe2\x80\xa8"));
  CHECK(has_control_character("rlo\xe2\x80\xae"));
  CHECK(has_control_character("lri\xe2\x81\xa6"));
}
