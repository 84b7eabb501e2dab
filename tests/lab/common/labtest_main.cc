// main() for lab test executables. Outside the lab (no MDEVMIG_LAB=1) tests that need
// the module skip themselves; inside the lab a skipped test is a failure, so a lab run
// can never pass by not testing.
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "common/sysfs.h"

namespace {

class FailSkipsInLab : public testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.skipped()) {
      ++skipped_;
      std::fprintf(stderr, "lab: test skipped inside the lab: %s:%d %s\n",
                   result.file_name() ? result.file_name() : "?", result.line_number(),
                   result.message());
    }
  }
  int skipped() const { return skipped_; }

 private:
  int skipped_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* listener = new FailSkipsInLab;  // owned by gtest's listener list
  testing::UnitTest::GetInstance()->listeners().Append(listener);
  int rc = RUN_ALL_TESTS();
  if (mdevmig::lab::in_lab() && listener->skipped() > 0) {
    std::fprintf(stderr, "lab: %d test(s) skipped inside the lab: failing\n", listener->skipped());
    return 1;
  }
  return rc;
}
