// "Did you mean ...?": the closest of a set of known names to one a user typed (commands, enum
// values, configuration keys, remotes).
#pragma once

#include <string>
#include <vector>

namespace recmodel {

// Returns the candidate closest to `word` by edit distance when it is close enough, else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace recmodel
