// inspect's text output: a save file that verified (print_text) or one that did not
// (print_damaged). The JSON documents are built in inspect.cc.
#include "tools/cli/inspect_text.h"

#include <cinttypes>
#include <cstdio>

#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

// The container: header, device identity, chunk table, checksums.
void print_container(const std::string& file, const engine::FileSummary& f, bool all_chunks) {
  const schema::FileHeader& h = f.header;
  const schema::DeviceIdentity& d = h.device;
  std::printf("%s: mdevmig save file, format %u, %s\n", file.c_str(), h.format_version,
              h.tool_version.c_str());
  std::printf("  created      %s on %s\n", iso8601(h.created_unix_ns).c_str(), h.hostname.c_str());
  std::printf("  device       %s%s%s, %s, PCI %04x:%04x (subsystem %04x:%04x), %zu regions\n",
              d.uuid.empty() ? "(passed as an fd)" : d.uuid.c_str(),
              d.sysfs_path.empty() ? "" : " at ", d.sysfs_path.c_str(), d.device_api.c_str(),
              d.pci_vendor, d.pci_device, d.pci_sub_vendor, d.pci_sub_device,
              d.region_sizes.size());
  std::printf("  migration    flags 0x%" PRIx64 ", saved through %s\n", d.migration_flags,
              schema::channel_name(h.channel));
  if (d.compat) {
    std::printf("  compat       stream v%u, model v%u, type %u, page %u, memory %s\n",
                d.compat->stream_version, d.compat->model_version, d.compat->type_id,
                d.compat->page_size, human_bytes(static_cast<double>(d.compat->mem_size)).c_str());
  }
  std::printf("chunks: %zu, %s of device stream (chunk size %u), file %s\n", f.chunks.size(),
              human_bytes(static_cast<double>(f.trailer.stream_bytes)).c_str(), h.chunk_size,
              human_bytes(static_cast<double>(f.file_bytes)).c_str());
  const std::size_t show = all_chunks ? f.chunks.size() : std::min<std::size_t>(f.chunks.size(), 4);
  for (std::size_t i = 0; i < show; ++i) {
    const auto& c = f.chunks[i];
    std::printf("  #%-6" PRIu64 " offset %-12" PRIu64 " %8" PRIu64 " bytes  %-9s xxh3 %016" PRIx64
                "\n",
                c.seq, c.offset, c.bytes, schema::phase_name(c.phase), c.xxh3);
  }
  if (show < f.chunks.size())
    std::printf("  ... %zu more (--chunks lists all)\n", f.chunks.size() - show);
  std::printf("checksums: header, %zu chunks, trailer and whole stream (xxh3 %016" PRIx64
              ") verified\n",
              f.chunks.size(), f.trailer.stream_xxh3);
}

// Our device's records, decoded, and whether the device model loads them.
void print_device_stream(const devstream::StreamSummary& s, const std::string& trial_outcome) {
  std::printf("device stream: %" PRIu64 " records%s\n", s.records,
              s.ended ? ", complete (END)" : "");
  if (!s.problem.empty()) std::printf("  PROBLEM: %s\n", s.problem.c_str());
  std::printf("  loads: %s\n", trial_outcome.c_str());
  if (s.compat) {
    std::printf("  COMPAT   stream v%u, model v%u, type %u, page %u, memory %s\n",
                s.compat->stream_version, s.compat->model_version, s.compat->type_id,
                s.compat->page_size, human_bytes(static_cast<double>(s.compat->mem_size)).c_str());
  }
  std::printf("  PAGES    %" PRIu64 " records, %" PRIu64 " pages (pre-copy %" PRIu64
              ", stop-copy %" PRIu64 "), %" PRIu64 " distinct\n",
              s.page_records, s.pages_precopy + s.pages_stopcopy, s.pages_precopy, s.pages_stopcopy,
              s.unique_pages);
  if (s.regs) {
    std::printf("  REGS    ");
    int n = 0;
    for (const auto& [name, v] : devstream::regs_fields(*s.regs)) {
      if (name.starts_with("scratch") && v == 0) continue;
      std::printf(" %s=%s", name.c_str(), hex(v).c_str());
      if (++n % 6 == 0) std::printf("\n          ");
    }
    std::printf("\n");
  }
  if (s.engine) {
    const auto& e = *s.engine;
    if (e.flags & MDEVMIG_ENGINE_F_ACTIVE) {
      std::printf(
          "  ENGINE   descriptor in flight: opcode %u, len %llu, %llu bytes done, user_data %llu\n",
          e.desc.opcode, static_cast<unsigned long long>(e.desc.len),
          static_cast<unsigned long long>(e.progress),
          static_cast<unsigned long long>(e.desc.user_data));
    } else {
      std::printf("  ENGINE   idle (nothing in flight)\n");
    }
  }
  if (s.config) {
    std::printf("  CONFIG   command=%s bar0=%s bar2=%s msi_ctrl=%s\n",
                hex(s.config->command).c_str(), hex(s.config->bar0).c_str(),
                hex(s.config->bar2).c_str(), hex(s.config->msi_ctrl).c_str());
  }
  if (s.irq)
    std::printf("  IRQ      intx=%u msi_pending=%s\n", s.irq->intx_asserted,
                hex(s.irq->msi_pending).c_str());
}

}  // namespace

