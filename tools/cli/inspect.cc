// mdevmig inspect FILE: what a save file holds, like QEMU's analyze-migration.py: the
// container header, the chunk table, checksum verification, and (for mdevmig devices)
// the device's own records decoded: compatibility descriptor, registers, engine state,
// config space, interrupts and page counts; and whether the device would load it: the
// stream goes through the device model's own loader (vendor/, the code the kernel runs
// on resume) in the simulator.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "migration/engine/identity.h"
#include "migration/engine/savefile.h"
#include "sim.h"
#include "tools/cli/args.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/inspect_damaged.h"
#include "tools/cli/inspect_text.h"
#include "tools/cli/json_out.h"
#include "tools/devstream/stream_decode.h"

namespace mdevmig::cli {
namespace {

// Device memory the trial load allocates at most (the simulator holds all of it).
constexpr uint64_t kTrialMaxMem = 1ull << 30;

// The device stream fed, chunk by chunk, to the device model's loader in a simulated
// device built from the file's compatibility record: what the kernel does on resume,
// without a device. A stream that loads here passes every check the device makes.
class TrialLoad {
 public:
  explicit TrialLoad(const std::optional<schema::Compat>& compat) {
    if (!compat) {
      outcome_ = "not tried (no mdevmig compatibility record)";
      return;
    }
    const uint64_t mem = compat->mem_size;
    if (compat->page_size != MDEVMIG_PAGE_SIZE || mem == 0 || mem % MDEVMIG_PAGE_SIZE != 0 ||
        mem > MDEVMIG_MEM_MAX_SIZE) {
      outcome_ = "not tried (the compatibility record describes no device this model can be)";
      return;
    }
    if (mem > kTrialMaxMem) {
      outcome_ = "not tried (device memory " + human_bytes(static_cast<double>(mem)) +
                 " is over the trial's " + human_bytes(static_cast<double>(kTrialMaxMem)) + ")";
      return;
    }
    sim_ = std::make_unique<vendor_sim::SimDevice>(mem, compat->type_id);
    buf_ = std::make_unique<uint8_t[]>(MDEVMIG_LOADER_BUF_SIZE);
    if (mdevmig_loader_init(&ld_, sim_->model(), buf_.get(), MDEVMIG_LOADER_BUF_SIZE) != 0) {
      outcome_ = "not tried (loader setup failed)";
      sim_.reset();
    }
  }

  void feed(std::span<const std::byte> data) {
    if (sim_ && ld_.err == 0) (void)mdevmig_loader_feed(&ld_, data.data(), data.size());
  }

  /// Ends the stream; tried() and loads() tell the outcome, text() says it.
  void finish() {
    if (!sim_) return;
    if (mdevmig_loader_finish(&ld_) == 0) {
      loads_ = true;
      outcome_ = "yes (" + std::to_string(ld_.records) + " records, " + std::to_string(ld_.pages) +
                 " pages through the device model's loader)";
    } else {
      outcome_ = std::string("no (") + mdevmig_loader_reason_str(mdevmig_loader_reason(&ld_)) +
                 " at stream byte " + std::to_string(ld_.offset) + ")";
    }
  }
  [[nodiscard]] bool tried() const { return sim_ != nullptr; }
  [[nodiscard]] bool loads() const { return loads_; }
  [[nodiscard]] const std::string& text() const { return outcome_; }

