// Text encodings of the qtest protocol: base64 (b64read/b64write) and hex (read/write).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mdevmig::qemu {

/// Standard base64 (RFC 4648, '+' '/', '=' padding).
[[nodiscard]] std::string base64_encode(std::span<const uint8_t> data);
/// Decodes standard base64; nullopt on a bad character, bad padding or bad length.
[[nodiscard]] std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

/// Lower-case hex, two digits per byte, no prefix.
[[nodiscard]] std::string hex_encode(std::span<const uint8_t> data);
/// Decodes hex digits (either case, even count, optional "0x"); nullopt otherwise.
[[nodiscard]] std::optional<std::vector<uint8_t>> hex_decode(std::string_view text);

/// Parses an unsigned integer in C syntax ("0x1f", "31"); nullopt if it is not one.
[[nodiscard]] std::optional<uint64_t> parse_c_uint(std::string_view text);

}  // namespace mdevmig::qemu
