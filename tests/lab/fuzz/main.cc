// uapi_fuzz_lab: attacks the real mdevmig.ko in the lab guest with random,
// seed-reproducible sequences (see fuzz.h and tests/lab/fuzz/README.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/sysfs.h"
#include "fuzz/exec.h"
#include "fuzz/fuzz.h"
#include "fuzz/kernel_state.h"

namespace mdevmig::fuzz {
namespace {

constexpr const char* kUsage = R"(usage: uapi_fuzz_lab [options]
Attacks mdevmig.ko through every entry point with random sequences of hostile
operations; runs inside the lab (tools/lab/lab.sh, see tests/lab/fuzz/run-fuzz.sh).

  --seconds N        start new sequences for N seconds (default 150)
  --max-sequences N  stop after N random sequences (default: no limit)
  --seed S           the run's master seed (default: random); with --replay, the
                     seed of one sequence as printed by a failing run
  --replay           run only the sequence --seed names, printing every op first
  --repeat N         with --replay or --case: run it N times (races)
  --case FILE        run a case file (the text --dump prints), printing every op
  --dump             print sequence --seed as a case file and exit (no lab needed)
  --threads N        workers per phase at most, 1..8 (default 3)
  --regressions DIR  run DIR/*.case before the random sequences
  --skip OPS         comma-separated op names not to execute (e.g. set_irqs)
  --avoid BUGS       comma-separated argument patterns of known bugs to steer around:
                     intx-count0, log-zero-length, error-state-set,
                     v1-data-after-close
  --parent NAME      the parent of the fuzzed instances (default mdevmig_sim0)
Exit status: 0 when nothing was found, 1 on a finding (printed with its sequence), 2
on bad usage or when the lab is missing.
)";

struct Options {
  double seconds = 150;
  uint64_t max_sequences = 0;
  std::optional<uint64_t> seed;
  bool replay = false;
  unsigned repeat = 1;
  std::string case_file;
  bool dump = false;
  int threads = 3;
  std::string regressions;
  std::string skip;
  std::string avoid;
  std::string parent = "mdevmig_sim0";
};

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

uint64_t random_seed() {
  uint64_t s = 0;
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (::read(fd, &s, sizeof s) != sizeof s) s = 0;
    ::close(fd);
  }
  return s ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

std::string out_dir() {
  const char* o = std::getenv("MDEVMIG_LAB_OUT");
  return o && *o ? o : "";
}

void save(const std::string& name, const std::string& text) {
  if (out_dir().empty()) return;
  std::ofstream f(out_dir() + "/" + name, std::ios::trunc);
  f << text;
}

struct Fuzzer {
  Options opt;
  RunContext ctx;
  std::vector<std::unique_ptr<WorkerMemory>> mem;
  KernelLog klog;
  uint64_t sequences = 0;
  uint64_t cases = 0;

  // Runs one sequence and checks the kernel log; on a finding prints everything needed
  // to replay it and returns false.
  bool run_one(const Sequence& s, const std::string& label, const std::string& case_file = {}) {
    save("fuzz-current.txt", label + " seed " + hex(s.seed) + "\n" + to_text(s));
    std::string what = run_sequence(s, ctx, mem);
    const std::string kline = klog.poll();
    if (what.empty() && !kline.empty())
      what = "kernel: " + kline;
    else if (!kline.empty())
      what += "; kernel: " + kline;
    if (what.empty()) return true;
    const std::string text = to_text(s);
    std::printf("fuzz: FINDING in %s (sequence seed %s): %s\n", label.c_str(), hex(s.seed).c_str(),
                what.c_str());
    if (case_file.empty())
      std::printf("fuzz: replay: uapi_fuzz_lab --seed %s --replay   (generator %d)\n",
                  hex(s.seed).c_str(), kGeneratorVersion);
    else
      std::printf("fuzz: replay: uapi_fuzz_lab --case %s\n", case_file.c_str());
    const std::string file = "fuzz-finding-" + hex(s.seed) + ".case";
    save(file, "# " + what + "\n" + text);
    if (out_dir().empty())
      std::printf("fuzz: the sequence as a case file:\n%s", text.c_str());
    else
      std::printf(
          "fuzz: the sequence as a case file (keep it in tests/lab/fuzz/regressions/): %s/%s\n",
          out_dir().c_str(), file.c_str());
    std::fflush(stdout);
    return false;
  }
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

int parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "uapi_fuzz_lab: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds")
      o->seconds = std::atof(value().c_str());
    else if (a == "--max-sequences")
      o->max_sequences = std::strtoull(value().c_str(), nullptr, 0);
    else if (a == "--seed")
      o->seed = std::strtoull(value().c_str(), nullptr, 0);
    else if (a == "--replay")
      o->replay = true;
    else if (a == "--repeat")
      o->repeat = static_cast<unsigned>(std::max(1, std::atoi(value().c_str())));
    else if (a == "--case")
      o->case_file = value();
    else if (a == "--dump")
      o->dump = true;
    else if (a == "--threads")
      o->threads = std::clamp(std::atoi(value().c_str()), 1, kMaxThreads);
    else if (a == "--regressions")
      o->regressions = value();
    else if (a == "--skip")
      o->skip = value();
    else if (a == "--avoid")
      o->avoid = value();
    else if (a.rfind("--avoid=", 0) == 0)
      o->avoid = a.substr(8);  // may be empty
    else if (a == "--parent")
      o->parent = value();
    else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "uapi_fuzz_lab: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if ((o->replay || o->dump) && !o->seed) {
    std::fprintf(stderr, "uapi_fuzz_lab: --replay and --dump need --seed\n");
    return 2;
  }
  return 0;
}

std::optional<Sequence> load_case(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "uapi_fuzz_lab: cannot read %s\n", path.c_str());
    return std::nullopt;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string err;
  auto s = parse(ss.str(), &err);
  if (!s) std::fprintf(stderr, "uapi_fuzz_lab: %s: %s\n", path.c_str(), err.c_str());
  return s;
}

int run(int argc, char** argv) {
  Options opt;
  if (int rc = parse_args(argc, argv, &opt)) return rc;
  if (opt.dump) {
    std::fputs(to_text(generate(*opt.seed, opt.threads)).c_str(), stdout);
    return 0;
  }
  if (!lab::in_lab()) {
    std::fprintf(stderr,
                 "uapi_fuzz_lab: runs inside the lab only (tools/lab/lab.sh; see "
                 "tests/lab/fuzz/run-fuzz.sh)\n");
    return 2;
  }
  if (!lab::read_file(lab::type_dir(opt.parent, "quarter") + "/available_instances")) {
    std::fprintf(stderr, "uapi_fuzz_lab: no mdevmig parent %s (is mdevmig.ko loaded?)\n",
                 opt.parent.c_str());
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  install_fault_handlers();

  Fuzzer f;
  f.opt = opt;
  f.ctx.parent = opt.parent;
  for (const auto& s : split(opt.skip, ',')) f.ctx.skip.insert(s);
  for (const auto& s : split(opt.avoid, ',')) f.ctx.avoid.insert(s);
  for (int i = 0; i < kMaxThreads; ++i) f.mem.push_back(std::make_unique<WorkerMemory>());
  const size_t instances_before = lab::list_dir("/sys/bus/mdev/devices").size();
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  // Single sequences: a replayed seed or a case file.
  if (opt.replay || !opt.case_file.empty()) {
    f.ctx.log_ops = true;
    std::optional<Sequence> s =
        opt.replay ? generate(*opt.seed, opt.threads) : load_case(opt.case_file);
    if (!s) return 2;
    for (unsigned i = 0; i < opt.repeat; ++i) {
      std::printf("fuzz: replaying sequence %s (%u/%u)\n", hex(s->seed).c_str(), i + 1, opt.repeat);
      if (!f.run_one(*s, "replay", opt.case_file)) return 1;
    }
    std::printf("fuzz: replay done: %" PRIu64 " ops, %" PRIu64 " syscalls, nothing found\n",
                f.ctx.ops.load(), f.ctx.syscalls.load());
    return 0;
  }

  const uint64_t master = opt.seed.value_or(random_seed());
  std::printf("fuzz: seed %s (generator %d), %.0f s, up to %d threads%s%s%s%s\n",
              hex(master).c_str(), kGeneratorVersion, opt.seconds, opt.threads,
              opt.skip.empty() ? "" : ", skipping ", opt.skip.c_str(),
              opt.avoid.empty() ? "" : ", avoiding ", opt.avoid.c_str());
  KernelLog::mark("run seed " + hex(master));

  // Regression cases first: every finding kept in the tree.
  if (!opt.regressions.empty()) {
    for (const auto& name : lab::list_dir(opt.regressions)) {
      if (name.size() < 6 || name.substr(name.size() - 5) != ".case") continue;
      auto s = load_case(opt.regressions + "/" + name);
      if (!s) return 2;
      if (!f.run_one(*s, "regression case " + name, opt.regressions + "/" + name)) return 1;
      ++f.cases;
    }
    std::printf("fuzz: %" PRIu64 " regression cases passed\n", f.cases);
  }

  // Watchdog: a sequence that runs for minutes is reported with the op each worker is in
  // (the lab's own limit then ends the run; a kernel hang also shows in its log).
  std::atomic<uint64_t> seq_no{0};
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    uint64_t last = ~0ULL;
    int still = 0;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const uint64_t now = seq_no.load();
      if (now != last) {
        last = now;
        still = 0;
        continue;
      }
      if (++still != 120) continue;
      std::printf("fuzz: sequence %" PRIu64 " has run for 120 s; its workers are in:\n", now);
      for (int t = 0; t < kMaxThreads; ++t)
        if (const Op* op = f.ctx.current[t].load()) std::printf("  %s\n", op_text(t, *op).c_str());
      std::fflush(stdout);
    }
  });
  struct JoinOnExit {
    std::atomic<bool>& done;
    std::thread& t;
    ~JoinOnExit() {
      done = true;
      t.join();
    }
  } join_watchdog{done, watchdog};

  std::optional<MemSnapshot> base;
  double next_progress = 30;
  for (uint64_t i = 0; elapsed() < opt.seconds && (!opt.max_sequences || i < opt.max_sequences);
       ++i) {
    const Sequence s = generate(mix64(master + i), opt.threads);
    seq_no = i + 1;
    if (!f.run_one(s, "sequence " + std::to_string(i))) {
      std::printf("fuzz: run seed %s, %" PRIu64 " sequences, %" PRIu64
                  " syscalls before the finding\n",
                  hex(master).c_str(), f.sequences, f.ctx.syscalls.load());
      return 1;
    }
    ++f.sequences;
    // The first sequence warms up every cache and lazily created kernel object; the
    // leak check measures from after it.
    if (!base) base = take_mem_snapshot();
    if (elapsed() > next_progress) {
      std::printf("fuzz: %.0f s: %" PRIu64 " sequences, %" PRIu64 " ops, %" PRIu64 " syscalls\n",
                  elapsed(), f.sequences, f.ctx.ops.load(), f.ctx.syscalls.load());
      next_progress += 30;
    }
  }

  // Leak check: instances, then memory.
  int rc = 0;
  const size_t instances_after = lab::list_dir("/sys/bus/mdev/devices").size();
  if (instances_after != instances_before) {
    std::printf("fuzz: FINDING: %zu mdev instances before the run, %zu after\n", instances_before,
                instances_after);
    rc = 1;
  }
  std::string mem_report = "not measured (no sequence ran)";
  if (base) {
    const MemSnapshot end = take_mem_snapshot();
    if (!compare_mem(*base, end, &mem_report)) {
      std::printf("fuzz: FINDING: kernel memory grew over the run (leak): %s\n",
                  mem_report.c_str());
      rc = 1;
    }
  }
  std::printf(
      "fuzz: seed %s: %" PRIu64 " sequences + %" PRIu64 " regression cases, %" PRIu64
      " ops, %" PRIu64 " syscalls in %.0f s%s; leak check: %s\n",
      hex(master).c_str(), f.sequences, f.cases, f.ctx.ops.load(), f.ctx.syscalls.load(), elapsed(),
      f.ctx.skipped ? (", " + std::to_string(f.ctx.skipped.load()) + " ops skipped").c_str() : "",
      mem_report.c_str());
  KernelLog::mark("run done");
  if (rc == 0) std::printf("fuzz: nothing found\n");
  return rc;
}

}  // namespace
}  // namespace mdevmig::fuzz

int main(int argc, char** argv) { return mdevmig::fuzz::run(argc, argv); }