 private:
  std::unique_ptr<vendor_sim::SimDevice> sim_;
  std::unique_ptr<uint8_t[]> buf_;
  mdevmig_loader ld_{};
  bool loads_ = false;
  std::string outcome_;
};

Json stream_json(const devstream::StreamSummary& s) {
  Json j = {{"records", s.records},
            {"page_records", s.page_records},
            {"pages_precopy", s.pages_precopy},
            {"pages_stopcopy", s.pages_stopcopy},
            {"unique_pages", s.unique_pages},
            {"skipped_optional_records", s.skipped_optional},
            {"complete", s.ended},
            {"problem", s.problem}};
  if (s.compat) {
    j["compat"] = {{"stream_version", s.compat->stream_version},
                   {"model_version", s.compat->model_version},
                   {"type_id", s.compat->type_id},
                   {"page_size", s.compat->page_size},
                   {"mem_size", s.compat->mem_size}};
  }
  if (s.regs) {
    Json r;
    for (const auto& [name, v] : devstream::regs_fields(*s.regs)) r[name] = v;
    j["registers"] = r;
  }
  if (s.engine) {
    const auto& e = *s.engine;
    j["engine"] = {{"active", (e.flags & MDEVMIG_ENGINE_F_ACTIVE) != 0},
                   {"opcode", e.desc.opcode},
                   {"src", e.desc.src},
                   {"dst", e.desc.dst},
                   {"len", e.desc.len},
                   {"progress", e.progress},
                   {"user_data", e.desc.user_data}};
  }
  if (s.config) {
    const auto& c = *s.config;
    j["config"] = {{"command", c.command},   {"bar0", c.bar0},         {"bar2", c.bar2},
                   {"msi_ctrl", c.msi_ctrl}, {"msi_addr", c.msi_addr}, {"msi_data", c.msi_data},
                   {"msi_mask", c.msi_mask}};
  }
  if (s.irq)
    j["irq"] = {{"intx_asserted", s.irq->intx_asserted}, {"msi_pending", s.irq->msi_pending}};
  return j;
}

// The file did not verify: show what could be read, then the verdict; exit 4. Errors that
// are not about the file's content (a system call, Ctrl-C) are reported as they are.
int report_damaged(const Context& ctx, int fd, const std::string& file, const Error& e) {
  if (e.errnum != schema::kCorruptErrno && e.errnum != schema::kIncompatibleErrno)
    return ctx.fail(e);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return ctx.fail(e);
  Salvage s;
  if (st.st_size > 0) {
    auto map =
        vfio::Mapping::map_shared(fd, 0, static_cast<std::size_t>(st.st_size), PROT_READ, file);
    if (!map.ok()) return ctx.fail(e);
    s = salvage(std::span(static_cast<const std::byte*>(map->data()), map->size()), file);
  } else {
    s = salvage({}, file);
  }
  if (ctx.json()) {
    ctx.print_json(damaged_json(file, s, e.message()));
    set_json_errors(false);  // the document above holds the verdict
  } else {
    print_damaged(file, s, e.message());
  }
  std::fflush(stdout);
  return ctx.fail(e);
}

// The --json document of a file that verified: everything print_text() shows, and the
// verdict.
Json inspect_json(const std::string& file, const engine::FileSummary& sum,
                  const devstream::StreamSummary& s, bool ours, const TrialLoad& trial,
                  const std::optional<Error>& refused) {
  Json chunks = Json::array();
  for (const auto& c : sum.chunks) {
    chunks.push_back({{"seq", c.seq},
                      {"offset", c.offset},
                      {"bytes", c.bytes},
                      {"phase", schema::phase_name(c.phase)},
                      {"xxh3", hash_text(c.xxh3)}});
  }
  Json j = json_document("inspect");
  j["file"] = file;
  j["verdict"] = refused ? "refused" : "good";
  j["problem"] = refused ? Json(refused->message()) : Json(nullptr);
  j["format_version"] = sum.header.format_version;
  j["tool_version"] = sum.header.tool_version;
  j["created"] = iso8601(sum.header.created_unix_ns);
  j["created_unix_ns"] = std::to_string(sum.header.created_unix_ns);
  j["finished"] = iso8601(sum.trailer.finished_unix_ns);
  j["hostname"] = sum.header.hostname;
  j["channel"] = schema::channel_name(sum.header.channel);
  j["chunk_size"] = sum.header.chunk_size;
  j["device"] = identity_json(sum.header.device);
  j["chunks"] = chunks;
  j["file_bytes"] = sum.file_bytes;
  j["stream_bytes"] = sum.trailer.stream_bytes;
  j["stream_xxh3"] = hash_text(sum.trailer.stream_xxh3);
  j["checksums_verified"] = true;
  j["device_stream"] = ours ? stream_json(s) : Json(nullptr);
  if (ours) {
    j["device_stream"]["trial_load"] = {
        {"tried", trial.tried()},
        {"loads", trial.tried() ? Json(trial.loads()) : Json(nullptr)},
        {"outcome", trial.text()}};
  }
  return j;
}

}  // namespace

Args inspect_args() {
  Args args("inspect FILE [options]",
            "Verifies a save file and shows what it holds: header, chunk table, checksums, and\n"
            "for mdevmig devices the decoded device records and whether the device would load\n"
            "them (a trial load through the device model's loader in a simulated device of the\n"
            "file's geometry). Exits 4 if anything is corrupt or would not load.");
  args.positional("FILE", "the save file");
  args.flag("json", "print everything as JSON");
  args.flag("chunks", "list every chunk (text output)");
  return args;
}

int run_inspect(Context& ctx) {
  const Args& args = ctx.args();
  const std::string file = *args.get("FILE");
  if (auto e = check_save_file_arg(file, true)) return ctx.fail(*e);
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ctx.fail(Error::from_errno("open", file));

  auto scanner = engine::FileScanner::open(in.get(), file);
  if (!scanner.ok()) return report_damaged(ctx, in.get(), file, scanner.error());
  devstream::StreamDecoder decoder;
  TrialLoad trial(engine::is_mdevmig(scanner->header().device) ? scanner->header().device.compat
                                                               : std::nullopt);
  bool ours = false;
  bool first = true;
  auto sum = engine::verify_file(*scanner, [&](const schema::ChunkView& c) {
    if (first) {
      // The container says whether the device is ours; the stream's first record too.
      first = false;
      ours = c.data.size() >= 4 && (static_cast<uint32_t>(c.data[2]) |
                                    static_cast<uint32_t>(c.data[3]) << 8) == MDEVMIG_REC_MAGIC;
    }
    if (ours) {
      decoder.feed(c.data, c.phase);
      trial.feed(c.data);
    }
  });
  if (!sum.ok()) return report_damaged(ctx, in.get(), file, sum.error());
  ours = ours && engine::is_mdevmig(sum->header.device);
  const devstream::StreamSummary s = decoder.finish();
  if (ours) trial.finish();
  // The verdict, last in the text and in "verdict"/"problem" of the JSON.
  std::optional<Error> refused;
  if (ours && !s.problem.empty()) {
    refused =
        Error::make_verdict(schema::kCorruptErrno, "decode device stream", file + ": " + s.problem);
  } else if (ours && trial.tried() && !trial.loads()) {
    refused = Error::make_verdict(schema::kCorruptErrno, "trial load",
                                  file + ": the device would refuse it: " + trial.text());
  }
  if (ctx.json()) {
    ctx.print_json(inspect_json(file, *sum, s, ours, trial, refused));
    std::fflush(stdout);
    set_json_errors(false);  // the document above holds the verdict
  } else {
    print_text(file, *sum, s, ours, trial.text(), args.has("chunks"));
    std::printf("verdict: %s\n", refused ? ("refused: " + refused->message()).c_str() : "good");
  }
  if (refused) return ctx.fail(*refused);
  return kExitOk;
}

}  // namespace mdevmig::cli