void print_text(const std::string& file, const engine::FileSummary& f,
                const devstream::StreamSummary& s, bool ours, const std::string& trial_outcome,
                bool all_chunks) {
  print_container(file, f, all_chunks);
  if (!ours) {
    std::printf("device stream: not an mdevmig device; its records are opaque here\n");
    return;
  }
  print_device_stream(s, trial_outcome);
}

void print_damaged(const std::string& file, const Salvage& s, const std::string& verdict) {
  std::printf("%s: mdevmig save file, DAMAGED (%s)\n", file.c_str(),
              human_bytes(static_cast<double>(s.file_bytes)).c_str());
  if (!s.preamble) {
    std::printf("  preamble     BAD: %s\n", s.preamble_problem.c_str());
  } else {
    std::printf("  preamble     ok: format %u, header %u bytes, header xxh3 %016" PRIx64 "\n",
                s.preamble->format_version, s.preamble->header_bytes, s.preamble->header_xxh3);
    std::printf("  header       %s%s\n",
                s.header_problem.empty() ? "ok" : "BAD: ", s.header_problem.c_str());
  }
  if (s.header) {
    const auto& h = *s.header;
    const auto& d = h.device;
    std::printf("  written by   %s on %s\n", h.tool_version.c_str(), h.hostname.c_str());
    std::printf("  device       %s, %s, PCI %04x:%04x, saved through %s, chunk size %u\n",
                d.uuid.empty() ? "(passed as an fd)" : d.uuid.c_str(), d.device_api.c_str(),
                d.pci_vendor, d.pci_device, schema::channel_name(h.channel), h.chunk_size);
  }
  if (s.preamble && s.header_problem.find("truncated") == std::string::npos) {
    std::printf("chunks: %zu found, %zu bad\n", s.chunks.size(), s.bad_chunks());
    for (const auto& e : s.chunks) {
      if (e.chunk) {
        const auto& c = *e.chunk;
        std::printf("  #%-6" PRIu64 " offset %-12" PRIu64 " %8" PRIu64
                    " bytes  %-9s xxh3 %016" PRIx64 "  %s%s\n",
                    c.seq, c.offset, c.bytes, schema::phase_name(c.phase), c.xxh3,
                    e.problem.empty() ? "ok" : "BAD: ", e.problem.c_str());
      } else {
        std::printf("  file byte %-10" PRIu64 " %8" PRIu64 " bytes  BAD: %s\n", e.file_offset,
                    e.frame_bytes, e.problem.c_str());
      }
    }
    if (!s.end_problem.empty()) std::printf("  BAD: %s\n", s.end_problem.c_str());
    if (s.trailer) {
      std::printf(
          "trailer: %" PRIu64 " chunks, %s of device stream, stream xxh3 %016" PRIx64 "%s%s\n",
          s.trailer->chunks, human_bytes(static_cast<double>(s.trailer->stream_bytes)).c_str(),
          s.trailer->stream_xxh3,
          s.trailer_problem.empty() ? "" : "  BAD: ", s.trailer_problem.c_str());
    }
  }
  std::printf("verdict: damaged: %s\n", verdict.c_str());
}

}  // namespace mdevmig::cli
