// Typed errors. Library code throws these; only main() turns them into a message and exit code 2.
// Each message names the thing at fault (file, tensor, task, key) so one line tells the user what to fix.
#pragma once

#include <stdexcept>
#include <string>

namespace m3vit {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ConfigError : Error { using Error::Error; };  // bad or inconsistent configuration / option
struct IoError : Error { using Error::Error; };      // missing, unreadable or unwritable file
struct FormatError : Error { using Error::Error; };  // a file whose content is malformed
struct ShapeError : Error { using Error::Error; };   // a tensor or image of the wrong shape
struct NumericError : Error { using Error::Error; }; // NaN/Inf where a finite value is required
struct PeerError : Error { using Error::Error; };    // another process of a distributed run stopped or is unreachable

}  // namespace m3vit
