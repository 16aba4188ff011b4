#include "data/cleaning.h"

#include <doctest/doctest.h>

using namespace recmodel::data;

TEST_CASE("strip_html_tags removes known tags and keeps a literal '<'") {
  CHECK(strip_html_tags("<p>Hello</p><p>World</p>") == " Hello  World ");
  CHECK(strip_html_tags("<b>Big</b>Sale") == "BigSale");
  CHECK(strip_html_tags("x<br>y<br/>z<BR />w") == "x y z w");
  CHECK(strip_html_tags("<a href=\"https://x.io/?a=1>2\" class='c'>link</a>") == "link");
  CHECK(strip_html_tags("<img src = \"a>b.png\" alt=x>after") == " after");
  CHECK(strip_html_tags("a<!-- hidden -->b") == "ab");
  CHECK(strip_html_tags("<!DOCTYPE html><html>x</html>") == "  x ");
}

TEST_CASE("strip_html_tags drops script and style contents") {
  CHECK(strip_html_tags("<script type=\"text/javascript\">if (a<b) alert('x')</script>text") == " text");
  CHECK(strip_html_tags("<STYLE>p { color: red }</Style>ok") == " ok");
  CHECK(strip_html_tags("before<script>never closed") == "before ");
}

TEST_CASE("strip_html_tags leaves text that only looks like markup") {
  CHECK(strip_html_tags("a < b") == "a < b");
  CHECK(strip_html_tags("5<10 and 10>5") == "5<10 and 10>5");
  CHECK(strip_html_tags("<3 love it") == "<3 love it");
  CHECK(strip_html_tags("use <placeholder> here") == "use <placeholder> here");
  CHECK(strip_html_tags("<b unclosed") == "<b unclosed");
  CHECK(strip_html_tags("x<") == "x<");
  CHECK(strip_html_tags("<bold>") == "<bold>");  // not the element b
}

TEST_CASE("decode_html_entities decodes named and numeric references") {
  CHECK(decode_html_entities("&amp; &lt; &gt; &quot; &#39; &apos;") == "& < > \" ' '");
  CHECK(decode_html_entities("caf&eacute; caf&#233; caf&#xE9; caf&#XE9;") == "café café café café");
  CHECK(decode_html_entities("a&nbsp;b") == "a\u00a0b");
  CHECK(decode_html_entities("&euro;5 &mdash; &hellip; &trade;") == "€5 — … ™");
  CHECK(decode_html_entities("&#150;") == "\u2013");  // Windows-1252 range, as browsers do
  CHECK(decode_html_entities("&#0; &#xD800; &#x110000;") == "\ufffd \ufffd \ufffd");
}

TEST_CASE("decode_html_entities keeps what is not a complete reference") {
  CHECK(decode_html_entities("AT&T") == "AT&T");
  CHECK(decode_html_entities("R&D;") == "R&D;");
  CHECK(decode_html_entities("&bogus; &amp &#; &#x;") == "&bogus; &amp &#; &#x;");
  CHECK(decode_html_entities("&Eacute;&eacute;") == "Éé");
  CHECK(decode_html_entities("&amp;lt;") == "&lt;");  // one level only
}

TEST_CASE("collapse_whitespace joins runs of ASCII and Unicode spaces") {
  CHECK(collapse_whitespace("  a \t\n b\u00a0\u00a0c\u3000d\u2028e ") == "a b c d e");
  CHECK(collapse_whitespace("\r\n") == "");
  CHECK(collapse_whitespace("no-change") == "no-change");
  CHECK(collapse_whitespace("zero\u200bwidth") == "zero\u200bwidth");  // U+200B is not whitespace
}

TEST_CASE("normalize_nfc composes") {
  CHECK(normalize_nfc("e\u0301") == "\u00e9");
  CHECK(normalize_nfc("\u1100\u1161") == "\uac00");
  CHECK(normalize_nfc("plain ascii") == "plain ascii");
}

TEST_CASE("clean_text applies tags, entities, NFC and whitespace in that order") {
  CHECK(clean_text("<p>Caf&eacute;&nbsp;&nbsp;<b>cre\u0300me</b></p>\n<br>") == "Café crème");
  // An escaped tag is text: decoded after tag removal, so it survives.
  CHECK(clean_text("use &lt;b&gt; for bold") == "use <b> for bold");
  CHECK(clean_text("  <div> </div> ") == "");
  CHECK(clean_text("Samsung 55\" TV 5<10") == "Samsung 55\" TV 5<10");
}

TEST_CASE("trim strips ASCII whitespace at both ends") {
  CHECK(trim("  a b \t\r\n") == "a b");
  CHECK(trim("") == "");
}

TEST_CASE("normalize_nfc agrees with utf8proc on text the fast path accepts and on text it does not") {
  // Hangul jamo after a syllable compose; a Greek question mark is replaced; CJK compatibility
  // ideographs are replaced; all of these must take the slow path.
  CHECK(normalize_nfc("\uac00\u11a8") == "\uac01");
  CHECK(normalize_nfc("why\u037e") == "why;");
  CHECK(normalize_nfc("\uf900") == "\u8c48");
  CHECK(normalize_nfc("A\u030a") == "\u00c5");
  // Plain NFC text in the fast ranges comes back unchanged.
  CHECK(normalize_nfc("Caf\u00e9 \u65e0\u7ebf \ud55c\uad6d \U0001F600") == "Caf\u00e9 \u65e0\u7ebf \ud55c\uad6d \U0001F600");
  CHECK(clean_text("Cafe\u0301 &amp; cre\u0300me") == "Caf\u00e9 & cr\u00e8me");
}
