// mdevmig save DEVICE FILE: a device's state into a save file (any v2 device; the v1
// region when that is all a device has).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <span>
#include <string>

#include "migration/engine/channel.h"
#include "migration/engine/savefile.h"
#include "tools/cli/args.h"
#include "tools/cli/choice_options.h"
#include "tools/cli/command.h"
#include "tools/cli/context.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {

Args save_args() {
  Args args("save DEVICE FILE [options]",
            "Saves the state of a VFIO device into FILE: the device stops, its whole migration\n"
            "stream is written in checksummed chunks, and it runs again (unless --stop).\n" +
                std::string(kDeviceFormsHelp));
  args.positional("DEVICE", "the device to save");
  args.positional("FILE", "the save file to write (replaced only when the save succeeded)");
  declare_channel(args, "migration interface");
  args.option("chunk-size", "SIZE", "device stream bytes per chunk", "1M");
  args.flag("stop", "leave the device stopped after the save");
  args.flag("json", "print the report as JSON");
  args.epilogue(kExitCodesHelp);
  return args;
}

int run_save(Context& ctx) {
  const Args& args = ctx.args();
  auto spec = parse_device_spec(*args.get("DEVICE"));
  if (!spec.ok()) return ctx.fail(spec.error());
  auto pref = get_channel(args);
  if (!pref.ok()) return ctx.fail(pref.error());
  auto chunk = args.get_size("chunk-size", 1, schema::kMaxChunkBytes);
  if (!chunk.ok()) return ctx.fail(chunk.error());
  const std::string file = *args.get("FILE");
  if (auto e = check_save_file_arg(file, false)) return ctx.fail(*e);

  warn_uuid_mode("save", *spec);
  auto dev = OpenedDevice::open(*spec);
  if (!dev.ok()) return ctx.fail(dev.error());
  auto id = dev->identity();
  if (!id.ok()) return ctx.fail(id.error());
  auto ch = engine::open_channel(dev->dev(), *pref, false);
  if (!ch.ok()) return ctx.fail(ch.error());

  // Written next to FILE and renamed over it on success: a failed save leaves no
  // half-written file under the name.
  const std::string tmp = file + ".partial";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return ctx.fail(Error::from_errno("open", tmp));

  Progress progress("save " + spec->text);
  const uint64_t expect = id->compat ? id->compat->mem_size : 0;
  engine::SaveOptions opt;
  opt.chunk_size = *chunk;
  opt.leave_running = !args.has("stop");
  opt.cancel = ctx.cancel();
  opt.progress = [&](uint64_t bytes) { progress.update(bytes, expect > bytes ? expect : 0); };
  auto rep = engine::save_to_file(**ch, *id, out.get(), opt);
  progress.finish();
  if (!rep.ok()) {
    ::unlink(tmp.c_str());
    return ctx.fail(rep.error());
  }
  if (::fsync(out.get()) != 0 || ::rename(tmp.c_str(), file.c_str()) != 0) {
    Error e = Error::from_errno("rename", tmp + " -> " + file);
    ::unlink(tmp.c_str());
    return ctx.fail(e);
  }
  const double mib_s =
      rep->seconds > 0 ? static_cast<double>(rep->stream_bytes) / rep->seconds / (1 << 20) : 0;
  if (ctx.json()) {
    ctx.print_json(save_json(spec->text, file, *rep, args.has("stop")));
  } else {
    std::printf(
        "saved %s to %s: %s of device state in %llu chunks via %s, %.3f s (%.1f MiB/s), stream "
        "xxh3 %s, "
        "device %s\n",
        spec->text.c_str(), file.c_str(),
        human_bytes(static_cast<double>(rep->stream_bytes)).c_str(),
        static_cast<unsigned long long>(rep->chunks), schema::channel_name(rep->channel),
        rep->seconds, mib_s, hash_text(rep->stream_xxh3).c_str(),
        args.has("stop") ? "stopped" : "running");
  }
  return kExitOk;
}

Json save_json(const std::string& device, const std::string& file, const engine::SaveReport& r,
               bool stopped) {
  Json j = json_document("save");
  j["device"] = device;
  j["file"] = file;
  j["channel"] = schema::channel_name(r.channel);
  j["stream_bytes"] = r.stream_bytes;
  j["file_bytes"] = r.file_bytes;
  j["chunks"] = r.chunks;
  j["stream_xxh3"] = hash_text(r.stream_xxh3);
  j["seconds"] = r.seconds;
  j["device_state_after"] = stopped ? "STOP" : "RUNNING";
  return j;
}

}  // namespace mdevmig::cli
