// The harness's qtest "vCPU": GuestDriver::step() on a thread of its own until stopped,
// so the VM keeps working while the main thread drives a migration through QMP.
// Private to tools/qemu (harness.cc, harness_round.cc, multidev.cc).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "base/result.h"
#include "tools/qemu/guest.h"

namespace mdevmig::qemu {

class WorkloadThread {
 public:
  WorkloadThread(GuestDriver& driver, QtestClient& qt)
      : WorkloadThread(std::vector<GuestDriver*>{&driver}, qt) {}
  /// One vCPU for several devices of the VM: each turn steps every driver.
  WorkloadThread(std::vector<GuestDriver*> drivers, QtestClient& qt)
      : drivers_(std::move(drivers)), qt_(qt) {
    for (GuestDriver* d : drivers_) d->start_clock();
    thread_ = std::thread([this] { run(); });
  }
  ~WorkloadThread() { (void)stop(); }
  WorkloadThread(const WorkloadThread&) = delete;
  WorkloadThread& operator=(const WorkloadThread&) = delete;

  /// Stops the thread; the first error a step met, if any.
  Result<void> stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  void run() {
    while (!stop_) {
      auto due = Clock::now() + std::chrono::milliseconds(5);
      for (GuestDriver* d : drivers_) {
        auto next = d->step(qt_);
        if (!next) {
          result_ = std::move(next).error();
          return;
        }
        due = std::min(due, *next);
      }
      std::this_thread::sleep_until(due);
    }
  }

  std::vector<GuestDriver*> drivers_;
  QtestClient& qt_;
  std::atomic<bool> stop_{false};
  Result<void> result_;
  std::thread thread_;
};

}  // namespace mdevmig::qemu
