#include "tools/qtest/codec.h"

#include <gtest/gtest.h>

namespace mdevmig::qemu {
namespace {

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(Base64, KnownVectors) {
  // RFC 4648 section 10.
  const std::pair<const char*, const char*> kVectors[] = {{"", ""},
                                                          {"f", "Zg=="},
                                                          {"fo", "Zm8="},
                                                          {"foo", "Zm9v"},
                                                          {"foob", "Zm9vYg=="},
                                                          {"fooba", "Zm9vYmE="},
                                                          {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : kVectors) {
    EXPECT_EQ(base64_encode(bytes(plain)), enc);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, bytes(plain));
  }
}

TEST(Base64, RoundTripsEveryByteAndLength) {
  std::vector<uint8_t> data;
  for (int len = 0; len < 300; ++len) {
    auto dec = base64_decode(base64_encode(data));
    ASSERT_TRUE(dec.has_value()) << len;
    EXPECT_EQ(*dec, data);
    data.push_back(static_cast<uint8_t>(len * 151 + 7));
  }
}

TEST(Base64, RejectsMalformed) {
  for (const char* bad : {"Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm=v", "====", "Zm9\n", "Zg=a"})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

TEST(Hex, RoundTripAndPrefix) {
  std::vector<uint8_t> data = {0x00, 0x7f, 0x80, 0xff, 0x12};
  EXPECT_EQ(hex_encode(data), "007f80ff12");
  EXPECT_EQ(hex_decode("007f80ff12"), data);
  EXPECT_EQ(hex_decode("0x007F80FF12"), data);
  EXPECT_FALSE(hex_decode("0x1").has_value());
  EXPECT_FALSE(hex_decode("zz").has_value());
}

TEST(ParseCUint, HexDecimalAndGarbage) {
  EXPECT_EQ(parse_c_uint("0x1f"), 31u);
  EXPECT_EQ(parse_c_uint("31"), 31u);
  EXPECT_EQ(parse_c_uint("0xffffffffffffffff"), UINT64_MAX);
  EXPECT_FALSE(parse_c_uint("0x").has_value());
  EXPECT_FALSE(parse_c_uint("").has_value());
  EXPECT_FALSE(parse_c_uint("12a").has_value());
  EXPECT_FALSE(parse_c_uint("0x10000000000000000").has_value());
  EXPECT_FALSE(parse_c_uint("-1").has_value());
}

}  // namespace
}  // namespace mdevmig::qemu
